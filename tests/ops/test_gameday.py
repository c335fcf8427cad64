"""GameDays (M34): failures rehearsed against the real service. Run one with
ops/gameday/run.sh <scenario>; all run in CI.

- storage: the storage backend fails (a local directory gone read-only, an S3 endpoint
  down): uploads and downloads answer 503 `storage_unavailable` with Retry-After, nothing
  half-written, and the rest of the API keeps working.
- provider: see tests/ops/test_providers.py (the breaker opens after 5 failures and the
  provider answers 503 until a half-open probe succeeds) and the budget test.
- database: see tests/ops/test_backup.py (the point-in-time restore drill)."""

from __future__ import annotations

import stat

import pytest
from fastapi.testclient import TestClient

from samia.app import create_app

from ..conftest import make_settings
from ..helpers import Api, problem


@pytest.mark.gameday
def test_storage_failure_answers_503_cleanly(dsns, tmp_path) -> None:
    settings = make_settings(SAMIA_DATA_DIR=str(tmp_path))
    with TestClient(create_app(settings, dsns=dsns), raise_server_exceptions=False) as http:
        api = Api(http, dsns.owner, settings)
        c = api.user("client")
        o = http.post("/orders", json={"service": "coffee"}, headers=c.h)
        assert o.status_code == 201, o.text
        oid = o.json()["id"]
        photo = b"\xff\xd8\xff\xe0" + b"\x00" * 64
        assert http.post(f"/orders/{oid}/photos", content=photo, headers=c.h).status_code == 200
        media = http.get(f"/orders/{oid}", headers=c.h).json()["photo_media_ids"][0]
        url = http.get(f"/media/{media}/url", headers=c.h).json()["url"]
        before = api.sql("select count(*) from media_assets")
        # the disk fails: the storage directory is replaced by a file nothing can be written into
        storage = tmp_path / "storage"
        storage.rename(tmp_path / "storage.lost")
        storage.write_text("not a directory")
        storage.chmod(stat.S_IRUSR)
        try:
            r = http.post(f"/orders/{oid}/photos", content=photo, headers=c.h)
            body = problem(r, 503, "storage_unavailable")
            assert r.headers["retry-after"] == "30" and body["provider"] == "storage"
            assert api.sql("select count(*) from media_assets") == before  # nothing half-written
            problem(http.get(url), 503, "storage_unavailable")
            assert http.get("/api/ops/health").status_code == 200  # the rest of the service carries on
            assert http.get(f"/orders/{oid}", headers=c.h).status_code == 200
        finally:
            storage.chmod(stat.S_IRUSR | stat.S_IWUSR)
            storage.unlink()
            (tmp_path / "storage.lost").rename(storage)
        assert http.get(url).status_code == 200  # back once storage is back
