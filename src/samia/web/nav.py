"""What the header's navigation offers: only what the signed-in role may do. The routes'
guards and the database still refuse the rest; this only keeps people from dead ends.

Each staff console fills its own role's list (a path and a catalogue key)."""

from __future__ import annotations

SHOP = [("/", "nav.home"), ("/catalogue", "nav.catalogue"), ("/horoscopes", "nav.horoscopes")]
CLIENT = [("/my/orders", "nav.orders"), ("/my/calls", "nav.calls"), ("/my/favourites", "nav.favourites"),
          ("/account/wallet", "nav.wallet"), ("/account", "nav.account")]

# the staff consoles' sections, per role
READER: list[tuple[str, str]] = []
MONITOR: list[tuple[str, str]] = []
ADMIN: list[tuple[str, str]] = []
SUPERADMIN: list[tuple[str, str]] = []

STAFF = {"reader": READER, "monitor": MONITOR, "admin": ADMIN, "superadmin": SUPERADMIN}


def items(role: str | None, signed_in: bool) -> list[tuple[str, str]]:
    if not signed_in:
        return SHOP
    if staff := STAFF.get(role or ""):
        return [*staff, ("/account", "nav.account")]
    return SHOP + [item for item in CLIENT if role == "client" or item[0] != "/my/favourites"]
