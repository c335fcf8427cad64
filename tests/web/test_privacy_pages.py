"""The legal documents as pages and the client's privacy page, in a real browser in English
and Arabic: accepting a new material version of the terms (ordering waits for it until then),
the analytics and marketing choices, a copy of one's data downloaded, and the deletion request
behind its confirmation. Each page gets axe-core and screenshots."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from samia import db
from samia.config import Settings

from ..helpers import PASSWORD, Api, ok, run_jobs
from .conftest import Page, off_loop

TERMS_V2_EN = "Samia Tarot terms of service, second edition.\n\nReadings are for adults & reflection <b>only</b>."
TERMS_V2_AR = "شروط خدمة سامية تاروت، الطبعة الثانية.\n\nالقراءات للبالغين وللتأمل فقط."  # noqa: RUF001


@pytest.fixture
def context(browser: Any, site: str) -> Iterator[Any]:
    ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def log_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.click("form#page-form button.primary")
    page.wait_for_url(lambda url: "/login" not in url)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_legal_pages_and_the_privacy_page(lang: str, context: Any, api: Api, client: TestClient,
                                          settings: Settings, dsns: db.Dsns) -> None:
    admin = off_loop(lambda: api.user("admin"))
    me = off_loop(lambda: api.user("client"))
    # a new material edition of the terms: everyone accepts it again before ordering
    ok(client.post("/admin/legal/terms/versions", json={"material": True, "body_en": TERMS_V2_EN,
                                                        "body_ar": TERMS_V2_AR}, headers=admin.h), 201)
    (version,) = api.sql("select max(version) from legal_versions where doc = 'terms'")[0]

    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto("/terms")
    assert page.locator("h1").inner_text()
    body = page.locator("article").inner_text()
    assert ("second edition" in body) if lang == "en" else ("الطبعة الثانية" in body)
    if lang == "en":  # the document's text is text: its "<b>" is shown, never parsed
        assert "<b>only</b>" in body and page.locator("article b").count() == 0
    p.check("terms")
    page.goto("/privacy")
    p.check("privacy-policy")

    log_in(page, me.email)
    page.goto("/account/privacy")
    if lang == "ar":  # the profile speaks English; the header's switch makes it Arabic
        page.click("button.chip.lang")
        page.wait_for_function("document.documentElement.lang === 'ar'")
    accept = page.locator("form[action='/account/privacy/accept'] button")
    assert accept.count() == 1  # the terms' new edition, not the privacy policy they accepted
    p.check("account-privacy")
    accept.click()
    page.wait_for_url("**/account/privacy?done=accepted")
    assert page.locator("form[action='/account/privacy/accept']").count() == 0
    assert api.sql("select count(*) from legal_acceptances a join legal_versions v on v.id = a.version_id "
                   "where a.user_id = %s and v.doc = 'terms' and v.version = %s", (me.id, version)) == [(1,)]

    # choices: linked by default until they object; marketing only when asked for
    assert page.is_checked("#f-analytics") and not page.is_checked("#f-marketing")
    page.uncheck("#f-analytics")
    page.check("#f-marketing")
    page.click("form[action='/account/privacy/choices'] button")
    page.wait_for_url("**/account/privacy?done=choices")
    assert not page.is_checked("#f-analytics") and page.is_checked("#f-marketing")
    assert api.sql("select analytics, marketing from cookie_consents where user_id = %s order by id desc limit 1",
                   (me.id,)) == [(False, True)]

    # a copy of their data: filed here, approved by an admin, built by the job, downloaded here
    page.click("form[action='/account/privacy/export'] button")
    page.wait_for_url("**/account/privacy?done=export")
    (rid,) = api.sql("select id from data_requests where user_id = %s and kind = 'export'", (me.id,))[0]
    ok(client.post(f"/admin/data-requests/{rid}/approve", json={}, headers=admin.h))
    off_loop(lambda: run_jobs(settings, dsns, "dsr_process"))
    page.reload()
    p.check("account-privacy-export-ready")
    with page.expect_download() as download:
        page.click(f"form[action='/account/privacy/requests/{rid}/download'] button")
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as z:
        assert any(name.endswith(".json") for name in z.namelist())

    # deletion: a confirmation step; unticked, nothing is filed
    page.click("a[href='/account/privacy/delete']")
    page.click("form#page-form button.danger")
    assert page.locator(".error-summary").is_visible()
    p.check("privacy-delete-error")
    assert api.sql("select count(*) from data_requests where user_id = %s and kind = 'delete'", (me.id,)) == [(0,)]
    page.check("#f-confirm")
    page.click("form#page-form button.danger")
    page.wait_for_url("**/account/privacy?done=delete")
    assert api.sql("select status from data_requests where user_id = %s and kind = 'delete'", (me.id,)) == [
        ("pending",)]


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_banner_asks_a_visitor_once_and_their_choice_follows_them(lang: str, context: Any, api: Api) -> None:
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    page.goto("/catalogue")
    banner = page.locator("aside.consent-bar")
    assert banner.is_visible()
    p.check("consent-banner")
    banner.locator("button[value=necessary]").click()
    page.wait_for_url("**/catalogue")  # back where they were, no longer asked
    assert page.locator("aside.consent-bar").count() == 0
    visitor = next(c["value"] for c in context.cookies() if c["name"] == "samia_visitor")
    assert api.sql("select user_id, analytics, marketing from cookie_consents where visitor_id = %s",
                   (visitor,)) == [(None, False, False)]

    # the policy page shows their choice and changes it, under the same visitor id
    page.goto("/privacy")
    assert not page.is_checked("#c-analytics") and not page.is_checked("#c-marketing")
    page.check("#c-analytics")
    page.click("#choices form button")
    page.wait_for_url("**/privacy?done=choices*")
    assert page.is_checked("#c-analytics") and not page.is_checked("#c-marketing")
    p.check("privacy-policy-choices")
    assert api.sql("select analytics, marketing from cookie_consents where visitor_id = %s order by id",
                   (visitor,)) == [(False, False), (True, False)]

    # once signed in, the account's privacy page starts from the visitor's answer
    me = off_loop(lambda: api.user("client"))
    log_in(page, me.email)
    page.goto("/account/privacy")
    assert page.is_checked("#f-analytics") and not page.is_checked("#f-marketing")
