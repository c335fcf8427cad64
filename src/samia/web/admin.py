"""The admin console's routers, mounted by `samia.web.install`: the dashboard and catalogue
(admin_console), payments, platform controls, users and orders, operations and audit, and the
super admin's page."""

from __future__ import annotations

from fastapi import FastAPI

from samia.web import (
    admin_audit,
    admin_campaigns,
    admin_console,
    admin_controls,
    admin_decks,
    admin_ops,
    admin_payments,
    admin_super,
    admin_users,
)


def install(app: FastAPI) -> None:
    for module in (admin_console, admin_payments, admin_controls, admin_users, admin_ops, admin_audit, admin_super,
                   admin_decks, admin_campaigns):
        app.include_router(module.router)
