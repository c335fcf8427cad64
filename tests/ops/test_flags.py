"""Feature flags: stable percentage rollout (Python and SQL agree), targeting, kill switch."""

from __future__ import annotations

import uuid

from samia.core.flags import Flag, bucket, is_on
from tests.helpers import problem


def test_a_25_percent_rollout_is_25_percent_and_stable() -> None:
    flag = Flag("feature.tarotV2", True, 25, None, None)
    ids = [str(uuid.UUID(int=i * 7919 + 17)) for i in range(10_000)]
    on = [is_on(flag, user_id=u, role="client", country="LB") for u in ids]
    assert 0.22 <= sum(on) / len(on) <= 0.28
    assert on == [is_on(flag, user_id=u, role="client", country="LB") for u in ids], "deterministic"
    other = Flag("feature.readerInstant", True, 25, None, None)
    assert on != [is_on(other, user_id=u, role="client", country="LB") for u in ids], "independent per flag"


def test_python_and_sql_buckets_agree(api) -> None:
    ids = [str(uuid.uuid4()) for _ in range(300)]
    rows = api.sql("select u::text, app.flag_bucket('feature.tarotV2', u) from unnest(%s::uuid[]) u", (ids,))
    assert {u: b for u, b in rows} == {u: bucket("feature.tarotV2", u) for u in ids}


def test_targeting_and_the_kill_switch_through_the_api(client, api) -> None:
    admin, lb, us, reader = api.user("admin"), api.user("client", country="LB"), api.user("client", country="US"), \
        api.user("reader")
    assert client.get("/flags", headers=lb.h).json()["feature.tarotV2"] is True
    r = client.patch("/admin/flags/feature.tarotV2", json={"roles": ["client"], "countries": ["LB"]}, headers=admin.h)
    assert r.status_code == 200 and r.json()["countries"] == ["LB"]
    assert client.get("/flags", headers=lb.h).json()["feature.tarotV2"] is True
    assert client.get("/flags", headers=us.h).json()["feature.tarotV2"] is False
    assert client.get("/flags", headers=reader.h).json()["feature.tarotV2"] is False
    # the kill switch: the very next request sees it
    client.patch("/admin/flags/feature.tarotV2", json={"enabled": False}, headers=admin.h)
    assert client.get("/flags", headers=lb.h).json()["feature.tarotV2"] is False
    meta = api.audit_rows("flag.change", "feature.tarotV2")[-1][5]
    assert meta["enabled"] is False and meta["before"]["enabled"] is True
    client.patch("/admin/flags/feature.tarotV2", json={"enabled": True, "roles": None, "countries": None},
                 headers=admin.h)
    assert client.get("/flags", headers=us.h).json()["feature.tarotV2"] is True
    problem(client.patch("/admin/flags/feature.tarotV2", json={"enabled": False}, headers=lb.h), 403)
    problem(client.patch("/admin/flags/no.such.flag", json={"enabled": False}, headers=admin.h), 404)
    problem(client.patch("/admin/flags/feature.tarotV2", json={"rollout_pct": 101}, headers=admin.h), 422)


def test_seed_flags_have_their_defaults(api) -> None:
    """The go-live flags of seeds 002 that switch something, with their defaults; the ones that
    switched nothing (backend.flatTables, calls.video, ui.rtlRefine) are gone."""
    flags = dict(api.sql("select key, enabled from feature_flags"))
    assert flags == {"feature.tarotV2": True, "feature.readerInstant": True, "feature.emergencyExtension": True,
                     "feature.dailyZodiac": True, "billing.emergencyProgressivePricing": False,
                     # issue 14: the admin console's bulk upload of a deck's art
                     "uploads.deckBulk": True,
                     # issue 12: one kill switch per messaging stream
                     **{f"messaging.{s}": True for s in ("campaigns", "email", "webpush", "fcm", "apns", "sms",
                                                         "whatsapp")}}
