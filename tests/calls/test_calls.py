"""Live calls end to end: consent with IP, the simulated and the Twilio call state machines,
per-minute billing from the wallet ledger, instant windows, the emergency siren on a
controllable clock, monitor powers and redacted transcripts."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from twilio.request_validator import RequestValidator

from samia.app import create_app

from ..conftest import make_settings
from ..helpers import Api, JsonHandler, User, ok, problem, run_jobs, serving

RATE = 150  # per minute, minor units
UTC = dt.UTC


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """Requests come from a real address, as the consent log records it."""
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.7", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def reader(api: Api) -> User:
    api.sql("update services set per_minute_minor = %s where code = 'direct_call'", (RATE,))
    r = api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services "
            "where code in ('direct_call', 'healing')", (r.id,))
    api.sql("update profiles set phone = '+9613000001' where id = %s", (r.id,))
    return r


def booking_now(api: Api, client_user: User, reader: User, minutes: int = 30) -> int:
    """A confirmed booking of direct_call starting now (as the bookings flow leaves one)."""
    return api.sql("""
        with cap as (insert into reader_capacity (reader_id, during, kind, status)
                     values (%(r)s, tstzrange(now(), now() + make_interval(mins => %(m)s)), 'booking', 'confirmed')
                     returning id)
        insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, status,
                              price_minor, currency, policy)
        select %(c)s, %(r)s, s.id, cap.id, now(), now() + make_interval(mins => %(m)s), 'confirmed', 0, 'USD',
               s.policy from cap, services s where s.code = 'direct_call' returning id""",
                   {"r": reader.id, "c": client_user.id, "m": minutes})[0][0]


def funded_client(api: Api, client: TestClient, amount: int = 1000) -> User:
    c = api.user("client")
    api.sql("update profiles set phone = '+9613000002' where id = %s", (c.id,))
    ok(client.post("/wallet/topups", json={"amount_minor": amount, "card_token": "tok_visa"}, headers=c.h), 201)
    return c


def balance(client: TestClient, user: User) -> int:
    return ok(client.get("/wallet", headers=user.h))["balance_minor"]  # type: ignore[no-any-return]


def test_full_simulated_call_consent_start_events_end_and_per_minute_charge(client, api, reader) -> None:
    c = funded_client(api, client)
    b = booking_now(api, c, reader)
    # seeds 002: starting without the client's consent (with IP) answers 400
    problem(client.post(f"/calls/{b}/start", headers=reader.h), 400, "consent_required")
    assert api.sql("select count(*) from calls where booking_id = %s", (b,)) == [(0,)]
    problem(client.post(f"/calls/{b}/consent", json={"consent_given": False}, headers=c.h), 422)
    problem(client.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=reader.h), 403)
    ok(client.post(f"/calls/{b}/consent", json={"consent_given": True, "recording": False}, headers=c.h), 201)
    assert api.sql("select host(client_ip), recording_consent from call_consent_logs where booking_id = %s",
                   (b,)) == [("203.0.113.7", False)]
    call = ok(client.post(f"/calls/{b}/start", headers=reader.h), 201)
    assert (call["status"], call["record"], call["per_minute_minor"]) == ("ringing", False, RATE)
    problem(client.post(f"/calls/{b}/start", headers=c.h), 409)  # one call per booking
    t0 = dt.datetime.now(UTC)
    ok(client.post(f"/calls/{call['id']}/simulate", json={"event": "started", "at": t0.isoformat()}, headers=c.h))
    end = ok(client.post(f"/calls/{call['id']}/simulate", json={"event": "ended", "reason": "completed",
                                                              "at": (t0 + dt.timedelta(seconds=150)).isoformat()},
                         headers=reader.h))
    assert (end["status"], end["connected_seconds"], end["billed_minor"]) == ("ended", 150, 3 * RATE)
    assert balance(client, c) == 1000 - 3 * RATE
    (txn,) = api.sql("select id from payment_transactions where call_id = %s and kind = 'charge'", (call["id"],))[0]
    assert api.sql("select account, amount_minor from ledger_entries where txn_id = %s order by amount_minor",
                   (txn,)) == [(f"wallet:{c.id}", -3 * RATE), ("revenue", 3 * RATE)]
    assert api.sql("select status, started_at is not null from bookings where id = %s", (b,)) == [("completed", True)]
    assert [e for (e,) in api.sql("select event from call_events where call_id = %s order by id", (call["id"],))] == [
        "created", "ringing", "started", "ended"]
    # an ended call stays ended whatever arrives later, and is billed once
    ok(client.post(f"/calls/{call['id']}/simulate", json={"event": "ended"}, headers=c.h))
    assert balance(client, c) == 1000 - 3 * RATE
    with pytest.raises(psycopg.Error, match="cannot go from ended to started"):
        api.sql("update calls set status = 'started' where id = %s", (call["id"],))
    stranger = api.user("client")
    problem(client.get(f"/calls/{call['id']}", headers=stranger.h), 404)


def test_a_call_that_outlasts_the_wallet_bills_only_what_the_wallet_holds(client, api, reader) -> None:
    c = funded_client(api, client, amount=300)  # two minutes at the rate
    api.sql("insert into reader_status (reader_id, available) values (%s, true) "
            "on conflict (reader_id) do update set available = true", (reader.id,))
    call = ok(client.post("/calls/instant", json={"reader_id": reader.id, "consent_given": True}, headers=c.h), 201)
    assert api.sql("select max_seconds from calls where id = %s", (call["id"],)) == [(120,)]
    t0 = dt.datetime.now(UTC)
    ok(client.post(f"/calls/{call['id']}/simulate", json={"event": "started", "at": t0.isoformat()}, headers=c.h))
    end = ok(client.post(f"/calls/{call['id']}/simulate",
                         json={"event": "ended", "at": (t0 + dt.timedelta(minutes=10)).isoformat()}, headers=c.h))
    assert (end["connected_seconds"], end["billed_minor"]) == (120, 300) and balance(client, c) == 0
    # the instant call held the reader's time in the one capacity ledger, released at the end
    assert api.sql("select kind, status from reader_capacity where id = (select capacity_id from calls "
                   "where id = %s)", (call["id"],)) == [("call", "completed")]


class FakeTwilio(JsonHandler):
    calls: list[dict[str, Any]] = []  # noqa: RUF012
    updates: list[str] = []  # noqa: RUF012

    def do_POST(self) -> None:
        from urllib.parse import parse_qs
        body = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        assert self.headers["Authorization"].startswith("Basic ")
        if self.path.endswith("/Calls.json"):
            FakeTwilio.calls.append({k: v[0] for k, v in body.items()})
            self.reply(201, {"sid": f"CA{len(FakeTwilio.calls):032d}", "status": "queued"})
        else:
            FakeTwilio.updates.append(self.path)
            self.reply(200, {"sid": self.path.rsplit("/", 1)[-1].removesuffix(".json"), "status": "completed"})


def signed(url: str, params: dict[str, str], token: str) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def test_twilio_conference_webhooks_drive_the_call_and_a_bad_signature_changes_nothing(api, dsns, reader) -> None:
    token = "twilio-auth-token-for-tests"
    base = "https://api.samia.example"
    with serving(FakeTwilio) as fake:
        settings = make_settings(VOICE_PROVIDER="twilio", TWILIO_ACCOUNT_SID="AC" + "1" * 32,
                                 TWILIO_AUTH_TOKEN=token, TWILIO_CALLER_ID="+15005550006",
                                 TWILIO_BASE_URL=fake, PUBLIC_BASE_URL=base)
        with TestClient(create_app(settings, dsns=dsns), raise_server_exceptions=False,
                        client=("198.51.100.4", 1)) as http:
            c = funded_client(api, http)
            b = booking_now(api, c, reader)
            ok(http.post(f"/calls/{b}/consent", json={"consent_given": True, "recording": True}, headers=c.h), 201)
            call = ok(http.post(f"/calls/{b}/start", headers=c.h), 201)
            cid = call["id"]
            dialled = FakeTwilio.calls[-2:]
            assert {d["To"] for d in dialled} == {"+9613000001", "+9613000002"}
            assert all(d["From"] == "+15005550006" and d["Url"] == f"{base}/webhooks/twilio/voice/twiml?call={cid}"
                       for d in dialled)
            # the TwiML each leg fetches: the call's conference, recorded (the client consented)
            twiml_params = {"CallSid": "CA1", "AccountSid": "AC" + "1" * 32}
            url = f"{base}/webhooks/twilio/voice/twiml?call={cid}"
            r = http.post(f"/webhooks/twilio/voice/twiml?call={cid}", data=twiml_params,
                          headers=signed(url, twiml_params, token))
            assert r.status_code == 200 and f">samia-call-{cid}</Conference>" in r.text
            assert 'record="record-from-start"' in r.text

            hook = f"/webhooks/twilio/voice?call={cid}"
            t0 = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
            start = {"StatusCallbackEvent": "conference-start", "ConferenceSid": "CF" + "a" * 32,
                     "SequenceNumber": "1", "Timestamp": email.utils.format_datetime(t0)}
            before = api.sql("select status, started_at from calls where id = %s", (cid,))
            bad = http.post(hook, data=start, headers={"X-Twilio-Signature": "forged"})
            problem(bad, 403, "invalid_signature")
            tampered = http.post(hook, data={**start, "SequenceNumber": "2"}, headers=signed(base + hook, start, token))
            problem(tampered, 403)
            assert api.sql("select status, started_at from calls where id = %s", (cid,)) == before
            for _ in range(2):  # Twilio retries: applied once
                assert http.post(hook, data=start, headers=signed(base + hook, start, token)).status_code == 204
            end = {"StatusCallbackEvent": "conference-end", "ConferenceSid": "CF" + "a" * 32, "SequenceNumber": "9",
                   "Timestamp": email.utils.format_datetime(t0 + dt.timedelta(seconds=61))}
            assert http.post(hook, data=end, headers=signed(base + hook, end, token)).status_code == 204
            done = ok(http.get(f"/calls/{cid}", headers=c.h))
            assert (done["status"], done["connected_seconds"], done["billed_minor"], done["end_reason"]) == (
                "ended", 61, 2 * RATE, "completed")
            assert api.sql("select count(*) from call_events where call_id = %s and event = 'started'", (cid,)) == [
                (1,)]
            # a leg that never answers ends a ringing call without a bill
            c2 = funded_client(api, http)
            b2 = booking_now(api, c2, api.user("reader"))
            ok(http.post(f"/calls/{b2}/consent", json={"consent_given": True}, headers=c2.h), 201)
            api.sql("update profiles set phone = '+9613000003' where id = (select reader_id from bookings "
                    "where id = %s)", (b2,))
            cid2 = ok(http.post(f"/calls/{b2}/start", headers=c2.h), 201)["id"]
            na = {"CallSid": "CA" + "9" * 32, "CallStatus": "no-answer"}
            hook2 = f"/webhooks/twilio/voice?call={cid2}"
            assert http.post(hook2, data=na, headers=signed(base + hook2, na, token)).status_code == 204
            assert ok(http.get(f"/calls/{cid2}", headers=c2.h))["end_reason"] == "no_answer"
            assert ok(http.get(f"/calls/{cid2}", headers=c2.h))["billed_minor"] == 0


def test_missing_twilio_settings_answer_503_naming_them(api, dsns, reader) -> None:
    with TestClient(create_app(make_settings(VOICE_PROVIDER="twilio"), dsns=dsns), raise_server_exceptions=False,
                    client=("198.51.100.4", 1)) as http:
        c = funded_client(api, http)
        b = booking_now(api, c, api.user("reader"))
        ok(http.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=c.h), 201)
        body = problem(http.post(f"/calls/{b}/start", headers=c.h), 503, "provider_not_configured")
        assert body["setting"] == "TWILIO_ACCOUNT_SID"
        assert api.sql("select count(*) from calls where booking_id = %s", (b,)) == [(0,)]  # nothing half-written
        problem(http.post("/webhooks/twilio/voice?call=1", data={"CallStatus": "ringing"}), 503)


def test_inside_an_approved_window_a_reader_stays_available_unless_on_a_call(client, api) -> None:
    r, admin = api.user("reader"), api.user("admin")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'healing'",
            (r.id,))
    now = dt.datetime.now(UTC)
    w = ok(client.post("/readers/me/instant-windows", json={"starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
                                                             "ends_at": (now + dt.timedelta(hours=1)).isoformat()},
                       headers=r.h), 201)
    ok(client.put("/readers/me/status", json={"available": True}, headers=r.h))
    ok(client.put("/readers/me/status", json={"available": False}, headers=r.h))  # not approved yet: free to go
    problem(client.post(f"/admin/instant-windows/{w['id']}/approve", json={}, headers=r.h), 403)
    ok(client.post(f"/admin/instant-windows/{w['id']}/approve", json={}, headers=admin.h))
    ok(client.put("/readers/me/status", json={"available": True}, headers=r.h))
    problem(client.put("/readers/me/status", json={"available": False}, headers=r.h), 409, "in_instant_window")
    assert api.sql("select available from reader_status where reader_id = %s", (r.id,)) == [(True,)]
    assert api.audit_rows("reader.unavailable_refused")[-1][0] == r.id  # the refusal is logged
    with pytest.raises(psycopg.Error, match="stays available"):
        api.sql_as(r.id, "update reader_status set available = false where reader_id = auth.uid()")
    # on a call it may
    c = funded_client(api, client)
    call = ok(client.post("/calls/instant", json={"reader_id": r.id, "service": "healing", "consent_given": True},
                          headers=c.h), 201)
    ok(client.put("/readers/me/status", json={"available": False}, headers=r.h))
    ok(client.post(f"/calls/{call['id']}/hangup", headers=c.h))


def test_with_reader_instant_off_there_are_no_instant_calls_or_windows(client, api) -> None:
    """feature.readerInstant gates instant windows and instant calls, in the database as in the API."""
    r, admin = api.user("reader"), api.user("admin")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'healing'",
            (r.id,))
    now = dt.datetime.now(UTC)
    window = {"starts_at": (now - dt.timedelta(minutes=5)).isoformat(),
              "ends_at": (now + dt.timedelta(hours=1)).isoformat()}
    w = ok(client.post("/readers/me/instant-windows", json=window, headers=r.h), 201)
    ok(client.post(f"/admin/instant-windows/{w['id']}/approve", json={}, headers=admin.h))
    ok(client.put("/readers/me/status", json={"available": True}, headers=r.h))
    c = funded_client(api, client)
    ok(client.patch("/admin/flags/feature.readerInstant", json={"enabled": False}, headers=admin.h))
    try:
        problem(client.post("/calls/instant", json={"reader_id": r.id, "service": "healing", "consent_given": True},
                            headers=c.h), 403, "feature_disabled")
        problem(client.post("/readers/me/instant-windows", json=window, headers=r.h), 403, "feature_disabled")
        assert api.sql("select count(*) from instant_windows where reader_id = %s", (r.id,)) == [(1,)]
        # the approved window binds nobody while the feature is off
        ok(client.put("/readers/me/status", json={"available": False}, headers=r.h))
        with pytest.raises(psycopg.Error, match="switched off"):
            api.sql_as(c.id, "select app.start_instant_call(%s, (select id from services where code = 'healing'), "
                             "'203.0.113.7', 'x', false)", (r.id,))
    finally:
        ok(client.patch("/admin/flags/feature.readerInstant", json={"enabled": True}, headers=admin.h))
    ok(client.put("/readers/me/status", json={"available": True}, headers=r.h))
    problem(client.put("/readers/me/status", json={"available": False}, headers=r.h), 409, "in_instant_window")


def run_escalation(settings, dsns, at: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """One worker process run at a controlled time (each call is a fresh worker: a restart)."""
    run_jobs(settings, dsns, "emergency_escalate", at=at)


def test_emergency_escalates_on_schedule_survives_a_restart_and_stops_when_acknowledged(client, api, settings,
                                                                                        dsns) -> None:
    monitor = api.user("monitor")
    c = api.user("client")
    e = ok(client.post("/calls/emergency", json={"consent_given": True, "note": "panic"}, headers=c.h), 201)
    assert e["siren"] is True and e["level"] == 0
    problem(client.post("/calls/emergency", json={"consent_given": True}, headers=c.h), 409)  # one at a time
    (created,) = api.sql("select created_at from emergency_requests where id = %s", (e["id"],))[0]
    run_escalation(settings, dsns, created + dt.timedelta(seconds=31))      # readers had 30 s
    assert api.sql("select level from emergency_requests where id = %s", (e["id"],)) == [(1,)]
    paged = api.sql("select params from notification_outbox where recipient_id = %s and template = 'emergency_siren'",
                    (monitor.id,))
    assert paged and paged[0][0]["ignore_quiet_hours"] is True and paged[0][0]["priority"] == "emergency"
    # the worker was down for a while: the next run catches up every step, each at its due time
    run_escalation(settings, dsns, created + dt.timedelta(seconds=275))
    trace = api.sql("select event, level, due_at - %s from emergency_events where request_id = %s order by id",
                    (created, e["id"]))
    steps = [(ev, lvl, int(d.total_seconds())) for ev, lvl, d in trace]
    assert steps == [("raised", 0, 0), ("rang_readers", 0, 0), ("escalated", 1, 30), ("escalated", 2, 90),
                     ("escalated", 3, 210), ("repaged", 3, 270)]
    queue = ok(client.get("/monitor/emergency", headers=monitor.h))
    assert [q["id"] for q in queue] == [e["id"]] and queue[0]["trace"][-1] == "repaged@3"
    ok(client.post(f"/monitor/emergency/{e['id']}/ack", headers=monitor.h))
    run_escalation(settings, dsns, created + dt.timedelta(hours=2))
    assert len(api.sql("select 1 from emergency_events where request_id = %s", (e["id"],))) == 7  # + acknowledged
    assert ok(client.get(f"/calls/emergency/{e['id']}", headers=c.h))["siren"] is False
    # switched off by its flag: refused
    api.sql("update feature_flags set enabled = false where key = 'feature.emergencyExtension'")
    try:
        problem(client.post("/calls/emergency", json={"consent_given": True}, headers=api.user("client").h), 403,
                "feature_disabled")
    finally:
        api.sql("update feature_flags set enabled = true where key = 'feature.emergencyExtension'")


def test_a_reader_answering_the_siren_takes_the_call(client, api) -> None:
    r = api.user("reader")
    api.sql("insert into reader_status (reader_id, available) values (%s, true)", (r.id,))
    c = api.user("client")
    e = ok(client.post("/calls/emergency", json={"consent_given": True, "recording": True}, headers=c.h), 201)
    assert api.sql("select count(*) from notification_outbox where recipient_id = %s and template = 'emergency_siren'",
                   (r.id,)) == [(1,)]
    answered_before = client.app.state.platform.metrics.siren_answer._sum.get()
    call = ok(client.post(f"/calls/emergency/{e['id']}/answer", headers=r.h), 201)
    assert client.app.state.platform.metrics.siren_answer._sum.get() > answered_before  # answer time observed
    assert (call["kind"], call["reader_id"], call["client_id"], call["record"]) == ("emergency", r.id, c.id, True)
    assert api.sql("select host(client_ip) from call_consent_logs where call_id = %s", (call["id"],)) == [
        ("203.0.113.7",)]
    problem(client.post(f"/calls/emergency/{e['id']}/answer", headers=api.user("reader").h), 409)


def test_monitor_drop_ends_the_call_and_bills_the_connected_time(client, api, reader) -> None:
    monitor, admin = api.user("monitor"), api.user("admin")
    c = funded_client(api, client)
    b = booking_now(api, c, reader)
    ok(client.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=c.h), 201)
    cid = ok(client.post(f"/calls/{b}/start", headers=c.h), 201)["id"]
    ok(client.post(f"/calls/{cid}/simulate", json={"event": "started",
                                                   "at": (dt.datetime.now(UTC) - dt.timedelta(seconds=70)).isoformat()},
                   headers=c.h))
    problem(client.post(f"/monitor/calls/{cid}/drop", json={"note": "abusive language"}, headers=c.h), 403)
    ok(client.post(f"/monitor/calls/{cid}/join", headers=monitor.h))
    ok(client.post(f"/monitor/calls/{cid}/flag", json={"category": "abuse", "note": "shouting"}, headers=monitor.h),
       201)
    done = ok(client.post(f"/monitor/calls/{cid}/drop", json={"note": "abusive language"}, headers=monitor.h))
    assert done["end_reason"] == "dropped_by_monitor" and done["connected_seconds"] in (70, 71)
    assert done["billed_minor"] == 2 * RATE and balance(client, c) == 1000 - 2 * RATE
    assert [a for (a,) in api.sql("select action from moderation_actions where target_kind = 'call' "
                                  "and target_id = %s order by id", (str(cid),))] == ["join_silent", "flag",
                                                                                     "drop_call"]
    # block the party by a monitor; unblock by the monitor refused, by an admin accepted
    ok(client.post("/monitor/block-user", json={"user_id": c.id, "reason": "abuse"}, headers=monitor.h), 201)
    problem(client.post("/monitor/unblock-user", json={"user_id": c.id, "note": "calmed down"}, headers=monitor.h),
            403)
    ok(client.post("/monitor/unblock-user", json={"user_id": c.id, "note": "calmed down"}, headers=admin.h))


PII = {"phone": "+961 71 123 456", "local_phone": "(415) 555-2671", "email": "layla.k@example.org",
       "card": "4111 1111 1111 1111", "iban": "GB82 WEST 1234 5698 7654 32"}


def test_transcripts_are_stored_redacted_flagged_and_kept_from_clients(client, api, reader, caplog) -> None:
    monitor = api.user("monitor")
    c = funded_client(api, client)
    b = booking_now(api, c, reader)
    ok(client.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=c.h), 201)
    cid = ok(client.post(f"/calls/{b}/start", headers=c.h), 201)["id"]
    text = (f"Call me on {PII['phone']} or {PII['local_phone']}, write to {PII['email']}, "
            f"my card is {PII['card']} and my IBAN {PII['iban']}. Order 12345 from 1990.")
    r = ok(client.post(f"/calls/{cid}/transcript", json={"speaker": "client", "text": text}, headers=reader.h), 201)
    assert r["redactions"] == {"PHONE": 2, "EMAIL": 1, "CARD": 1, "IBAN": 1}
    stored = api.sql("select text_redacted from call_transcripts where call_id = %s", (cid,))[0][0]
    for value in PII.values():
        assert value not in stored
    assert "12345" in stored and "1990" in stored  # ordinary numbers stay
    everything = json.dumps(api.sql("select to_jsonb(t) from call_transcripts t")) + caplog.text
    assert all(v not in everything for v in PII.values())
    # the analyser flags over the threshold; repeated flags open an incident (and a critical case)
    for line in ("I will find you, you will regret this", "pay me directly, outside the app",
                 "I want to end my life"):
        out = ok(client.post(f"/calls/{cid}/transcript", json={"speaker": "client", "text": line},
                             headers=reader.h), 201)
        assert out["flags_raised"] == 1
    assert out["incident_id"] is not None
    safety = ok(client.get(f"/monitor/calls/{cid}/safety", headers=monitor.h))
    assert {f["category"] for f in safety["flags"]} == {"harassment", "fraud", "safety"}
    assert safety["incident"]["case_id"] is not None
    assert api.sql("select severity, subject_kind from moderation_cases where id = %s",
                   (safety["incident"]["case_id"],)) == [(4, "call")]
    # clients never see any of it
    problem(client.get(f"/monitor/calls/{cid}/safety", headers=c.h), 403)
    problem(client.post(f"/calls/{cid}/transcript", json={"text": "hello"}, headers=c.h), 403)
    for table in ("call_transcripts", "call_flags", "safety_incidents"):
        assert api.sql_as(c.id, sql.SQL("select count(*) from {}").format(sql.Identifier(table))) == [(0,)]
    assert "Call me" not in json.dumps(ok(client.get(f"/calls/{cid}", headers=c.h)))


def test_old_transcripts_go_after_their_window_unless_an_incident_is_open(client, api, settings, dsns) -> None:
    reader = api.user("reader")  # the module's reader is still on the previous test's call
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services "
            "where code = 'direct_call'", (reader.id,))
    c = funded_client(api, client)
    b = booking_now(api, c, reader)
    ok(client.post(f"/calls/{b}/consent", json={"consent_given": True}, headers=c.h), 201)
    cid = ok(client.post(f"/calls/{b}/start", headers=c.h), 201)["id"]
    ok(client.post(f"/calls/{cid}/transcript", json={"text": "shut up, idiot"}, headers=reader.h), 201)
    ok(client.post(f"/calls/{cid}/simulate", json={"event": "ended"}, headers=c.h))
    api.sql("update call_transcripts set at = now() - interval '100 days' where call_id = %s", (cid,))
    api.sql("update call_flags set created_at = now() - interval '100 days' where call_id = %s", (cid,))
    open_incident = api.sql("select call_id from safety_incidents where status = 'open'")
    run_jobs(settings, dsns, "retention_purge")
    assert api.sql("select count(*) from call_transcripts where call_id = %s", (cid,)) == [(0,)]
    assert api.sql("select count(*) from call_flags where call_id = %s", (cid,)) == [(0,)]
    for (kept,) in open_incident:  # a call under an open incident keeps its evidence
        assert api.sql("select count(*) from call_transcripts where call_id = %s", (kept,))[0][0] > 0
    assert api.audit_rows("retention.purged_calls")
