"""The S3-compatible storage adapter through boto3 against a loopback S3 server (moto's
standalone server: real HTTP, real SigV4 requests), and the media flow on top of it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import boto3
import pytest
from fastapi.testclient import TestClient

from samia.app import create_app
from samia.providers.storage import S3Storage

from ..conftest import make_settings
from ..helpers import Api, ok, problem
from .conftest import order, produce

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


@pytest.fixture(scope="module")
def s3_url(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for k, v in S3_ENV.items():
        monkeypatch_module.setenv(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="samia-media")
    yield url
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def s3_client(s3_url, dsns) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(STORAGE_BACKEND="s3", S3_BUCKET="samia-media", S3_ENDPOINT_URL=s3_url)
    with TestClient(create_app(settings, dsns=dsns), raise_server_exceptions=False) as c:
        yield c


def test_audio_goes_through_s3_and_back_byte_for_byte(s3_client, s3_url, dsns, settings, audio) -> None:
    api = Api(s3_client, dsns.owner, settings)
    c, reader, monitor, admin = api.user("client"), api.user("reader"), api.user("monitor"), api.user("admin")
    api.sql("insert into reader_services (reader_id, service_id) select %s, id from services where code = 'tarot'",
            (reader.id,))
    o = order(s3_client, c)["id"]
    produce(s3_client, o, reader, audio, admin=admin)
    ok(s3_client.post(f"/monitor/orders/{o}/approve", json={}, headers=monitor.h))
    (key,) = api.sql("select m.storage_key from orders o join media_assets m on m.id = o.approved_media_id "
                     "where o.id = %s", (o,))[0]
    raw = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1")
    obj = raw.get_object(Bucket="samia-media", Key=key)
    assert obj["Body"].read() == audio and obj["ContentType"] == "audio/mpeg"
    media = ok(s3_client.get(f"/orders/{o}", headers=c.h))["audio_media_id"]
    r = s3_client.get(ok(s3_client.get(f"/media/{media}/url", headers=c.h))["url"])
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == hashlib.sha256(audio).hexdigest()
    # swapped behind our back in the bucket: refused
    raw.put_object(Bucket="samia-media", Key=key, Body=b"ID3" + b"\x00" * 100)
    problem(s3_client.get(ok(s3_client.get(f"/media/{media}/url", headers=c.h))["url"]), 409, "media_changed")


def test_an_unset_bucket_names_the_setting() -> None:
    with pytest.raises(Exception, match="S3_BUCKET"):
        S3Storage(make_settings(STORAGE_BACKEND="s3"))
