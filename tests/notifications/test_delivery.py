"""The delivery engine end to end: the siren by Web Push to readers and the escalation ladder,
quiet hours, a gone device, flags, and every template in both languages."""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path

from samia.notifications import templates
from samia.providers.email import MemoryMailer
from tests.helpers import ok, problem, run_jobs
from tests.providers.fake_webpush import Browser

from .conftest import work

SCHEMA = Path(templates.__file__).parents[1]


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_template_exists_in_english_and_arabic_with_the_same_placeholders() -> None:
    assert templates.EN.keys() == templates.AR.keys()
    for name, (title, body) in templates.EN.items():
        ar_title, ar_body = templates.AR[name]
        assert _fields(title) | _fields(body) == _fields(ar_title) | _fields(ar_body), name
        assert re.search("[\u0600-\u06ff]", ar_title + ar_body), f"{name}: the Arabic text is not Arabic"
    sql = "\n".join(p.read_text() for p in SCHEMA.glob("*/*.sql")) + "\n".join(
        p.read_text() for p in SCHEMA.rglob("*.py"))
    queued = set(re.findall(r"'(?:email|push|sms)', '([a-z_]+)'", sql))
    queued |= set(re.findall(r"\(new\.\w+, '([a-z_]+)', new\.status", sql))
    queued -= {"channel", "push", "sms", "whatsapp", "phone", "testcard", "webpush", "data_request_"}
    assert {"emergency_siren", "incident_page", "verify_email", "booking_reminder"} <= queued
    assert queued <= templates.EN.keys(), queued - templates.EN.keys()


def subscribe(client, user, push_service, name: str) -> Browser:  # type: ignore[no-untyped-def]
    browser = Browser.new()
    ok(client.post("/me/devices", json={"kind": "webpush", "label": name,
                                        "subscription": browser.subscription(f"{push_service.origin}/push/{name}")},
                   headers=user.h), 201)
    return browser


def pushes_for(push_service, name: str, browser: Browser) -> list[dict]:  # type: ignore[no-untyped-def]
    return [browser.decrypt(p.body) for p in push_service.received if p.path == f"/push/{name}"]


def quiet_now(client, user) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    ok(client.put("/me/quiet-hours", json={"starts": (now - dt.timedelta(hours=1)).strftime("%H:%M"),
                                           "ends": (now + dt.timedelta(hours=2)).strftime("%H:%M"), "tz": "UTC"},
                  headers=user.h))


def test_the_siren_reaches_each_available_reader_by_web_push_through_quiet_hours_and_climbs(
        client, api, settings, dsns, push_service) -> None:
    readers = [api.user("reader") for _ in range(3)]
    asleep = api.user("reader")  # not available: not rung
    browsers = {}
    for i, r in enumerate([*readers, asleep]):
        browsers[r.id] = subscribe(client, r, push_service, f"reader{i}")
        quiet_now(client, r)
    for r in readers:
        api.sql("insert into reader_status (reader_id, available) values (%s, true) "
                "on conflict (reader_id) do update set available = true", (r.id,))
    staff = {role: api.user(role) for role in ("monitor", "admin", "superadmin")}
    for role, u in staff.items():
        browsers[u.id] = subscribe(client, u, push_service, role)
        quiet_now(client, u)
    c = api.user("client")
    e = ok(client.post("/calls/emergency", json={"consent_given": True, "note": "help"}, headers=c.h), 201)
    work(settings, dsns)
    for i, r in enumerate(readers):
        got = pushes_for(push_service, f"reader{i}", browsers[r.id])
        assert len(got) == 1, (i, got)
        assert got[0]["data"]["request"] == str(e["id"]) and got[0]["data"]["template"] == "emergency_siren"
    assert pushes_for(push_service, "reader3", browsers[asleep.id]) == []
    assert {p.headers["Urgency"] for p in push_service.received} == {"high"}
    states = api.sql("select state, count(*) from notification_sends where template = 'emergency_siren' group by 1")
    assert states == [("sent", 3)]
    # nobody answers: monitors, then admins, then the super admin are paged, each the same way
    (created,) = api.sql("select created_at from emergency_requests where id = %s", (e["id"],))[0]
    for role, after in (("monitor", 31), ("admin", 91), ("superadmin", 211)):
        run_jobs(settings, dsns, "emergency_escalate", at=created + dt.timedelta(seconds=after))
        work(settings, dsns)
        got = pushes_for(push_service, role, browsers[staff[role].id])
        assert got and got[-1]["data"]["request"] == str(e["id"]), role
        assert got[-1]["data"]["template"] == "emergency_siren"
    work(settings, dsns)  # nothing is sent twice
    assert len(pushes_for(push_service, "reader0", browsers[readers[0].id])) == 1
    # a monitor sees escalation sends, not a client's ordinary ones; a client only their own
    mon = api.sql_as(staff["monitor"].id, "select distinct template from notification_sends")
    assert {t for (t,) in mon} == {"emergency_siren"}
    assert api.sql_as(c.id, "select count(*) from notification_sends") == [(0,)]


