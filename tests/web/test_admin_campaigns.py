"""The admin's campaigns page: a draft made through the page is the API's (same validation,
same audit), scheduling needs a confirmation and happens once however often it is posted, the
stats shown are the API's; a monitor and a forged post are refused. In Chromium, EN and AR,
with axe-core and screenshots."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..helpers import Api, User, ok
from .conftest import Page, off_loop
from .test_admin_browser import log_in
from .test_admin_console import csrf, sign_in

FORM = {"name": "Spring equinox", "channel": "email", "countries": "lb", "title_en": "The equinox is here",
        "body_en": "A new season of readings.", "title_ar": "الاعتدال الربيعي", "body_ar": "موسم جديد من القراءات.",
        "send_on": "2027-03-20", "local_time": "09:00"}


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.7", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(api: Api, client: TestClient) -> dict[str, User]:
    people = {r: off_loop(lambda r=r: api.user(r)) for r in ("admin", "monitor")}
    for tz, country in (("Asia/Beirut", "LB"), ("Asia/Dubai", "AE")):   # one in the audience, one not
        u = off_loop(lambda country=country: api.user("client", country=country))
        ok(client.post("/me/notifications/opt-in", json={"channel": "email"}, headers=u.h))
        api.sql("update profiles set tz = %s where id = %s", (tz, u.id))
    return people


def test_create_then_schedule_once_after_confirming(client: TestClient, api: Api, staff: dict[str, User]) -> None:
    web = client
    sign_in(web, staff["admin"].email)
    token = csrf(web, "/admin/console/campaigns")
    # the API's validation: no English title, a bad country code → 422, the fields named, nothing stored
    r = web.post("/admin/console/campaigns", data={**FORM, "title_en": "", "countries": "LBN", "_csrf": token,
                                                   "roles": "client"})
    assert r.status_code == 422 and 'href="#f-title_en"' in r.text and 'href="#f-countries"' in r.text
    assert api.sql("select count(*) from campaigns")[0][0] == 0
    r = web.post("/admin/console/campaigns", data={**FORM, "_csrf": token, "roles": "client", "languages": "en"},
                 follow_redirects=False)
    assert r.status_code == 303 and "done=campaign_created" in r.headers["location"]
    cid = int(re.search(r"#campaign-(\d+)", r.headers["location"]).group(1))  # type: ignore[union-attr]
    assert api.sql("select channel, audience, local_time::text from campaigns where id = %s", (cid,)) == [
        ("email", {"roles": ["client"], "countries": ["LB"], "languages": ["en"]}, "09:00:00")]
    assert len(api.audit_rows("campaign.created", str(cid))) == 1
    # scheduling: the confirmation first; without the box ticked nothing is queued
    page = web.get(f"/admin/console/campaigns/{cid}/schedule")
    assert page.status_code == 200 and 'id="confirm-schedule"' in page.text
    r = web.post(f"/admin/console/campaigns/{cid}/schedule", data={"_csrf": token})
    assert r.status_code == 422
    assert api.sql("select status from campaigns where id = %s", (cid,)) == [("draft",)]
    for _ in range(2):   # twice: the second answers the same and queues nothing
        r = web.post(f"/admin/console/campaigns/{cid}/schedule", data={"_csrf": token, "confirm": "yes"},
                     follow_redirects=False)
        assert r.status_code == 303 and "done=campaign_scheduled" in r.headers["location"]
    assert api.sql("select status from campaigns where id = %s", (cid,)) == [("scheduled",)]
    sends = api.sql("select count(*) from notification_sends where campaign_id = %s", (cid,))[0][0]
    assert sends == 1                                       # the opted-in client in Lebanon, once
    stats = ok(client.get(f"/admin/campaigns/{cid}/stats", headers=staff["admin"].h))
    listing = web.get("/admin/console/campaigns").text
    row = re.search(rf'<tr id="campaign-{cid}">(.*?)</tr>', listing, re.S).group(1)  # type: ignore[union-attr]
    assert [int(n) for n in re.findall(r'class="num">(\d+)<', row)][:1] == [stats["stats"]["sends"]]
    # a forged post and a monitor are refused; the monitor sees no campaign
    r = web.post(f"/admin/console/campaigns/{cid}/schedule", data={"confirm": "yes"})
    assert r.status_code == 403
    sign_in(web, staff["monitor"].email)
    for path in ("/admin/console/campaigns", f"/admin/console/campaigns/{cid}/schedule"):
        r = web.get(path)
        assert r.status_code in (403, 404) and "Spring equinox" not in r.text
    web.cookies.clear()


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_campaigns_page_in_a_browser(lang: str, browser: Any, site: str, api: Api,
                                         staff: dict[str, User]) -> None:
    ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 800},
                              extra_http_headers={"Accept-Language": lang})
    try:
        p = Page(ctx.new_page(), lang)
        page = p.page
        log_in(page, staff["admin"].email, lang)
        page.click("nav a[href='/admin/console/campaigns']")
        p.check("admin-campaigns")
        name = f"Full moon ({lang})"
        page.fill("#f-name", name)
        page.select_option("#f-channel", "push")
        page.check("input[name=roles][value=client]")
        page.check(f"input[name=languages][value={lang}]")
        page.fill("#f-countries", "LB AE")
        for field in ("title_en", "body_en", "title_ar", "body_ar"):
            page.fill(f"#f-{field}", FORM[field])
        page.fill("#f-send_on", "2027-04-12")
        page.fill("#f-local_time", "20:30")
        page.click("#create-campaign")
        page.wait_for_url("**/admin/console/campaigns?done=campaign_created*")
        row = page.locator("table.campaigns tbody tr").filter(has_text=name)
        assert row.count() == 1 and "2027-04-12 20:30" in row.inner_text()
        p.check("admin-campaigns-created")
        row.locator("a.button").click()
        page.wait_for_selector("#confirm-schedule")
        p.check("admin-campaign-confirm")
        cid = int(page.url.rsplit("/", 2)[1])
        page.check("#f-confirm")
        page.click("#confirm-schedule")
        page.wait_for_url("**/admin/console/campaigns?done=campaign_scheduled*")
        assert api.sql("select status, audience from campaigns where id = %s", (cid,)) == [
            ("scheduled", {"roles": ["client"], "countries": ["LB", "AE"], "languages": [lang]})]
        assert page.locator(f"#campaign-{cid} .chip").inner_text().strip() == (
            "Scheduled" if lang == "en" else "مجدولة")
    finally:
        ctx.close()


def test_the_dashboard_links_the_campaigns_page(client: TestClient, staff: dict[str, User]) -> None:
    sign_in(client, staff["admin"].email)
    home = client.get("/admin").text
    assert 'href="/admin/console/campaigns"' in home and "link-disabled" not in home.split("campaigns")[0][-200:]
    client.cookies.clear()
