"""Phone verification: local provider, rate limit, no OTP stored in clear, and the Twilio
Verify adapter through the official SDK against a fake Twilio on loopback."""

from __future__ import annotations

import base64
import re
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient

from samia.app import create_app
from tests.conftest import make_settings
from tests.helpers import JsonHandler, problem, serving

PHONE = "+96171123456"


def last_code(sms, phone: str) -> str:
    text = [t for p, t in sms.messages if p == phone][-1]
    return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]


def test_local_flow_wrong_code_counts_then_right_code_verifies(client, api, sms) -> None:
    u = api.user("client")
    r = client.post("/api/verify/phone/start", json={"phone": "71 123 456"}, headers=u.h)  # national, LB
    assert r.status_code == 202, r.text
    code = last_code(sms, PHONE)
    rows = api.sql("select code_hash, status from phone_verifications where profile_id = %s", (u.id,))
    assert rows[0][1] == "sent" and rows[0][0] and code not in rows[0][0]
    wrong = "000000" if code != "000000" else "111111"
    problem(client.post("/api/verify/phone/check", json={"phone": PHONE, "code": wrong}, headers=u.h),
            400, "invalid_code")
    assert api.sql("select attempts from phone_verifications where profile_id = %s", (u.id,)) == [(1,)]
    r = client.post("/api/verify/phone/check", json={"phone": PHONE, "code": code}, headers=u.h)
    assert r.status_code == 200 and r.json()["status"] == "verified"
    me = client.get("/me", headers=u.h).json()
    assert (me["phone"], me["phone_verified"]) == (PHONE, True)
    assert api.audit_rows("phone.verified", u.id)


def test_five_wrong_codes_burn_the_verification(client, api, sms) -> None:
    u = api.user("client")
    client.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h)
    code = last_code(sms, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        problem(client.post("/api/verify/phone/check", json={"phone": PHONE, "code": wrong}, headers=u.h), 400)
    problem(client.post("/api/verify/phone/check", json={"phone": PHONE, "code": code}, headers=u.h),
            400, "too_many_attempts")
    assert client.get("/me", headers=u.h).json()["phone_verified"] is False


def test_sixth_start_within_an_hour_is_429_with_retry_after(client, api) -> None:
    u = api.user("client")
    for i in range(5):
        r = client.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h)
        assert r.status_code == 202, r.text
        assert r.headers["RateLimit-Limit"] == "5" and r.headers["RateLimit-Remaining"] == str(4 - i)
    r = client.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h)
    problem(r, 429, "rate_limited")
    assert 3000 < int(r.headers["Retry-After"]) <= 3600
    assert r.headers["RateLimit-Remaining"] == "0"
    # another user is not affected
    other = api.user("client")
    assert client.post("/api/verify/phone/start", json={"phone": PHONE}, headers=other.h).status_code == 202


def test_invalid_numbers_and_no_pending(client, api) -> None:
    u = api.user("client")
    problem(client.post("/api/verify/phone/start", json={"phone": "12345"}, headers=u.h), 422, "invalid_phone")
    problem(client.post("/api/verify/phone/check", json={"phone": PHONE, "code": "123456"}, headers=u.h),
            404, "not_found")
    problem(client.post("/api/verify/phone/start", json={"phone": PHONE}), 401)


class FakeTwilio(JsonHandler):
    """The two Verify endpoints, with Basic auth as Twilio checks it."""
    sid, token = "AC" + "0" * 32, "fake-auth-token"
    pending: ClassVar[dict[str, str]] = {}
    requests: ClassVar[list[tuple[str, dict[str, list[str]]]]] = []


    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.requests.append((self.path, form))
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        to = form["To"][0]
        if self.path.endswith("/Verifications"):
            self.pending[to] = "424242"
            return self.reply(201, {"sid": "VE" + "1" * 32, "to": to, "channel": "sms", "status": "pending"})
        if self.path.endswith("/VerificationCheck"):
            if to not in self.pending:
                return self.reply(404, {"code": 20404, "message": "not found", "status": 404})
            ok = form["Code"][0] == self.pending[to]
            if ok:
                del self.pending[to]
            return self.reply(200, {"sid": "VE" + "1" * 32, "to": to, "status": "approved" if ok else "pending"})
        return self.reply(404, {"code": 20404, "message": "not found", "status": 404})



@pytest.fixture(scope="module")
def fake_twilio():  # type: ignore[no-untyped-def]
    with serving(FakeTwilio) as url:
        yield url


def test_twilio_adapter_through_the_sdk(dsns, api, fake_twilio) -> None:
    settings = make_settings(PHONE_PROVIDER="twilio", TWILIO_ACCOUNT_SID=FakeTwilio.sid,
                             TWILIO_AUTH_TOKEN=FakeTwilio.token, TWILIO_VERIFY_SID="VA" + "2" * 32,
                             TWILIO_BASE_URL=fake_twilio)
    u = api.user("client")
    with TestClient(create_app(settings, dsns=dsns)) as c:
        assert c.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h).status_code == 202
        path, form = FakeTwilio.requests[-1]
        assert path == f"/v2/Services/VA{'2' * 32}/Verifications" and form["To"] == [PHONE]
        assert form["Channel"] == ["sms"]
        problem(c.post("/api/verify/phone/check", json={"phone": PHONE, "code": "111111"}, headers=u.h), 400,
                "invalid_code")
        r = c.post("/api/verify/phone/check", json={"phone": PHONE, "code": "424242"}, headers=u.h)
        assert r.status_code == 200 and r.json()["status"] == "verified"
    row = api.sql("select provider, provider_ref, code_hash, status from phone_verifications "
                  "where profile_id = %s", (u.id,))
    assert row == [("twilio", "VE" + "1" * 32, None, "verified")]


def test_twilio_wrong_credentials_and_missing_settings_answer_503(dsns, api, fake_twilio) -> None:
    u = api.user("client")
    bad = make_settings(PHONE_PROVIDER="twilio", TWILIO_ACCOUNT_SID=FakeTwilio.sid, TWILIO_AUTH_TOKEN="nope",
                        TWILIO_VERIFY_SID="VA" + "2" * 32, TWILIO_BASE_URL=fake_twilio)
    with TestClient(create_app(bad, dsns=dsns)) as c:
        problem(c.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h), 503,
                "provider_unavailable")
    missing = make_settings(PHONE_PROVIDER="twilio")
    with TestClient(create_app(missing, dsns=dsns)) as c:
        b = problem(c.post("/api/verify/phone/start", json={"phone": PHONE}, headers=u.h), 503,
                    "provider_not_configured")
        assert b["setting"] == "TWILIO_ACCOUNT_SID"
    # nothing was recorded for the failed starts
    assert api.sql("select count(*) from phone_verifications where profile_id = %s", (u.id,)) == [(0,)]
