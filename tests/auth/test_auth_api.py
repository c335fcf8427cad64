"""Sign-up, login, refresh rotation, logout, email verification and token validation."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import jwt
from fastapi.testclient import TestClient

from samia.app import create_app
from samia.notifications.outbox import dispatch_pending
from tests.conftest import make_settings
from tests.helpers import PASSWORD, problem


def signup_body(**kw: object) -> dict[str, object]:
    body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery",
            "dob": "1995-02-03", "country": "Lebanon", "first_name": "Layla", "last_name": "Haddad"}
    body.update(kw)
    return body


def test_signup_creates_client_with_derived_fields(client, api) -> None:
    body = signup_body()
    r = client.post("/auth/signup", json=body)
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    row = api.sql("select zodiac, country_code, r.code, email_verified from profiles p "
                  "join roles r on r.id = p.role_id where p.id = %s", (uid,))
    assert row == [("Aquarius", "LB", "client", False)]
    # the password is stored as an argon2id hash, nowhere in clear
    (stored,) = api.sql("select password_hash from app_auth.credentials where user_id = %s", (uid,))[0]
    assert stored.startswith("$argon2id$") and body["password"] not in stored
    assert api.audit_rows("user.create", uid)[0][5] == {"role": "client"}


def test_under_18_is_refused_and_nothing_is_written(client, api) -> None:
    seventeen = dt.date.today().replace(year=dt.date.today().year - 17)
    body = signup_body(dob=seventeen.isoformat())
    b = problem(client.post("/auth/signup", json=body), 422, "under_age")
    assert b["errors"][0]["loc"] == ["body", "dob"]
    assert api.sql("select count(*) from profiles where email = %s", (body["email"],)) == [(0,)]


def test_under_18_is_refused_by_the_database_too(api) -> None:
    import psycopg
    import pytest
    with pytest.raises(psycopg.errors.CheckViolation):
        api.sql("insert into profiles (email, dob) values ('kid@example.com', current_date - 365 * 10)")


def test_duplicate_email_and_unknown_country(client) -> None:
    body = signup_body()
    assert client.post("/auth/signup", json=body).status_code == 201
    problem(client.post("/auth/signup", json={**body, "email": body["email"].upper()}), 409, "email_taken")
    b = problem(client.post("/auth/signup", json=signup_body(country="Atlantis")), 422, "unknown_country")
    assert b["errors"][0]["loc"] == ["body", "country"]


def test_email_verification_link(client, api, app, mailer) -> None:
    body = signup_body()
    uid = client.post("/auth/signup", json=body).json()["id"]
    import anyio
    anyio.run(dispatch_pending, app.state.platform)
    msg = next(m for m in mailer.sent if m["To"] == body["email"])
    token = re.search(r"token=(\S+)", msg.get_content()).group(1)  # type: ignore[union-attr]
    assert api.sql("select params from notification_outbox where recipient_id = %s", (uid,))[0][0].keys() \
        == {"issued_at"}, "the outbox row must not hold the link"
    r = client.get("/auth/verify-email", params={"token": token})
    assert r.status_code == 200 and r.json()["status"] == "verified"
    assert api.sql("select email_verified from profiles where id = %s", (uid,)) == [(True,)]
    problem(client.post("/auth/verify-email", json={"token": token[:-4] + "abcd"}), 400, "invalid_token")


def test_login_refresh_rotation_and_reuse_detection(client, api) -> None:
    u = api.user("client")
    problem(client.post("/auth/login", json={"email": u.email, "password": "wrong-password!"}), 401,
            "invalid_credentials")
    assert api.audit_rows("auth.login_failed", u.id), "failed login is audited"
    problem(client.post("/auth/login", json={"email": "nobody@example.com", "password": "whatever-123"}), 401,
            "invalid_credentials")

    r = client.post("/auth/refresh", json={"refresh_token": u.refresh})
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["refresh_token"] != u.refresh
    assert client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}"}).status_code == 200
    # presenting the old refresh token again: reuse → the whole session is revoked
    problem(client.post("/auth/refresh", json={"refresh_token": u.refresh}), 401, "invalid_token")
    problem(client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
    problem(client.get("/me", headers={"Authorization": f"Bearer {pair['access_token']}"}), 401,
            "session_revoked")


def test_logout_revokes_access_token_at_once(client, api) -> None:
    u = api.user("client")
    assert client.get("/me", headers=u.h).status_code == 200
    assert client.post("/auth/logout", headers=u.h).status_code == 204
    problem(client.get("/me", headers=u.h), 401, "session_revoked")
    problem(client.post("/auth/refresh", json={"refresh_token": u.refresh}), 401, "invalid_token")


def test_bad_tokens_are_refused(client, api, settings) -> None:
    u = api.user("client")
    claims = jwt.decode(u.access, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, settings.jwt_key, algorithm="HS256")
    forged = jwt.encode(claims, "not-the-key-not-the-key-not-the-key!", algorithm="HS256")
    header = '{"alg":"none","typ":"JWT"}'
    import base64
    import json
    def b64(s: str) -> str:
        return base64.urlsafe_b64encode(s.encode()).rstrip(b"=").decode()
    alg_none = f"{b64(header)}.{b64(json.dumps(claims))}."
    service_role = jwt.encode({**claims, "role": "service_role"}, settings.jwt_key, algorithm="HS256")
    for token in (expired, forged, alg_none, service_role, "garbage", u.access + "x"):
        problem(client.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token")
    problem(client.get("/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token")
    problem(client.get("/me"), 401, "unauthenticated")


def test_supabase_signed_tokens_are_accepted(dsns, api) -> None:
    secret = "supabase-jwt-secret-for-tests-0123456789"
    app = create_app(make_settings(SUPABASE_JWT_SECRET=secret), dsns=dsns)
    u = api.user("client")
    now = int(time.time())
    token = jwt.encode({"sub": u.id, "aud": "authenticated", "role": "authenticated", "exp": now + 300,
                        "iat": now, "iss": "https://project.supabase.co/auth/v1",
                        "session_id": str(uuid.uuid4())}, secret, algorithm="HS256")
    with TestClient(app) as c:
        r = c.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["id"] == u.id
        wrong = jwt.encode({"sub": u.id, "aud": "authenticated", "role": "authenticated", "exp": now + 300},
                           secret + "x", algorithm="HS256")
        assert c.get("/me", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401


def test_password_is_rehashed_when_parameters_change(dsns, api) -> None:
    u = api.user("client")
    (before,) = api.sql("select password_hash from app_auth.credentials where user_id = %s", (u.id,))[0]
    app = create_app(make_settings(ARGON2_MEMORY_KIB=2048), dsns=dsns)
    with TestClient(app) as c:
        assert c.post("/auth/login", json={"email": u.email, "password": PASSWORD}).status_code == 200
    (after,) = api.sql("select password_hash from app_auth.credentials where user_id = %s", (u.id,))[0]
    assert after != before and "m=2048" in after


def test_login_attempts_are_limited_per_address(client, api) -> None:
    u = api.user("client")
    api.sql("update rate_limits set limit_count = 3 where name = 'login'")
    api.sql("delete from app_private.rate_buckets where bucket like 'login:%'")
    try:
        codes = [client.post("/auth/login", json={"email": u.email, "password": "wrong-password!"}).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 401]
        r = client.post("/auth/login", json={"email": u.email, "password": PASSWORD})
        problem(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) > 0
    finally:
        api.sql("update rate_limits set limit_count = 100000 where name = 'login'")
        api.sql("delete from app_private.rate_buckets where bucket like 'login:%'")


def test_a_cached_token_still_expires(client, api, settings) -> None:
    u = api.user("client")
    claims = jwt.decode(u.access, options={"verify_signature": False})
    nearly = jwt.encode({**claims, "exp": int(time.time()) - 4}, settings.jwt_key, algorithm="HS256")
    assert client.get("/me", headers={"Authorization": f"Bearer {nearly}"}).status_code == 200  # in leeway
    time.sleep(2.1)
    problem(client.get("/me", headers={"Authorization": f"Bearer {nearly}"}), 401, "invalid_token")
