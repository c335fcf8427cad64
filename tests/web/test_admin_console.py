"""The admin console without a browser: every page renders for an admin in both languages,
is out of reach of a monitor (403, no data) and of a forged post (CSRF), and its actions go
through the API's functions (audited, refused the same way)."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from samia.config import Settings

from ..conftest import make_settings
from ..helpers import PASSWORD, Api, User, ok

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PAGES = ["/admin", "/admin/console/catalogue", "/admin/console/payments", "/admin/console/payments/reconciliation",
         "/admin/console/payments/methods", "/admin/console/controls", "/admin/console/users",
         "/admin/console/orders", "/admin/console/ops", "/admin/console/ops/runbooks",
         "/admin/console/ops/runbooks/incident-sev1", "/admin/console/ops/observability", "/admin/console/audit",
         "/admin/console/decks"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Bank transfers on; the repository's runbooks plus one carrying markup and a script link."""
    books = tmp_path_factory.mktemp("runbooks")
    for path in (ROOT / "RUNBOOKS").glob("*.md"):
        shutil.copy(path, books / path.name)
    (books / "evil.md").write_text("# Evil <b>bold</b>\n\n<script>alert(1)</script>\n\n"
                                   "[click](javascript:alert(1)) [sev1](/admin/runbooks/incident-sev1)\n")
    return make_settings(SAMIA_DATA_DIR=str(tmp_path_factory.mktemp("admin-data")), RUNBOOKS_DIR=str(books),
                         BANK_TRANSFER_INSTRUCTIONS="IBAN LB00 TEST 0000; reference: your payment id")


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.7", 50000)) as c:
        yield c


@pytest.fixture(scope="module")
def web(client: TestClient) -> TestClient:
    """The same client (one app, one pool): the API ignores the page cookies."""
    return client


def sign_in(web: TestClient, email: str) -> str:
    """Log in through the page; returns where the login sent them."""
    web.cookies.clear()
    token = csrf(web, "/login")
    r = web.post("/login", data={"_csrf": token, "email": email, "password": PASSWORD, "next": "/"},
                 follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def csrf(web: TestClient, path: str) -> str:
    return re.search(r'name="_csrf" value="([0-9a-f]+)"', web.get(path).text).group(1)  # type: ignore[union-attr]


def waiting_transfer(api: Api, client: TestClient, admin: User, proof: bytes | None = PNG) -> tuple[User, int]:
    """A client's booking paid by bank transfer, with the proof uploaded: it waits for an admin."""
    reader = api.user("reader")
    ok(client.put(f"/admin/readers/{reader.id}/services", json={"services": ["tarot"]}, headers=admin.h))
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    ok(client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=reader.h))
    me = api.user("client")
    when = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    booking = ok(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot",
                                                      "starts_at": when.isoformat()}, headers=me.h), 201)["id"]
    pay = ok(client.post("/payments", json={"booking_id": booking, "method": "bank_transfer"}, headers=me.h), 201)
    if proof:
        ok(client.post(f"/payments/{pay['id']}/proof", content=proof, headers={**me.h, "Content-Type": "image/png"}))
    return me, pay["id"]


@pytest.fixture(scope="module")
def admin(api: Api, client: TestClient) -> User:
    ok(client.put("/admin/services/tarot", json={"price_minor": 1500, "currency": "USD"},
                  headers=api.user("admin").h))
    return api.user("admin")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_every_page_renders_for_an_admin(lang: str, web: TestClient, admin: User) -> None:
    assert sign_in(web, admin.email) == "/admin"  # admins land on their console
    for path in PAGES:
        r = web.get(path, headers={"Accept-Language": lang})
        assert r.status_code == 200, (path, r.text[:2000])
        assert f'lang="{lang}"' in r.text and 'href="/static/admin.css"' in r.text
        assert 'href="/admin/console/users"' in r.text and 'href="/my/orders"' not in r.text


