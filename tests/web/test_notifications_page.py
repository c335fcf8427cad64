"""The notification settings page: news-and-offers consent per channel (recorded and audited
as the API's opt-in/out are), quiet hours in the person's own zone (bad input refused with
nothing written), this browser's push subscription registered and removed (never another
person's), and the last messages titled in the reader's language. In a real browser in
English and Arabic with axe-core and screenshots, and without one for the form rules."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from py_vapid import Vapid

from samia.config import Settings

from ..conftest import make_settings
from ..helpers import PASSWORD, Api
from .conftest import Page, off_loop


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_BROWSER_KEY = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
SUBSCRIPTION = json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
                           "keys": {"p256dh": _b64(_BROWSER_KEY), "auth": _b64(b"\x02" * 16)}})


@pytest.fixture(scope="module")
def settings(data_dir: Path, port: int) -> Settings:
    vapid = Vapid()
    vapid.generate_keys()
    return make_settings(SAMIA_DATA_DIR=str(data_dir), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                         WEBPUSH_PROVIDER="vapid", VAPID_PRIVATE_KEY=vapid.private_pem().decode(),
                         VAPID_SUBJECT="mailto:ops@example.com")


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def web(client: TestClient) -> TestClient:
    """The module's one test client (one app, one pool); the API ignores its cookies."""
    return client


