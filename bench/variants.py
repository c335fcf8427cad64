"""The app with one guard switched off, for the bench's on ÷ off ratios (uvicorn factories;
never used outside the bench). Each patches the one thing it names and builds the real app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from samia import app as samia_app
from samia.core import access, metrics, middleware


def no_rate_limit() -> FastAPI:
    """Routes declared with rate=... skip the limiter's transaction entirely."""
    async def scope(*_: Any) -> bool:
        return False

    async def hit(*_: Any, **__: Any) -> None:
        return None

    access._rate_scope = scope  # type: ignore[assignment]
    access.apply_rate_limit = hit  # type: ignore[assignment]
    return samia_app.from_env()


def quiet() -> FastAPI:
    """No access-log line and no request metrics (the request id and body cap stay)."""
    middleware.access_line = lambda *_: None  # type: ignore[assignment]
    metrics.Metrics.observe_request = lambda *_: None  # type: ignore[method-assign, assignment]
    return samia_app.from_env()
