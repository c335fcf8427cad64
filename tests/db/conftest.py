from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.conftest import fresh_database


@pytest.fixture
def new_db(admin_dsn: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases (dropped after the test)."""
    made: list[str] = []

    def make() -> str:
        made.append(fresh_database(admin_dsn, "template0"))
        return made[-1]
    yield make
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for dsn in made:
            name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
            conn.execute(psycopg.sql.SQL("drop database if exists {} with (force)")
                         .format(psycopg.sql.Identifier(name)))


@pytest.fixture
def empty_db(new_db: Callable[[], str]) -> str:
    return new_db()
