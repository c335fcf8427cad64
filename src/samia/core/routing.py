"""Route matching that skips a whole feature router when no route of it can match the
request path's first segment.

FastAPI 0.165 matches a request by asking every included router in turn, each walking all of
its routes (and the one that matches walks them again to dispatch). With ~240 routes, a route
mounted late, or a 404, costs about 2 ms of CPU per request on the bench machine, more than
the rest of a simple read (bench/ab.py, README "Performance"). Every feature router is mounted
without a prefix, so the first segments its routes can match are known at startup: a router
that cannot match answers "no match" at once. A router with a parameter, or anything other
than API routes, in a first segment is always asked, as before."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match


def first_segment(path: str) -> str | None:
    """`/readers/{id}` → `readers`; `/` → ``; None when the segment holds a parameter."""
    segment = path.lstrip("/").split("/", 1)[0]
    return None if "{" in segment else segment


def _segments(routes: list[Any]) -> set[str | None] | None:
    """First segments of every route in a router (nested routers included), or None when
    one of them is not an API route (a mount, a plain route: keep the router's own matching)."""
    found: set[str | None] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            nested = _segments(inner.routes)
            if nested is None:
                return None
            found |= nested
        elif isinstance(route, APIRoute):
            found.add(first_segment(route.path))
        else:
            return None
    return found


def index_routers(app: FastAPI) -> int:
    """Give each included router of `app` a first-segment check in front of its matching;
    returns how many routers got one."""
    indexed = 0
    for route in app.router.routes:
        original = getattr(route, "original_router", None)
        if original is None or str(getattr(original, "prefix", None) or ""):
            continue
        segments = _segments(original.routes)
        if not segments or None in segments:
            continue
        route.matches = _fast(route.matches, frozenset(segments))  # type: ignore[method-assign]
        indexed += 1
    return indexed


def _fast(matches: Any, segments: frozenset[str | None]) -> Any:
    def check(scope: dict[str, Any]) -> tuple[Match, dict[str, Any]]:
        if scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            if first_segment(path) not in segments:
                return Match.NONE, {}
        result: tuple[Match, dict[str, Any]] = matches(scope)
        return result
    return check
