"""Voice calls: Twilio Conference through the official SDK (both parties dialled into one
conference; its status callbacks drive our call state machine), or the local simulator,
which drives the same state machine through the same event function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from anyio import to_thread
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.phone import RedirectingHttpClient

T = TypeVar("T")


@dataclass(frozen=True)
class Leg:
    phone: str | None     # E.164; the simulator needs none


class Voice(Protocol):
    name: str

    async def connect(self, call_id: int, parties: list[Leg]) -> str | None: ...

    async def hangup(self, ref: str | None) -> None: ...

    async def join_silent(self, ref: str | None, monitor: Leg) -> None: ...


class LocalVoice:
    """No network: the call exists only as its state machine, driven by /calls/{id}/simulate."""
    name = "local"

    async def connect(self, call_id: int, parties: list[Leg]) -> str | None:
        return None

    async def hangup(self, ref: str | None) -> None:
        return None

    async def join_silent(self, ref: str | None, monitor: Leg) -> None:
        return None


def room(call_id: int) -> str:
    return f"samia-call-{call_id}"


class TwilioVoice:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        missing = [n for n, v in (("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                                  ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                                  ("TWILIO_CALLER_ID", settings.twilio_caller_id)) if not v]
        if missing:
            raise AppError(503, "provider_not_configured", f"voice calls need {', '.join(missing)}",
                           extra={"setting": missing[0]})
        assert settings.twilio_auth_token is not None
        http = (RedirectingHttpClient(settings.twilio_base_url, timeout=10) if settings.twilio_base_url
                else TwilioHttpClient(timeout=10))
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                             http_client=http)
        self.caller = settings.twilio_caller_id
        self.base = settings.public_base_url.rstrip("/")

    def twiml(self, call_id: int, record: bool) -> str:
        """Each dialled party joins the call's conference; recording only with consent."""
        response = VoiceResponse()
        dial = Dial()
        dial.conference(room(call_id), start_conference_on_enter=True, end_conference_on_exit=True,
                        record="record-from-start" if record else "do-not-record", beep=False,
                        status_callback=f"{self.base}/webhooks/twilio/voice?call={call_id}",
                        status_callback_event="start end join leave")
        response.append(dial)
        return str(response)

    async def connect(self, call_id: int, parties: list[Leg]) -> str | None:
        if any(p.phone is None for p in parties):
            raise AppError(409, "phone_missing", "both parties need a verified phone number for a call")

        def dial() -> str:
            sid = ""
            for leg in parties:
                call = self.client.calls.create(
                    to=leg.phone, from_=self.caller,
                    url=f"{self.base}/webhooks/twilio/voice/twiml?call={call_id}",
                    status_callback=f"{self.base}/webhooks/twilio/voice?call={call_id}",
                    status_callback_event=["initiated", "ringing", "answered", "completed"])
                sid = sid or str(call.sid)
            return sid
        return await _twilio(dial)

    async def hangup(self, ref: str | None) -> None:
        if ref is None:
            return
        if ref.startswith("CF"):
            await _twilio(lambda: self.client.conferences(ref).update(status="completed"))
        else:
            await _twilio(lambda: self.client.calls(ref).update(status="completed"))

    async def join_silent(self, ref: str | None, monitor: Leg) -> None:
        if ref is None or not ref.startswith("CF") or monitor.phone is None:
            raise AppError(409, "not_joinable", "the call has no live conference yet, or you have no phone number")
        await _twilio(lambda: self.client.conferences(ref).participants.create(
            from_=self.caller, to=monitor.phone, muted=True, beep="false"))


async def _twilio(call: Callable[[], T]) -> T:
    try:
        return await to_thread.run_sync(call)
    except (TwilioException, OSError) as e:
        raise AppError(503, "provider_unavailable", "the voice provider did not answer",
                       headers={"Retry-After": "30"}) from e


def make_voice(settings: Settings) -> Voice:
    return TwilioVoice(settings) if settings.voice_provider == "twilio" else LocalVoice()