def sign_in(web: TestClient, email: str) -> None:
    web.cookies.clear()
    token = csrf(web, "/login")
    r = web.post("/login", data={"_csrf": token, "email": email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf(web: TestClient, path: str) -> str:
    return re.search(r'name="_csrf" value="([0-9a-f]+)"', web.get(path).text).group(1)  # type: ignore[union-attr]


def test_channel_choices_are_consents_recorded_and_audited(web: TestClient, api: Api) -> None:
    user = api.user("client")
    sign_in(web, user.email)
    token = csrf(web, "/account/notifications")
    r = web.post("/account/notifications/channels", data={"_csrf": token, "marketing_email": "on",
                                                          "marketing_sms": "on"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("saved=channels")
    consents = lambda: dict(api.sql("select channel, opted_in from consents where user_id = %s", (user.id,)))  # noqa: E731
    assert consents() == {"email": True, "sms": True}
    assert api.sql("select source from consents where user_id = %s and channel = 'email'", (user.id,)) == [("web",)]
    page = web.get("/account/notifications?saved=channels").text
    assert "Your choices are saved." in page
    assert re.search(r'id="m-email" name="marketing_email" checked', page)
    assert not re.search(r'id="m-push" name="marketing_push" checked', page)
    # unticking SMS opts out; an unchanged channel writes nothing new
    web.post("/account/notifications/channels", data={"_csrf": token, "marketing_email": "on"})
    assert consents() == {"email": True, "sms": False}
    audited = api.sql("select event from audit_log where actor = %s and entity = 'consent' order by id", (user.id,))
    assert [a for (a,) in audited] == ["messaging.opt_in", "messaging.opt_in", "messaging.opt_out"]
    # the campaign rule reads the same consent: SMS marketing is no longer allowed
    assert api.sql("select app.marketing_eligible(%s, 'sms')", (user.id,)) == [(False,)]


def test_quiet_hours_are_saved_in_the_persons_zone_and_bad_input_changes_nothing(web: TestClient, api: Api) -> None:
    user = api.user("client")
    sign_in(web, user.email)
    token = csrf(web, "/account/notifications")
    r = web.post("/account/notifications/quiet-hours",
                 data={"_csrf": token, "starts": "22:30", "ends": "07:15", "tz": "Asia/Beirut"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select to_char(starts, 'HH24:MI'), to_char(ends, 'HH24:MI'), tz from quiet_hours "
                   "where user_id = %s", (user.id,)) == [("22:30", "07:15", "Asia/Beirut")]
    assert "Quiet from 22:30 to 07:15 (Asia/Beirut)." in web.get("/account/notifications").text
    for bad, field, message in (({"starts": "25:00", "ends": "07:00", "tz": "UTC"}, "starts",
                                 "Enter a time like 14:30."),
                                ({"starts": "22:00", "ends": "07:00", "tz": "Mars/Olympus"}, "tz",
                                 "Choose a time zone from the list."),
                                ({"starts": "09:00", "ends": "09:00", "tz": "UTC"}, "ends",
                                 "The end must differ from the start.")):
        r = web.post("/account/notifications/quiet-hours", data={"_csrf": token, **bad})
        assert r.status_code == 422 and "text/html" in r.headers["content-type"]
        assert message in r.text and f'href="#f-{field}"' in r.text
    assert api.sql("select tz from quiet_hours where user_id = %s", (user.id,)) == [("Asia/Beirut",)]
    # the form's language button shows it again in Arabic, values kept; then errors are Arabic
    r = web.post("/account/notifications/quiet-hours",
                 data={"_csrf": token, "_lang": "ar", "starts": "21:05", "ends": "07:00", "tz": "UTC"})
    assert r.status_code == 200 and 'lang="ar"' in r.text and 'value="21:05"' in r.text
    r = web.post("/account/notifications/quiet-hours",
                 data={"_csrf": token, "starts": "x", "ends": "07:00", "tz": "UTC"})
    assert r.status_code == 422 and 'lang="ar"' in r.text and "ساعات الهدوء" in r.text
    web.post("/account/notifications/quiet-hours", data={"_csrf": token, "clear": "1"})
    assert api.sql("select count(*) from quiet_hours where user_id = %s", (user.id,)) == [(0,)]


def test_this_browsers_subscription_is_registered_and_only_its_owner_removes_it(web: TestClient, api: Api) -> None:
    owner, other = api.user("client"), api.user("client")
    sign_in(web, owner.email)
    page = web.get("/account/notifications").text
    assert 'data-push-key="' in page  # Web Push is configured: the browser may subscribe
    token = csrf(web, "/account/notifications")
    r = web.post("/account/notifications/devices", data={"_csrf": token, "subscription": "{not json"})
    assert r.status_code == 422
    r = web.post("/account/notifications/devices",
                 data={"_csrf": token, "subscription": SUBSCRIPTION.replace("fcm.googleapis.com", "evil.example")})
    assert r.status_code == 422  # only the known push services' endpoints
    assert api.sql("select count(*) from devices where user_id = %s", (owner.id,)) == [(0,)]
    r = web.post("/account/notifications/devices", data={"_csrf": token, "subscription": SUBSCRIPTION,
                                                         "label": "Linux x86_64"}, follow_redirects=False)
    assert r.status_code == 303
    ((device, kind, label),) = api.sql("select id, kind, label from devices where user_id = %s", (owner.id,))
    assert (kind, label) == ("webpush", "Linux x86_64")
    assert "1 device(s) registered" in web.get("/account/notifications").text
    # without the token nothing happens
    assert web.post(f"/account/notifications/devices/{device}/remove").status_code == 403
    # another person cannot remove it (404, as if it did not exist)
    sign_in(web, other.email)
    r = web.post(f"/account/notifications/devices/{device}/remove", data={"_csrf": csrf(web, "/account/notifications")})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert api.sql("select count(*) from devices where id = %s", (device,)) == [(1,)]
    sign_in(web, owner.email)
    r = web.post(f"/account/notifications/devices/{device}/remove",
                 data={"_csrf": csrf(web, "/account/notifications")}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select count(*) from devices where id = %s", (device,)) == [(0,)]


def test_recent_messages_are_titled_in_the_readers_language_without_their_bodies(web: TestClient, api: Api) -> None:
    user, stranger = api.user("client"), api.user("client")
    for who in (user, stranger):
        api.sql("insert into notification_outbox (recipient_id, channel, template, params) values "
                "(%s, 'email', 'order_refunded', '{\"order\": 41, \"reason\": \"late\"}')", (who.id,))
    api.sql("select app.plan_outbox(1000)")
    sign_in(web, user.email)
    page = web.get("/account/notifications").text
    assert "A refund to your Samia Tarot wallet" in page and "Waiting" in page
    assert page.count("A refund to your Samia Tarot wallet") == 1  # the stranger's is not here
    assert "was returned to your wallet" not in page  # titles only
    token = csrf(web, "/account/notifications")
    web.post("/account/language", data={"_csrf": token, "lang": "ar", "next": "/account/notifications"})
    page = web.get("/account/notifications").text
    assert "استرداد إلى محفظتك في سامية تاروت" in page and "A refund to" not in page


def test_the_page_in_a_browser_in_both_languages(browser: Any, site: str, api: Api) -> None:
    user = off_loop(lambda: api.user("client"))
    api.sql("insert into quiet_hours (user_id, starts, ends, tz) values (%s, '23:00', '07:00', 'Europe/Paris')",
            (user.id,))
    for lang in ("en", "ar"):
        ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#f-email", user.email)
        page.fill("#f-password", PASSWORD)
        page.click("form#page-form button.primary")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto("/account/notifications")
        if lang == "ar":  # the profile speaks English; the header's switch makes it Arabic
            page.click("button.chip.lang")
            page.wait_for_function("document.documentElement.lang === 'ar'")
        checked = Page(page, lang)
        assert page.locator("#push-here").is_visible()  # the browser can subscribe: the button shows
        # keyboard only: tick WhatsApp and save
        page.focus("#m-whatsapp")
        page.keyboard.press("Space")
        page.locator("#channels-form button").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**saved=channels")
        checked.check("notifications")
        ctx.close()
    assert api.sql("select opted_in from consents where user_id = %s and channel = 'whatsapp'",
                   (user.id,)) == [(False,)]  # ticked in English, unticked again in Arabic
