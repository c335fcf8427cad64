"""Route guards against what the database permits, role by role."""

from __future__ import annotations

from fastapi import APIRouter

from samia.app import create_app
from samia.core.access import Ctx, Probe, allow
from samia.core.parity import check


def test_every_guarded_route_matches_the_database(app, dsns) -> None:
    report = check(app, dsns.owner)
    assert report.ok, "\n".join(report.lines())
    assert len(report.routes) >= 6
    assert "100%" in report.lines()[-1]


def test_a_mismatch_is_reported(settings, dsns) -> None:
    app = create_app(settings, dsns=dsns)
    extra = APIRouter()

    @extra.get("/too-narrow")
    async def too_narrow(ctx: Ctx = allow("superadmin", probe=Probe("select 1 from audit_log limit 1"))) -> None:
        """Admins can read the audit log in the database, so a superadmin-only route is a mismatch."""

    @extra.get("/unguarded")
    async def unguarded() -> None:
        """No role declaration at all."""

    app.include_router(extra)
    report = check(app, dsns.owner)
    lines = {(r.method, r.path): r for r in report.routes}
    assert not report.ok
    assert lines[("GET", "/unguarded")].problem == "no role declaration"
    narrow = lines[("GET", "/too-narrow")]
    assert not narrow.ok and set(narrow.permitted) == {"admin", "superadmin"}
