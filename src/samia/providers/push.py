"""Push notifications: one interface over Web Push (VAPID, here), FCM (fcm.py) and APNs
(apns.py), and the local default that writes what would have been pushed to a file.

A device's `address` is what the client registered: for Web Push the browser's
PushSubscription JSON (`WebPushSubscription.parse` validates it at registration), for FCM
and APNs the device token. `key` is the delivery's idempotency key (a UUID): each adapter
hands it to the provider where the protocol has a place for it.

Web Push: the payload is encrypted with aes128gcm (RFC 8291) by pywebpush for the
subscription's p256dh/auth keys and authorised with a VAPID JWT (RFC 8292, py_vapid),
signed once per push-service origin and reused until an hour before it expires. The
idempotency key becomes the `Topic` header, so a retry replaces a copy the push service
still holds instead of adding a second one.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPusher

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.apns import ApnsSender
from samia.providers.delivery import Delivery, from_http_status, is_loopback, report, require
from samia.providers.fcm import FcmSender
from samia.providers.push_message import PushChannel, PushKind, PushMessage

WEBPUSH_MAX_PLAINTEXT = 3993  # 4096-byte record minus aes128gcm header, tag and padding delimiter


@dataclass(frozen=True)
class WebPushSubscription:
    endpoint: str
    p256dh: str
    auth: str

    @classmethod
    def parse(cls, raw: str | Mapping[str, Any], *, host_pattern: str) -> WebPushSubscription:
        """A browser's PushSubscription (its toJSON()), checked: the endpoint is https on a
        push service's host (never an address of ours: we POST to it), the keys are a P-256
        point and a 16-byte secret. ValueError says what is wrong."""
        sub = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(sub, Mapping) or not isinstance(sub.get("keys"), Mapping):
            raise ValueError("a subscription has an endpoint and keys")
        endpoint, keys = str(sub.get("endpoint", "")), sub["keys"]
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        if not host or not re.fullmatch(host_pattern, host):
            raise ValueError("the endpoint is not on a known push service")
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
            raise ValueError("the endpoint is not https")
        try:
            point = _b64(str(keys.get("p256dh", "")))
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            secret = _b64(str(keys.get("auth", "")))
        except ValueError as e:
            raise ValueError("the subscription keys are not valid") from e
        if len(point) != 65 or len(secret) != 16:
            raise ValueError("the subscription keys are not valid")
        return cls(endpoint, str(keys["p256dh"]), str(keys["auth"]))

    def address(self) -> str:
        """The canonical form to store as the device's address."""
        return json.dumps({"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}},
                          separators=(",", ":"), sort_keys=True)


def webpush_payload(message: PushMessage) -> bytes:
    """What the service worker receives (after decryption)."""
    return json.dumps({"title": message.title, "body": message.body, "data": dict(message.data),
                       "lang": message.lang, "dir": "rtl" if message.lang == "ar" else "ltr"},
                      ensure_ascii=False, separators=(",", ":")).encode()


class WebPushSender:
    name = "vapid"
    kind: PushKind = "webpush"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        require("Web Push", [("VAPID_PRIVATE_KEY", settings.vapid_private_key),
                             ("VAPID_SUBJECT", settings.vapid_subject)])
        self.vapid = _load_vapid(settings)
        self.public_key = vapid_public_key(self.vapid)
        if settings.vapid_public_key and settings.vapid_public_key.rstrip("=") != self.public_key:
            raise AppError(503, "provider_not_configured", "VAPID_PUBLIC_KEY does not match VAPID_PRIVATE_KEY",
                           extra={"setting": "VAPID_PUBLIC_KEY"})
        self.subject = settings.vapid_subject or ""
        self.host_pattern = settings.webpush_endpoint_host_pattern
        self._http = http or httpx.AsyncClient(timeout=settings.provider_timeout, follow_redirects=False)
        self._jwt: dict[str, tuple[str, float]] = {}  # origin -> (Authorization value, expiry)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, address: str, message: PushMessage, *, key: uuid.UUID) -> Delivery:
        ids = {"key": str(key)}
        try:
            sub = WebPushSubscription.parse(address, host_pattern=self.host_pattern)
        except ValueError:
            return report("push", self.name, Delivery.gone("invalid_subscription"), kind=self.kind, **ids)
        data = webpush_payload(message)
        if len(data) > WEBPUSH_MAX_PLAINTEXT:
            return report("push", self.name, Delivery.failed("payload_too_large"), kind=self.kind, **ids)
        body = WebPusher({"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
                         ).encode(data, "aes128gcm")["body"]
        headers = {"Authorization": self._authorization(sub.endpoint), "TTL": str(max(0, message.ttl)),
                   "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "Urgency": "high" if message.critical else "normal", "Topic": key.hex}
        try:
            resp = await self._http.post(sub.endpoint, content=body, headers=headers)
        except httpx.HTTPError as e:
            return report("push", self.name, Delivery.retry(type(e).__name__), kind=self.kind, **ids)
        d = from_http_status(resp.status_code, resp.headers.get("retry-after"))
        if d is None:
            d = Delivery.sent(resp.headers.get("location") or key.hex)
        elif resp.status_code == 413:
            d = Delivery.failed("payload_too_large")
        return report("push", self.name, d, kind=self.kind, **ids)

    def _authorization(self, endpoint: str) -> str:
        p = urlsplit(endpoint)
        origin = f"{p.scheme}://{p.netloc}"
        now = time.time()
        cached = self._jwt.get(origin)
        if cached is None or cached[1] - now < 3600:
            exp = int(now) + 12 * 3600  # RFC 8292: at most 24 h
            header = self.vapid.sign({"aud": origin, "sub": self.subject, "exp": exp})["Authorization"]
            self._jwt[origin] = cached = (header, exp)
        return cached[0]


def vapid_public_key(vapid: Vapid) -> str:
    """The applicationServerKey a browser subscribes with (base64url, uncompressed point)."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def webpush_public_key(settings: Settings) -> str:
    """What GET …/vapid-public-key answers (the browser's applicationServerKey); 503 naming
    the setting when Web Push is not configured, since a browser cannot subscribe without it."""
    if settings.webpush_provider != "vapid":
        raise AppError(503, "provider_not_configured", "Web Push needs WEBPUSH_PROVIDER=vapid",
                       extra={"setting": "WEBPUSH_PROVIDER"})
    return vapid_public_key(_load_vapid(settings))


def _load_vapid(settings: Settings) -> Vapid:
    """VAPID_PRIVATE_KEY as web-push tools print it (raw base64url) or as PEM."""
    require("Web Push", [("VAPID_PRIVATE_KEY", settings.vapid_private_key)])
    value = settings.vapid_private_key.get_secret_value().strip() if settings.vapid_private_key else ""
    try:
        return Vapid.from_pem(value.encode()) if "-----BEGIN" in value else Vapid.from_string(value)
    except Exception as e:  # py_vapid raises a variety on a malformed key
        raise AppError(503, "provider_not_configured", "VAPID_PRIVATE_KEY is not a P-256 private key",
                       extra={"setting": "VAPID_PRIVATE_KEY"}) from e


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# ---- the local default ----------------------------------------------------------------------

class PushSink(Protocol):
    def deliver(self, kind: str, address: str, message: PushMessage) -> None: ...


class MemoryPushSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str, PushMessage]] = []

    def deliver(self, kind: str, address: str, message: PushMessage) -> None:
        self.messages.append((kind, address, message))


class PushFileSink:
    """Development: one JSON line per push under the data dir (the stand-in for the device)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, kind: str, address: str, message: PushMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = {"at": time.time(), "address": address, "title": message.title, "body": message.body,
                "data": dict(message.data), "critical": message.critical, "lang": message.lang}
        with open(self.directory / f"{kind}.jsonl", "a") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


class LocalPush:
    """No network. Addresses in `gone` answer as an expired device would (410)."""
    name = "local"

    def __init__(self, kind: PushKind, sink: PushSink, gone: set[str] | None = None) -> None:
        self.kind, self.sink = kind, sink
        self.gone = gone if gone is not None else set()

    async def send(self, address: str, message: PushMessage, *, key: uuid.UUID) -> Delivery:
        if address in self.gone:
            return Delivery.gone("http_410")
        self.sink.deliver(self.kind, address, message)
        return Delivery.sent(f"local-{key}")

    async def aclose(self) -> None:
        return None


def make_push(settings: Settings, kind: PushKind, sink: PushSink | None = None) -> PushChannel:
    """The configured channel for one kind of device; 503 naming the missing setting."""
    selected, real = {"webpush": (settings.webpush_provider, "WEBPUSH_PROVIDER"),
                      "fcm": (settings.fcm_provider, "FCM_PROVIDER"),
                      "apns": (settings.apns_provider, "APNS_PROVIDER")}[kind]
    if selected != "local":
        if kind == "fcm":
            return FcmSender(settings)
        if kind == "apns":
            return ApnsSender(settings)
        return WebPushSender(settings)
    if settings.env == "prod":
        raise AppError(503, "provider_not_configured", f"{kind} push needs {real} set in production",
                       extra={"setting": real})
    return LocalPush(kind, sink or PushFileSink(settings.data_dir / "dev-push"))
