"""The admin console in a real browser (Debian's Chromium through Playwright), in English and
Arabic: every page passes axe-core (0 serious or critical) and is photographed; an admin sets a
price and the storefront shows it at once, approves a bank transfer after looking at its proof,
and flips a flag that the next request reflects; a monitor sent to an admin page sees a 403 and
no data."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from samia.config import Settings

from ..conftest import make_settings
from ..helpers import PASSWORD, Api, User, ok
from .conftest import Page, off_loop


@pytest.fixture(scope="module")
def settings(data_dir: Any, port: int) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                         BANK_TRANSFER_INSTRUCTIONS="IBAN LB00 TEST 0000; reference: your payment id")


def receipt_png() -> bytes:
    """A bank receipt's photo: a real PNG made by ffmpeg."""
    return subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=480x320", "-frames:v", "1",
                           "-f", "image2", "-c:v", "png", "-"], capture_output=True, check=True).stdout


def transfer_with_proof(api: Api, client: TestClient, admin: User, reader: User) -> tuple[User, int]:
    me = api.user("client")
    when = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=3)
    n = api.sql("select count(*) from bookings")[0][0]
    booking = ok(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                                      "starts_at": (when + dt.timedelta(hours=n)).isoformat()},
                             headers=me.h), 201)["id"]
    pay = ok(client.post("/payments", json={"booking_id": booking, "method": "bank_transfer"}, headers=me.h), 201)
    ok(client.post(f"/payments/{pay['id']}/proof", content=receipt_png(),
                   headers={**me.h, "Content-Type": "image/png"}))
    return me, pay["id"]


@pytest.fixture(scope="module")
def staff(api: Api, client: TestClient) -> dict[str, User]:
    admin, owner, monitor, reader = (off_loop(lambda r=r: api.user(r)) for r in ("admin", "superadmin", "monitor",
                                                                               "reader"))
    ok(client.put("/admin/services/tarot", json={"price_minor": 1500, "currency": "USD"}, headers=admin.h))
    ok(client.put(f"/admin/readers/{reader.id}/services", json={"services": ["tarot"]}, headers=admin.h))
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    ok(client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=reader.h))
    ok(client.post("/admin/incident/declare", json={"title": "Card payments slow", "severity": "SEV2",
                                                    "note": "Stripe answers in 8 s"}, headers=admin.h), 201)
    ok(client.post("/admin/audit/attest", headers=admin.h), 201)
    return {"admin": admin, "owner": owner, "monitor": monitor, "reader": reader}


@pytest.fixture
def context(browser: Any, site: str) -> Iterator[Any]:
    ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


def log_in(page: Any, email: str, lang: str = "en") -> None:
    page.goto("/login")
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.click("form#page-form button.primary")
    page.wait_for_url(lambda url: "/login" not in url)
    if lang == "ar":  # the profile speaks English; the header's switch makes it Arabic
        page.click("button.chip.lang")
        page.wait_for_function("document.documentElement.lang === 'ar'")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_admin_console_in_a_browser(lang: str, context: Any, api: Api, client: TestClient,
                                        staff: dict[str, User]) -> None:
    admin = staff["admin"]
    _, pay_id = off_loop(lambda: transfer_with_proof(api, client, admin, staff["reader"]))
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    log_in(page, admin.email, lang)
    assert page.url.endswith("/admin")
    p.check("admin-dashboard")

    # a price set here is the storefront's at once
    price = "19.00" if lang == "en" else "21.00"
    page.goto("/admin/console/catalogue")
    p.check("admin-catalogue")
    page.fill("#f-tarot-price", price)
    page.click("#svc-tarot button.primary")
    page.wait_for_url("**/admin/console/catalogue?done=saved*")
    shop = context.new_page()
    shop.goto("/catalogue")
    assert f"${price}" in shop.locator("main").inner_text() or price in shop.locator("main").inner_text()
    shop.close()

    # a bank transfer approved after looking at its proof
    page.goto("/admin/console/payments")
    item = page.locator(f"#transfer-{pay_id}")
    proof = item.locator(".proof img")
    proof.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth === 480", arg=proof.element_handle())
    p.check("admin-transfers")
    page.goto(f"/admin/console/payments/{pay_id}/decline")
    p.check("admin-transfer-decline")
    page.goto("/admin/console/payments")
    page.locator(f"#transfer-{pay_id} form button").click()
    page.wait_for_url("**/admin/console/payments?done=approved")
    assert off_loop(lambda: api.sql("select status from payment_transactions where id = %s",
                                    (pay_id,))) == [("succeeded",)]
    assert page.locator(f"#transfer-{pay_id}").count() == 0

    # a flag flipped here applies to the next request
    someone = off_loop(lambda: api.user("client"))
    before = off_loop(lambda: ok(client.get("/flags", headers=someone.h)))["feature.tarotV2"]
    page.goto("/admin/console/controls")
    p.check("admin-controls")
    row = page.locator("#flag-feature-tarotV2")
    row.locator("input[type=checkbox]").set_checked(not before)
    row.locator("input[name=rollout_pct]").fill("100")
    row.locator("button.primary").click()
    page.wait_for_url("**/admin/console/controls?done=flag*")
    assert off_loop(lambda: ok(client.get("/flags", headers=someone.h)))["feature.tarotV2"] is (not before)

    for path, name in (("/admin/console/payments/reconciliation", "admin-reconciliation"),
                       ("/admin/console/payments/methods", "admin-methods"),
                       ("/admin/console/users", "admin-users"),
                       (f"/admin/console/users/{someone.id}", "admin-user"),
                       (f"/admin/console/users/{someone.id}/block", "admin-user-block"),
                       ("/admin/console/orders", "admin-orders"),
                       ("/admin/console/ops", "admin-ops"),
                       ("/admin/console/ops/runbooks/incident-sev2", "admin-runbook"),
                       ("/admin/console/ops/observability", "admin-observability"),
                       ("/admin/console/audit", "admin-audit"),
                       ("/admin/console/decks", "admin-decks")):
        page.goto(path)
        p.check(name)
    page.goto("/admin/console/ops")
    page.locator("table a").first.click()
    page.wait_for_url(re.compile(r".*/admin/console/ops/incidents/\d+$"))
    p.check("admin-incident")

    # the owner's page, and a deletion's confirmation step
    log_in(page, staff["owner"].email, lang)
    page.goto("/admin/console/super")
    p.check("admin-owner")
    page.goto(f"/admin/console/super/users/{someone.id}/delete")
    p.check("admin-user-delete")


def test_a_monitor_opening_an_admin_page_gets_403_and_no_data(context: Any, api: Api, client: TestClient,
                                                              staff: dict[str, User]) -> None:
    _, pay_id = off_loop(lambda: transfer_with_proof(api, client, staff["admin"], staff["reader"]))
    p = Page(context.new_page(), "en")
    page = p.page
    log_in(page, staff["monitor"].email)
    for path in ("/admin", "/admin/console/payments", "/admin/console/controls", "/admin/console/users",
                 f"/admin/console/payments/{pay_id}/decline", "/admin/console/super"):
        response = page.goto(path)
        assert response.status == 403, path
        text = page.locator("body").inner_text()
        assert page.locator(f"#transfer-{pay_id}, .proof, table").count() == 0
        assert f"Transfer {pay_id}" not in text and "IBAN" not in text and "feature." not in text
        assert page.locator("nav a[href^='/admin']").count() == 0
    p.check("admin-forbidden-monitor")
