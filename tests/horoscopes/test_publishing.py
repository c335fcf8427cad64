"""Publishing rules: the guard halts a day that is not 12/12 (incident, pages, yesterday's stays)
until an admin publishes the passing signs; local midnight across Lebanon's DST changes, never
twice; nothing unpublished (nor any draft) reaches visitors or clients; the daily push once per
user and day under concurrent runs; the local speech engine is audible in EN and AR."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
import tempfile
import threading

import psycopg
import pytest

from samia.horoscopes import audio, service
from samia.horoscopes.service import BEIRUT, SIGNS
from tests.conftest import make_settings
from tests.helpers import ok, problem

from .conftest import approved_day, beirut_midnight


@pytest.fixture(scope="module")
def people(api):  # type: ignore[no-untyped-def]
    return {"monitor": api.user("monitor"), "admin": api.user("admin"), "client": api.user("client"),
            "reader": api.user("reader")}


def publish_due(owner_dsn: str, at: dt.datetime) -> dict:  # type: ignore[type-arg]
    with psycopg.connect(owner_dsn) as conn:
        return conn.execute("select app.horoscope_publish_due(%s)", (at,)).fetchone()[0]  # type: ignore[index]


def test_guard_halts_pages_and_an_admin_publishes_the_passing_signs(client, api, owner_dsn, people) -> None:
    yesterday = dt.date(2031, 5, 1)
    today = yesterday + dt.timedelta(days=1)
    approved_day(api, yesterday, status="published")
    approved_day(api, today, SIGNS[:11])  # Pisces is missing

    out = publish_due(owner_dsn, beirut_midnight(today))["daily"]
    assert out["outcome"] == "halted" and [f["zodiac"] for f in out["failing"]] == ["Pisces"]
    problem(client.get(f"/horoscopes/{today}"), 404)  # nothing of that day
    assert api.sql("select count(*) from horoscopes where ref_date = %s and status = 'published'", (today,)) == [(0,)]
    # the incident: SEV3, linking the runbook and the failing sign; monitors and admins paged
    inc = api.sql("select severity, runbooks, title from incidents where id = %s", (out["incident"],))
    assert inc[0][0] == "SEV3" and inc[0][1] == ["horoscopes"] and str(today) in inc[0][2]
    assert "Pisces" in api.sql("select string_agg(note, ' ') from incident_events where incident_id = %s",
                               (out["incident"],))[0][0]
    paged = {r[0] for r in api.sql("select p.role_id from incident_pages i join profiles p on p.id = i.user_id "
                                   "where i.incident_id = %s", (out["incident"],))}
    assert {2, 4} <= paged  # admin and monitor
    assert api.sql("select count(*) from notification_outbox where template = 'incident_page' "
                   "and params->>'incident' = %s", (str(out["incident"]),))[0][0] >= 2
    # a second worker, a later minute: nothing new
    assert publish_due(owner_dsn, beirut_midnight(today) + dt.timedelta(minutes=3)) == {}
    assert api.sql("select count(*) from incidents where dedupe_key = %s", (f"horoscopes:daily:{today}",)) == [(1,)]

    # only an admin publishes by hand; the partial publish is audited
    body = {"date": str(today), "partial": True}
    problem(client.post("/admin/horoscopes/publish", headers=people["monitor"].h, json=body), 403)
    full = ok(client.post("/admin/horoscopes/publish", headers=people["admin"].h, json={**body, "partial": False}))
    assert full["outcome"] == "halted" and full["published"] == 0
    out = ok(client.post("/admin/horoscopes/publish", headers=people["admin"].h, json=body))
    assert out["outcome"] == "partial" and out["published"] == 11
    served = ok(client.get(f"/horoscopes/{today}"))
    assert [i["sign"] for i in served["items"]] == list(SIGNS[:11])
    audit = api.audit_rows("horoscope.partial_publish", f"daily:{today}")
    assert len(audit) == 1 and audit[0][0] == people["admin"].id and audit[0][5]["published"] == 11
    # Pisces arrives late: the admin publishes the day whole; then it is done
    approved_day(api, today, ("Pisces",))
    whole = ok(client.post("/admin/horoscopes/publish", headers=people["admin"].h, json={**body, "partial": False}))
    assert whole["outcome"] == "published" and whole["published"] == 12
    assert len(ok(client.get(f"/horoscopes/{today}"))["items"]) == 12
    assert api.sql("select count(distinct published_at) from horoscopes where ref_date = %s", (today,)) == [(2,)]
    again = ok(client.post("/admin/horoscopes/publish", headers=people["admin"].h, json=body))
    assert again["outcome"] == "already"


def test_guard_checks_duration_level_texts_and_the_draft_label(api) -> None:
    day = dt.date(2031, 6, 1)
    ids = approved_day(api, day)
    api.sql("update media_assets set meta = meta || '{\"seconds\": 1.2}' where id = "
            "(select audio_media_id from horoscopes where id = %s)", (ids[0],))
    api.sql("update media_assets set meta = meta || '{\"lufs\": -70}' where id = "
            "(select audio_media_id from horoscopes where id = %s)", (ids[1],))
    api.sql("alter table horoscopes disable trigger horoscopes_touch")  # it would send them back to draft
    try:
        api.sql("update horoscopes set text_ar = '' where id = %s", (ids[2],))
        api.sql("update horoscopes set text_en = '[Assistant Draft \u2013 Not for Client Delivery] x' where id = %s",
                (ids[3],))
    finally:
        api.sql("alter table horoscopes enable trigger horoscopes_touch")
    api.sql("update horoscopes set status = 'rejected', audio_sha256 = null where id = %s", (ids[4],))
    reasons = dict(api.sql("select zodiac, reasons from app.horoscope_guard('daily', %s)", (day,)))
    assert reasons["Aries"] == ["audio_duration"] and reasons["Taurus"] == ["audio_level"]
    assert reasons["Gemini"] == ["text_missing"] and reasons["Cancer"] == ["draft_label"]
    assert reasons["Leo"] == ["not_approved", "audio_missing"]
    assert all(reasons[s] == [] for s in SIGNS[5:])


def expected_start(day: dt.date) -> dt.datetime:
    """The first whole minute (UTC) whose Beirut date is `day`."""
    t = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - dt.timedelta(hours=4)
    while t.astimezone(BEIRUT).date() != day:
        t += dt.timedelta(minutes=1)
    return t


@pytest.mark.parametrize("day", [dt.date(2027, 3, 28), dt.date(2027, 10, 31), dt.date(2027, 10, 30)])
def test_published_at_local_midnight_across_dst_and_never_twice(api, owner_dsn, day) -> None:
    """Lebanon moves its clocks at 00:00 on the last Sundays of March (to 01:00: midnight never
    happens) and October (back to 23:00: the last hour of Saturday happens twice)."""
    approved_day(api, day)
    start = expected_start(day)
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        t = start - dt.timedelta(hours=2)
        while t < start + dt.timedelta(hours=4):
            conn.execute("select app.horoscope_publish_due(%s)", (t,))
            t += dt.timedelta(minutes=5)
    runs = api.sql("select outcome, at from horoscope_publish_runs where scope = 'daily' and ref_date = %s", (day,))
    assert runs == [("published", start)], (runs, start)
    assert api.sql("select count(distinct published_at), count(*) from horoscopes where ref_date = %s "
                   "and status = 'published'", (day,)) == [(1, 12)]
    assert len(api.audit_rows("horoscope.published", f"daily:{day}")) == 1


def test_monthly_ones_publish_on_the_first(client, api, owner_dsn) -> None:
    first = dt.date(2031, 8, 1)
    approved_day(api, first, scope="monthly")
    out = publish_due(owner_dsn, beirut_midnight(first) + dt.timedelta(minutes=1))
    assert out["monthly"]["outcome"] == "published"
    body = ok(client.get(f"/horoscopes/{first + dt.timedelta(days=14)}?scope=monthly"))
    assert body["date"] == str(first) and len(body["items"]) == 12


def test_nothing_unpublished_or_drafted_reaches_visitors_or_clients(client, api, people) -> None:
    day = dt.date(2031, 9, 9)
    ids = approved_day(api, day, SIGNS[:3])
    api.sql("update horoscopes set status = 'rejected', reject_reason = 'noise', audio_sha256 = null "
            "where id = %s", (ids[0],))
    api.sql("update horoscopes set status = 'draft', audio_sha256 = null where id = %s", (ids[1],))
    api.sql("insert into horoscope_drafts (horoscope_id, lang, body) values (%s, 'en', 'secret draft words')",
            (ids[2],))
    c = people["client"]
    for headers in ({}, c.h):
        problem(client.get(f"/horoscopes/{day}", headers=headers), 404)
        for sign in SIGNS[:3]:
            problem(client.get(f"/horoscopes/audio/daily/{day}/{sign}", headers=headers), 404)
        problem(client.get(f"/monitor/horoscopes/day/{day}", headers=headers), 401 if not headers else 403)
    # the database itself: no grant to visitors, nothing for clients, drafts never
    for table in ("horoscopes", "horoscope_drafts", "horoscope_clips", "horoscope_captions"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.sql_as(None, psycopg.sql.SQL("select count(*) from {}").format(psycopg.sql.Identifier(table)))
        assert api.sql_as(c.id, psycopg.sql.SQL("select count(*) from {}").format(
            psycopg.sql.Identifier(table))) == [(0,)]
    assert api.sql_as(c.id, "select count(*) from app.horoscopes_public('daily', %s, true)", (day,)) == [(0,)]
    assert api.sql_as(c.id, "select count(*) from app.horoscope_guard('daily', %s)", (day,)) == [(0,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql_as(c.id, "select app.horoscope_approve(%s)", (ids[1],))
    # a reader sees the draft; an assistant label never becomes final text
    reader = people["reader"]
    board = ok(client.get(f"/monitor/horoscopes/day/{day}", headers=reader.h))
    assert board[2]["drafts"][0]["body"] == "secret draft words"
    problem(client.patch(f"/monitor/horoscopes/{ids[1]}", headers=reader.h,
                         json={"text_en": "Assistant Draft \u2013 Not for Client Delivery: hi"}), 422)
    # the flag switches the whole pipeline: off, even published days are gone
    today = service.beirut_day()
    approved_day(api, dt.date(2031, 9, 10), status="published")
    assert ok(client.get("/horoscopes/2031-09-10"))["items"]
    api.sql("update feature_flags set enabled = false where key = 'feature.dailyZodiac'")
    try:
        problem(client.get("/horoscopes/2031-09-10"), 404)
        assert publish_due(api.owner_dsn, beirut_midnight(today)) in ({}, {"daily": {"outcome": "disabled"}})
    finally:
        api.sql("update feature_flags set enabled = true where key = 'feature.dailyZodiac'")


def test_daily_push_once_per_user_and_day_under_concurrent_runs(client, api, owner_dsn, people) -> None:
    today = service.beirut_day()
    if not api.sql("select 1 from horoscopes where ref_date = %s and status = 'published' limit 1", (today,)):
        approved_day(api, today, status="published")
    users = [api.user("client") for _ in range(3)]
    for u in users:
        ok(client.put("/me/horoscope-subscription", headers=u.h, json={"local_time": "00:00"}))
    api.sql("insert into consents (user_id, channel, opted_in, lawful_basis, source) "
            "values (%s, 'push', false, 'consent', 'api')", (users[2].id,))
    ok(client.put("/me/horoscope-subscription", headers=people["client"].h, json={"local_time": "23:59"}))
    problem(client.put("/me/horoscope-subscription", headers=people["client"].h, json={"local_time": "25:00"}), 422)
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def run() -> None:
        with psycopg.connect(owner_dsn) as conn:
            barrier.wait()
            counts.append(conn.execute("select app.horoscope_push_due(now())").fetchone()[0])  # type: ignore[index]

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 2, counts
    sent = api.sql("select recipient_id::text, channel, params->>'sign' from notification_outbox "
                   "where template = 'horoscope_ready'")
    assert sorted(r[0] for r in sent) == sorted([users[0].id, users[1].id])
    assert {r[1] for r in sent} == {"push"} and {r[2] for r in sent} == {"Taurus"}
    with psycopg.connect(owner_dsn) as conn:
        assert conn.execute("select app.horoscope_push_due(now())").fetchone() == (0,)
    r = client.delete("/me/horoscope-subscription", headers=users[0].h)
    assert r.status_code == 204 and api.sql("select count(*) from horoscope_subscriptions where user_id = %s",
                                            (users[0].id,)) == [(0,)]


def rms_db(data: bytes) -> float:
    with tempfile.NamedTemporaryFile(suffix=".mp3") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", f.name, "-af", "astats", "-f", "null", "-"],
                             capture_output=True, check=True).stderr.decode()
    return float(re.findall(r"RMS level dB:\s*(-?[0-9.]+|-inf)", out)[-1])


@pytest.mark.parametrize(("lang", "text"), [("en", "Leo, today a door opens. Walk through it with courage."),
                                            ("ar", "برج الأسد، اليوم يُفتح باب جديد. ادخله بشجاعة.")])
def test_local_speech_is_audible_in_english_and_arabic(lang, text) -> None:
    spoken = asyncio.run(audio.speak(make_settings(), text, lang))
    assert spoken.seconds > 1.5 and spoken.data[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    assert rms_db(spoken.data) > -35, "not silent"


def test_speech_from_the_final_text_needs_approval_and_a_configured_provider(client, api, dsns, people) -> None:
    day = dt.date(2031, 10, 10)
    (hid,) = approved_day(api, day, ("Virgo",), status="draft")
    mon = people["monitor"].h
    out = ok(client.post(f"/monitor/horoscopes/{hid}/speak", headers=mon, json={"lang": "en"}))
    assert out["seconds"] > 1 and api.sql("select status, audio_media_id, audio_lang from horoscopes where id = %s",
                                          (hid,)) == [("draft", out["media_id"], "en")]
    from fastapi.testclient import TestClient

    from samia.app import create_app

    with TestClient(create_app(make_settings(TTS_PROVIDER="elevenlabs"), dsns=dsns)) as c:
        body = problem(c.post(f"/monitor/horoscopes/{hid}/speak", headers=mon, json={"lang": "ar"}), 503)
        assert body["setting"] == "TTS_API_KEY"


def test_beirut_midnight_helpers_follow_dst() -> None:
    spring = dt.datetime(2027, 3, 27, 21, 0, tzinfo=dt.UTC)  # 23:00 EET
    assert service.next_midnight(spring) == dt.datetime(2027, 3, 27, 22, 0, tzinfo=dt.UTC)  # 01:00 EEST
    autumn = dt.datetime(2027, 10, 30, 20, 0, tzinfo=dt.UTC)  # 23:00 EEST
    assert service.next_midnight(autumn) == dt.datetime(2027, 10, 30, 22, 0, tzinfo=dt.UTC)  # 00:00 EET
    assert service.seconds_to_midnight(autumn) == 7200


def test_audio_is_served_only_while_its_bytes_match_the_pinned_hash(client, api, settings) -> None:
    import hashlib

    from samia.providers.storage import make_storage

    day = dt.date(2031, 11, 11)
    ids = approved_day(api, day, ("Aries", "Taurus"), status="published")
    storage = make_storage(settings)
    good, swapped, approved = b"ID3" + b"\x01" * 5000, b"ID3" + b"\x02" * 5000, b"ID3" + b"\x03" * 5000
    for hid, data, pinned in ((ids[0], good, good), (ids[1], swapped, approved)):
        key = asyncio.run(storage.put(data, prefix="horoscopes", content_type="audio/mpeg"))
        sha = hashlib.sha256(pinned).hexdigest()
        api.sql("update media_assets set storage_key = %s, sha256 = %s where id = "
                "(select audio_media_id from horoscopes where id = %s)", (key, sha, hid))
        api.sql("update horoscopes set audio_sha256 = %s where id = %s", (sha, hid))
    r = client.get(f"/horoscopes/audio/daily/{day}/Aries")
    assert r.status_code == 200 and r.content == good
    problem(client.get(f"/horoscopes/audio/daily/{day}/Taurus"), 409, "media_changed")


def test_the_http_speech_provider_on_loopback(tmp_path) -> None:
    """ElevenLabs' documented calls, faked at the network edge: the key in xi-api-key, MP3 back."""
    from http.server import BaseHTTPRequestHandler

    from tests.helpers import serving

    mp3 = tmp_path / "voice.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=220:duration=3",
                    "-c:a", "libmp3lame", str(mp3)], check=True)
    seen: list[tuple[str, str, str | None]] = []

    class Fake(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, body: bytes, ctype: str) -> None:
            seen.append((self.command, self.path, self.headers.get("xi-api-key")))
            self.send_response(200 if self.headers.get("xi-api-key") == "k-123" else 401)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(mp3.read_bytes(), "audio/mpeg")

        def do_GET(self) -> None:
            self._answer(b'{"voice_id": "v-1"}', "application/json")

    with serving(Fake) as base:
        settings = make_settings(TTS_PROVIDER="elevenlabs", TTS_API_KEY="k-123", TTS_VOICE_ID="v-1",
                                 TTS_BASE_URL=base)
        spoken = asyncio.run(audio.speak(settings, "Leo: a door opens.", "en"))
        assert 2.5 < spoken.seconds < 3.5 and rms_db(spoken.data) > -35
        assert asyncio.run(audio.refresh_voice(settings)) == {"provider": "elevenlabs", "refreshed": True}
    assert seen == [("POST", "/v1/text-to-speech/v-1", "k-123"), ("GET", "/v1/voices/v-1", "k-123")]
