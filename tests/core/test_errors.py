"""Bad input gets a clear RFC 9457 problem body with the right 4xx, and writes nothing."""

from __future__ import annotations

import uuid

from tests.helpers import problem


def test_malformed_json_wrong_types_unknown_fields(client, api) -> None:
    problem(client.post("/auth/signup", content=b'{"email": ', headers={"content-type": "application/json"}),
            400, "malformed_json")
    b = problem(client.post("/auth/signup", json={"email": "x@example.com", "password": 12, "dob": "yesterday",
                                                   "country": "LB", "first_name": "a", "last_name": "b"}),
                422, "validation_error")
    locs = {tuple(e["loc"]) for e in b["errors"]}
    assert ("body", "password") in locs and ("body", "dob") in locs
    email = f"u-{uuid.uuid4().hex[:6]}@example.com"
    b = problem(client.post("/auth/signup", json={"email": email, "password": "correct horse battery",
                                                   "dob": "1990-01-01", "country": "LB", "first_name": "a",
                                                   "last_name": "b", "role": "superadmin"}), 422)
    assert ["body", "role"] in [e["loc"] for e in b["errors"]]
    assert api.sql("select count(*) from profiles where email = %s", (email,)) == [(0,)]


def test_oversized_body_is_413(client) -> None:
    problem(client.post("/auth/signup", content=b"{" + b" " * 2_000_000 + b"}",
                        headers={"content-type": "application/json"}), 413, "body_too_large")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 65536
    problem(client.post("/auth/login", content=chunks(), headers={"content-type": "application/json"}),
            413, "body_too_large")


def test_not_found_method_and_bad_ids(client, api) -> None:
    problem(client.get("/no/such/route"), 404, "not_found")
    problem(client.put("/me"), 405, "method_not_allowed")
    admin = api.user("admin")
    problem(client.patch("/admin/users/not-a-uuid", json={}, headers=admin.h), 422, "validation_error")
    problem(client.patch(f"/admin/users/{uuid.uuid4()}", json={"first_name": "x"}, headers=admin.h), 404)


def test_arabic_titles(client) -> None:
    r = client.get("/me", headers={"Accept-Language": "ar"})
    assert problem(r, 401)["title"] == "يجب تسجيل الدخول"


def test_request_id_is_echoed(client) -> None:
    r = client.get("/me", headers={"X-Request-ID": "req-abcdef123"})
    assert r.headers["x-request-id"] == "req-abcdef123" and r.json()["request_id"] == "req-abcdef123"


def test_text_postgres_cannot_store_is_a_422_not_a_500(client, api) -> None:
    """Found by the schemathesis run: NUL and lone surrogates used to reach the database."""
    admin = api.user("admin")
    json_h = {**admin.h, "content-type": "application/json"}
    for bad in (b"a\\u0000b", b"\\ud93a"):
        r = client.patch(f"/admin/users/{admin.id}", content=b'{"first_name": "' + bad + b'"}', headers=json_h)
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "first_name"]
    raw = b'{"first_name": "\\ud93a"}'
    problem(client.patch("/me", content=raw, headers={**admin.h, "content-type": "application/json"}), 422)
    r = client.post("/api/ops/rate_limits", content=b'{"rate_\\ud93a": 1}',
                    headers={**admin.h, "content-type": "application/json"})
    problem(r, 422)


def test_birth_time_is_local_wall_clock_time(client, api) -> None:
    u = api.user("client")
    problem(client.patch("/me", json={"birth_time": "19:38:17Z"}, headers=u.h), 422)
    r = client.patch("/me", json={"birth_time": "19:38", "birth_tz": "Asia/Beirut"}, headers=u.h)
    assert r.json()["birth_time"] == "19:38:00"


def test_percent_signs_and_astral_characters_are_plain_data(client, api) -> None:
    """Found by the schemathesis run: a '%' in a name was read as a query placeholder."""
    u = api.user("client")
    name = "50% \U00052241 ٪ %s %(x)s"
    r = client.patch("/me", json={"first_name": name}, headers=u.h)
    assert r.status_code == 200, r.text
    assert r.json()["first_name"] == name
