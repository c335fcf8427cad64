"""Privacy tests: a private data directory per module (storage and the audit anchor file live
there), requests from a real address, and people with names no one else has, so a search for
them finds only them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from samia.cli import create_user
from samia.config import Settings

from ..conftest import make_settings
from ..helpers import PASSWORD, Api, User, ok

UTC = dt.UTC
IP = "198.51.100.23"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("privacy-data")


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir))


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False, client=(IP, 50000)) as c:
        yield c


@dataclass
class Person(User):
    first: str = ""
    last: str = ""
    dob: str = ""
    phone: str = ""


def person(api: Api, role: str = "client", *, dob: str = "1961-07-23", country: str = "LB") -> Person:
    """A user whose email, names and phone appear nowhere else in the database."""
    tag = uuid.uuid4().hex[:8]
    first, last = f"Zephyrine{tag}", f"Quillfeather{tag[::-1]}"
    email = f"{first.lower()}.{tag}@example.com"
    uid = create_user(api.owner_dsn, email=email, password=PASSWORD, role=role, dob=dob, country=country,
                      first_name=first, last_name=last, settings=api.settings)
    phone = "+9617" + str(int(tag, 16) % 10**6).zfill(6)
    api.sql("update profiles set phone = %s, phone_verified = true where id = %s", (phone, uid))
    api.sql("insert into phone_verifications (profile_id, phone, provider, status, expires_at, verified_at) "
            "values (%s, %s, 'local', 'verified', now() + interval '5 minutes', now())", (uid, phone))
    tokens = api.login(email, PASSWORD)
    return Person(uid, email, role, tokens["access_token"], tokens["refresh_token"], first, last, dob, phone)


def reader_offering(api: Api, client: TestClient, *services: str) -> Person:
    r = person(api, "reader", dob="1970-01-02")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = any(%s)",
            (r.id, list(services)))
    rules = [{"weekday": d, "start": "00:00", "end": "23:30"} for d in range(1, 8)]
    ok(client.put("/readers/me/availability", json={"tz": "UTC", "rules": rules}, headers=r.h))
    return r


_slots = iter(range(10_000))


def slot() -> str:
    n = next(_slots)
    when = (dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            + dt.timedelta(days=3 + n // 40, minutes=30 * (n % 40)))
    return when.isoformat()


def png(text: str = "") -> bytes:
    """Enough of a PNG for the upload sniffer, carrying `text` in its bytes."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\x00" * 17 + text.encode()
