"""A month of marketplace activity written fast, in SQL, as the owner, through the real tables so
that the analytics triggers fire (the events are what the platform would have emitted).

The other domains' triggers that stamp now() (order workflow, audit stamp, call state machine)
are switched off while it runs, so that facts can carry their historical times; the records those
triggers would have written and that the brute force reads (the audit log's `order.in_progress`,
the moderation acts of approvals and rejections) are written here with those times. Everything is
switched back on before it returns. Test databases are private to their module, so this is safe.

Facts are written in their own order where the platform's rules depend on it: every payment row
in one statement (a retry sees the failure before it), statuses only ever moving forward.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

# Tables written here whose other triggers are switched off; the analytics ones stay on.
TABLES = ("public.orders", "public.payment_transactions", "public.bookings", "public.calls", "public.audit_log",
          "public.moderation_cases", "public.moderation_actions", "public.incidents", "public.incident_events",
          "public.profiles", "app_auth.sessions")

COUNTRIES = ["LB", "AE", "SA", "US", "GB", "FR", "EG", "JO"]

# Clients sign up over the first 24 days (a fifth of them in the first two hours), and act only
# after they signed up: the weekly cohorts differ.
PEOPLE = """
    insert into profiles (email, phone, first_name, last_name, dob, zodiac, country_code, role_id, created_at)
    select format('gen-client-%%s@example.com', lpad(g::text, 3, '0')), format('+96170%%s', lpad(g::text, 6, '0')),
           format('Zephyrine%%s', g), format('Quillfeather%%s', g), date '1985-03-01' + g,
           calc_zodiac(date '1985-03-01' + g), (%(countries)s::text[])[1 + g %% cardinality(%(countries)s::text[])], 5,
           %(start)s::timestamptz + case when g <= %(clients)s / 5 then random() * interval '2 hours'
                                         else random() * interval '24 days' end
      from generate_series(1, %(clients)s) g"""

CLIENTS = """
    create temp table gen_clients on commit drop as
    select id, created_at, row_number() over (order by email) as k from profiles where email like 'gen-client-%%'"""

# A moment after the client signed up and before the window ends.
AFTER = sql.SQL("c.created_at + random() * (%(start)s::timestamptz + %(days)s * interval '1 day' - c.created_at)")

# ---- orders ------------------------------------------------------------------------------
ORDER_PLAN = sql.SQL("""
    create temp table plan_o on commit drop as
    with base as (
      select g, c.id as client,
             (%(readers)s::uuid[])[1 + (g * 3) %% cardinality(%(readers)s::uuid[])] as reader,
             (array[1, 2, 3])[1 + g %% 3]::bigint as service, random() < 0.2 as gold,
             {after} as created_at, random() as fate,
             random() as r1, random() as r2, random() as r3, random() as r4, random() as r5
        from generate_series(1, %(orders)s) g join gen_clients c on c.k = 1 + (g * 7) %% %(clients)s
    )
    select b.*,
           b.created_at + (60 + b.r1 * 7200) * interval '1 second' as assigned_at,
           b.created_at + (60 + b.r1 * 7200 + 60 + b.r2 * case when b.gold then 1800 else 20000 end)
             * interval '1 second' as started_at
      from base b""").format(after=AFTER)

ORDER_STEPS = [
    """insert into orders (user_id, service_id, is_gold, status, created_at, updated_at, price_minor, currency,
                           deliver_by)
       select client, service, gold, 'new', created_at, created_at, 1500, 'USD',
              created_at + case when gold then interval '1 hour' else interval '1 day' end
         from plan_o order by g""",
    "alter table plan_o add column oid bigint",
    """update plan_o p set oid = o.id from (select id, row_number() over (order by id) as g from orders) o
        where o.g = p.g""",
    # 6 %% are cancelled before anyone took them
    """update orders o set status = 'cancelled', cancelled_at = p.created_at + interval '20 minutes',
                           updated_at = p.created_at + interval '20 minutes'
         from plan_o p where o.id = p.oid and p.fate < 0.06""",
    """update orders o set status = 'assigned', assigned_reader = p.reader, assigned_at = p.assigned_at,
                           updated_at = p.assigned_at
         from plan_o p where o.id = p.oid and p.fate >= 0.06""",
    """update orders o set status = 'in_progress', updated_at = p.started_at
         from plan_o p where o.id = p.oid and p.fate >= 0.06""",
    """insert into audit_log (id, created_at, actor, actor_role, event, entity, entity_id, meta)
       select nextval('app.audit_log_id_seq'), p.started_at, p.reader, 'reader', 'order.in_progress', 'order',
              p.oid::text, '{}' from plan_o p where p.fate >= 0.06""",
    # 5 %% miss the delivery clock (refunded below)
    """update orders o set delivery_breached_at = o.deliver_by
         from plan_o p where o.id = p.oid and p.fate >= 0.06 and p.fate < 0.11""",
    """update orders o set status = 'awaiting_approval',
                           submitted_at = p.started_at + (600 + p.r3 * 5400) * interval '1 second',
                           updated_at = p.started_at + (600 + p.r3 * 5400) * interval '1 second'
         from plan_o p where o.id = p.oid and p.fate >= 0.11""",
    # some reviews run late
    """update orders o set review_breached_at = o.submitted_at + interval '2 hours'
         from plan_o p where o.id = p.oid and p.fate >= 0.11 and p.r5 < 0.04""",
    # 15 %% are sent back once, restarted (not a first response) and submitted again
    """update orders o set status = 'rejected', reject_reason = 'please re-record the ending',
                           updated_at = o.submitted_at + interval '30 minutes'
         from plan_o p where o.id = p.oid and p.fate >= 0.11 and p.r4 < 0.15""",
    """insert into moderation_actions (actor_id, target_kind, target_id, action, reason, reason_code, created_at)
       select null, 'order', o.id::text, 'reject', o.reject_reason,
              case when p.r5 < 0.3 then 'copyright' when p.r5 < 0.5 then 'spam' end, o.updated_at
         from orders o join plan_o p on p.oid = o.id where o.status = 'rejected'""",
    """update orders o set status = 'in_progress', updated_at = o.updated_at + interval '2 hours'
         from plan_o p where o.id = p.oid and o.status = 'rejected'""",
    """insert into audit_log (id, created_at, actor, actor_role, event, entity, entity_id, meta)
       select nextval('app.audit_log_id_seq'), o.updated_at, p.reader, 'reader', 'order.in_progress', 'order',
              o.id::text, '{}' from orders o join plan_o p on p.oid = o.id
        where p.fate >= 0.11 and p.r4 < 0.15""",
    """update orders o set status = 'awaiting_approval', submitted_at = o.updated_at + interval '1 hour',
                           updated_at = o.updated_at + interval '1 hour'
         from plan_o p where o.id = p.oid and p.fate >= 0.11 and p.r4 < 0.15""",
    """update orders o set status = 'approved',
                           approved_at = o.submitted_at + (120 + p.r5 * 7000) * interval '1 second',
                           updated_at = o.submitted_at + (120 + p.r5 * 7000) * interval '1 second'
         from plan_o p where o.id = p.oid and p.fate >= 0.11""",
    """insert into moderation_actions (actor_id, target_kind, target_id, action, created_at)
       select null, 'order', o.id::text, 'approve', o.approved_at from orders o where o.status = 'approved'""",
    """update orders o set status = 'delivered',
                           delivered_at = o.approved_at + (60 + p.r2 * 3000) * interval '1 second',
                           updated_at = o.approved_at + (60 + p.r2 * 3000) * interval '1 second'
         from plan_o p where o.id = p.oid and p.fate >= 0.11 and p.fate < 0.97""",
]

# ---- bookings ----------------------------------------------------------------------------
BOOKING_PLAN = """
    create temp table plan_b on commit drop as
    with base as (
      select g, (%(readers)s::uuid[])[1 + g %% cardinality(%(readers)s::uuid[])] as reader,
             random() as fate, random() as r1, random() as r2, random() as r3
        from generate_series(1, %(bookings)s) g
    ),
    slotted as (
      -- each reader's k-th booking takes the k-th slot from the start: no two overlap
      select b.*, %(start)s::timestamptz + interval '2 days'
                    + (row_number() over (partition by b.reader order by b.g)) * %(slot_minutes)s * interval '1 minute'
                    as starts_at
        from base b
    ),
    dated as (select s.*, s.starts_at - (3600 + s.r1 * 86400 * 2) * interval '1 second' as created_at from slotted s)
    select d.*,
           (select c.id from gen_clients c where c.created_at < d.created_at
             order by (c.k * 7919 + d.g * 104729) %% 1009, c.k limit 1) as client,
           (array['testcard', 'stripe', 'square', 'usdt', 'bank_transfer'])[1 + (d.g * 5 + (d.r2 * 5)::int) %% 5]
             as p1,
           null::bigint as bid, null::bigint as cap
      from dated d"""

BOOKING_STEPS = [
    """with caps as (
         insert into reader_capacity (reader_id, during, kind, status, expires_at, created_at)
         select reader, tstzrange(starts_at, starts_at + interval '30 minutes'), 'hold', 'expired', created_at,
                created_at from plan_b order by g returning id)
       update plan_b p set cap = c.id
         from (select id, row_number() over (order by id) as g from caps) c where c.g = p.g""",
    """insert into bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, status, price_minor,
                             currency, policy, created_at)
       select client, reader, 4, cap, starts_at, starts_at + interval '30 minutes', 'held', 2500, 'USD', '{}',
              created_at from plan_b order by g""",
    "update plan_b p set bid = b.id from bookings b where b.capacity_id = p.cap",
]

# ---- payments: every charge and top-up of the month in one statement ---------------------
# A quarter of booking payments fail; most of those payers retry 12 minutes later, 70 %% of them
# with another method (a fallback); bank transfers and USDT wait for the payer first.
PAYMENT_PLAN = """
    create temp table plan_pay on commit drop as
    select o.user_id, 'wallet'::text as provider, 'charge'::text as kind, 'succeeded'::text as final, 1500 as amount,
           o.id as order_id, null::bigint as booking_id, o.created_at, o.created_at as updated_at
      from orders o
    union all
    select client, p1, 'charge', case when fate < 0.25 then 'failed' else 'succeeded' end, 2500, null, bid,
           created_at + interval '2 minutes', created_at + interval '5 minutes'
      from plan_b
    union all
    select client, case when r3 < 0.7 then (case p1 when 'testcard' then 'stripe' else 'testcard' end) else p1 end,
           'charge', case when fate < 0.02 then 'failed' else 'succeeded' end, 2500, null, bid,
           created_at + interval '14 minutes', created_at + interval '18 minutes'
      from plan_b where fate < 0.2
    union all
    select id, 'testcard', 'topup', case when random() < 0.1 then 'failed' else 'succeeded' end, 5000, null, null,
           created_at + interval '1 hour', created_at + interval '61 minutes'
      from gen_clients"""

PAYMENT_STEPS = [
    """insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency, order_id, booking_id,
                                         created_at, updated_at)
       select user_id, provider, kind,
              case when final = 'succeeded' and provider in ('usdt', 'bank_transfer') then 'requires_action'
                   else final end,
              amount, 'USD', order_id, booking_id, created_at,
              case when final = 'succeeded' and provider in ('usdt', 'bank_transfer')
                   then created_at + interval '1 minute' else updated_at end
         from plan_pay order by created_at""",
    """update payment_transactions set status = 'succeeded', updated_at = created_at + interval '3 minutes'
        where status = 'requires_action'""",
    """update bookings b set status = 'confirmed', confirmed_at = t.updated_at
         from payment_transactions t where t.booking_id = b.id and t.kind = 'charge' and t.status = 'succeeded'""",
    "update bookings b set status = 'released' where b.status = 'held'",
    """update reader_capacity c set status = case when b.status = 'confirmed' then 'confirmed' else 'released' end,
                                    kind = 'booking', expires_at = null
         from bookings b where b.capacity_id = c.id""",
    # a tenth of confirmed bookings are cancelled with a refund to the method; the rest took place
    """update bookings b set status = 'cancelled', cancelled_at = b.starts_at - interval '3 hours',
                             refund_minor = 2500, refund_to = 'original'
         from plan_b p where p.bid = b.id and b.status = 'confirmed' and p.r1 < 0.1""",
    "update bookings set status = 'completed' where status = 'confirmed'",
    """update reader_capacity c set status = case b.status when 'completed' then 'completed' else 'cancelled' end
         from bookings b where b.capacity_id = c.id and c.status = 'confirmed'""",
    """insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency, booking_id,
                                         parent_id, created_at, updated_at)
       select b.client_id, t.provider, 'refund', 'succeeded', 2500, 'USD', b.id, t.id, b.cancelled_at, b.cancelled_at
         from bookings b join payment_transactions t on t.booking_id = b.id and t.kind = 'charge'
                                                     and t.status = 'succeeded'
        where b.status = 'cancelled'""",
    # the late and the cancelled orders are refunded to the wallet, once each (as app.refund_order does)
    """insert into payment_transactions (user_id, provider, kind, status, amount_minor, currency, order_id,
                                         parent_id, metadata, created_at, updated_at)
       select o.user_id, 'wallet', 'refund', 'succeeded', 1500, 'USD', o.id, t.id,
              jsonb_build_object('reason', case when o.status = 'cancelled' then 'cancelled'
                                                else 'delivery_breach' end),
              coalesce(o.delivery_breached_at, o.cancelled_at), coalesce(o.delivery_breached_at, o.cancelled_at)
         from orders o join payment_transactions t on t.order_id = o.id and t.kind = 'charge'
        where o.delivery_breached_at is not null or o.status = 'cancelled'""",
]

# ---- calls, moderation, incidents, logins ------------------------------------------------
OTHER_STEPS = [
    sql.SQL("""insert into calls (client_id, reader_id, kind, status, provider, created_at, started_at, ended_at,
                           end_reason, connected_seconds)
       select x.client, x.reader, x.kind, 'ended', 'local', x.created_at,
              case when x.answered then x.created_at + x.setup end,
              case when x.answered then x.created_at + x.setup + x.talk else x.created_at + interval '45 seconds' end,
              case when not x.answered then (array['no_answer', 'busy', 'failed'])[1 + (x.r * 3)::int %% 3]
                   when x.r < 0.5 then 'completed' when x.r < 0.7 then 'dropped_by_client'
                   when x.r < 0.85 then 'dropped_by_reader' when x.r < 0.9 then 'dropped_by_monitor' else 'failed' end,
              case when x.answered then extract(epoch from x.talk)::int end
         from (select c.id as client, (%(readers)s::uuid[])[1 + g %% cardinality(%(readers)s::uuid[])] as reader,
                      (array['scheduled', 'instant', 'emergency'])[1 + (g / 2) %% 3] as kind,
                      {after} as created_at, random() < 0.8 as answered, random() as r,
                      (2 + random() * 58) * interval '1 second' as setup,
                      (30 + random() * 3000) * interval '1 second' as talk
                 from generate_series(1, %(calls)s) g join gen_clients c on c.k = 1 + (g * 13) %% %(clients)s) x""")
    .format(after=AFTER),
    """insert into moderation_cases (source, reason, severity, subject_kind, subject_id, status, created_at, updated_at)
       select (array['report', 'sweep', 'moderation'])[1 + g %% 3],
              (array['harassment', 'abuse', 'fraud', 'spam', 'safety', 'other'])[1 + (g * 7) %% 6], 2,
              (array['profile', 'order', 'call'])[1 + g %% 3], g::text, 'open', t, t
         from (select g, %(start)s::timestamptz + random() * (%(days)s * interval '1 day') as t
                 from generate_series(1, %(cases)s) g) x""",
    """update moderation_cases set status = case when random() < 0.7 then 'resolved' else 'dismissed' end,
                                   resolved_at = created_at + (300 + random() * 200000) * interval '1 second',
                                   updated_at = created_at + interval '1 day'
        where random() < 0.75""",
    """insert into moderation_actions (actor_id, target_kind, target_id, action, reason_code, created_at)
       select null, 'profile', c.id::text, (array['block', 'unblock', 'flag', 'escalate'])[1 + g %% 4],
              (array['harassment', 'abuse', 'fraud', 'spam', null])[1 + g %% 5],
              %(start)s::timestamptz + random() * (%(days)s * interval '1 day')
         from generate_series(1, 150) g join gen_clients c on c.k = 1 + g %% %(clients)s""",
    """insert into incidents (title, severity, source, created_at)
       select format('generated incident %%s', g), (array['SEV1', 'SEV2', 'SEV3'])[1 + g %% 3],
              (array['manual', 'alert'])[1 + g %% 2], %(start)s::timestamptz + random() * (%(days)s * interval '1 day')
         from generate_series(1, %(incidents)s) g""",
    # two people acknowledge most incidents: the first acknowledgement is the one that counts
    """insert into incident_events (incident_id, kind, at)
       select i.id, 'acked', i.created_at + (60 + random() * 1200) * interval '1 second'
         from incidents i, generate_series(1, 2) k where i.id %% 5 <> 0 order by 3""",
    """update incidents set status = 'mitigated',
                            mitigated_at = created_at + (600 + random() * 7200) * interval '1 second'
        where id %% 3 <> 0""",
    """update incidents set status = 'resolved', resolved_at = coalesce(mitigated_at, created_at) + interval '5 hours'
        where id %% 4 <> 0""",
    sql.SQL("""insert into app_auth.sessions (user_id, created_at)
       select c.id, {after} from gen_clients c, generate_series(1, %(logins)s) k""").format(after=AFTER),
]

DEFAULTS = {"clients": 80, "orders": 1600, "bookings": 600, "calls": 1000, "cases": 200, "incidents": 30,
            "logins": 25}


def generate_month(owner_dsn: str, readers: list[str], start: dt.datetime, days: int,
                   **sizes: int) -> dict[str, Any]:
    params: dict[str, Any] = {**DEFAULTS, **sizes, "readers": readers, "start": start, "days": days,
                              "countries": COUNTRIES}
    per_reader = params["bookings"] // len(readers) + 1
    params["slot_minutes"] = max(45, (days - 3) * 24 * 60 // per_reader)
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("select set_config('request.jwt.claims', '{\"actor\": \"generator\"}', true)")
        conn.execute("select setseed(0.42)")
        for t in TABLES:
            conn.execute(sql.SQL("alter table {} disable trigger user").format(sql.Identifier(*t.split("."))))
            for (name,) in conn.execute("select tgname from pg_trigger where tgrelid = %s::regclass "
                                        "and tgname like 'trg_analytics_%%'", (t,)).fetchall():
                conn.execute(sql.SQL("alter table {} enable trigger {}").format(sql.Identifier(*t.split(".")),
                                                                                sql.Identifier(name)))
        conn.execute(PEOPLE, params)
        conn.execute(CLIENTS, params)
        conn.execute("create index on gen_clients (k)")
        for step in (ORDER_PLAN, *ORDER_STEPS, BOOKING_PLAN, *BOOKING_STEPS, PAYMENT_PLAN, *PAYMENT_STEPS,
                     *OTHER_STEPS):
            conn.execute(step, params)
        for t in TABLES:
            conn.execute(sql.SQL("alter table {} enable trigger user").format(sql.Identifier(*t.split("."))))
    with psycopg.connect(owner_dsn) as conn:
        return {"events": conn.execute("select count(*) from events_raw").fetchone()[0]}  # type: ignore[index]
