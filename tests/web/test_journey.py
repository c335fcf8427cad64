"""The client's journey in a real browser (Debian's Chromium through Playwright), in English
and again in Arabic, with axe-core and a screenshot on every page; a keyboard-only pass of
sign-up and ordering; and a cross-site form post refused for want of its CSRF token."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from samia import db
from samia.config import Settings

from ..helpers import Api, User, ok
from ..orders.conftest import tone
from .conftest import Page, deliver_mail, mailbox_link, off_loop

TAROT_PRICE, CALL_PRICE, HEALING_PRICE = 1500, 3000, 3000
ZONE = "Asia/Beirut"


def photo_png() -> bytes:
    """A reader's profile photo: a small violet PNG made by ffmpeg."""
    return subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "gradients=s=144x144:c0=0x7137e6:c1=0x67e8f9",
                           "-frames:v", "1", "-f", "image2", "-c:v", "png", "-"],
                          capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def staff(api: Api, client: TestClient) -> dict[str, User]:
    """An admin, a monitor, and a reader with a public profile and photo who reads tarot and takes
    direct calls and Healing Energy sessions around the clock (Beirut time); prices set by the
    admin through the catalogue API."""
    admin, monitor, reader = (off_loop(lambda r=r: api.user(r)) for r in ("admin", "monitor", "reader"))
    for code, price in (("tarot", TAROT_PRICE), ("coffee", 1200), ("astro", 2500), ("direct_call", CALL_PRICE),
                        ("healing", HEALING_PRICE)):
        ok(client.put(f"/admin/services/{code}", json={"price_minor": price, "currency": "USD"}, headers=admin.h))
    ok(client.put(f"/admin/readers/{reader.id}/services", json={"services": ["tarot", "direct_call", "healing"]},
                  headers=admin.h))
    ok(client.put("/readers/me/profile", headers=reader.h, json={
        "display_name": "Layla", "specialties": ["love", "career", "family"], "languages": ["ar", "en"],
        "bio_en": "Tarot and coffee-cup reader for fifteen years; calm, direct, kind.",
        "bio_ar": "قارئة تاروت وفنجان منذ خمسة عشر عامًا؛ هادئة وصريحة ولطيفة."}))
    ok(client.post("/readers/me/photo", content=photo_png(), headers={**reader.h, "Content-Type": "image/png"}))
    ok(client.put("/readers/me/availability", headers=reader.h, json={
        "tz": ZONE, "rules": [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]}))
    ok(client.put("/readers/me/status", json={"available": True}, headers=reader.h))
    return {"admin": admin, "monitor": monitor, "reader": reader}


def bring_forward(api: Api, booking_id: int) -> None:
    """Move a confirmed booking to start now (the call may start from 10 minutes before): the
    browser booked tomorrow's slot, and the test cannot wait a day to hold the call."""
    api.sql("""
        with b as (update bookings set starts_at = now(), ends_at = now() + (ends_at - starts_at)
                    where id = %(b)s returning capacity_id, starts_at, ends_at)
        update reader_capacity c set during = tstzrange(b.starts_at, b.ends_at) from b where c.id = b.capacity_id""",
            {"b": booking_id})


