"""The web layer without a browser: catalogues complete, every template string through them,
page routes guarded like the API (and listed by parity), security headers, CSRF, the session
cookie's flags, cookies refused by the JSON API, escaping, and page-shaped errors."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from samia.core.access import registry
from samia.core.tokens import hash_token
from samia.web.render import HERE, LANGS, catalogue

from ..helpers import PASSWORD, Api, ok

TEMPLATES = HERE / "templates"


def test_both_catalogues_have_every_key_with_the_same_placeholders() -> None:
    en, ar = catalogue("en"), catalogue("ar")
    assert sorted(set(en) ^ set(ar)) == []
    for key in en:
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", ar[key])), key
        assert en[key].strip() and ar[key].strip(), key


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html"))


def test_every_key_a_template_names_exists() -> None:
    keys = set(catalogue("en"))
    for path in _templates():
        for key in re.findall(r"""\bt\(\s*["']([a-z_][a-z0-9_.]*)["']""", path.read_text()):
            # a key built from data ("status." ~ status) must have entries under its prefix
            assert key in keys or (key.endswith(".") and any(k.startswith(key) for k in keys)), f"{path.name}: {key}"


@pytest.mark.parametrize("path", _templates(), ids=lambda p: p.name)
def test_no_template_text_bypasses_the_catalogue(path: Path) -> None:
    """Visible text and text attributes come from t(…): strip the Jinja code, the tags and the
    SVG drawing, and no letter may remain."""
    src = path.read_text()
    src = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", src, flags=re.S)
    for attr in ("aria-label", "title", "placeholder", "alt", "data-expired"):
        found = re.findall(rf'{attr}="([^"]*[A-Za-z\u0600-\u06FF][^"]*)"', src)
        assert not found, f"{path.name}: {attr} {found}"
    text = re.sub(r"<!--.*?-->", " ", src, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    leftovers = re.findall(r"[A-Za-z\u0600-\u06FF]{2,}", text)
    assert leftovers == [], f"{path.name}: {leftovers}"


def test_page_routes_are_guarded_with_cookies_and_listed_by_parity(app: Any) -> None:
    pages = [(m, p, g) for m, p, g in registry(app) if g is not None and g.cookie]
    paths = {p for _, p, _ in pages}
    assert {"/", "/signup", "/login", "/my/orders/{order_id}", "/account/wallet", "/my/calls/book"} <= paths
    api = [(m, p, g) for m, p, g in registry(app) if g is not None and not g.cookie]
    assert not {p for _, p, _ in api} & paths
    openapi = app.openapi()["paths"]
    assert not set(openapi) & paths, "pages stay out of the API's OpenAPI document"


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    """Requests from a real address (the emergency call and consent keep it as inet)."""
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def web(client: TestClient) -> TestClient:
    """The module's test client (one app, one pool); the API ignores its cookies."""
    return client


def sign_in(web: TestClient, email: str) -> None:
    web.cookies.clear()
    page = web.get("/login")
    token = re.search(r'name="_csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = web.post("/login", data={"_csrf": token, "email": email, "password": PASSWORD, "next": "/"},
                 follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf(web: TestClient, path: str) -> str:
    return re.search(r'name="_csrf" value="([0-9a-f]+)"', web.get(path).text).group(1)  # type: ignore[union-attr]


def test_security_headers_on_pages_and_api(web: TestClient) -> None:
    """Pages bring their own policy (this origin's scripts and styles, never inline); the API and
    static files keep the edge's (nothing runs, nothing loads); both are never framed."""
    assert "connect-src 'self'" in web.get("/sw.js").headers["content-security-policy"]  # the worker's own
    for r in (web.get("/"), web.get("/catalogue"), web.get("/my/orders/1")):
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    for r in (web.get("/api/ops/live"), web.get("/static/theme.css"), web.get("/services")):
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["referrer-policy"] == "no-referrer"
    for r in (web.get("/"), web.get("/services")):
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in web.get("/").text.replace('<script src="/static/', "")


def test_security_headers_on_responses_made_outside_the_routes(app: Any, web: TestClient) -> None:
    """The 413 that the request-size guard answers before any route runs, and a raw 500 from
    Starlette's outermost error middleware, carry the headers too."""
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/boom", boom)
    too_big = web.post("/auth/login", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    crashed = web.get("/test-only/boom")
    assert (too_big.status_code, crashed.status_code) == (413, 500)
    for r in (too_big, crashed):
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_session_cookie_flags_and_the_api_ignores_it(web: TestClient, api: Api) -> None:
    user = api.user("client")
    web.cookies.clear()
    page = web.get("/login")
    token = re.search(r'name="_csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = web.post("/login", data={"_csrf": token, "email": user.email, "password": PASSWORD}, follow_redirects=False)
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("samia_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    assert "Secure" not in session  # SAMIA_ENV=test; outside dev/test it carries Secure
    assert web.get("/account").status_code == 200
    # the JSON API never reads the cookie: without a bearer token it answers 401
    me = web.get("/me")
    assert me.status_code == 401 and me.headers["content-type"].startswith("application/problem+json")


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(web: TestClient, api: Api) -> None:
    user = api.user("client")
    sign_in(web, user.email)
    before = api.sql("select count(*) from payment_transactions where user_id = %s", (user.id,))
    for data in ({"amount": "2500", "card_token": "tok_visa"},
                 {"amount": "2500", "card_token": "tok_visa", "_csrf": "0" * 64}):
        r = web.post("/account/wallet", data=data)
        assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        assert 'lang="en"' in r.text and "Reference" in r.text
    assert api.sql("select count(*) from payment_transactions where user_id = %s", (user.id,)) == before
    # the same form with its token goes through
    r = web.post("/account/wallet", data={"amount": "2500", "card_token": "tok_visa",
                                          "_csrf": csrf(web, "/account/wallet")}, follow_redirects=False)
    assert r.status_code == 303


def test_the_price_country_is_shown_not_offered_once_chosen(web: TestClient, api: Api) -> None:
    user = api.user("client", country="FR")
    sign_in(web, user.email)
    page = web.get("/account").text
    assert "France" in page and 'name="country"' not in page  # a fact, not a field
    r = web.post("/account", data={"_csrf": csrf(web, "/account"), "first_name": "Nour", "last_name": "Haddad",
                                   "country": "EG"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select first_name, country_code from profiles where id = %s", (user.id,)) == [("Nour", "FR")]


def test_another_clients_order_page_is_404_and_text_is_inert(web: TestClient, api: Api, client: TestClient) -> None:
    owner, other = api.user("client"), api.user("client")
    order = ok(client.post("/orders", json={"service": "tarot", "question": "<script>alert(1)</script> & me?"},
                           headers=owner.h), 201)
    sign_in(web, owner.email)
    page = web.get(f"/my/orders/{order['id']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; me?" in page.text
    sign_in(web, other.email)
    r = web.get(f"/my/orders/{order['id']}")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    assert "Traceback" not in r.text and re.search(r"<code dir=\"ltr\">[0-9a-f]{32}</code>", r.text)


def test_errors_are_pages_for_browsers_and_problems_for_the_api(web: TestClient) -> None:
    web.cookies.clear()
    r = web.get("/no/such/page", headers={"Accept": "text/html", "Accept-Language": "ar"})
    assert r.status_code == 404 and 'dir="rtl"' in r.text and "الصفحة غير موجودة" in r.text
    r = web.get("/no/such/page", headers={"Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/problem+json")
    r = web.get("/my/orders", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fmy%2Forders"


def test_the_language_switch_keeps_what_was_typed(web: TestClient) -> None:
    web.cookies.clear()
    token = csrf(web, "/signup")
    r = web.post("/signup", data={"_csrf": token, "_lang": "ar", "first_name": "Layla", "email": "l@example.com",
                                  "password": "secret-not-echoed"})
    assert r.status_code == 200 and 'lang="ar"' in r.text and 'value="Layla"' in r.text
    assert 'value="l@example.com"' in r.text and "secret-not-echoed" not in r.text
    assert "samia_lang=ar" in r.headers.get("set-cookie", "")


def test_manifest_and_service_worker(web: TestClient) -> None:
    web.cookies.clear()
    m = web.get("/manifest.webmanifest", headers={"Accept-Language": "ar"})
    body = json.loads(m.text)
    assert m.headers["content-type"].startswith("application/manifest+json")
    assert body["name"] == "سامية تاروت" and body["dir"] == "rtl"
    assert {i["sizes"] for i in body["icons"]} == {"192x192", "512x512"}
    assert any(i["purpose"] == "maskable" for i in body["icons"])
    for icon in body["icons"]:
        assert web.get(icon["src"]).status_code == 200
    sw = web.get("/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript") and "/offline" in sw.text
    assert web.get("/offline").status_code == 200


def test_place_search_is_offline(web: TestClient) -> None:
    web.cookies.clear()
    r = web.get("/places", params={"place_q": "beir"})
    assert "Beirut, Lebanon" in r.text and "Asia/Beirut" in r.text
    assert "بيروت" in web.get("/places", params={"place_q": "بيروت"}, headers={"Accept-Language": "ar"}).text


def test_every_language_is_served(web: TestClient) -> None:
    web.cookies.clear()
    for lang in LANGS:
        r = web.get("/catalogue", headers={"Accept-Language": lang})
        assert f'lang="{lang}"' in r.text


def test_phone_verification_in_two_steps(web: TestClient, api: Api, sms: Any) -> None:
    user = api.user("client")
    sign_in(web, user.email)
    r = web.post("/verify-phone", data={"_csrf": csrf(web, "/verify-phone"), "phone": "+961 3 123 457"})
    assert r.status_code == 200 and 'id="f-code"' in r.text
    code = re.search(r"\b(\d{6})\b", [t for p, t in sms.messages if p == "+9613123457"][-1]).group(1)  # type: ignore[union-attr]
    r = web.post("/verify-phone", data={"_csrf": csrf(web, "/verify-phone"), "phone": "+961 3 123 457",
                                        "code": "000000" if code != "000000" else "111111"})
    assert r.status_code == 400 and "The code is not right" in r.text
    r = web.post("/verify-phone", data={"_csrf": csrf(web, "/verify-phone"), "phone": "+961 3 123 457", "code": code})
    assert r.status_code == 200 and "Your phone number is confirmed" in r.text
    assert api.sql("select phone, phone_verified from profiles where id = %s", (user.id,)) == [("+9613123457", True)]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def test_coffee_order_with_its_photo_and_the_emergency_button(web: TestClient, api: Api) -> None:
    user = api.user("client")
    sign_in(web, user.email)
    form = web.get("/my/orders/new/coffee")
    assert 'enctype="multipart/form-data"' in form.text and 'type="file"' in form.text
    token = csrf(web, "/my/orders/new/coffee")
    r = web.post("/my/orders/new/coffee", data={"_csrf": token})   # no photo: the field says so
    assert r.status_code == 422 and "Add a photo of your cup" in r.text
    assert api.sql("select count(*) from orders where user_id = %s", (user.id,)) == [(0,)]
    r = web.post("/my/orders/new/coffee", data={"_csrf": token, "question": "Love?"},
                 files={"photo": ("cup.png", PNG, "image/png")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    order_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert api.sql("select count(*) from order_attachments where order_id = %s", (order_id,)) == [(1,)]
    # the emergency call (feature.emergencyExtension is on by default): consent first
    page = web.get("/")
    assert 'action="/my/emergency"' in page.text
    r = web.post("/my/emergency", data={"_csrf": csrf(web, "/")})
    assert r.status_code == 422
    r = web.post("/my/emergency", data={"_csrf": csrf(web, "/"), "consent": "yes"}, follow_redirects=False)
    assert r.status_code == 303, re.findall(r'<li>(.*?)</li>', r.text)
    assert web.get(r.headers["location"]).status_code == 200
    assert api.sql("select status from emergency_requests where client_id = %s", (user.id,)) == [("ringing",)]


def test_favourite_toggle_and_the_pre_ritual_on_pages(web: TestClient, api: Api) -> None:
    reader = api.user("reader")
    ok(web.put("/readers/me/profile", json={"display_name": "Nour", "languages": ["en"]}, headers=reader.h))
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'healing'",
            (reader.id,))
    user = api.user("client")
    sign_in(web, user.email)
    profile = f"/catalogue/readers/{reader.id}"
    assert 'aria-pressed="false"' in web.get(profile).text
    assert web.post(f"{profile}/favourite", data={"on": "1"}).status_code == 403     # no CSRF token
    r = web.post(f"{profile}/favourite", data={"_csrf": csrf(web, profile), "on": "1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{profile}#favourite"
    assert 'aria-pressed="true"' in web.get(profile).text
    assert "Nour" in web.get("/my/favourites").text
    web.post(f"{profile}/favourite", data={"_csrf": csrf(web, profile), "on": "0", "from": "favourites"})
    assert api.sql("select count(*) from favourites where client_id = %s", (user.id,)) == [(0,)]
    # a confirmed Healing Energy booking: its instructions in the page's language, then the confirmation
    booking = api.sql("""
        with cap as (insert into reader_capacity (reader_id, during, kind, status)
                     values (%(r)s, tstzrange(now() + interval '1 day', now() + interval '1 day 45 minutes'),
                             'booking', 'confirmed') returning id)
        insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, status,
                              price_minor, currency, policy)
        select %(c)s, %(r)s, s.id, cap.id, now() + interval '1 day', now() + interval '1 day 45 minutes',
               'confirmed', 4500, 'USD', s.policy from cap, services s where s.code = 'healing' returning id""",
                      {"r": reader.id, "c": user.id})[0][0]
    page = web.get(f"/my/calls/{booking}")
    assert "find a quiet place" in page.text and f'action="/my/calls/{booking}/pre-ritual"' in page.text
    token = csrf(web, f"/my/calls/{booking}")
    r = web.post(f"/my/calls/{booking}/pre-ritual", data={"_csrf": token})            # not ticked
    assert r.status_code == 422 and 'id="f-prepared-error"' in r.text
    r = web.post(f"/my/calls/{booking}/pre-ritual", data={"_csrf": token, "prepared": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select pre_ritual_confirmed_at is not null from bookings where id = %s", (booking,)) == [(True,)]
    r = web.post("/account/language", data={"_csrf": csrf(web, "/"), "lang": "ar", "next": f"/my/calls/{booking}"})
    assert "اختر مكانًا هادئًا" in r.text and "أكّدت تحضيرك" in r.text


@pytest.mark.parametrize("grace", [10, 0])
def test_two_workers_rotating_one_expired_cookie(api: Api, grace: int) -> None:
    """Two processes refresh the same cookie at once: the second waits on the first's row lock,
    then (within the web's grace window) gets a token of its own instead of revoking the
    session. With no grace (the API's rule) the same race is reuse, and the session ends."""
    old = hash_token(api.user("client").refresh)
    rotate = "select status from app_auth.rotate_refresh(%s, %s, interval '1 day', %s)"
    first = psycopg.connect(api.owner_dsn)
    try:
        assert first.execute(rotate, (old, f"a-{grace}-{old}", dt.timedelta(seconds=grace))).fetchone() == ("ok",)
        with ThreadPoolExecutor(1) as pool:   # the other worker: blocks until the first commits
            second = pool.submit(api.sql, rotate, (old, f"b-{grace}-{old}", dt.timedelta(seconds=grace)))
            time.sleep(0.3)
            assert not second.done()
            first.commit()
            status = second.result(10)
    finally:
        first.close()
    revoked = api.sql("select s.revoke_reason from app_auth.sessions s join app_auth.refresh_tokens t "
                      "on t.session_id = s.id where t.token_hash = %s", (old,))
    if grace:
        assert status == [("ok",)] and revoked == [(None,)]
        # once the window has passed, the same token is a stolen one
        api.sql("update app_auth.refresh_tokens set used_at = now() - interval '1 minute' where token_hash = %s",
                (old,))
        assert api.sql(rotate, (old, f"c-{old}", dt.timedelta(seconds=grace))) == [("reused",)]
    else:
        assert status == [("reused",)] and revoked == [("refresh_reuse",)]


def test_terms_accepted_at_sign_up_are_the_new_accounts_only(api: Api) -> None:
    """The sign-up form's acceptance is recorded for the account its own transaction created;
    the function refuses any other account, even to the credential role that may call it."""
    other = api.user("client")
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("set role samia_auth")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select app.legal_accept_at_signup(%s, '127.0.0.1', 'x')", (other.id,))


def test_privacy_forms_need_the_csrf_token_and_a_signed_in_user(web: TestClient, api: Api) -> None:
    me = api.user("client")
    web.cookies.clear()
    r = web.get("/account/privacy", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount%2Fprivacy"
    sign_in(web, me.email)
    r = web.post("/account/privacy/export", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert api.sql("select count(*) from data_requests where user_id = %s", (me.id,)) == [(0,)]
    r = web.post("/account/privacy/export", data={"_csrf": csrf(web, "/account/privacy")}, follow_redirects=False)
    assert r.status_code == 303
    # someone else's export link is not theirs to mint
    other = api.user("client")
    (theirs,) = api.sql("insert into data_requests (user_id, kind, due_at) values (%s, 'export', now()) "
                        "returning id", (other.id,))[0]
    r = web.post(f"/account/privacy/requests/{theirs}/download", data={"_csrf": csrf(web, "/account/privacy")},
                 follow_redirects=False)
    assert r.status_code == 404


def test_the_privacy_banner_needs_the_csrf_token_and_redirects_only_locally(web: TestClient, api: Api) -> None:
    web.cookies.clear()
    page = web.get("/")
    assert 'action="/privacy/choices"' in page.text
    r = web.post("/privacy/choices", data={"choice": "all", "next": "/"}, follow_redirects=False)
    assert r.status_code == 403
    assert "samia_consent" not in r.headers.get("set-cookie", "")
    token = csrf(web, "/")
    r = web.post("/privacy/choices", data={"_csrf": token, "choice": "all", "next": "//evil.example.com/x"},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    visitor = web.cookies.get("samia_visitor")
    assert api.sql("select analytics, marketing from cookie_consents where visitor_id = %s", (visitor,)) == [
        (True, True)]
    assert 'action="/privacy/choices"' not in web.get("/").text  # asked once
    # a forged visitor id is ignored: a fresh random one names the choice instead
    token = csrf(web, "/privacy")
    seed = next(c.value for c in web.cookies.jar if c.name == "samia_csrf")
    web.cookies.clear()
    r = web.post("/privacy/choices", data={"_csrf": token, "choice": "necessary"}, follow_redirects=False,
                 headers={"Cookie": f"samia_csrf={seed}; samia_visitor=not-a-uuid"})
    given = re.search(r"samia_visitor=([0-9a-f-]{36});", r.headers.get("set-cookie", ""))
    assert r.status_code == 303 and given and given.group(1) != visitor