def test_a_monitor_gets_403_and_no_data_and_a_client_too(web: TestClient, api: Api, client: TestClient,
                                                         admin: User) -> None:
    _, pay_id = waiting_transfer(api, client, admin)
    for role in ("monitor", "client", "reader"):
        sign_in(web, api.user(role).email)
        for path in [*PAGES, f"/admin/console/payments/{pay_id}/decline"]:
            r = web.get(path)
            assert r.status_code == 403, (role, path)
            assert f"Transfer {pay_id}" not in r.text and "IBAN" not in r.text and "feature_flags" not in r.text
        assert "/admin/console" not in web.get("/account").text  # nor in their navigation
        r = web.post(f"/admin/console/payments/{pay_id}/approve", data={"_csrf": csrf(web, "/account")})
        assert r.status_code == 403
    assert api.sql("select status from payment_transactions where id = %s", (pay_id,)) == [("requires_action",)]
    web.cookies.clear()
    r = web.get("/admin/console/payments", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_forged_posts_without_csrf_change_nothing(web: TestClient, api: Api, client: TestClient, admin: User) -> None:
    _, pay_id = waiting_transfer(api, client, admin)
    sign_in(web, admin.email)
    for path, data in ((f"/admin/console/payments/{pay_id}/approve", {}),
                       ("/admin/console/catalogue/tarot", {"price": "1.00", "is_active": "yes"}),
                       ("/admin/console/controls/flags/feature.tarotV2", {"rollout_pct": "0"})):
        for forged in (data, {**data, "_csrf": "0" * 64}):
            r = web.post(path, data=forged)
            assert r.status_code == 403 and "text/html" in r.headers["content-type"], path
    assert api.sql("select status from payment_transactions where id = %s", (pay_id,)) == [("requires_action",)]
    assert api.sql("select price_minor from services where code = 'tarot'") == [(1500,)]


def test_a_price_set_on_the_page_is_the_storefronts_at_once_and_audited(web: TestClient, api: Api,
                                                                       admin: User) -> None:
    sign_in(web, admin.email)
    token = csrf(web, "/admin/console/catalogue")
    r = web.post("/admin/console/catalogue/tarot", data={"_csrf": token, "price": "abc", "is_active": "yes"})
    assert r.status_code == 422 and 'href="#f-tarot-price"' in r.text
    r = web.post("/admin/console/catalogue/tarot", data={"_csrf": token, "price": "17.50", "per_minute": "0.00",
                                                         "gold_surcharge": "5", "duration": "30", "is_active": "yes"},
                 follow_redirects=False)
    assert r.status_code == 303 and "done=saved" in r.headers["location"]
    assert next(s for s in web.get("/services").json() if s["code"] == "tarot")["price_minor"] == 1750
    assert "$17.50" in web.get("/catalogue").text
    assert api.sql("select actor::text, meta->'price_minor' from audit_log where event = 'service.update' "
                   "and entity_id = 'tarot' order by id desc limit 1") == [(admin.id, [1500, 1750])]


def test_approving_a_transfer_shows_the_proof_and_answers_already_decided_after(
        web: TestClient, api: Api, client: TestClient, admin: User) -> None:
    _, pay_id = waiting_transfer(api, client, admin)
    sign_in(web, admin.email)
    page = web.get("/admin/console/payments").text
    proof = re.search(rf'id="transfer-{pay_id}".*?<img src="([^"]+)"', page, re.S)
    assert proof, "the proof is shown inline"
    img = web.get(proof.group(1).replace("&amp;", "&"))
    assert img.status_code == 200 and img.content == PNG
    token = csrf(web, "/admin/console/payments")
    r = web.post(f"/admin/console/payments/{pay_id}/approve", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=approved")
    assert api.sql("select t.status, b.status from payment_transactions t join bookings b on b.id = t.booking_id "
                   "where t.id = %s", (pay_id,)) == [("succeeded", "confirmed")]
    r = web.post(f"/admin/console/payments/{pay_id}/approve", data={"_csrf": token})
    assert r.status_code == 409 and "already decided" in r.text
    assert api.sql("select count(*) from audit_log where event = 'payment.settled' and entity_id = %s",
                   (str(pay_id),)) == [(1,)]
    # the same admin approves the next one too (each settlement has its own reference)
    _, second = waiting_transfer(api, client, admin)
    r = web.post(f"/admin/console/payments/{second}/approve", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select status from payment_transactions where id = %s", (second,)) == [("succeeded",)]


def test_a_decline_needs_a_reason_and_the_confirmation(web: TestClient, api: Api, client: TestClient,
                                                       admin: User) -> None:
    _, pay_id = waiting_transfer(api, client, admin)
    sign_in(web, admin.email)
    path = f"/admin/console/payments/{pay_id}/decline"
    token = csrf(web, path)
    r = web.post(path, data={"_csrf": token, "reason": "The money never arrived"})
    assert r.status_code == 422 and 'href="#f-confirm"' in r.text
    assert api.sql("select status from payment_transactions where id = %s", (pay_id,)) == [("requires_action",)]
    r = web.post(path, data={"_csrf": token, "reason": "The money never arrived", "confirm": "yes"},
                 follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select status, failure_reason from payment_transactions where id = %s",
                   (pay_id,)) == [("failed", "The money never arrived")]


def test_a_flag_flipped_on_the_page_applies_to_the_next_request(web: TestClient, api: Api, client: TestClient,
                                                                admin: User) -> None:
    someone = api.user("client")
    before = ok(client.get("/flags", headers=someone.h))["feature.tarotV2"]
    sign_in(web, admin.email)
    token = csrf(web, "/admin/console/controls")
    data = {"_csrf": token, "rollout_pct": "100"} | ({} if before else {"enabled": "yes"})
    r = web.post("/admin/console/controls/flags/feature.tarotV2", data=data, follow_redirects=False)
    assert r.status_code == 303
    assert ok(client.get("/flags", headers=someone.h))["feature.tarotV2"] is (not before)
    r = web.post("/admin/console/controls/flags/feature.tarotV2", data={"_csrf": token, "rollout_pct": "101"})
    assert r.status_code == 422


def test_roles_within_the_guardrails_which_the_database_enforces(web: TestClient, api: Api, admin: User) -> None:
    target = api.user("client")
    sign_in(web, admin.email)
    page = web.get(f"/admin/console/users/{target.id}").text
    assert "Only the owner grants" in page and '<option value="superadmin"' not in page
    token = csrf(web, f"/admin/console/users/{target.id}")
    r = web.post(f"/admin/console/users/{target.id}", data={"_csrf": token, "first_name": "Nour", "last_name": "Test",
                                                              "role": "monitor"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select r.code from profiles p join roles r on r.id = p.role_id where p.id = %s",
                   (target.id,)) == [("monitor",)]
    # a forged form granting the superadmin role: the database refuses it, audited
    r = web.post(f"/admin/console/users/{target.id}", data={"_csrf": token, "role": "superadmin"})
    assert r.status_code == 403 and "Only the owner (superadmin)" in r.text
    assert api.sql("select r.code from profiles p join roles r on r.id = p.role_id where p.id = %s",
                   (target.id,)) == [("monitor",)]
    denied = api.sql("select count(*) from audit_log where event = 'access.denied' and actor = %s", (admin.id,))
    assert denied[0][0] >= 1
    found = web.get("/admin/console/users", params={"q": target.email[:12]}).text
    assert target.email in found


def test_a_block_needs_its_confirmation(web: TestClient, api: Api, client: TestClient, admin: User) -> None:
    target = api.user("client")
    sign_in(web, admin.email)
    path = f"/admin/console/users/{target.id}/block"
    token = csrf(web, path)
    data = {"_csrf": token, "reason": "spam", "duration": "60", "note": "Posting links in every review"}
    r = web.post(path, data=data)
    assert r.status_code == 422 and 'href="#f-confirm"' in r.text
    assert client.get("/me", headers=target.h).status_code == 200
    r = web.post(path, data={**data, "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/me", headers=target.h).status_code == 401  # signed out at the next request
    assert api.sql("select reason, blocked_by::text from user_blocks where user_id = %s",
                   (target.id,)) == [("spam", admin.id)]


def test_an_order_goes_to_the_least_loaded_reader(web: TestClient, api: Api, client: TestClient,
                                                  admin: User) -> None:
    busy, free = api.user("reader"), api.user("reader")
    for r in (busy, free):
        ok(client.put(f"/admin/readers/{r.id}/services", json={"services": ["coffee"]}, headers=admin.h))
    api.sql("update services set price_minor = 0 where code = 'coffee'")
    me = api.user("client")
    first, second = (ok(client.post("/orders", json={"service": "coffee", "question": q}, headers=me.h), 201)
                     for q in ("Love?", "Work?"))
    for order in (first, second):  # a coffee-cup reading needs a photo of the cup
        ok(client.post(f"/orders/{order['id']}/photos", content=PNG, headers={**me.h, "Content-Type": "image/png"}))
    ok(client.post(f"/orders/{first['id']}/assign", json={"reader_id": busy.id}, headers=admin.h))
    sign_in(web, admin.email)
    page = web.get("/admin/console/orders").text
    assert f'id="order-{second["id"]}"' in page and "Least loaded" in page
    r = web.post(f"/admin/console/orders/{second['id']}/assign",
                 data={"_csrf": csrf(web, "/admin/console/orders"), "reader": "least_loaded"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select assigned_reader::text from orders where id = %s", (second["id"],)) == [(free.id,)]


def test_runbooks_render_as_safe_html(web: TestClient, admin: User) -> None:
    sign_in(web, admin.email)
    page = web.get("/admin/console/ops/runbooks/evil").text
    article = page[page.index('<article class="runbook'):page.index("</article>")]
    assert "<script>" not in article and "&lt;script&gt;alert(1)&lt;/script&gt;" in article
    assert "<b>" not in article and 'href="javascript:' not in article
    assert 'href="/admin/console/ops/runbooks/incident-sev1"' in article  # the API's paths become the console's
    assert web.get("/admin/console/ops/runbooks/..%2Fetc").status_code == 404


def test_an_incident_declared_acknowledged_and_resolved_on_the_page(web: TestClient, api: Api, admin: User) -> None:
    sign_in(web, admin.email)
    token = csrf(web, "/admin/console/ops")
    r = web.post("/admin/console/ops/incidents", data={"_csrf": token, "title": "Payments slow", "severity": "SEV2"},
                 follow_redirects=False)
    assert r.status_code == 303
    page = r.headers["location"].split("?")[0]
    (incident_id,) = api.sql("select id from incidents where title = 'Payments slow'")[0]
    assert page == f"/admin/console/ops/incidents/{incident_id}"
    assert "incident-sev2" in web.get(page).text
    r = web.post(f"{page}/status", data={"_csrf": token, "status": "resolved", "note": "Fixed the pool"},
                 follow_redirects=False)
    assert r.status_code == 303
    timeline = web.get(page).text
    assert "Fixed the pool" in timeline and "Declared" in timeline
    assert api.sql("select status from incidents where id = %s", (incident_id,)) == [("resolved",)]


def test_attestations_are_made_and_downloaded_from_the_audit_page(web: TestClient, api: Api, admin: User) -> None:
    sign_in(web, admin.email)
    r = web.post("/admin/console/audit/attest", data={"_csrf": csrf(web, "/admin/console/audit")},
                 follow_redirects=False)
    assert r.status_code == 303
    (att_id, rows) = api.sql("select id, rows from audit_attestations order by id desc limit 1")[0]
    page = web.get("/admin/console/audit").text
    assert f"samia audit verify --export audit-attestation-{att_id}.jsonl" in page
    export = web.get(f"/admin/console/audit/attestations/{att_id}/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert len(export.content.splitlines()) == rows
    filtered = web.get("/admin/console/audit", params={"event": "audit.*"}).text
    assert "audit.attested" in filtered and "service.update" not in filtered


def test_the_owner_page_is_the_superadmins_alone(web: TestClient, api: Api, admin: User) -> None:
    owner = api.user("superadmin")
    sign_in(web, admin.email)
    assert web.get("/admin/console/super").status_code == 403
    assert 'href="/admin/console/super"' not in web.get("/admin").text
    victim = api.user("client")
    assert web.get(f"/admin/console/super/users/{victim.id}/delete").status_code == 403
    sign_in(web, owner.email)
    token = csrf(web, "/admin/console/super")
    r = web.post("/admin/console/super/admins", data={
        "_csrf": token, "first_name": "Rana", "last_name": "Admin", "email": "rana.admin@example.com",
        "password": "a-long-enough-password", "dob": "1988-02-03", "role": "admin"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select r.code from profiles p join roles r on r.id = p.role_id "
                   "where p.email = 'rana.admin@example.com'") == [("admin",)]
    r = web.post("/admin/console/super/secrets/rotate", data={"_csrf": token})
    assert r.status_code == 422 and 'href="#f-confirm"' in r.text
    r = web.post("/admin/console/super/secrets/rotate", data={"_csrf": token, "confirm": "yes"},
                 follow_redirects=False)
    assert r.status_code == 303
    assert api.sql("select count(*) from audit_log where event = 'secrets.rotated' and actor = %s",
                   (owner.id,)) == [(1,)]
    path = f"/admin/console/super/users/{victim.id}/delete"
    assert web.post(path, data={"_csrf": token}).status_code == 422
    assert api.sql("select deleted_at is null from profiles where id = %s", (victim.id,)) == [(True,)]
    assert web.post(path, data={"_csrf": token, "confirm": "yes"}, follow_redirects=False).status_code == 303
    assert api.sql("select deleted_at is not null, email is null from profiles where id = %s",
                   (victim.id,)) == [(True, True)]


def deck_zip(codes: list[str], *, broken: str | None = None, drop: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for code in codes:
            if code == drop:
                continue
            z.writestr(f"{code}.png", b"not an image at all" if code == broken else PNG + code.encode())
    return buf.getvalue()


def test_deck_art_is_replaced_all_or_nothing(web: TestClient, api: Api, admin: User, settings: Settings) -> None:
    codes = [c for (c,) in api.sql("select code from deck_cards where deck_code = 'rider_waite' order by id")]
    assert len(codes) == 79 and "back" in codes
    sign_in(web, admin.email)
    token = csrf(web, "/admin/console/decks")
    path = "/admin/console/decks/rider_waite/art"

    def post(data: bytes) -> Any:
        return web.post(path, data={"_csrf": token}, files={"zip": ("deck.zip", data, "application/zip")},
                        follow_redirects=False)

    r = post(deck_zip(codes))
    assert r.status_code == 303
    art = api.sql("select code, art_media_id from deck_cards where deck_code = 'rider_waite' order by id")
    assert all(m is not None for _, m in art) and len({m for _, m in art}) == 79
    stored = sorted((settings.data_dir / "storage").rglob("*"))
    # a bad zip: one entry is not an image, or the back is missing, or it is no zip at all
    for bad in (deck_zip(codes, broken=codes[1]), deck_zip(codes, drop="back"), b"PK not really"):
        r = post(bad)
        assert r.status_code == 422 and 'class="error-summary"' in r.text, r.status_code
        assert api.sql("select code, art_media_id from deck_cards where deck_code = 'rider_waite' "
                       "order by id") == art
        assert sorted((settings.data_dir / "storage").rglob("*")) == stored  # no file left behind
    # switched off: refused, the art stays
    api.sql("update feature_flags set enabled = false where key = 'uploads.deckBulk'")
    try:
        assert "uploads.deckBulk" in web.get("/admin/console/decks").text
        assert post(deck_zip(codes)).status_code == 409
        assert api.sql("select code, art_media_id from deck_cards where deck_code = 'rider_waite' "
                       "order by id") == art
    finally:
        api.sql("update feature_flags set enabled = true where key = 'uploads.deckBulk'")
    assert api.sql("select meta->>'cards' from audit_log where event = 'deck.art_replaced'") == [("79",)]
