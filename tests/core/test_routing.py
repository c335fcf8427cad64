"""The first-segment index in front of the feature routers (core/routing.py) changes how fast
a route is found, never which: every declared route, a wrong method and an unknown path match
exactly as they do without it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Match

from samia import db
from samia.app import create_app
from samia.core.access import api_routes
from samia.core.routing import first_segment

from ..conftest import make_settings

SAMPLE = {"reader_id": "6f1c2f4e-0000-4000-8000-000000000001", "code": "tarot"}


def _app(indexed: bool) -> Any:
    settings = make_settings()
    app = create_app(settings, dsns=db.Dsns(owner="host=/nonexistent", app="host=/nonexistent"))
    if not indexed:  # drop the index: each router's own matching again
        for route in app.router.routes:
            route.__dict__.pop("matches", None)
    return app


def _first_full(app: Any, method: str, path: str) -> tuple[int | None, Match]:
    """Which top-level route (by position: the two apps are built alike) takes the request."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    partial = None
    for i, route in enumerate(app.router.routes):
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return i, match
        if match == Match.PARTIAL and partial is None:
            partial = i
    return partial, Match.PARTIAL if partial is not None else Match.NONE


@pytest.fixture(scope="module")
def apps() -> tuple[Any, Any]:
    return _app(True), _app(False)


def test_most_routers_are_indexed(apps) -> None:
    indexed, _ = apps
    assert sum(1 for r in indexed.router.routes if "matches" in r.__dict__) >= 20


def test_every_route_matches_as_before(apps) -> None:
    indexed, plain = apps
    checked = 0
    for route in api_routes(plain.routes):
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE.get(m.group(1), "1"), route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert _first_full(indexed, method, path) == _first_full(plain, method, path), (method, path)
            checked += 1
        assert _first_full(indexed, "PURGE", path) == _first_full(plain, "PURGE", path), path  # 405: PARTIAL
    assert checked > 200
    for path in ("/no-such-thing", "/readers/x/y/z", "/", "/static/theme.css", "/docs", "/openapi.json"):
        assert _first_full(indexed, "GET", path) == _first_full(plain, "GET", path), path


def test_answers_through_the_app_are_unchanged(client) -> None:
    assert client.get("/api/ops/live").status_code == 200
    assert client.get("/services").status_code == 200
    missing = client.get("/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.request("PURGE", "/services").status_code == 405


def test_first_segment() -> None:
    assert first_segment("/readers/{reader_id}") == "readers"
    assert first_segment("/") == ""
    assert first_segment("/{anything}/x") is None
