"""Every payments test leaves the ledger balanced: the sum of all entries is zero."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def ledger_stays_balanced(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "api" in request.fixturenames:
        api = request.getfixturevalue("api")
        assert api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries") == [(0,)], "ledger out of balance"