@pytest.fixture
def context(browser: Any, site: str, staff: dict[str, User]) -> Iterator[Any]:
    ctx = browser.new_context(base_url=site, timezone_id=ZONE, viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


def staff_steps(client: TestClient, staff: dict[str, User], order_id: int, audio: bytes) -> None:
    """What the reader and the monitor do, through the API."""
    ok(client.post(f"/orders/{order_id}/assign", json={"reader_id": staff["reader"].id}, headers=staff["admin"].h))
    ok(client.post(f"/orders/{order_id}/start", headers=staff["reader"].h))
    ok(client.post(f"/orders/{order_id}/output", content=audio,
                   headers={**staff["reader"].h, "Content-Type": "audio/mpeg"}))
    ok(client.post(f"/orders/{order_id}/submit", headers=staff["reader"].h))
    ok(client.post(f"/monitor/orders/{order_id}/approve", json={"deliver": True}, headers=staff["monitor"].h))


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_full_client_journey(lang: str, context: Any, site: str, api: Api, client: TestClient,
                             staff: dict[str, User], settings: Settings, dsns: db.Dsns) -> None:
    context.set_extra_http_headers({"Accept-Language": lang})
    p = Page(context.new_page(), lang)
    page = p.page
    email = f"journey-{lang}-{uuid.uuid4().hex[:6]}@example.com"

    # 1. sign up
    page.goto("/")
    p.check("home-anonymous")
    page.goto("/catalogue")
    p.check("catalogue")
    page.goto(f"/catalogue/readers/{staff['reader'].id}")
    assert page.locator("h1").inner_text() == "Layla"
    assert page.locator("img.avatar").count() == 1
    p.check("reader-anonymous")
    page.goto("/signup")
    p.check("signup")
    page.fill("#f-first_name", "Layla" if lang == "en" else "ليلى")
    page.fill("#f-last_name", "Haddad" if lang == "en" else "حداد")
    page.fill("#f-email", email)
    page.fill("#f-password", "a-long-test-password")
    page.fill("#f-dob", (dt.date.today() - dt.timedelta(days=365 * 17)).isoformat())  # 17: refused
    page.select_option("#f-country", "LB")
    page.check("#f-terms")
    page.click("form#page-form button.primary")
    assert page.locator(".error-summary").is_visible()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    p.check("signup-error")
    page.fill("#f-password", "a-long-test-password")
    page.fill("#f-dob", "1992-03-14")
    page.click("form#page-form button.primary")
    page.wait_for_url("**/verify-email")
    p.check("verify-email-sent")

    # 2. verify the email with the link from the local mailbox
    deliver_mail(settings, dsns)
    page.goto(mailbox_link(settings, email, "/verify-email?token="))
    done = "Your email is confirmed" if lang == "en" else "تم تأكيد بريدك الإلكتروني"
    assert page.locator("h1").inner_text() == done
    p.check("verify-email-done")
    assert api.sql("select email_verified, locale from profiles where email = %s", (email,)) == [(True, lang)]
    # the form's box accepted the current terms and privacy policy, with the address it came from
    assert api.sql("select v.doc, host(a.ip), a.source from legal_acceptances a join legal_versions v "
                   "on v.id = a.version_id join profiles p on p.id = a.user_id where p.email = %s order by v.doc",
                   (email,)) == [("privacy", "127.0.0.1", "signup"), ("terms", "127.0.0.1", "signup")]
    assert api.sql("select app.legal_outstanding(id) from profiles where email = %s", (email,)) == [([],)]
    page.goto("/")
    assert page.locator(".reader-card h3").first.inner_text() == "Layla"      # online now, from the directory
    price = "$15.00" if lang == "en" else "15.00 USD"
    assert price in page.locator("#svc-tarot").locator("xpath=..").locator("..").inner_text()
    p.check("home")

    # 3. top up with the test card (a declined card first)
    page.goto("/account/wallet")
    p.check("wallet-empty")
    page.check("#f-amount-5000")
    page.select_option("#f-card_token", "tok_chargeDeclined")
    page.click("form#page-form button.primary")
    assert page.locator(".error-summary").is_visible()
    page.select_option("#f-card_token", "tok_visa")
    page.check("#f-amount-5000")
    page.click("form#page-form button.primary")
    page.wait_for_url("**/account/wallet?topped=1")
    assert page.get_by_test_id("balance").inner_text().strip("\u200f\u2066\u2069 ") in ("$50.00", "50.00 USD")
    p.check("wallet")

    # 4. order a three-card tarot
    page.goto("/my/orders/new")
    p.check("order-choose")
    page.goto("/my/orders/new/astro")
    page.fill("#f-place_q", "Beir")
    page.locator("#place-results input[type=radio]").first.wait_for()   # htmx, under the CSP
    p.check("order-astro")
    page.goto("/my/orders/new/coffee")
    p.check("order-coffee", shots=True)
    page.goto("/my/orders/new/tarot")
    page.check("#f-spread-three_card")
    page.fill("#f-question", "<script>document.title='x'</script> What does the new year hold?")
    p.check("order-tarot")
    page.click("form#page-form button.primary")
    page.wait_for_url("**/my/orders/*")
    order_id = int(page.url.rsplit("/", 1)[1])
    assert "<script>" in page.locator(".question").inner_text()   # shown as text, never run
    assert page.title() != "x"
    p.check("order-new")

    # 5. the staff steps, through the API
    audio = tone(1.0, 523)
    staff_steps(client, staff, order_id, audio)

    # 6. reveal the three cards in order; out of order is refused
    page.reload()
    page.get_by_role("button", name=("Reveal card 3" if lang == "en" else "اكشف البطاقة 3")).click()
    page.locator(".error-summary").wait_for()
    assert ("order" in page.locator(".error-summary").inner_text()) if lang == "en" else ("بالترتيب" in page.locator(
        ".error-summary").inner_text())
    assert page.locator("svg.tarot.back").count() == 3
    p.check("order-out-of-order", shots=False)
    for n in (1, 2, 3):
        page.get_by_role("button", name=(f"Reveal card {n}" if lang == "en" else f"اكشف البطاقة {n}")).click()
        page.locator(f"#card-{n} svg.tarot:not(.back)").wait_for()
    assert page.locator("svg.tarot.back").count() == 0
    revealed = api.sql("select count(*) from tarot_v2_card_selections s join tarot_v2_readings r "
                       "on r.id = s.reading_id where r.order_id = %s and s.revealed_at is not null", (order_id,))
    assert revealed == [(3,)]

    # 7. play the approved audio; its bytes are the upload's
    player = page.get_by_test_id("reading-audio")
    src = player.get_attribute("src")
    assert src and page.request.get(src).body() == audio
    assert page.evaluate("""async () => { const a = document.querySelector('audio'); await a.play();
        await new Promise(r => setTimeout(r, 300)); return !a.paused && a.currentTime > 0; }""")
    p.check("order-delivered")

    # 8. leave a review (its text is shown as text, never run); the reader replies through the API
    page.click("label[for='f-rating-4']")                                # the stars are labels of radios
    page.fill("#f-text", "<script>document.title='x'</script> Clear and kind, thank you.")
    p.check("order-review-form", shots=False)
    page.click("form#review-form button.primary")
    page.get_by_test_id("review-status").wait_for()
    assert "<script>" in page.get_by_test_id("review-body").inner_text()
    assert page.title() != "x"
    review_id, status = api.sql("select id, status from reviews where order_id = %s", (order_id,))[0]
    assert status == "published"
    p.check("order-reviewed")
    ok(client.post(f"/reviews/{review_id}/reply", json={"text": "Thank you for trusting me." if lang == "en"
                                                        else "شكرًا لثقتك."}, headers=staff["reader"].h))
    page.goto(f"/catalogue/readers/{staff['reader'].id}")
    assert page.locator(f"#review-{review_id} .reply").is_visible()
    page.click("#favourite button")
    page.wait_for_url("**#favourite")
    assert page.locator("#favourite button").get_attribute("aria-pressed") == "true"
    p.check("reader")
    page.goto("/my/favourites")
    assert page.locator(".reader-card").count() == 1
    p.check("favourites")

    page.goto("/my/orders")
    p.check("orders")

    # 9. book and pay a Healing Energy call, confirm its preparation, give consent, see it confirmed
    page.goto("/my/calls/book?service=healing")
    assert page.locator("#f-reader option:checked").inner_text().startswith("Layla")
    p.check("book")
    tomorrow = dt.datetime.now(ZoneInfo(ZONE)).date() + dt.timedelta(days=1)
    page.locator(f".days a[href$='day={tomorrow.isoformat()}']").click()
    page.locator(".slots button").nth(20).click()
    page.wait_for_url("**/my/calls/*")
    assert re.search(r"\b(10|0\d):\d\d$", page.locator(".countdown .clock").inner_text().strip())  # ticking
    p.check("booking-held")
    page.check("input[name=method][value=wallet]")
    page.click("form#page-form button.primary")
    page.get_by_test_id("booking-status").filter(has_text="Confirmed" if lang == "en" else "مؤكَّدة").wait_for()
    p.check("booking-confirmed")
    ritual = "quiet place" if lang == "en" else "مكانًا هادئًا"
    assert ritual in page.locator(".ritual-text").inner_text()
    page.click("form#ritual-form button.primary")                       # unticked: refused, nothing kept
    page.locator(".error-summary").wait_for()
    page.check("#f-prepared")
    page.click("form#ritual-form button.primary")
    page.get_by_test_id("pre-ritual-state").wait_for()
    page.check("#f-consent")
    page.click("form#consent-form button.primary")
    page.get_by_test_id("consent-state").wait_for()
    booking_id = int(page.url.split("#")[0].rsplit("/", 1)[1])
    assert api.sql("select host(client_ip), consent_given from call_consent_logs where booking_id = %s",
                   (booking_id,)) == [("127.0.0.1", True)]
    assert api.sql("select status from bookings where id = %s", (booking_id,)) == [("confirmed",)]
    assert api.sql("select pre_ritual_confirmed_at is not null from bookings where id = %s", (booking_id,)) == [(True,)]
    p.check("booking-consented")

    # the call takes place (the reader starts it through the API; the voice simulator connects it),
    # then the client rates it on the call page
    bring_forward(api, booking_id)
    call = ok(client.post(f"/calls/{booking_id}/start", headers=staff["reader"].h), 201)
    t0 = dt.datetime.now(dt.UTC)
    for event, at in (("started", t0), ("ended", t0 + dt.timedelta(minutes=20))):
        ok(client.post(f"/calls/{call['id']}/simulate", json={"event": event, "at": at.isoformat(),
                                                               "reason": "completed" if event == "ended" else None},
                       headers=staff["reader"].h))
    page.goto(f"/my/calls/{booking_id}")
    page.click("label[for='f-rating']")
    page.fill("#f-text", "A calm, helpful session." if lang == "en" else "جلسة هادئة ومفيدة.")
    p.check("call-review-form")
    page.click("form#review-form button.primary")
    page.get_by_test_id("review-status").wait_for()
    assert api.sql("select rating, status from reviews where call_id = %s", (call["id"],)) == [(5, "published")]
    p.check("call-reviewed")
    page.goto("/my/calls")
    p.check("calls")
    page.goto("/account")
    p.check("account")
    page.goto("/account/notifications")
    p.check("notifications")
    page.goto("/verify-phone")
    p.check("verify-phone")
    page.goto("/my/orders/999999999")
    p.check("not-found")
    page.goto("/offline")
    p.check("offline")
    page.goto("/")                                    # the emergency call (its flag is on by default)
    page.check("#f-emergency_consent")
    page.click(".emergency button.danger")
    page.wait_for_url("**/my/emergency/*")
    p.check("emergency")
    page.goto("/login")  # signed in or not, the form renders
    p.check("login")


def test_keyboard_only_sign_up_and_order(context: Any, api: Api, staff: dict[str, User]) -> None:
    p = Page(context.new_page(), "en")
    page = p.page
    page.goto("/signup")

    def tab_to(element_id: str, limit: int = 40) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == element_id:
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"no visible focus on {element_id}"
                return
        raise AssertionError(f"Tab never reached #{element_id}")

    email = f"keys-{uuid.uuid4().hex[:6]}@example.com"
    for field, text in (("f-first_name", "Omar"), ("f-last_name", "Khalil"), ("f-email", email),
                        ("f-password", "a-long-test-password")):
        tab_to(field)
        page.keyboard.type(text)
    tab_to("f-dob")
    page.keyboard.type("07151990")
    tab_to("f-country")
    page.keyboard.type("Lebanon")
    tab_to("f-terms")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/verify-email")
    assert api.sql("select dob, country_code from profiles where email = %s", (email,)) == [
        (dt.date(1990, 7, 15), "LB")]
    api.sql("update services set price_minor = 0 where code = 'tarot'")  # nothing in the wallet yet
    try:
        page.goto("/my/orders/new/tarot")
        tab_to("f-spread-three_card")                     # the checked radio takes the focus
        page.keyboard.press("ArrowDown")                  # a radio group: the arrow keys choose
        page.keyboard.press("ArrowUp")
        assert page.evaluate("document.activeElement.value") == "three_card"
        tab_to("f-question")
        page.keyboard.type("Keyboard only: will it work?")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_url("**/my/orders/*")
    finally:
        api.sql("update services set price_minor = %s where code = 'tarot'", (TAROT_PRICE,))
    order_id = int(page.url.rsplit("/", 1)[1])
    assert api.sql("select question_text from orders where id = %s", (order_id,)) == [("Keyboard only: will it work?",)]
    # turning a card with the keyboard
    tab_to("reveal-1", limit=60)
    page.keyboard.press("Enter")
    page.locator("#card-1 svg.tarot:not(.back)").wait_for()


class Attacker(BaseHTTPRequestHandler):
    """Another origin's page that posts a form to the site (no CSRF token, of course)."""
    target = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = (f'<!doctype html><html lang="en"><title>x</title><form id="f" method="post" action="{self.target}">'
                '<input name="amount" value="10000"><input name="card_token" value="tok_visa"></form>'
                '<button form="f" id="go">go</button></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)


def test_a_cross_site_form_post_is_refused(browser: Any, site: str, api: Api) -> None:
    user = off_loop(lambda: api.user("client"))
    ctx = browser.new_context(base_url=site)
    try:
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#f-email", user.email)
        page.fill("#f-password", "a-long-test-password")
        page.click("form#page-form button.primary")
        page.wait_for_url(f"{site}/")
        cookie = next(c for c in ctx.cookies() if c["name"] == "samia_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        Attacker.target = f"{site}/account/wallet"
        server = HTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            with page.expect_navigation():
                page.click("#go")
            assert page.url == f"{site}/account/wallet"
            assert "The form expired" in page.content()
        finally:
            server.shutdown()
            server.server_close()
        assert api.sql("select count(*) from payment_transactions where user_id = %s", (user.id,)) == [(0,)]
    finally:
        ctx.close()
