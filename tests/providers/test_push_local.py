"""The offline push default: what would have been pushed lands in a file (development) or in
memory (tests); the factory refuses it in production, naming the setting."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from samia.core.problems import AppError
from samia.providers.push import LocalPush, MemoryPushSink, PushFileSink, make_push
from samia.providers.push_message import PushMessage
from tests.conftest import make_settings


def test_local_push_to_a_file_and_to_memory(tmp_path: Path) -> None:
    ch = make_push(make_settings(SAMIA_DATA_DIR=tmp_path), "apns")
    assert isinstance(ch, LocalPush) and isinstance(ch.sink, PushFileSink)
    key = uuid.uuid4()
    d = asyncio.run(ch.send("a1b2", PushMessage("قراءتك جاهزة", "استمع", {"order_id": "5"}, lang="ar"), key=key))
    assert (d.status, d.provider_ref) == ("sent", f"local-{key}")
    line = json.loads((tmp_path / "dev-push" / "apns.jsonl").read_text())
    assert (line["address"], line["title"], line["data"], line["lang"]) == ("a1b2", "قراءتك جاهزة", {"order_id": "5"},
                                                                            "ar")
    sink = MemoryPushSink()
    mem = make_push(make_settings(), "webpush", sink)
    assert isinstance(mem, LocalPush)
    mem.gone.add("expired-device")
    assert asyncio.run(mem.send("expired-device", PushMessage("t", "b"), key=key)).status == "gone"
    assert asyncio.run(mem.send("device", PushMessage("t", "b"), key=key)).status == "sent"
    assert [(k, a) for k, a, _ in sink.messages] == [("webpush", "device")]


@pytest.mark.parametrize(("kind", "setting"), [("webpush", "WEBPUSH_PROVIDER"), ("fcm", "FCM_PROVIDER"),
                                               ("apns", "APNS_PROVIDER")])
def test_production_needs_a_real_provider(kind, setting) -> None:
    with pytest.raises(AppError) as e:
        make_push(make_settings(SAMIA_ENV="prod"), kind)
    assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured", setting)
