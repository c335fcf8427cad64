"""Apple Push Notification service: token-based authentication over HTTP/2.

The provider token is an ES256 JWT (`kid` = APNS_KEY_ID, `iss` = APNS_TEAM_ID, `iat`) signed
with the .p8 key; Apple refuses one older than an hour and throttles one renewed more often
than every 20 minutes, so it is reused for 50 minutes. One HTTP/2 connection is kept and
multiplexed. `apns-id` is our idempotency key, so the attempt and its retries share an id.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.delivery import Delivery, report, require, retry_after
from samia.providers.push_message import PushKind, PushMessage

TOKEN_LIFETIME = 50 * 60
MAX_PAYLOAD = 4096
GONE_REASONS = {"BadDeviceToken", "Unregistered"}
TOKEN_REASONS = {"ExpiredProviderToken"}


def apns_payload(message: PushMessage) -> bytes:
    aps: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}, "sound": "default",
                           "interruption-level": "time-sensitive" if message.critical else "active"}
    extra = {k: v for k, v in message.data.items() if k != "aps"}
    return json.dumps({"aps": aps, **extra, "lang": message.lang}, ensure_ascii=False,
                      separators=(",", ":")).encode()


class ApnsSender:
    name = "apns"
    kind: PushKind = "apns"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        require("APNs push", [("APNS_KEY_ID", settings.apns_key_id), ("APNS_TEAM_ID", settings.apns_team_id),
                              ("APNS_PRIVATE_KEY", settings.apns_private_key), ("APNS_TOPIC", settings.apns_topic)])
        assert settings.apns_private_key is not None
        self.key_id, self.team_id = settings.apns_key_id or "", settings.apns_team_id or ""
        self.topic = settings.apns_topic or ""
        self._key = _signing_key(settings.apns_private_key.get_secret_value())
        self._token: tuple[str, float] | None = None
        tls = ssl.create_default_context()
        if settings.apns_ca_file is not None:
            tls.load_verify_locations(cafile=str(settings.apns_ca_file))
        self._http = http or httpx.AsyncClient(base_url=settings.apns_base_url.rstrip("/"), http2=True, verify=tls,
                                               timeout=settings.provider_timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    def provider_token(self, *, renew: bool = False) -> str:
        now = time.time()
        if renew or self._token is None or now - self._token[1] >= TOKEN_LIFETIME:
            token = jwt.encode({"iss": self.team_id, "iat": int(now)}, self._key, algorithm="ES256",
                               headers={"kid": self.key_id})
            self._token = (token, now)
        return self._token[0]

    async def send(self, address: str, message: PushMessage, *, key: uuid.UUID) -> Delivery:
        ids = {"key": str(key)}
        payload = apns_payload(message)
        if len(payload) > MAX_PAYLOAD:
            return report("push", self.name, Delivery.failed("payload_too_large"), kind=self.kind, **ids)
        if not address or not all(c in "0123456789abcdefABCDEF" for c in address):
            return report("push", self.name, Delivery.gone("apns_BadDeviceToken"), kind=self.kind, **ids)
        headers = {"apns-topic": self.topic, "apns-push-type": "alert", "apns-id": str(key),
                   "apns-priority": "10" if message.critical else "5",
                   "apns-expiration": str(int(time.time()) + max(0, message.ttl))}
        for attempt in (1, 2):  # again only with a renewed provider token
            headers["authorization"] = f"bearer {self.provider_token(renew=attempt == 2)}"
            try:
                resp = await self._http.post(f"/3/device/{address}", content=payload, headers=headers)
            except httpx.HTTPError as e:
                return report("push", self.name, Delivery.retry(type(e).__name__), kind=self.kind, **ids)
            reason = _reason(resp)
            if resp.status_code == 403 and reason in TOKEN_REASONS and attempt == 1:
                continue
            return report("push", self.name, classify(resp, reason), kind=self.kind, **ids)
        raise AssertionError("unreachable")


def classify(resp: httpx.Response, reason: str | None) -> Delivery:
    if resp.status_code == 200:
        return Delivery.sent(resp.headers.get("apns-id"))
    label = f"apns_{reason or resp.status_code}"
    if resp.status_code == 410 or reason in GONE_REASONS:
        return Delivery.gone(label)
    if resp.status_code == 429 or resp.status_code >= 500:
        return Delivery.retry(label, retry_after(resp.headers.get("retry-after")))
    return Delivery.failed(label)  # DeviceTokenNotForTopic, PayloadTooLarge, InvalidProviderToken …


def _reason(resp: httpx.Response) -> str | None:
    if resp.status_code == 200:
        return None
    try:
        reason = resp.json().get("reason")
    except ValueError:
        return None
    return str(reason) if reason else None


def _signing_key(value: str) -> ec.EllipticCurvePrivateKey:
    """APNS_PRIVATE_KEY: the .p8 file's PEM text, or its path."""
    try:
        pem = value if "-----BEGIN" in value else Path(value).read_text()
        key = load_pem_private_key(pem.strip().encode(), password=None)
    except (OSError, ValueError) as e:
        raise AppError(503, "provider_not_configured", "APNS_PRIVATE_KEY is not a .p8 key",
                       extra={"setting": "APNS_PRIVATE_KEY"}) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AppError(503, "provider_not_configured", "APNS_PRIVATE_KEY is not a P-256 key",
                       extra={"setting": "APNS_PRIVATE_KEY"})
    return key
