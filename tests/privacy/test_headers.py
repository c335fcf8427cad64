"""Edge headers (seeds 004): a CORS allowlist with credentials for listed origins only, security
headers on every API response (errors included), HSTS over HTTPS, and the redirect to HTTPS
behind a proxy when a setting asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from samia.app import create_app

from ..conftest import make_settings

SHOP = "https://shop.samia-tarot.example.com"
EVIL = "https://evil.example.net"


@pytest.fixture(scope="module")
def edge(dsns) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(CORS_ORIGINS=f"{SHOP}, https://admin.samia-tarot.example.com/", TRUST_PROXY_HEADERS="true")
    with TestClient(create_app(settings, dsns=dsns), raise_server_exceptions=False) as c:
        yield c


def test_a_disallowed_origin_gets_no_grant_and_a_listed_one_gets_credentials(edge) -> None:
    r = edge.get("/legal/terms", headers={"Origin": EVIL})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    pre = edge.options("/orders", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-credentials" not in pre.headers
    r = edge.get("/legal/terms", headers={"Origin": SHOP})
    assert r.headers["access-control-allow-origin"] == SHOP and r.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in r.headers["vary"] and "X-Request-Id" in r.headers["access-control-expose-headers"]
    pre = edge.options("/orders", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                                           "Access-Control-Request-Headers": "authorization, idempotency-key"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == SHOP
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert "idempotency-key" in pre.headers["access-control-allow-headers"].lower()
    # the trailing slash in the setting is not part of an origin
    r = edge.get("/legal/terms", headers={"Origin": "https://admin.samia-tarot.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://admin.samia-tarot.example.com"


def test_without_an_allowlist_nobody_gets_a_grant(client) -> None:
    r = client.get("/legal/terms", headers={"Origin": SHOP})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/legal/terms", 200), ("GET", "/me", 401),
                                                         ("GET", "/no/such/route", 404), ("POST", "/orders", 401)])
def test_security_headers_are_on_every_api_response(edge, method: str, path: str, status: int) -> None:
    r = edge.request(method, path)
    assert r.status_code == status
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "strict-transport-security" not in r.headers  # plain HTTP


def test_hsts_is_sent_over_https_only(edge) -> None:
    r = edge.get("/api/ops/live", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in edge.get("/api/ops/live").headers


def test_the_openapi_explorer_keeps_a_policy_it_can_run_under(edge) -> None:
    csp = edge.get("/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp


def test_a_route_that_sets_its_own_policy_keeps_it(dsns) -> None:  # type: ignore[no-untyped-def]
    from fastapi import Response

    app = create_app(make_settings(), dsns=dsns)

    @app.get("/page-like")
    async def page() -> Response:
        return Response("<p>hi</p>", media_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                                 "Referrer-Policy": "strict-origin-when-cross-origin"})

    with TestClient(app) as c:
        r = c.get("/page-like")
    assert r.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_plain_http_is_redirected_to_https_behind_a_proxy_when_asked(dsns) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(HTTPS_REDIRECT="true", TRUST_PROXY_HEADERS="true")
    with TestClient(create_app(settings, dsns=dsns), raise_server_exceptions=False) as c:
        r = c.get("/legal/terms?lang=ar", headers={"X-Forwarded-Proto": "http", "Host": "api.samia-tarot.example.com"},
                  follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"] == "https://api.samia-tarot.example.com/legal/terms?lang=ar"
        assert c.get("/legal/terms", headers={"X-Forwarded-Proto": "https"}).status_code == 200
        assert c.get("/api/ops/live", headers={"X-Forwarded-Proto": "http"}).status_code == 200  # health probes


def test_a_wildcard_origin_is_refused_in_production_and_never_carries_credentials(dsns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        make_settings(SAMIA_ENV="prod", CORS_ORIGINS="*")
    with TestClient(create_app(make_settings(CORS_ORIGINS="*"), dsns=dsns)) as c:
        r = c.get("/legal/terms", headers={"Origin": EVIL})
    assert r.headers["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in r.headers
