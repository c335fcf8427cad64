"""Legal documents (M38): versions in English and Arabic, a material new version blocks
ordering, booking and paying until it is accepted (the API answers 403 `terms_not_accepted`
and the database refuses it too), acceptance recorded with version, time, address and browser;
country disclosures from data; cookie choices and what analytics may read."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ..helpers import ok, problem
from .conftest import IP, reader_offering, slot


def as_service(api, query: str, params: object) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """As the analytics pipeline reads it: a job's service_role."""
    with psycopg.connect(api.owner_dsn) as conn:
        conn.execute("select set_config('role', 'service_role', true)")
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def admin(api):  # type: ignore[no-untyped-def]
    return api.user("admin")


def test_documents_come_in_the_callers_language(client) -> None:
    en = ok(client.get("/legal/terms"))
    ar = ok(client.get("/legal/terms", headers={"Accept-Language": "ar"}))
    assert en["version"] == ar["version"] == 1 and en["lang"] == "en" and ar["lang"] == "ar"
    assert "18 years" in en["body"] and en["title"] == "Terms of service"
    assert "شروط" in ar["title"] and "١٨" in ar["body"]
    assert ok(client.get("/legal/privacy?lang=ar"))["lang"] == "ar"
    problem(client.get("/legal/cookies"), 422)


def test_disclosures_follow_the_country(client, api) -> None:
    gb = {d["code"] for d in ok(client.get("/legal/disclosures?country=GB"))}
    lb = {d["code"] for d in ok(client.get("/legal/disclosures?country=LB"))}
    assert gb == {"entertainment", "no_professional_advice"} and lb == {"no_professional_advice"}
    # a signed-in user gets their own country's; Arabic on request
    british = api.user("client", country="GB")
    mine = ok(client.get("/legal/disclosures", headers={**british.h, "Accept-Language": "ar"}))
    assert {d["code"] for d in mine} == {"entertainment", "no_professional_advice"}
    assert "الترفيه" in next(d["text"] for d in mine if d["code"] == "entertainment")


def test_publishing_material_terms_blocks_ordering_until_accepted(client, api, admin) -> None:
    reader = reader_offering(api, client, "tarot")
    user = api.user("client")
    ok(client.post("/orders", json={"service": "tarot", "question": "before"}, headers=user.h), 201)
    body = {"material": True, "body_en": "Samia Tarot terms, version two: " + "x" * 40,
            "body_ar": "شروط سامية تاروت، النسخة الثانية: " + "س" * 40, "summary_en": "Refunds changed.",
            "summary_ar": "تغيّرت سياسة الاسترداد."}
    problem(client.post("/admin/legal/terms/versions", json=body, headers=api.user("monitor").h), 403)
    v2 = ok(client.post("/admin/legal/terms/versions", json=body, headers=admin.h), 201)
    assert (v2["doc"], v2["version"], v2["material"]) == ("terms", 2, True)
    assert api.audit_rows("legal.published", "terms")[-1][5] == {"version": 2, "material": True,
                                                                 "version_id": v2["id"]}
    assert ok(client.get("/legal/terms"))["summary"] == "Refunds changed."
    # ordering, booking and paying now wait for the user's acceptance
    assert ok(client.get("/me/legal", headers=user.h))["outstanding"] == ["terms"]
    problem(client.post("/orders", json={"service": "tarot", "question": "after"}, headers=user.h), 403,
            "terms_not_accepted")
    problem(client.post("/bookings/hold", json={"reader_id": reader.id, "service": "tarot", "starts_at": slot()},
                        headers=user.h), 403, "terms_not_accepted")
    problem(client.post("/wallet/topups", json={"amount_minor": 500, "card_token": "tok_visa"}, headers=user.h),
            403, "terms_not_accepted")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
        api.sql_as(user.id, "insert into orders (user_id, service_id) select auth.uid(), id from services "
                            "where code = 'tarot'")
    assert e.value.diag.message_hint == "terms_not_accepted"
    # reading and exporting their data still work
    assert ok(client.get("/me", headers=user.h))["id"] == user.id
    ok(client.post("/me/data-requests", json={"kind": "export"}, headers=user.h), 201)
    # the old version cannot be accepted any more; the current one can, once
    problem(client.post("/legal/terms/accept", json={"version": 1}, headers=user.h), 409, "stale_version")
    agent = {"User-Agent": "Mozilla/5.0 (privacy-test)"}
    status = ok(client.post("/legal/terms/accept", json={"version": 2}, headers={**user.h, **agent}))
    assert status["outstanding"] == []
    ok(client.post("/legal/terms/accept", json={"version": 2}, headers={**user.h, **agent}))
    rows = api.sql("select v.doc, v.version, host(a.ip), a.user_agent, a.source, a.accepted_at > now() - "
                   "interval '1 minute' from legal_acceptances a join legal_versions v on v.id = a.version_id "
                   "where a.user_id = %s and v.version = 2", (user.id,))
    assert rows == [("terms", 2, IP, "Mozilla/5.0 (privacy-test)", "api", True)]
    assert [r[5] for r in api.audit_rows("legal.accepted", "terms") if r[0] == user.id] == [
        {"version": 2, "version_id": v2["id"]}]
    ok(client.post("/orders", json={"service": "tarot", "question": "accepted"}, headers=user.h), 201)


