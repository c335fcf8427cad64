"""The client's web app: server-rendered pages (Jinja2 + htmx) on the same routes, guards and
request transactions as the API. `install(app)` adds the pages, static files, page-aware
error handling and the security headers of every response."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from samia.web import account, booking, errors, orders, storefront, wallet
    from samia.web.headers import SecurityHeaders

    for module in (storefront, account, wallet, orders, booking):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    errors.install(app)
    app.add_middleware(SecurityHeaders)
