"""Role management with the M45 guardrails: refused attempts answer 403 and are audited;
allowed changes are audited with before/after."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import problem


def new_user_body(role: str) -> dict[str, object]:
    return {"email": f"staff-{uuid.uuid4().hex[:8]}@example.com", "password": "a-long-staff-password",
            "role": role, "first_name": "Staff", "last_name": "Member", "dob": "1988-08-08", "country": "EG"}


def test_admin_cannot_create_a_superadmin_and_the_attempt_is_audited(client, api) -> None:
    admin = api.user("admin")
    body = new_user_body("superadmin")
    problem(client.post("/admin/users", json=body, headers=admin.h), 403, "superadmin_reserved")
    assert api.sql("select count(*) from profiles where email = %s", (body["email"],)) == [(0,)]
    rows = [r for r in api.audit_rows("access.denied") if r[0] == admin.id]
    assert rows and rows[-1][1] == "admin" and rows[-1][5]["reason"] == "superadmin_reserved"
    assert rows[-1][5]["route"] == "/admin/users"


def test_admin_creates_staff_who_can_log_in(client, api) -> None:
    admin = api.user("admin")
    body = new_user_body("reader")
    r = client.post("/admin/users", json=body, headers=admin.h)
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "reader" and r.json()["country_code"] == "EG"
    created = [row for row in api.audit_rows("user.create", r.json()["id"])]
    assert created[0][0] == admin.id and created[0][5] == {"role": "reader"}
    assert api.login(body["email"], body["password"])["access_token"]  # type: ignore[arg-type]


def test_admin_cannot_promote_to_superadmin_or_touch_one(client, api) -> None:
    admin, target, boss = api.user("admin"), api.user("client"), api.user("superadmin")
    problem(client.patch(f"/admin/users/{target.id}", json={"role": "superadmin"}, headers=admin.h), 403,
            "superadmin_reserved")
    problem(client.patch(f"/admin/users/{boss.id}", json={"role": "client"}, headers=admin.h), 403,
            "superadmin_reserved")
    assert api.sql("select role_id from profiles where id in (%s, %s) order by role_id",
                   (target.id, boss.id)) == [(1,), (5,)]
    reasons = [r[5]["reason"] for r in api.audit_rows("access.denied") if r[0] == admin.id]
    assert reasons.count("superadmin_reserved") == 2


def test_role_change_is_logged_with_before_and_after(client, api) -> None:
    admin, target = api.user("admin"), api.user("client")
    r = client.patch(f"/admin/users/{target.id}", json={"role": "reader"}, headers=admin.h)
    assert r.status_code == 200 and r.json()["role"] == "reader"
    (actor, role, _e, entity, entity_id, meta), = api.audit_rows("user.role_change", target.id)
    assert (actor, role, entity, entity_id) == (admin.id, "admin", "profile", target.id)
    assert meta == {"before": "client", "after": "reader"}
    # the demotion takes effect on the target's very next request, same token
    assert client.get("/me", headers=target.h).json()["role"] == "reader"


def test_delete_is_superadmin_only(client, api) -> None:
    admin, boss, target = api.user("admin"), api.user("superadmin"), api.user("client")
    problem(client.delete(f"/admin/users/{target.id}", headers=admin.h), 403, "forbidden")
    denied = [r for r in api.audit_rows("access.denied") if r[0] == admin.id]
    assert denied[-1][5]["route"] == "/admin/users/{user_id}" and denied[-1][5]["method"] == "DELETE"
    assert client.get("/me", headers=target.h).status_code == 200

    assert client.delete(f"/admin/users/{target.id}", headers=boss.h).status_code == 204
    (actor, role, *_), = api.audit_rows("user.delete", target.id)
    assert (actor, role) == (boss.id, "superadmin")
    assert api.sql("select email, first_name, dob, deleted_at is not null from profiles where id = %s",
                   (target.id,)) == [(None, None, None, True)]
    problem(client.get("/me", headers=target.h), 401, "session_revoked")
    problem(client.delete(f"/admin/users/{target.id}", headers=boss.h), 404, "not_found")


def test_database_refuses_admin_delete_even_bypassing_the_api(api) -> None:
    admin, target = api.user("admin"), api.user("client")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the superadmin may delete"):
        api.sql_as(admin.id, "update profiles set deleted_at = now() where id = %s", (target.id,))


def test_self_service_cannot_touch_protected_fields(client, api) -> None:
    c = api.user("client")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only be changed by an admin"):
        api.sql_as(c.id, "update profiles set role_id = 2 where id = %s", (c.id,))
    problem(client.patch("/me", json={"role": "admin"}, headers=c.h), 422, "validation_error")
    r = client.patch("/me", json={"first_name": "Nour", "birth_time": "14:30:00", "dob": "1990-05-15"},
                     headers=c.h)
    assert r.status_code == 200 and r.json()["first_name"] == "Nour" and r.json()["zodiac"] == "Taurus"


def test_last_superadmin_cannot_be_demoted(client, api) -> None:
    api.sql("update profiles set role_id = 2 where role_id = 1")
    boss = api.user("superadmin")
    problem(client.patch(f"/admin/users/{boss.id}", json={"role": "admin"}, headers=boss.h), 403,
            "last_superadmin")


def test_listing_is_for_staff_and_paginates(client, api) -> None:
    monitor = api.user("monitor")
    for _ in range(3):
        api.user("reader")
    page = client.get("/admin/users", params={"role": "reader", "limit": 2}, headers=monitor.h).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get("/admin/users", params={"role": "reader", "limit": 200, "after": page["next_cursor"]},
                      headers=monitor.h).json()
    ids = [i["id"] for i in page["items"]] + [i["id"] for i in rest["items"]]
    assert len(ids) == len(set(ids)) >= 3 and all(i["role"] == "reader" for i in rest["items"])
    problem(client.get("/admin/users", headers=api.user("reader").h), 403, "forbidden")
    problem(client.patch(f"/admin/users/{monitor.id}", json={"first_name": "x"}, headers=monitor.h), 403)


def test_profile_updates_are_audited_by_field_name_only(client, api) -> None:
    c = api.user("client")
    assert client.patch("/me", json={"first_name": "Rania", "birth_place": "Tyre"}, headers=c.h).status_code == 200
    (actor, role, _e, _ent, _id, meta), = api.audit_rows("profile.update", c.id)
    assert (actor, role) == (c.id, "client")
    assert meta == {"fields": ["birth_place", "first_name"]}
    assert "Rania" not in str(api.sql("select meta from audit_log where entity_id = %s", (c.id,)))
