"""SMS and WhatsApp: Twilio's Messages API through the official SDK, or the local default
(the same device sink as the phone codes: a file per number in development).

Also the two things Twilio sends back, each verified with X-Twilio-Signature over the full
URL we published plus the sorted form parameters (`verify_twilio`):
- status callbacks (`parse_status`) at STATUS_CALLBACK_PATH?send=<idempotency key>, so a
  callback finds its send even if we died before storing the message sid;
- inbound messages (`parse_inbound`), whose STOP/START/HELP keywords (or Twilio's own
  `OptOutType` when Advanced Opt-Out matched, in any configured language) become actions.

Twilio's Messages API has no idempotency key: a retry after a lost answer can send twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from anyio import to_thread
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from samia.config import Settings
from samia.core.ports import SmsSink
from samia.core.problems import AppError
from samia.providers.delivery import Delivery, report, require
from samia.providers.phone import DeviceFileSink, RedirectingHttpClient

Channel = Literal["sms", "whatsapp"]
Action = Literal["opt_out", "opt_in", "help"]

STATUS_CALLBACK_PATH = "/webhooks/twilio/messages/status"
INBOUND_PATH = "/webhooks/twilio/messages/inbound"

# Permanent for the number: opted out (21610), not a valid or not a mobile number,
# WhatsApp user not reachable on WhatsApp; the rest of 21xxx is about our request.
GONE_CODES = {21610, 21211, 21614, 63024}
# The same in delivery status callbacks: unknown handset, landline, opted out.
GONE_STATUS_CODES = {21610, 30005, 30006}

KEYWORDS: dict[str, Action] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "opt_out"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "opt_in"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
OPT_OUT_TYPES: dict[str, Action] = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}


class Messenger(Protocol):
    name: str
    channel: Channel

    async def send(self, to: str, text: str, *, key: uuid.UUID, content_sid: str | None = None,
                   content_variables: Mapping[str, str] | None = None) -> Delivery:
        """`to` in E.164. WhatsApp outside the 24-hour session window takes an approved
        template (`content_sid` + `content_variables`) instead of free text."""

    async def aclose(self) -> None: ...


class LocalMessenger:
    """No network: the text goes to the device sink. Numbers in `gone` answer as Twilio does
    for an unsubscribed recipient (21610)."""
    name = "local"

    def __init__(self, channel: Channel, sink: SmsSink, gone: set[str] | None = None) -> None:
        self.channel, self.sink = channel, sink
        self.gone = gone if gone is not None else set()

    async def send(self, to: str, text: str, *, key: uuid.UUID, content_sid: str | None = None,
                   content_variables: Mapping[str, str] | None = None) -> Delivery:
        if to in self.gone:
            return Delivery.gone("twilio_21610")
        if content_sid is not None:
            text = f"[template {content_sid}] {json.dumps(dict(content_variables or {}), ensure_ascii=False)}"
        self.sink.deliver(to if self.channel == "sms" else f"whatsapp:{to}", text)
        return Delivery.sent(f"local-{key}")

    async def aclose(self) -> None:
        return None


class TwilioMessenger:
    name = "twilio"

    def __init__(self, settings: Settings, channel: Channel) -> None:
        sender = (settings.twilio_messaging_from if channel == "sms" else settings.twilio_whatsapp_from) or None
        require(f"{channel} through Twilio", [
            ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid), ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            ("TWILIO_MESSAGING_FROM" if channel == "sms" else "TWILIO_WHATSAPP_FROM",
             sender or settings.twilio_messaging_service_sid)])
        assert settings.twilio_auth_token is not None
        self.channel: Channel = channel
        self._from = None if sender is None else (sender if channel == "sms" else f"whatsapp:{sender}")
        self._service = settings.twilio_messaging_service_sid if sender is None else None
        self._callback = settings.public_base_url.rstrip("/") + STATUS_CALLBACK_PATH
        http = (RedirectingHttpClient(settings.twilio_base_url, timeout=settings.provider_timeout)
                if settings.twilio_base_url else TwilioHttpClient(timeout=settings.provider_timeout))
        self._http = http
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                              http_client=http)

    async def aclose(self) -> None:
        if self._http.session is not None:
            self._http.session.close()

    async def send(self, to: str, text: str, *, key: uuid.UUID, content_sid: str | None = None,
                   content_variables: Mapping[str, str] | None = None) -> Delivery:
        ids = {"key": str(key)}
        params: dict[str, Any] = {"to": to if self.channel == "sms" else f"whatsapp:{to}",
                                  "status_callback": f"{self._callback}?{urlencode({'send': str(key)})}"}
        if self._from:
            params["from_"] = self._from
        else:
            params["messaging_service_sid"] = self._service
        if content_sid is not None:
            params["content_sid"] = content_sid
            params["content_variables"] = json.dumps(dict(content_variables or {}), ensure_ascii=False)
        else:
            params["body"] = text

        def call() -> str:
            return str(self._client.messages.create(**params).sid)

        try:
            sid = await to_thread.run_sync(call)
        except TwilioRestException as e:
            return report(self.channel, self.name, classify(e), **ids)
        except (TwilioException, OSError) as e:  # requests' errors are OSErrors: connection, timeout
            return report(self.channel, self.name, Delivery.retry(type(e).__name__), **ids)
        return report(self.channel, self.name, Delivery.sent(sid), **ids)


def classify(e: TwilioRestException) -> Delivery:
    label = f"twilio_{e.code or e.status}"
    if e.code in GONE_CODES:
        return Delivery.gone(label)
    if e.status == 429 or e.code == 20429 or e.status >= 500:
        return Delivery.retry(label)
    return Delivery.failed(label)


# ---- what Twilio sends us -------------------------------------------------------------------

def verify_twilio(settings: Settings, url: str, params: Mapping[str, str], signature: str | None) -> None:
    """403 invalid_signature unless X-Twilio-Signature signs this URL (as Twilio called it,
    query included) and these form parameters with our auth token."""
    require("Twilio webhooks", [("TWILIO_AUTH_TOKEN", settings.twilio_auth_token)])
    assert settings.twilio_auth_token is not None
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    if not signature or not validator.validate(url, dict(params), signature):
        raise AppError(403, "invalid_signature", "the X-Twilio-Signature does not match this request")


@dataclass(frozen=True)
class Inbound:
    channel: Channel
    sender: str          # E.164, without "whatsapp:"
    recipient: str       # our number
    message_sid: str
    action: Action | None


def parse_inbound(form: Mapping[str, str]) -> Inbound:
    raw_from, raw_to = form.get("From", ""), form.get("To", "")
    channel: Channel = "whatsapp" if raw_from.startswith("whatsapp:") else "sms"
    return Inbound(channel, raw_from.removeprefix("whatsapp:"), raw_to.removeprefix("whatsapp:"),
                   form.get("MessageSid") or form.get("SmsSid") or "", keyword_action(form))


def keyword_action(form: Mapping[str, str]) -> Action | None:
    """Twilio's OptOutType when present (it already matched the keywords configured in
    Advanced Opt-Out), else the standard keywords: the whole message, any case, trailing
    punctuation ignored ("Stop." opts out; "stop sending me these" does not)."""
    typed = (form.get("OptOutType") or "").strip().upper()
    if typed:
        return OPT_OUT_TYPES.get(typed)
    word = (form.get("Body") or "").strip().rstrip(".!?؟").strip().upper()
    return KEYWORDS.get(word)


StatusState = Literal["queued", "sent", "delivered", "opened", "failed"]
_STATES: dict[str, StatusState] = {"accepted": "queued", "scheduled": "queued", "queued": "queued",
                                   "sending": "queued", "sent": "sent", "delivered": "delivered", "read": "opened",
                                   "undelivered": "failed", "failed": "failed", "canceled": "failed"}


@dataclass(frozen=True)
class StatusUpdate:
    provider_ref: str           # MessageSid
    send_key: str | None        # our idempotency key from the callback URL (?send=)
    state: StatusState | None   # None for states the engine does not track
    error_code: int | None
    gone: bool                  # the number is permanently unreachable: suppress it


def parse_status(form: Mapping[str, str], query: Mapping[str, str] | None = None) -> StatusUpdate:
    code_text = form.get("ErrorCode") or ""
    code = int(code_text) if code_text.isdigit() else None
    state = _STATES.get(form.get("MessageStatus") or form.get("SmsStatus") or "")
    return StatusUpdate(form.get("MessageSid") or form.get("SmsSid") or "", (query or {}).get("send"), state, code,
                        state == "failed" and code in GONE_STATUS_CODES)


def make_messenger(settings: Settings, channel: Channel, sink: SmsSink | None = None) -> Messenger:
    provider = settings.sms_provider if channel == "sms" else settings.whatsapp_provider
    if provider == "twilio":
        return TwilioMessenger(settings, channel)
    if settings.env == "prod":
        setting = "SMS_PROVIDER" if channel == "sms" else "WHATSAPP_PROVIDER"
        raise AppError(503, "provider_not_configured", f"{channel} needs {setting}=twilio in production",
                       extra={"setting": setting})
    return LocalMessenger(channel, sink or DeviceFileSink(settings.data_dir / "dev-phone"))
