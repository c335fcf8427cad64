"""The horoscopes' pages in a real browser, English and Arabic: today's twelve signs with their
players (the visitor's own sign first once signed in), and the staff board where a monitor
approves a sign and sends another back. axe-core and screenshots on each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

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
