"""Firebase Cloud Messaging, HTTP v1 API.

An OAuth2 access token from the service account (google-auth's JWT-bearer grant to the
account's own `token_uri`), cached until shortly before it expires and refreshed by one
caller at a time; then `POST {FCM_BASE_URL}/v1/projects/{project}/messages:send`.
FCM v1 has no idempotency key: a retry after a lost answer may deliver twice (the app can
de-duplicate on `data["key"]`, which carries our idempotency key).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import google.auth.exceptions
import httpx
import requests
from anyio import to_thread
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.delivery import Delivery, report, require, retry_after
from samia.providers.push_message import PushKind, PushMessage

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class _TimedRequest(Request):
    """google-auth's transport with our timeout (its own default is 120 s)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(session=requests.Session())
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers,  # type: ignore[no-untyped-call]
                                timeout=timeout or self._timeout, **kwargs)


def load_service_account(value: str) -> dict[str, Any]:
    """FCM_SERVICE_ACCOUNT_JSON: the key file's JSON itself, or the path to it."""
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    info = json.loads(text)
    if not isinstance(info, dict) or not {"client_email", "private_key", "token_uri"} <= info.keys():
        raise ValueError("not a service account key")
    return info


def fcm_message(token: str, message: PushMessage, key: uuid.UUID) -> dict[str, Any]:
    priority = "HIGH" if message.critical else "NORMAL"
    return {"message": {
        "token": token,
        "notification": {"title": message.title, "body": message.body},
        "data": {**message.data, "key": str(key), "lang": message.lang},
        "android": {"priority": priority, "ttl": f"{max(0, message.ttl)}s"},
        "apns": {"headers": {"apns-priority": "10" if message.critical else "5"}},
    }}


class FcmSender:
    name = "fcm"
    kind: PushKind = "fcm"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        require("FCM push", [("FCM_SERVICE_ACCOUNT_JSON", settings.fcm_service_account_json)])
        assert settings.fcm_service_account_json is not None
        try:
            info = load_service_account(settings.fcm_service_account_json.get_secret_value())
            self._creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE])
        except (OSError, ValueError) as e:
            raise AppError(503, "provider_not_configured", "FCM_SERVICE_ACCOUNT_JSON is not a service account key",
                           extra={"setting": "FCM_SERVICE_ACCOUNT_JSON"}) from e
        project = settings.fcm_project_id or info.get("project_id")
        require("FCM push", [("FCM_PROJECT_ID", project)])
        self.url = f"{settings.fcm_base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._token_request = _TimedRequest(settings.provider_timeout)
        self._lock = asyncio.Lock()
        self._http = http or httpx.AsyncClient(timeout=settings.provider_timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()
        self._token_request.session.close()

    async def access_token(self) -> str:
        """The cached token, refreshed (once, whoever asks first) when it is near expiry."""
        async with self._lock:
            if not self._creds.valid:
                await to_thread.run_sync(self._creds.refresh, self._token_request)
            return str(self._creds.token)

    async def send(self, address: str, message: PushMessage, *, key: uuid.UUID) -> Delivery:
        ids = {"key": str(key)}
        body = fcm_message(address, message, key)
        for attempt in (1, 2):  # a second time only after the token was refused and renewed
            try:
                token = await self.access_token()
            except google.auth.exceptions.RefreshError as e:
                d = Delivery.retry("oauth_refresh") if e.retryable else Delivery.failed("oauth_refused")
                return report("push", self.name, d, kind=self.kind, **ids)
            except (google.auth.exceptions.TransportError, OSError) as e:
                return report("push", self.name, Delivery.retry(f"oauth_{type(e).__name__}"), kind=self.kind, **ids)
            try:
                resp = await self._http.post(self.url, json=body, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as e:
                return report("push", self.name, Delivery.retry(type(e).__name__), kind=self.kind, **ids)
            status, code = _error(resp)
            if resp.status_code == 401 and status == "UNAUTHENTICATED" and code is None and attempt == 1:
                self._creds.token = None  # revoked or expired early: fetch a new one
                continue
            return report("push", self.name, classify(resp, status, code), kind=self.kind, **ids)
        raise AssertionError("unreachable")


def classify(resp: httpx.Response, status: str | None, code: str | None) -> Delivery:
    if resp.status_code == 200:
        try:
            return Delivery.sent(str(resp.json()["name"]))
        except (ValueError, KeyError):
            return Delivery.sent(None)
    label = f"fcm_{code or status or resp.status_code}"
    if code == "UNREGISTERED" or resp.status_code == 404:
        return Delivery.gone(label)
    if resp.status_code == 429 or resp.status_code >= 500:
        return Delivery.retry(label, retry_after(resp.headers.get("retry-after")))
    return Delivery.failed(label)  # INVALID_ARGUMENT, SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR …


def _error(resp: httpx.Response) -> tuple[str | None, str | None]:
    """(google.rpc status, FcmError errorCode) of an error answer."""
    if resp.status_code == 200:
        return None, None
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        return None, None
    code = next((d.get("errorCode") for d in err.get("details") or []
                 if str(d.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError")), None)
    return err.get("status"), code
