"""Phone verification: Twilio Verify (official SDK) or the local default.

The local provider plays the part of Twilio: it makes a 6-digit code with `secrets`,
keeps only an HMAC of it (the database compares), and hands the text to a device sink:
a file per number under the data dir in development (the stand-in for the user's
handset), memory in tests. Codes never reach the logs or the database in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from anyio import to_thread
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from samia.config import Settings
from samia.core.ports import PhoneVerifier, SmsSink, Started
from samia.core.problems import AppError

CODE_TTL_SECONDS = 600
T = TypeVar("T")


class MemorySink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def deliver(self, phone: str, text: str) -> None:
        self.messages.append((phone, text))


class DeviceFileSink:
    """Development only: one file per phone number, as if it were the handset."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, phone: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / f"{phone}.txt", "a") as f:
            f.write(text + "\n")


class LocalVerifier:
    name = "local"

    def __init__(self, settings: Settings, sink: SmsSink) -> None:
        self._key = settings.subkey("phone-otp-v1")
        self.sink = sink

    def code_hash(self, phone: str, code: str) -> str:
        return hmac.new(self._key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    async def start(self, phone: str) -> Started:
        code = f"{secrets.randbelow(10**6):06d}"
        self.sink.deliver(phone, f"Your Samia Tarot code is {code}")
        return Started("local", None, self.code_hash(phone, code))

    async def check(self, phone: str, code: str) -> tuple[str | None, bool | None]:
        return self.code_hash(phone, code), None

    def close(self) -> None:
        pass


class TwilioVerifier:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        missing = [n for n, v in (("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                                  ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                                  ("TWILIO_VERIFY_SID", settings.twilio_verify_sid)) if not v]
        if missing:
            raise AppError(503, "provider_not_configured", f"phone verification needs {', '.join(missing)}",
                           extra={"setting": missing[0]})
        http = (RedirectingHttpClient(settings.twilio_base_url, timeout=10) if settings.twilio_base_url
                else TwilioHttpClient(timeout=10))
        assert settings.twilio_auth_token is not None
        self._http = http
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                              http_client=http)
        self._service = settings.twilio_verify_sid

    def close(self) -> None:
        if self._http.session is not None:
            self._http.session.close()

    async def start(self, phone: str) -> Started:
        def call() -> str:
            v = self._client.verify.v2.services(self._service).verifications.create(to=phone, channel="sms")
            return str(v.sid)
        return Started("twilio", await _twilio(call), None)

    async def check(self, phone: str, code: str) -> tuple[str | None, bool | None]:
        def call() -> bool:
            try:
                res = self._client.verify.v2.services(self._service).verification_checks.create(
                    to=phone, code=code)
            except TwilioRestException as e:
                if e.status == 404:  # no pending verification (expired, used or never started)
                    return False
                raise
            return str(res.status) == "approved"
        return None, await _twilio(call)


async def _twilio(call: Callable[[], T]) -> T:
    try:
        return await to_thread.run_sync(call)
    except (TwilioException, OSError) as e:
        raise AppError(503, "provider_unavailable", "the phone verification provider did not answer",
                       headers={"Retry-After": "30"}) from e


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends the SDK's requests to another base URL (a fake Twilio on loopback in tests)."""

    def __init__(self, base_url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self._base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        url = urlsplit(url)._replace(scheme=self._base.scheme, netloc=self._base.netloc).geturl()
        return super().request(method, url, *args, **kwargs)


def make_verifier(settings: Settings, sink: SmsSink | None = None) -> PhoneVerifier:
    if settings.phone_provider == "twilio":
        return TwilioVerifier(settings)
    if settings.env == "prod":
        raise AppError(503, "provider_not_configured",
                       "phone verification needs PHONE_PROVIDER=twilio in production",
                       extra={"setting": "PHONE_PROVIDER"})
    return LocalVerifier(settings, sink or DeviceFileSink(settings.data_dir / "dev-phone"))
