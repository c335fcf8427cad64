"""What the header's navigation offers: only what the signed-in role may do. The routes'
guards and the database still refuse the rest; this only keeps people from dead ends.

Each staff console fills its own role's list (a path and a catalogue key)."""

from __future__ import annotations

SHOP = [("/", "nav.home"), ("/catalogue", "nav.catalogue"), ("/horoscopes", "nav.horoscopes")]
CLIENT = [("/my/orders", "nav.orders"), ("/my/calls", "nav.calls"), ("/my/favourites", "nav.favourites"),
          ("/account/wallet", "nav.wallet"), ("/account", "nav.account")]

# the staff consoles' sections, per role
READER: list[tuple[str, str]] = [("/staff", "floor.nav.home"), ("/staff/queue", "floor.nav.queue"),
                                 ("/staff/availability", "floor.nav.availability"),
                                 ("/staff/performance", "floor.nav.performance"),
                                 ("/staff/profile", "floor.nav.profile")]
MONITOR: list[tuple[str, str]] = [("/staff", "floor.nav.home"), ("/staff/review", "floor.nav.review"),
                                  ("/staff/cases", "floor.nav.cases"), ("/staff/appeals", "monitor.nav.appeals"),
                                  ("/staff/calls", "floor.nav.calls"),
                                  ("/staff/emergency", "floor.nav.emergency"),
                                  ("/staff/horoscopes", "nav.horoscopes")]
ADMIN: list[tuple[str, str]] = [
    ("/admin", "admin.nav.dashboard"), ("/admin/console/catalogue", "admin.nav.catalogue"),
    ("/admin/console/payments", "admin.nav.payments"), ("/admin/console/controls", "admin.nav.controls"),
    ("/admin/console/users", "admin.nav.users"), ("/admin/console/ops", "admin.nav.ops"),
    ("/admin/console/audit", "admin.nav.audit"), ("/admin/console/decks", "admin.nav.decks"),
    ("/admin/console/campaigns", "campaigns.nav")]
SUPERADMIN: list[tuple[str, str]] = [*ADMIN, ("/admin/console/super", "admin.nav.super")]

# where each role lands after signing in (else the storefront's home)
HOME = {"reader": "/staff", "monitor": "/staff", "admin": "/admin", "superadmin": "/admin"}

STAFF = {"reader": READER, "monitor": MONITOR, "admin": ADMIN, "superadmin": SUPERADMIN}


def items(role: str | None, signed_in: bool) -> list[tuple[str, str]]:
    if not signed_in:
        return SHOP
    if staff := STAFF.get(role or ""):
        return [*staff, ("/account", "nav.account")]
    return SHOP + [item for item in CLIENT if role == "client" or item[0] != "/my/favourites"]
