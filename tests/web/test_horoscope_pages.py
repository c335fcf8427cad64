"""The horoscopes' pages in a real browser, English and Arabic: today's twelve signs with their
players (the visitor's own sign first once signed in), and the staff board where a monitor
approves a sign and sends another back. axe-core and screenshots on each."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from samia.config import Settings
from samia.horoscopes import service
from samia.horoscopes.service import SIGNS

from ..helpers import Api
from ..horoscopes.conftest import approved_day
from .conftest import Page, off_loop
from .test_privacy_pages import log_in


@pytest.fixture
def context(browser: Any, site: str) -> Iterator[Any]:
    ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def published(api: Api) -> dt.date:
    day = service.beirut_day()
    if not api.sql("select 1 from horoscopes where ref_date = %s and status = 'published'", (day,)):
        approved_day(api, day, status="published")
    return day


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_todays_horoscopes_page(lang: str, context: Any, api: Api, published: dt.date) -> None:
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto("/horoscopes")
    cards = page.locator("[data-testid=horoscopes] article")
    assert cards.count() == 12 and page.locator("audio").count() == 12
    first = cards.nth(0)
    assert first.locator("h2").inner_text() == ("Aries" if lang == "en" else "الحمل")
    assert ("calm day" in first.inner_text()) if lang == "en" else ("يوم هادئ" in first.inner_text())
    assert page.locator("nav a[href='/horoscopes']").count() == 1
    p.check("horoscopes")
    # signed in: their own sign (Taurus, from the date of birth) comes first
    me = off_loop(lambda: api.user("client"))
    log_in(page, me.email)
    page.goto("/horoscopes")
    assert page.locator("[data-testid=horoscopes] article").nth(0).get_attribute("data-sign") == "Taurus"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_staff_board_approves_and_sends_back(lang: str, context: Any, api: Api) -> None:
    day = dt.date(2032, 1, 10 if lang == "en" else 11)
    ids = approved_day(api, day, SIGNS[:2], status="draft")
    monitor = off_loop(lambda: api.user("monitor"))
    api.sql("update profiles set locale = %s where id = %s", (lang, monitor.id))  # log-in picks the language
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto(f"/staff/horoscopes?day={day}")
    assert "/login" in page.url  # staff only
    log_in(page, monitor.email)
    page.goto(f"/staff/horoscopes?day={day}")
    assert page.locator("section.card").count() == 12 and page.locator("audio").count() == 2
    assert page.locator("audio").nth(0).get_attribute("src").startswith("/media/")
    p.check("horoscopes-board")
    page.locator(f"form:has(input[name=horoscope][value='{ids[0]}']) button[value=approve]").click()
    page.wait_for_url(lambda url: "done=approved" in url)
    page.fill(f"#r-{ids[1]}", "the audio clips at the end")
    page.locator(f"form:has(input[name=horoscope][value='{ids[1]}']) button[value=reject]").click()
    page.wait_for_url(lambda url: "done=rejected" in url)
    assert api.sql("select status, reject_reason from horoscopes where id = any(%s) order by id", (ids,)) == [
        ("approved", None), ("rejected", "the audio clips at the end")]


def _real_audio(api: Api, settings: Settings, day: dt.date, sign: str) -> int:
    """Give one published sign a real one-second recording (the fixtures' files are stand-ins),
    so that the browser can play it to the end; returns the horoscope's id."""
    data = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                           "-c:a", "libmp3lame", "-f", "mp3", "-"], capture_output=True, check=True).stdout
    sha = hashlib.sha256(data).hexdigest()
    hid, media, key = api.sql("select h.id, m.id, m.storage_key from horoscopes h join media_assets m "
                              "on m.id = h.audio_media_id where h.scope = 'daily' and h.ref_date = %s "
                              "and h.zodiac = %s and h.status = 'published'", (day, sign))[0]
    path = settings.data_dir / "storage" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    api.sql("update media_assets set sha256 = %s, bytes = %s where id = %s", (sha, len(data), media))
    api.sql("update horoscopes set audio_sha256 = %s where id = %s", (sha, hid))
    return int(hid)


