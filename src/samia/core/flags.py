"""Feature-flag evaluation, the same rule as app.flag_on() in SQL (a test holds them equal):
off when disabled (the kill switch); otherwise the caller must match the role and country
targets, and fall in the rollout's share of a stable hash of (flag, user id)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    key: str
    enabled: bool
    rollout_pct: int
    roles: tuple[str, ...] | None
    countries: tuple[str, ...] | None


def bucket(key: str, user_id: str) -> int:
    """0..9999, stable for a (flag, user) pair: the first 32 bits of sha256("key:user")."""
    return int(hashlib.sha256(f"{key}:{user_id}".encode()).hexdigest()[:8], 16) % 10000


def is_on(flag: Flag, *, user_id: str | None, role: str | None, country: str | None) -> bool:
    if not flag.enabled:
        return False
    if flag.roles is not None and role not in flag.roles:
        return False
    if flag.countries is not None and country not in flag.countries:
        return False
    if flag.rollout_pct >= 100:
        return True
    return user_id is not None and bucket(flag.key, user_id) < flag.rollout_pct * 100