def test_quiet_hours_defer_an_ordinary_message_to_the_end_of_the_window_and_never_drop_it(
        client, api, settings, dsns) -> None:
    u = api.user("client")
    ok(client.put("/me/quiet-hours", json={"starts": "00:00", "ends": "23:59", "tz": "Asia/Beirut"}, headers=u.h))
    api.sql("insert into notification_outbox (recipient_id, channel, template, params) "
            "values (%s, 'email', 'order_refunded', '{\"order\": 7, \"reason\": \"test\"}')", (u.id,))
    mailer = MemoryMailer()
    work(settings, dsns, mailer)
    assert [m["To"] for m in mailer.sent] == []
    ((state, not_before),) = api.sql("select state, not_before from notification_sends where recipient_id = %s",
                                     (u.id,))
    local_end = not_before.astimezone(dt.timezone(dt.timedelta(hours=2)))  # Beirut in winter: UTC+2
    assert state == "queued" and local_end.strftime("%H:%M") == "23:59"
    work(settings, dsns, mailer, at=not_before + dt.timedelta(seconds=1))
    assert [m["To"] for m in mailer.sent] == [u.email]
    ok_states = api.sql("select state from notification_sends where recipient_id = %s", (u.id,))
    assert ok_states == [("sent",)]


def test_a_gone_web_push_device_is_removed(client, api, settings, dsns, push_service) -> None:
    u = api.user("monitor")
    subscribe(client, u, push_service, "gone")
    api.sql("insert into notification_outbox (recipient_id, channel, template, params) values (%s, 'push', "
            "'incident_page', '{\"incident\": 1, \"severity\": \"SEV1\", \"ignore_quiet_hours\": true}')", (u.id,))
    work(settings, dsns)
    assert [p.path for p in push_service.received] == ["/push/gone"]
    assert api.sql("select count(*) from devices where user_id = %s", (u.id,)) == [(0,)]
    assert api.sql("select state, error from notification_sends where recipient_id = %s", (u.id,)) \
        == [("failed", "http_410")]


def test_a_channel_flag_holds_its_sends_and_releases_them_when_on(client, api, settings, dsns, push_service) -> None:
    u = api.user("admin")
    b = subscribe(client, u, push_service, "flagged")
    api.sql("update feature_flags set enabled = false where key = 'messaging.webpush'")
    try:
        api.sql("insert into notification_outbox (recipient_id, channel, template, params) values (%s, 'push', "
                "'incident_page', '{\"incident\": 2, \"severity\": \"SEV3\"}')", (u.id,))
        work(settings, dsns)
        assert pushes_for(push_service, "flagged", b) == []
        assert api.sql("select state from notification_sends where recipient_id = %s", (u.id,)) == [("queued",)]
    finally:
        api.sql("update feature_flags set enabled = true where key = 'messaging.webpush'")
    work(settings, dsns)
    assert [m["data"]["incident"] for m in pushes_for(push_service, "flagged", b)] == ["2"]


def test_retries_back_off_with_jitter_and_end_in_the_dead_letter(client, api, settings, dsns, push_service) -> None:
    u = api.user("admin")
    subscribe(client, u, push_service, "down")
    api.sql("insert into notification_outbox (recipient_id, channel, template, params) values (%s, 'push', "
            "'incident_page', '{\"incident\": 3, \"severity\": \"SEV3\"}')", (u.id,))
    at = dt.datetime.now(dt.UTC)
    delays = []
    for _ in range(5):
        work(settings, dsns, at=at)
        ((state, nb, attempts),) = api.sql("select state, not_before, attempts from notification_sends "
                                           "where recipient_id = %s", (u.id,))
        delays.append((nb - at).total_seconds())
        at = nb + dt.timedelta(seconds=1)
    assert attempts == 5 and state == "failed"
    assert all(d >= 0 for d in delays[:4])
    admin = api.user("admin")
    dead = ok(client.get("/admin/notifications/dead-letter", headers=admin.h))
    assert any(d["recipient_id"] == u.id and d["error"] == "http_503" and d["attempts"] == 5 for d in dead)
    problem(client.get("/admin/notifications/dead-letter", headers=api.user("client").h), 403)
