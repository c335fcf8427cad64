"""Campaigns: 09:00 local in three time zones across a DST change, only to opted-in, active,
adult, unsuppressed users; scheduling twice sends once; a worker killed mid-batch and two
workers racing leave nobody with two sends."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json

import psycopg
from psycopg_pool import AsyncConnectionPool

from samia.jobs.tasks import Resources
from samia.notifications.outbox import dispatch_pending
from samia.providers.delivery import Delivery
from samia.providers.email import MemoryMailer
from tests.helpers import ok, problem

from .conftest import work

UTC = dt.UTC
SEND_ON = "2027-03-20"  # New York is on summer time (since 14 March), Paris and Beirut not yet (28 March)
AT = {"Asia/Beirut": dt.datetime(2027, 3, 20, 7, tzinfo=UTC), "Europe/Paris": dt.datetime(2027, 3, 20, 8, tzinfo=UTC),
      "America/New_York": dt.datetime(2027, 3, 20, 13, tzinfo=UTC)}


def opted_in(client, api, tz: str, **kw):  # type: ignore[no-untyped-def]
    u = api.user("client", **kw)
    ok(client.post("/me/notifications/opt-in", json={"channel": "email"}, headers=u.h))
    api.sql("update profiles set tz = %s where id = %s", (tz, u.id))
    return u


def campaign(client, admin, **kw) -> dict:  # type: ignore[no-untyped-def]
    body = {"name": "Spring equinox", "channel": "email", "title_en": "The equinox is here",
            "body_en": "A new season of readings.", "title_ar": "الاعتدال الربيعي", "body_ar": "موسم جديد من القراءات.",
            "send_on": SEND_ON, "local_time": "09:00", **kw}
    return ok(client.post("/admin/campaigns", json=body, headers=admin.h), 201)  # type: ignore[no-any-return]


def test_each_time_zone_gets_it_at_nine_local_and_only_those_who_may(client, api, settings, dsns) -> None:
    admin = api.user("admin")
    people = {tz: opted_in(client, api, tz) for tz in AT}
    arabic = opted_in(client, api, "Asia/Beirut")
    api.sql("update profiles set locale = 'ar' where id = %s", (arabic.id,))
    # the Beirut user whose zone comes from their quiet hours, not their profile
    qh = api.user("client")
    ok(client.post("/me/notifications/opt-in", json={"channel": "email"}, headers=qh.h))
    ok(client.put("/me/quiet-hours", json={"starts": "23:00", "ends": "06:00", "tz": "Asia/Beirut"}, headers=qh.h))
    excluded = {name: opted_in(client, api, "Asia/Beirut") for name in
                ("opted_out", "suppressed", "minor", "blocked", "deleted", "capped", "late_opt_out")}
    never = api.user("client")
    api.sql("update profiles set tz = 'Asia/Beirut' where id = %s", (never.id,))
    ok(client.post("/me/notifications/opt-out", json={"channel": "email"}, headers=excluded["opted_out"].h))
    ok(client.post("/admin/suppressions", json={"action": "add", "channel": "email",
                                                "address": excluded["suppressed"].email.upper()}, headers=admin.h))
    with psycopg.connect(dsns.owner) as conn:  # sign-up refuses minors; one that slipped in (a wrong dob fixed)
        conn.execute("set session_replication_role = replica")
        conn.execute("update profiles set dob = current_date - interval '17 years' where id = %s",
                     (excluded["minor"].id,))
    api.sql("update profiles set blocked_at = now(), blocked_until = now() + interval '1 year' where id = %s",
            (excluded["blocked"].id,))
    api.sql("update profiles set deleted_at = now() where id = %s", (excluded["deleted"].id,))
    api.sql("insert into notification_prefs (user_id, marketing_cap) values (%s, 0)", (excluded["capped"].id,))
    c = campaign(client, admin, audience={"roles": ["client"], "languages": ["en", "ar"]})
    first = ok(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=admin.h))
    again = ok(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=admin.h))
    assert first["cohorts"] == again["cohorts"] and first["status"] == "scheduled"
    cohorts = {x["tz"]: (dt.datetime.fromisoformat(x["send_at"]), x["recipients"]) for x in first["cohorts"]}
    assert {tz: at for tz, (at, _) in cohorts.items()} == AT
    # planned: the three people, the Arabic reader, the quiet-hours one, the capped and the late opt-out
    assert cohorts["Asia/Beirut"][1] == 5 and cohorts["Europe/Paris"][1] == 1
    ok(client.post("/me/notifications/opt-out", json={"channel": "email"}, headers=excluded["late_opt_out"].h))

    mailer = MemoryMailer()
    work(settings, dsns, mailer, at=AT["Asia/Beirut"] - dt.timedelta(minutes=1))
    assert mailer.sent == []
    work(settings, dsns, mailer, at=AT["Asia/Beirut"])
    assert sorted(m["To"] for m in mailer.sent) == sorted([people["Asia/Beirut"].email, arabic.email, qh.email])
    by_to = {m["To"]: m for m in mailer.sent}
    assert by_to[arabic.email]["Subject"] == "الاعتدال الربيعي" and by_to[arabic.email]["Content-Language"] == "ar"
    assert by_to[qh.email]["Subject"] == "The equinox is here" and by_to[qh.email]["List-Unsubscribe"]
    work(settings, dsns, mailer, at=AT["Europe/Paris"])
    assert mailer.sent[-1]["To"] == people["Europe/Paris"].email and len(mailer.sent) == 4
    work(settings, dsns, mailer, at=AT["America/New_York"] + dt.timedelta(hours=1))
    assert mailer.sent[-1]["To"] == people["America/New_York"].email and len(mailer.sent) == 5
    ok(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=admin.h))  # a third time: nothing new
    work(settings, dsns, mailer, at=AT["America/New_York"] + dt.timedelta(hours=2))
    counts = collections.Counter(m["To"] for m in mailer.sent)
    assert max(counts.values()) == 1 and len(counts) == 5
    assert not {u.email for u in (*excluded.values(), never)} & set(counts)
    stats = ok(client.get(f"/admin/campaigns/{c['id']}/stats", headers=admin.h))["stats"]
    assert stats["sends"] == 7 and stats["sent"] == 5 and stats["cancelled"] == 2 and stats["opted_out"] == 1
    why = dict(api.sql("select recipient_id::text, error from notification_sends where campaign_id = %s "
                       "and state = 'cancelled'", (c["id"],)))
    assert why == {excluded["capped"].id: "frequency_cap", excluded["late_opt_out"].id: "not_eligible"}
    assert api.audit_rows("campaign.scheduled", str(c["id"]))[0][2] == "campaign.scheduled"
    problem(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=people["Europe/Paris"].h), 403)
    problem(client.get(f"/admin/campaigns/{c['id']}/stats", headers=people["Europe/Paris"].h), 403)


def test_scheduling_is_refused_while_the_campaigns_flag_is_off(client, api) -> None:
    admin = api.user("admin")
    c = campaign(client, admin)
    api.sql("update feature_flags set enabled = false where key = 'messaging.campaigns'")
    try:
        problem(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=admin.h), 503, "feature_disabled")
    finally:
        api.sql("update feature_flags set enabled = true where key = 'messaging.campaigns'")
    assert api.sql("select status from campaigns where id = %s", (c["id"],)) == [("draft",)]


class SlowMailer(MemoryMailer):
    """Gives the other worker time to interleave."""

    async def send_message(self, msg):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.005)
        return await super().send_message(msg)


def test_a_worker_killed_mid_batch_and_two_racing_workers_send_nobody_anything_twice(client, api, settings,
                                                                                    dsns) -> None:
    admin = api.user("admin")
    users = [opted_in(client, api, "Europe/Paris") for _ in range(30)]
    c = campaign(client, admin, name="Race", audience={"roles": ["client"]})
    ok(client.post(f"/admin/campaigns/{c['id']}/schedule", headers=admin.h))
    at = AT["Europe/Paris"]
    ours = {u.id for u in users}
    # a worker claims a batch (the claim commits) and is killed before it sends anything
    with psycopg.connect(dsns.owner) as conn:
        conn.execute("set role service_role")
        claimed = conn.execute("select recipient_id::text from app.claim_sends(8, array['email'], true, %s)",
                               (at,)).fetchall()
    dead = {r for (r,) in claimed}
    assert len(dead) == 8

    mailer = SlowMailer()

    async def two_workers() -> list[int]:
        pools = [AsyncConnectionPool(dsns.app, min_size=1, max_size=2, kwargs={"autocommit": False}, open=False)
                 for _ in range(2)]
        for p in pools:
            await p.open(wait=True)
        try:
            return list(await asyncio.gather(*(dispatch_pending(Resources(settings, p, mailer), batch=4, at=at)
                                               for p in pools)))
        finally:
            for p in pools:
                await p.close()

    handled = asyncio.run(two_workers())
    counts = collections.Counter(m["To"] for m in mailer.sent)
    emails = {u.id: u.email for u in users}
    assert sum(handled) == len(counts) and max(counts.values()) == 1
    mine = {uid for uid in ours if emails[uid] in counts}
    assert not mine & dead and mine | (dead & ours) == ours
    # the restarted engine, once the dead worker's lease ran out: those go to the dead letter, not out again
    api.sql("update notification_sends set claimed_at = now() - interval '11 minutes' "
            "where campaign_id = %s and state = 'sending'", (c["id"],))
    work(settings, dsns, mailer, at=at)
    counts = collections.Counter(m["To"] for m in mailer.sent)
    assert max(counts.values()) == 1 and not {emails[d] for d in dead if d in emails} & set(counts)
    rows = api.sql("select state, error, dead_letter, count(*) from notification_sends where campaign_id = %s "
                   "group by 1, 2, 3 order by 1", (c["id"],))
    assert ("failed", "outcome_unknown", True, 8) in rows
    assert ("sent", None, False, len(counts)) in rows


def test_a_retry_after_a_lost_answer_keeps_its_idempotency_key(api, settings, dsns) -> None:
    """The email Message-ID is the send's key: a receiver (and SES) de-duplicates on it."""
    u = api.user("client")
    api.sql("insert into notification_outbox (recipient_id, channel, template, params) values "
            "(%s, 'email', 'payment_failed', '{}')", (u.id,))

    class Flaky(MemoryMailer):
        calls = 0

        async def send_message(self, msg):  # type: ignore[no-untyped-def]
            self.calls += 1
            self.ids = [*getattr(self, "ids", []), msg["Message-ID"]]
            if self.calls == 1:
                return Delivery.retry("ConnectTimeout")
            return await super().send_message(msg)

    flaky = Flaky()
    work(settings, dsns, flaky)
    (nb,) = api.sql("select not_before from notification_sends where recipient_id = %s", (u.id,))[0]
    work(settings, dsns, flaky, at=nb + dt.timedelta(seconds=1))
    (key,) = api.sql("select key::text from notification_sends where recipient_id = %s", (u.id,))[0]
    assert flaky.calls == 2 and len(set(flaky.ids)) == 1 and key in flaky.ids[0]
    assert json.loads(json.dumps([m["To"] for m in flaky.sent])) == [u.email]
