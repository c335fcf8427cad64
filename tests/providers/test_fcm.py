"""FCM HTTP v1 against Google's token endpoint and messages:send faked on loopback: the
service account's assertion is verified there, the token is cached, answers are mapped."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from samia.core.problems import AppError
from samia.providers.fcm import FcmSender
from samia.providers.push import make_push
from samia.providers.push_message import PushMessage
from tests.conftest import make_settings

from .fake_fcm import service_account


def fcm(info: dict[str, Any], base: str, **over: object) -> FcmSender:
    env: dict[str, object] = {"FCM_PROVIDER": "fcm", "FCM_SERVICE_ACCOUNT_JSON": json.dumps(info),
                              "FCM_BASE_URL": base, "PROVIDER_TIMEOUT": 5}
    env.update(over)
    ch = make_push(make_settings(**env), "fcm")
    assert isinstance(ch, FcmSender)
    return ch


def send_all(ch: FcmSender, jobs: list[tuple[str, PushMessage, uuid.UUID]]):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return [await ch.send(a, m, key=k) for a, m, k in jobs]
        finally:
            await ch.aclose()
    return asyncio.run(go())


def test_sends_with_one_cached_token(google) -> None:
    svc, info = google
    k1, k2, k3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    siren = PushMessage("Emergency call", "Answer now", {"siren_id": "77"}, critical=True, ttl=30)
    out = send_all(fcm(info, svc.origin), [("tok-1", siren, k1), ("tok-2", PushMessage("a", "b"), k2),
                                           ("tok-3", PushMessage("c", "d", lang="ar"), k3)])
    assert [d.status for d in out] == ["sent"] * 3
    assert out[0].provider_ref == "projects/samia-test/messages/0:1"
    assert len(svc.granted) == 1  # one token for all three
    path, body = svc.sent[0]
    assert path == "/v1/projects/samia-test/messages:send"
    m = body["message"]
    assert m["token"] == "tok-1" and m["notification"] == {"title": "Emergency call", "body": "Answer now"}
    assert m["data"] == {"siren_id": "77", "key": str(k1), "lang": "en"}
    assert m["android"] == {"priority": "HIGH", "ttl": "30s"} and m["apns"]["headers"]["apns-priority"] == "10"
    assert svc.sent[1][1]["message"]["android"]["priority"] == "NORMAL"


@pytest.mark.parametrize(("token", "status", "error", "retry_after"), [
    ("gone-1", "gone", "fcm_UNREGISTERED", None), ("busy-1", "retry", "fcm_QUOTA_EXCEEDED", 30.0),
    ("down-1", "retry", "fcm_UNAVAILABLE", None), ("bad-1", "failed", "fcm_INVALID_ARGUMENT", None),
])
def test_fcm_answers(google, token, status, error, retry_after) -> None:
    svc, info = google
    (d,) = send_all(fcm(info, svc.origin), [(token, PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error, d.retry_after) == (status, error, retry_after)
    assert len(svc.sent) == 1


def test_a_refused_token_is_renewed_once(google) -> None:
    svc, info = google
    ch = fcm(info, svc.origin)
    svc.revoke_next = True
    (d,) = send_all(ch, [("tok-1", PushMessage("t", "b"), uuid.uuid4())])
    assert d.status == "sent" and len(svc.granted) == 1 and len(svc.sent) == 1
    # a token endpoint that keeps refusing the key: failed, not an endless retry
    wrong, _ = service_account(f"{svc.origin}/token")  # another key than the one Google knows
    (d,) = send_all(fcm(wrong, svc.origin), [("tok-1", PushMessage("t", "b"), uuid.uuid4())])
    assert (d.status, d.error) == ("failed", "oauth_refused") and len(svc.sent) == 1


def test_key_file_path_project_override_and_missing_settings(google, tmp_path: Path) -> None:
    svc, info = google
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    (d,) = send_all(fcm(info, svc.origin, FCM_SERVICE_ACCOUNT_JSON=path, FCM_PROJECT_ID="other-project"),
                    [("tok-1", PushMessage("t", "b"), uuid.uuid4())])
    assert d.status == "sent" and svc.sent[-1][0] == "/v1/projects/other-project/messages:send"
    no_project = json.dumps({k: v for k, v in info.items() if k != "project_id"})
    for env, setting in [({"FCM_PROVIDER": "fcm"}, "FCM_SERVICE_ACCOUNT_JSON"),
                         ({"FCM_PROVIDER": "fcm", "FCM_SERVICE_ACCOUNT_JSON": str(tmp_path / "none.json")},
                          "FCM_SERVICE_ACCOUNT_JSON"),
                         ({"FCM_PROVIDER": "fcm", "FCM_SERVICE_ACCOUNT_JSON": no_project}, "FCM_PROJECT_ID")]:
        with pytest.raises(AppError) as e:
            make_push(make_settings(**env), "fcm")
        assert (e.value.status, e.value.code, e.value.extra["setting"]) == (503, "provider_not_configured", setting)