def test_a_non_material_version_keeps_earlier_acceptances(client, api, admin) -> None:
    user = api.user("client")  # accepted the current versions when created
    ok(client.post("/admin/legal/privacy/versions", headers=admin.h,
                   json={"material": False, "body_en": "Privacy policy with a new contact address " + "y" * 20,
                         "body_ar": "سياسة الخصوصية مع عنوان تواصل جديد " + "ي" * 20}), 201)
    assert ok(client.get("/me/legal", headers=user.h))["outstanding"] == []
    ok(client.post("/orders", json={"service": "tarot", "question": "still fine"}, headers=user.h), 201)


def test_published_versions_never_change(api) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql("update legal_versions set body_en = body_en || ' (edited)' where doc = 'terms'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.sql("delete from legal_versions where doc = 'privacy'")


def test_cookie_choices_for_visitors_and_users_and_what_analytics_reads(client, api) -> None:
    visitor = str(uuid.uuid4())
    assert ok(client.get(f"/consent?visitor_id={visitor}")) == {
        "necessary": True, "analytics": False, "marketing": False, "decided_at": None, "visitor_id": visitor}
    problem(client.put("/consent", json={"analytics": True, "marketing": True}), 422)  # anonymous needs an id
    problem(client.put("/consent", json={"visitor_id": visitor, "necessary": False, "analytics": False,
                                         "marketing": False}), 422)
    chosen = ok(client.put("/consent", json={"visitor_id": visitor, "analytics": False, "marketing": True}))
    assert (chosen["analytics"], chosen["marketing"], chosen["decided_at"] is not None) == (False, True, True)
    allowed = "select app.analytics_allowed(%s::uuid, %s::uuid, %s)"
    assert [api.sql_as(None, allowed, (None, visitor, p))[0][0] for p in ("necessary", "analytics", "marketing")] \
        == [True, False, True]
    assert api.sql_as(None, allowed, (None, str(uuid.uuid4()), "analytics")) == [(False,)]  # no choice: no
    # a signed-in user's own choice wins over the device's, and is theirs alone to read
    user, other = api.user("client"), api.user("client")
    ok(client.put("/consent", json={"visitor_id": visitor, "analytics": True, "marketing": False}, headers=user.h))
    assert ok(client.get("/consent", headers=user.h))["analytics"] is True
    assert as_service(api, "select app.analytics_allowed(%s, null, 'analytics')", (user.id,)) == [(True,)]
    assert api.sql_as(other.id, "select count(*) from app.consent_for(%s, null)", (user.id,)) == [(0,)]
    assert api.sql_as(other.id, "select count(*) from cookie_consents") == [(0,)]
    ok(client.put("/consent", json={"analytics": False, "marketing": False}, headers=user.h))
    assert as_service(api, "select app.analytics_allowed(%s, null, 'analytics')", (user.id,)) == [(False,)]
    assert api.sql("select count(*) from cookie_consents where user_id = %s", (user.id,)) == [(2,)]
