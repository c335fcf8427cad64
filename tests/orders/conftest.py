"""Orders tests: a private storage directory per module, a reader who offers the readings,
and real audio made by ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from samia.config import Settings

from ..conftest import make_settings
from ..helpers import Api, User, ok


def tone(seconds: float = 2.0, freq: int = 440, fmt: str = "mp3") -> bytes:
    """Real encoded audio from ffmpeg's sine generator."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
                          "-f", fmt, "-"], capture_output=True, check=True)
    return out.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orders-data")


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir))


@pytest.fixture(scope="module")
def audio() -> bytes:
    return tone()


@pytest.fixture(scope="module")
def reader(api: Api) -> User:
    r = api.user("reader")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services "
            "where code in ('tarot', 'coffee', 'astro')", (r.id,))
    return r


@pytest.fixture(scope="module")
def monitor(api: Api) -> User:
    return api.user("monitor")


@pytest.fixture(scope="module")
def admin(api: Api) -> User:
    return api.user("admin")


def order(client: TestClient, c: User, **body: Any) -> dict[str, Any]:
    r = client.post("/orders", json={"service": "tarot", "question": "Will the move go well?", **body}, headers=c.h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def produce(client: TestClient, o: int, reader: User, data: bytes, *, admin: User) -> dict[str, Any]:
    """Assign to `reader`, start, upload `data`, submit."""
    ok(client.post(f"/orders/{o}/assign", json={"reader_id": reader.id}, headers=admin.h))
    ok(client.post(f"/orders/{o}/start", headers=reader.h))
    ok(client.post(f"/orders/{o}/output", content=data, headers={**reader.h, "Content-Type": "audio/mpeg"}))
    return ok(client.post(f"/orders/{o}/submit", headers=reader.h))