def _events(api: Api, since: int, want: int) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + 15
    while True:
        rows = api.sql("select type, user_id, subject_id, seconds, device from events_raw where id > %s "
                       "and type like 'horoscope.listen%%' order by id", (since,))
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_players_send_listen_events(context: Any, api: Api, published: dt.date, settings: Settings) -> None:
    """Playing a sign's audio on the page records started and finished (through the page's
    CSRF-checked twin of POST /horoscopes/listen); the visitor is linked only with consent."""
    hid = _real_audio(api, settings, published, "Leo")
    since = api.sql("select coalesce(max(id), 0) from events_raw")[0][0]
    keeps, declines = off_loop(lambda: api.user("client")), off_loop(lambda: api.user("client"))
    api.sql("insert into cookie_consents (user_id, analytics, marketing) values (%s, false, false)", (declines.id,))
    expected: list[tuple[Any, ...]] = []
    for who in (keeps, declines):
        page = context.new_page()
        log_in(page, who.email)
        page.goto("/horoscopes")
        player = page.locator("audio[data-sign=Leo]")
        assert player.get_attribute("data-date") == published.isoformat()
        player.evaluate("a => a.play()")
        # declined analytics: the event counts, but neither the user nor the horoscope is linked
        uid, subject = (uuid.UUID(who.id), hid) if who is keeps else (None, None)
        expected += [("horoscope.listen_started", uid, subject, None, "web"),
                     ("horoscope.listen_finished", uid, subject, 1, "web")]
        assert _events(api, since, len(expected)) == expected
        page.close()
    # without the page's token nothing is recorded (403), and a made-up event is refused
    r = context.request.post("/horoscopes/listened", form={"event": "started", "sign": "Leo",
                                                            "date": published.isoformat()})
    assert r.status == 403
    page = context.new_page()
    page.goto("/horoscopes")
    token = page.locator("[data-listen]").get_attribute("data-csrf")
    bad = context.request.post("/horoscopes/listened", form={"_csrf": token, "event": "paused", "sign": "Leo",
                                                              "date": published.isoformat()})
    assert bad.status == 422
    missing = context.request.post("/horoscopes/listened", form={"_csrf": token, "event": "started", "sign": "Leo",
                                                                  "date": "2001-01-01"})
    assert missing.status == 404
    assert len(_events(api, since, 0)) == len(expected)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_home_page_teaser(lang: str, context: Any, api: Api, published: dt.date) -> None:
    """The home page's "today's horoscope": a visitor gets the way to all twelve, a client
    their own sign's text (Taurus, from the birth date), one without a birth date the way
    again; nothing at all while feature.dailyZodiac is off."""
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto("/")
    teaser = page.locator("[data-testid=horoscope-teaser]")
    assert teaser.locator("a[href='/horoscopes']").count() == 1
    assert ("calm day" not in teaser.inner_text()) and ("يوم هادئ" not in teaser.inner_text())
    me = off_loop(lambda: api.user("client"))
    api.sql("update profiles set locale = %s where id = %s", (lang, me.id))  # log-in picks the language
    log_in(page, me.email)
    page.goto("/")
    assert teaser.locator("h2").inner_text() == ("Today for Taurus" if lang == "en" else "اليوم لبرج الثور")
    assert teaser.locator("p:not(.eyebrow)").inner_text() == (
        "Taurus: a calm day." if lang == "en" else "برج Taurus: يوم هادئ.")
    assert teaser.locator("a").get_attribute("href") == "/horoscopes#sign-Taurus"
    p.check("home-horoscope")
    api.sql("update profiles set dob = null where id = %s", (me.id,))
    page.goto("/")
    assert teaser.locator("a").get_attribute("href") == "/horoscopes" and "calm day" not in teaser.inner_text()
    api.sql("update feature_flags set enabled = false where key = 'feature.dailyZodiac'")
    try:
        page.goto("/")
        assert page.locator("h1").count() == 1 and teaser.count() == 0
    finally:
        api.sql("update feature_flags set enabled = true where key = 'feature.dailyZodiac'")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_opting_into_the_daily_push_on_the_page(lang: str, context: Any, api: Api, published: dt.date) -> None:
    """A client opts in from /horoscopes (the same service function as PUT
    /me/horoscope-subscription), moves the time and stops; a visitor sees no form, and a
    time that is not one answers a friendly 422 in their language and changes nothing."""
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto("/horoscopes")
    assert page.locator("[data-testid=horoscope-subscription]").count() == 0  # visitors: nothing to opt into
    token = page.locator("[data-listen]").get_attribute("data-csrf")
    anon = context.request.post("/horoscopes/subscription", form={"_csrf": token, "local_time": "07:15"},
                                max_redirects=0)
    assert anon.status in (302, 303, 401) and api.sql("select count(*) from horoscope_subscriptions "
                                                      "where local_time = '07:15'") == [(0,)]
    me = off_loop(lambda: api.user("client"))
    api.sql("update profiles set locale = %s where id = %s", (lang, me.id))
    log_in(page, me.email)
    page.goto("/horoscopes")
    box = page.locator("[data-testid=horoscope-subscription]")
    assert box.locator("button[value=off]").count() == 0
    page.fill("#f-local_time", "07:15")
    box.locator("button[value=on]").click()
    page.wait_for_url(lambda url: "done=on" in url)
    mine = "select to_char(local_time, 'HH24:MI') from horoscope_subscriptions where user_id = %s"
    assert api.sql(mine, (me.id,)) == [("07:15",)]
    assert "07:15" in box.inner_text() and page.locator("#f-local_time").input_value() == "07:15"
    p.check("horoscopes-daily")
    page.fill("#f-local_time", "21:40")
    with page.expect_navigation():
        box.locator("button[value=on]").click()
    assert api.sql(mine, (me.id,)) == [("21:40",)]
    # not a time: a friendly page in their language, nothing changed
    token = page.locator("[data-listen]").get_attribute("data-csrf")
    bad = context.request.post("/horoscopes/subscription", form={"_csrf": token, "local_time": "25:99"})
    assert bad.status == 422 and ("such as 08:00" in bad.text() if lang == "en" else "مثل 08:00" in bad.text())
    assert api.sql(mine, (me.id,)) == [("21:40",)]
    box.locator("button[value=off]").click()
    page.wait_for_url(lambda url: "done=off" in url)
    assert api.sql(mine, (me.id,)) == [] and box.locator("button[value=off]").count() == 0
