"""The client's web app: server-rendered pages (Jinja2 + htmx) on the same routes, guards and
request transactions as the API. `install(app)` adds the pages, static files and page-aware
error handling; pages bring their own security headers (`headers.PAGE_HEADERS`) and the app
writes the cookies they queue (`headers.PageCookies`) inside the edge (core.headers)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from samia.web import (
        account,
        booking,
        errors,
        horoscopes,
        monitor_appeals,
        monitor_cases,
        monitor_console,
        notifications,
        orders,
        privacy,
        reader_availability,
        reader_console,
        reader_profile,
        staff_home,
        storefront,
        wallet,
    )
    from samia.web.admin import install as install_admin

    for module in (storefront, account, notifications, wallet, orders, booking, privacy, horoscopes):
        app.include_router(module.router)
    # the staff consoles
    for module in (staff_home, reader_console, reader_availability, reader_profile, monitor_console, monitor_cases,
                   monitor_appeals):
        app.include_router(module.router)
    install_admin(app)  # the admin console: /admin and /admin/console/…
    # static files only are compressed: a compressed page that reflects input next to its CSRF
    # token would invite BREACH
    app.mount("/static", GZipMiddleware(StaticFiles(directory=STATIC), minimum_size=1024), name="static")
    errors.install(app)
