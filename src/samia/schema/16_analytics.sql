-- Analytics (issue 17; seeds 001 M23, 000 Phase 4.1 item 11, 002 reports): events emitted by
-- AFTER triggers on the base tables, in the transaction of the fact (a rolled-back order emits
-- nothing); the nightly roll-up into metrics_daily_*; who may see which figures; the reader
-- utilisation report. Personalization (M25) is at the end of the file.
--
-- The business day is the date in Asia/Beirut (events_raw.day, a generated column).
--
-- Whether an event carries a person's ids is the privacy rule's answer for the purpose
-- 'operational' (app.analytics_allowed in schema/15_privacy.sql): only an explicit analytics
-- "no" unlinks them; such an event is still counted, linked to nobody. Personalization reads
-- the same answer (app.personalization_allowed).

-- This file's own one-argument consent hook gave way to the privacy rule.
drop function if exists app.analytics_allowed(uuid);

-- A value for a code-valued column: from the closed vocabulary, else 'other'.
create or replace function app.analytics_code(p_value text) returns text
language sql stable set search_path = '' as $$
  select case when p_value is null then null
              else coalesce((select c.code from public.event_codes c where c.code = lower(p_value)), 'other') end
$$;

-- Whole seconds from a to b (never negative; null when either is unknown).
create or replace function app.analytics_secs(p_from timestamptz, p_to timestamptz) returns integer
language sql immutable set search_path = '' as $$
  select greatest(0, floor(extract(epoch from p_to - p_from)))::integer
$$;

-- The business day of an instant.
create or replace function app.beirut_day(p_at timestamptz) returns date
language sql immutable set search_path = '' as $$
  select (p_at at time zone 'Asia/Beirut')::date
$$;

-- ─── Emitting ──────────────────────────────────────────────────────────────────────────
-- The one writer of events_raw. The catalogue row of the type decides the version and which
-- columns are kept (its schema); the user's country is read here; codes are held to the
-- vocabulary. An event for a day that ended more than a day ago marks that day for the next
-- roll-up (app_private.analytics_dirty_days); fresher days are recomputed every night anyway.
create or replace function app.analytics_emit(
  p_type text, p_at timestamptz,
  p_user uuid default null, p_reader uuid default null, p_subject bigint default null,
  p_service bigint default null, p_provider text default null, p_kind text default null,
  p_code text default null, p_reason text default null, p_gold boolean default null,
  p_attempt integer default null, p_seconds integer default null, p_amount bigint default null,
  p_currency text default null, p_device text default null)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  -- one statement: the catalogue row, the user's country and the codes are joined in
  insert into public.events_raw (type, version, occurred_at, user_id, reader_id, subject_id, service_id, country,
                                 provider, kind, code, reason, is_gold, attempt, seconds, amount_minor, currency,
                                 device)
  select t.code, t.version, p_at,
         case when c.linked and 'user_id' = any (t.dims) then p_user end,
         case when 'reader_id' = any (t.dims) then p_reader end,
         case when c.linked and 'subject_id' = any (t.dims) then p_subject end,
         case when 'service_id' = any (t.dims) then p_service end,
         case when 'country' = any (t.dims) then pr.country_code end,
         case when 'provider' = any (t.dims) and p_provider is not null then coalesce(cp.code, 'other') end,
         case when 'kind' = any (t.dims) and p_kind is not null then coalesce(ck.code, 'other') end,
         case when 'code' = any (t.dims) and p_code is not null then coalesce(cc.code, 'other') end,
         case when 'reason' = any (t.dims) and p_reason is not null then coalesce(cr.code, 'other') end,
         case when 'is_gold' = any (t.dims) then p_gold end,
         case when 'attempt' = any (t.dims) then p_attempt end,
         case when 'seconds' = any (t.dims) then p_seconds end,
         case when 'amount_minor' = any (t.dims) then p_amount end,
         case when 'currency' = any (t.dims) then upper(p_currency) end,
         case when 'device' = any (t.dims) and p_device in ('web', 'ios', 'android', 'api') then p_device end
    from public.event_types t
   cross join (select app.analytics_allowed(p_user, null, 'operational') as linked) c
    left join public.profiles pr on pr.id = p_user
    left join public.event_codes cp on cp.code = lower(p_provider)
    left join public.event_codes ck on ck.code = lower(p_kind)
    left join public.event_codes cc on cc.code = lower(p_code)
    left join public.event_codes cr on cr.code = lower(p_reason)
   where t.code = p_type;
  if not found then
    raise exception 'unknown event type %', p_type using errcode = '22023', hint = 'validation_error';
  end if;
  if (p_at at time zone 'Asia/Beirut')::date < (clock_timestamp() at time zone 'Asia/Beirut')::date - 1 then
    insert into app_private.analytics_dirty_days (day) values ((p_at at time zone 'Asia/Beirut')::date);
  end if;
end
$$;

revoke all on function app.analytics_emit(text, timestamptz, uuid, uuid, bigint, bigint, text, text, text, text,
                                          boolean, integer, integer, bigint, text, text) from public;

-- ─── The triggers on the base tables ───────────────────────────────────────────────────
-- Orders: placed, assigned, first response, submitted, approved/rejected, delivered,
-- cancelled, and the clocks. Times come from the row (the fact's own time).
create or replace function app.analytics_orders() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  o public.orders := new;
  at timestamptz := coalesce(new.updated_at, now());
begin
  if tg_op = 'INSERT' then
    perform app.analytics_emit('order.created', o.created_at, p_user => o.user_id, p_subject => o.id,
                               p_service => o.service_id, p_gold => o.is_gold, p_amount => o.price_minor,
                               p_currency => o.currency);
    return null;
  end if;
  if o.status is distinct from old.status then
    case o.status
      when 'assigned' then
        perform app.analytics_emit('order.assigned', coalesce(o.assigned_at, at), p_user => o.user_id,
                                   p_reader => o.assigned_reader, p_subject => o.id, p_service => o.service_id,
                                   p_gold => o.is_gold);
      when 'in_progress' then
        insert into app_private.analytics_first_responses (order_id) values (o.id) on conflict do nothing;
        if found then
          perform app.analytics_emit('order.first_response', at, p_user => o.user_id, p_reader => o.assigned_reader,
                                     p_subject => o.id, p_service => o.service_id, p_gold => o.is_gold,
                                     p_seconds => app.analytics_secs(o.created_at, at));
        end if;
      when 'awaiting_approval' then
        perform app.analytics_emit('order.submitted', coalesce(o.submitted_at, at), p_reader => o.assigned_reader,
                                   p_subject => o.id, p_service => o.service_id, p_gold => o.is_gold);
      when 'approved' then
        perform app.analytics_emit('order.approved', coalesce(o.approved_at, at), p_user => o.user_id,
                                   p_reader => o.assigned_reader, p_subject => o.id, p_service => o.service_id,
                                   p_gold => o.is_gold,
                                   p_seconds => app.analytics_secs(o.submitted_at, coalesce(o.approved_at, at)));
      when 'rejected' then
        perform app.analytics_emit('order.rejected', at, p_user => o.user_id, p_reader => o.assigned_reader,
                                   p_subject => o.id, p_service => o.service_id, p_gold => o.is_gold,
                                   p_seconds => app.analytics_secs(o.submitted_at, at));
      when 'delivered' then
        perform app.analytics_emit('order.delivered', coalesce(o.delivered_at, at), p_user => o.user_id,
                                   p_reader => o.assigned_reader, p_subject => o.id, p_service => o.service_id,
                                   p_gold => o.is_gold,
                                   p_seconds => app.analytics_secs(o.created_at, coalesce(o.delivered_at, at)));
      when 'cancelled' then
        perform app.analytics_emit('order.cancelled', coalesce(o.cancelled_at, at), p_user => o.user_id,
                                   p_reader => o.assigned_reader, p_subject => o.id, p_service => o.service_id,
                                   p_gold => o.is_gold);
      else
    end case;
  end if;
  if o.delivery_breached_at is not null and old.delivery_breached_at is null then
    perform app.analytics_emit('order.clock_breached', o.delivery_breached_at, p_reader => o.assigned_reader,
                               p_subject => o.id, p_service => o.service_id, p_gold => o.is_gold, p_code => 'delivery');
  end if;
  if o.review_breached_at is not null and old.review_breached_at is null then
    perform app.analytics_emit('order.clock_breached', o.review_breached_at, p_reader => o.assigned_reader,
                               p_subject => o.id, p_service => o.service_id, p_gold => o.is_gold,
                               p_code => 'review_clock');
  end if;
  return null;
end
$$;

create or replace trigger trg_analytics_orders_insert after insert on public.orders
  for each row execute function app.analytics_orders();
create or replace trigger trg_analytics_orders_update after update on public.orders
  for each row when (old.status is distinct from new.status
                     or old.delivery_breached_at is distinct from new.delivery_breached_at
                     or old.review_breached_at is distinct from new.review_breached_at)
  execute function app.analytics_orders();

-- Payments. A charge's attempt number counts the payer's charges that failed in the 30 minutes
-- before it was started (1 = a first pass), by the time each failed, so the number is the same
-- whenever it is computed; a retry with another method than the last failure is a fallback.
-- Refunds name the method of the charge they give back (the funnel's last step).
create or replace function app.payment_attempt(p_txn public.payment_transactions)
returns table (attempt integer, failed_provider text)
language sql stable security definer set search_path = '' as $$
  select 1 + count(*)::integer, (array_agg(p.provider order by p.updated_at desc, p.id desc))[1]
    from public.payment_transactions p
   where p.user_id = p_txn.user_id and p.kind in ('charge', 'topup') and p.status in ('failed', 'cancelled')
     and p.updated_at >= p_txn.created_at - interval '30 minutes'
     and (p.updated_at, p.id) < (p_txn.created_at, p_txn.id)
$$;

revoke all on function app.payment_attempt(public.payment_transactions) from public;  -- the emitter's own

create or replace function app.analytics_payments() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  t public.payment_transactions := new;
  was text := case when tg_op = 'INSERT' then null else old.status end;
  at timestamptz := coalesce(new.updated_at, new.created_at, now());
  a record;
begin
  if t.kind = 'refund' then
    if t.status = 'succeeded' and was is distinct from 'succeeded' then
      perform app.analytics_emit('payment.refunded', at, p_user => t.user_id, p_subject => t.id,
        p_provider => coalesce((select p.provider from public.payment_transactions p where p.id = t.parent_id),
                               t.provider),
        p_kind => case when t.order_id is not null then 'order' when t.booking_id is not null then 'booking'
                       when t.call_id is not null then 'call' else 'other' end,
        p_code => case when t.provider = 'wallet' then 'wallet' else 'original' end,
        p_reason => coalesce(t.metadata ->> 'reason', case when t.booking_id is not null then 'cancelled' end,
                             'unspecified'),
        p_amount => t.amount_minor, p_currency => t.currency);
    end if;
    return null;
  end if;
  select * into a from app.payment_attempt(t);
  if tg_op = 'INSERT' then
    perform app.analytics_emit('payment.attempted', t.created_at, p_user => t.user_id, p_subject => t.id,
                               p_provider => t.provider, p_kind => t.kind, p_attempt => a.attempt,
                               p_amount => t.amount_minor, p_currency => t.currency);
    if a.attempt > 1 and a.failed_provider is distinct from t.provider then
      perform app.analytics_emit('payment.fallback', t.created_at, p_user => t.user_id, p_subject => t.id,
                                 p_provider => t.provider, p_kind => t.kind, p_reason => a.failed_provider);
    end if;
  end if;
  if t.status is not distinct from was then
    return null;
  end if;
  case t.status
    when 'requires_action' then
      perform app.analytics_emit('payment.action_required', at, p_user => t.user_id, p_subject => t.id,
                                 p_provider => t.provider, p_kind => t.kind, p_attempt => a.attempt);
    when 'succeeded' then
      perform app.analytics_emit('payment.succeeded', at, p_user => t.user_id, p_subject => t.id,
                                 p_provider => t.provider, p_kind => t.kind, p_attempt => a.attempt,
                                 p_seconds => app.analytics_secs(t.created_at, at), p_amount => t.amount_minor,
                                 p_currency => t.currency);
    when 'failed', 'cancelled' then
      perform app.analytics_emit('payment.failed', at, p_user => t.user_id, p_subject => t.id,
                                 p_provider => t.provider, p_kind => t.kind, p_attempt => a.attempt,
                                 p_seconds => app.analytics_secs(t.created_at, at));
    else
  end case;
  return null;
end
$$;

create or replace trigger trg_analytics_payments_insert after insert on public.payment_transactions
  for each row execute function app.analytics_payments();
create or replace trigger trg_analytics_payments_update after update on public.payment_transactions
  for each row when (old.status is distinct from new.status) execute function app.analytics_payments();

-- Bookings: held (the checkout starts), then each status it reaches, and reschedules.
create or replace function app.analytics_bookings() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  b public.bookings := new;
begin
  if tg_op = 'INSERT' then
    perform app.analytics_emit('booking.held', b.created_at, p_user => b.client_id, p_reader => b.reader_id,
                               p_subject => b.id, p_service => b.service_id, p_amount => b.price_minor,
                               p_currency => b.currency);
    return null;
  end if;
  if b.status is distinct from old.status and b.status in ('confirmed', 'cancelled', 'released', 'expired',
                                                           'completed') then
    perform app.analytics_emit('booking.' || b.status,
                               case b.status when 'confirmed' then coalesce(b.confirmed_at, now())
                                             when 'completed' then least(b.starts_at, now())
                                             else coalesce(b.cancelled_at, now()) end,
                               p_user => b.client_id, p_reader => b.reader_id, p_subject => b.id,
                               p_service => b.service_id,
                               p_seconds => case when b.status = 'confirmed'
                                                 then app.analytics_secs(b.created_at, coalesce(b.confirmed_at, now()))
                                            end);
  elsif b.starts_at is distinct from old.starts_at and b.status = 'confirmed' then
    perform app.analytics_emit('booking.rescheduled', now(), p_user => b.client_id, p_reader => b.reader_id,
                               p_subject => b.id, p_service => b.service_id);
  end if;
  return null;
end
$$;

create or replace trigger trg_analytics_bookings_insert after insert on public.bookings
  for each row execute function app.analytics_bookings();
create or replace trigger trg_analytics_bookings_update after update on public.bookings
  for each row when (old.status is distinct from new.status or old.starts_at is distinct from new.starts_at)
  execute function app.analytics_bookings();

-- Calls: created (setup starts), answered (setup time), ended (connected time, end reason) or
-- unanswered. A row written straight into a later state emits the steps it skipped.
create or replace function app.analytics_calls() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  c public.calls := new;
  was text := case when tg_op = 'INSERT' then null else old.status end;
begin
  if tg_op = 'INSERT' then
    perform app.analytics_emit('call.created', c.created_at, p_user => c.client_id, p_reader => c.reader_id,
                               p_subject => c.id, p_kind => c.kind);
  end if;
  if c.started_at is not null and c.status in ('started', 'ended') and coalesce(was, 'created') in ('created', 'ringing')
  then
    perform app.analytics_emit('call.answered', c.started_at, p_user => c.client_id, p_reader => c.reader_id,
                               p_subject => c.id, p_kind => c.kind,
                               p_seconds => app.analytics_secs(c.created_at, c.started_at));
  end if;
  if c.status = 'ended' and was is distinct from 'ended' then
    if c.started_at is not null then
      perform app.analytics_emit('call.ended', coalesce(c.ended_at, now()), p_user => c.client_id,
                                 p_reader => c.reader_id, p_subject => c.id, p_kind => c.kind,
                                 p_reason => coalesce(c.end_reason, 'unspecified'),
                                 p_seconds => coalesce(c.connected_seconds,
                                                       app.analytics_secs(c.started_at, coalesce(c.ended_at, now()))));
    else
      perform app.analytics_emit('call.unanswered', coalesce(c.ended_at, now()), p_user => c.client_id,
                                 p_reader => c.reader_id, p_subject => c.id, p_kind => c.kind,
                                 p_reason => coalesce(c.end_reason, 'unspecified'));
    end if;
  end if;
  return null;
end
$$;

create or replace trigger trg_analytics_calls_insert after insert on public.calls
  for each row execute function app.analytics_calls();
create or replace trigger trg_analytics_calls_update after update on public.calls
  for each row when (old.status is distinct from new.status) execute function app.analytics_calls();

-- Moderation: every act (approvals and rejections of audio included), cases opened and closed.
create or replace function app.analytics_moderation_actions() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform app.analytics_emit('moderation.decision', new.created_at,
    p_reader => case when new.target_kind = 'order' and new.target_id ~ '^[0-9]{1,18}$'
                     then (select o.assigned_reader from public.orders o where o.id = new.target_id::bigint) end,
    p_subject => coalesce(new.case_id, case when new.target_id ~ '^[0-9]{1,18}$' then new.target_id::bigint end),
    p_kind => new.target_kind, p_code => new.action, p_reason => coalesce(new.reason_code, 'unspecified'));
  return null;
end
$$;

create or replace trigger trg_analytics_moderation_actions after insert on public.moderation_actions
  for each row execute function app.analytics_moderation_actions();

create or replace function app.analytics_cases() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  c public.moderation_cases := new;
begin
  if tg_op = 'INSERT' then
    perform app.analytics_emit('case.opened', c.created_at, p_subject => c.id, p_kind => c.subject_kind,
                               p_code => c.source, p_reason => c.reason);
  elsif c.status in ('resolved', 'dismissed') and old.status = 'open' then
    perform app.analytics_emit('case.closed', coalesce(c.resolved_at, c.updated_at, now()), p_subject => c.id,
                               p_kind => c.subject_kind, p_code => c.status, p_reason => c.reason,
                               p_seconds => app.analytics_secs(c.created_at, coalesce(c.resolved_at, c.updated_at,
                                                                                      now())));
  end if;
  return null;
end
$$;

create or replace trigger trg_analytics_cases_insert after insert on public.moderation_cases
  for each row execute function app.analytics_cases();
create or replace trigger trg_analytics_cases_update after update on public.moderation_cases
  for each row when (old.status is distinct from new.status) execute function app.analytics_cases();

-- Incidents: opened, first acknowledgement, mitigated, resolved.
create or replace function app.analytics_incidents() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  i public.incidents := new;
begin
  if tg_op = 'INSERT' then
    perform app.analytics_emit('incident.opened', i.created_at, p_subject => i.id, p_kind => i.source,
                               p_code => i.severity);
    return null;
  end if;
  if i.mitigated_at is not null and old.mitigated_at is null then
    perform app.analytics_emit('incident.mitigated', i.mitigated_at, p_subject => i.id, p_code => i.severity,
                               p_seconds => app.analytics_secs(i.created_at, i.mitigated_at));
  end if;
  if i.resolved_at is not null and old.resolved_at is null then
    perform app.analytics_emit('incident.resolved', i.resolved_at, p_subject => i.id, p_code => i.severity,
                               p_reason => case when i.mitigated_at is null then 'unmitigated' else 'mitigated' end,
                               p_seconds => app.analytics_secs(i.created_at, i.resolved_at));
  end if;
  return null;
end
$$;

create or replace trigger trg_analytics_incidents_insert after insert on public.incidents
  for each row execute function app.analytics_incidents();
create or replace trigger trg_analytics_incidents_update after update on public.incidents
  for each row when (old.mitigated_at is distinct from new.mitigated_at or old.resolved_at is distinct from new.resolved_at)
  execute function app.analytics_incidents();

create or replace function app.analytics_incident_acks() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  i public.incidents;
begin
  if exists (select 1 from public.incident_events e where e.incident_id = new.incident_id and e.kind = 'acked'
                                                   and e.id < new.id) then
    return null;  -- the first acknowledgement is the one that counts
  end if;
  select * into i from public.incidents where id = new.incident_id;
  perform app.analytics_emit('incident.acknowledged', new.at, p_subject => i.id, p_code => i.severity,
                             p_seconds => app.analytics_secs(i.created_at, new.at));
  return null;
end
$$;

create or replace trigger trg_analytics_incident_acks after insert on public.incident_events
  for each row when (new.kind = 'acked') execute function app.analytics_incident_acks();

-- Accounts: sign-ups and logins (a session started: counts only).
create or replace function app.analytics_signups() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform app.analytics_emit('user.signed_up', new.created_at, p_user => new.id,
                             p_kind => (select r.code from public.roles r where r.id = new.role_id));
  return null;
end
$$;

create or replace trigger trg_analytics_signups after insert on public.profiles
  for each row execute function app.analytics_signups();

create or replace function app.analytics_logins() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform app.analytics_emit('user.logged_in', new.created_at, p_user => new.user_id);
  return null;
end
$$;

create or replace trigger trg_analytics_logins after insert on app_auth.sessions
  for each row execute function app.analytics_logins();

-- ─── The nightly roll-up ───────────────────────────────────────────────────────────────
-- One Beirut day from its events: the cells of metrics_daily_events and the active users of
-- metrics_daily_users. Only what differs is written, so running it again writes nothing.
-- Returns the rows written or removed.
create or replace function app.analytics_rollup_day(p_day date) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  fresh public.metrics_daily_events[];
  n integer;
  changed integer := 0;
begin
  select coalesce(array_agg(row(c.day, c.type, c.reader_id, c.service_id, c.country, c.provider, c.kind, c.code,
                                c.reason, c.is_gold, c.first_pass, c.events, c.seconds)::public.metrics_daily_events),
                  '{}')
    into fresh
    from (select e.day, e.type, e.reader_id, e.service_id, e.country, e.provider, e.kind, e.code, e.reason, e.is_gold,
                 e.attempt = 1 as first_pass, count(*)::integer as events,
                 coalesce(array_agg(e.seconds order by e.seconds) filter (where e.seconds is not null),
                          '{}') as seconds
            from public.events_raw e
           where e.day = p_day
           group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) c;
  delete from public.metrics_daily_events m
   where m.day = p_day and not exists (select 1 from unnest(fresh) f where f is not distinct from m);
  get diagnostics n = row_count;
  changed := changed + n;
  insert into public.metrics_daily_events
  select f.* from unnest(fresh) f
   where not exists (select 1 from public.metrics_daily_events m where m.day = p_day and m is not distinct from f);
  get diagnostics n = row_count;
  changed := changed + n;

  delete from public.metrics_daily_users u
   where u.day = p_day
     and not exists (select 1 from public.events_raw e join public.event_types t on t.code = e.type and t.counts_active
                      where e.day = p_day and e.user_id = u.user_id);
  get diagnostics n = row_count;
  changed := changed + n;
  insert into public.metrics_daily_users (day, user_id)
  select distinct p_day, e.user_id
    from public.events_raw e join public.event_types t on t.code = e.type and t.counts_active
   where e.day = p_day and e.user_id is not null
  on conflict do nothing;
  get diagnostics n = row_count;
  return changed + n;
end
$$;

-- The nightly job: every day since the last run (and always the last three, which late
-- events of normal length still reach), plus every day marked dirty by a late event, up to
-- p_through (default: yesterday in Beirut); then raw events past their retention are deleted
-- (their days' roll-ups stay, final). One run at a time.
create or replace function app.analytics_rollup(p_through date default null)
returns table (days integer, changed integer, rolled_through date, purged bigint)
language plpgsql volatile security definer set search_path = '' as $$
declare
  through date := coalesce(p_through, app.beirut_day(now()) - 1);
  st app_private.analytics_rollup_state;
  horizon date;
  mark bigint;
  d date;
  n_days integer := 0;
  n_changed integer := 0;
  n_purged bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('analytics_rollup', 0));
  select * into st from app_private.analytics_rollup_state s for update;
  horizon := app.beirut_day(now()) - st.raw_retention_days;
  select max(x.id) into mark from app_private.analytics_dirty_days x;
  for d in
    select g::date from generate_series(greatest(coalesce(least(st.rolled_through + 1, through - 2),
                                                          (select min(e.day) from public.events_raw e)), horizon),
                                        through, interval '1 day') g
    union
    select x.day from app_private.analytics_dirty_days x where x.day between horizon and through and x.id <= mark
    order by 1
  loop
    n_changed := n_changed + app.analytics_rollup_day(d);
    n_days := n_days + 1;
  end loop;
  delete from app_private.analytics_dirty_days x where x.day <= through and x.id <= mark;
  delete from public.events_raw e where e.day < horizon;
  get diagnostics n_purged = row_count;
  update app_private.analytics_rollup_state s set rolled_through = greatest(st.rolled_through, through);
  return query select n_days, n_changed, greatest(st.rolled_through, through), n_purged;
end
$$;

-- Erasure (for the privacy work's data-subject deletion): a user's events keep their counts
-- and lose every id that leads to the person; their active days, ranking decisions and opt-out
-- go. Days already rolled up keep their figures (no user id is in metrics_daily_events).
-- An explicit analytics "no" (app.record_consent): what was recorded under their id before is
-- unlinked as well, and the per-user roll-ups and personalization guesses go.
create or replace function app.analytics_unlink(p_user uuid) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  n bigint;
begin
  update public.events_raw set user_id = null, subject_id = null where user_id = p_user;
  get diagnostics n = row_count;
  delete from public.metrics_daily_users where user_id = p_user;
  delete from public.personalization_decisions where user_id = p_user;
  return n;
end
$$;

create or replace function app.analytics_forget(p_user uuid) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  n bigint := app.analytics_unlink(p_user);
begin
  update public.events_raw set reader_id = null where reader_id = p_user;
  update public.metrics_daily_events set reader_id = null where reader_id = p_user;
  delete from public.metrics_daily_users where user_id = p_user;
  delete from public.personalization_decisions where user_id = p_user;
  delete from public.personalization_opt_outs where user_id = p_user;
  return n;
end
$$;

revoke all on function app.analytics_unlink(uuid), app.analytics_forget(uuid) from public;
grant execute on function app.analytics_unlink(uuid), app.analytics_forget(uuid) to service_role;

create or replace function app.analytics_rolled_through() returns date
language sql stable security definer set search_path = '' as $$
  select s.rolled_through from app_private.analytics_rollup_state s
$$;

revoke all on function app.analytics_rollup_day(date), app.analytics_rollup(date) from public;
grant execute on function app.analytics_rollup_day(date), app.analytics_rollup(date) to service_role;
grant execute on function app.analytics_rolled_through() to authenticated, service_role;

-- ─── Who sees which figures ────────────────────────────────────────────────────────────
-- Admins and the super admin: everything. Monitors: moderation-relevant figures (content,
-- calls). Readers: their own performance (fulfillment, bookings, calls, content) — the rows
-- that carry their id. Clients: nothing. 'overview' is the union.
create or replace function app.metrics_visible(p_domain text) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce(case app.user_role()
                    when 'superadmin' then true
                    when 'admin' then true
                    when 'monitor' then p_domain in ('overview', 'content', 'calls')
                    when 'reader' then p_domain in ('overview', 'fulfillment', 'bookings', 'calls', 'content')
                  end, false)
$$;

create or replace function app.metrics_types_visible() returns text[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(t.code), '{}') from public.event_types t where app.metrics_visible(t.domain)
$$;

grant execute on function app.metrics_visible(text), app.metrics_types_visible() to authenticated, service_role;

select app.lock_down('event_types', 'event_codes', 'events_raw', 'metrics_daily_events', 'metrics_daily_users');
grant select on public.event_types, public.event_codes, public.metrics_daily_events to authenticated;
grant select on public.events_raw, public.metrics_daily_users to authenticated;

drop policy if exists event_types_read on public.event_types;
create policy event_types_read on public.event_types for select to authenticated
  using ((select app.metrics_visible('overview')));

drop policy if exists event_codes_read on public.event_codes;
create policy event_codes_read on public.event_codes for select to authenticated
  using ((select app.metrics_visible('overview')));

-- Raw events carry user ids: admins only.
drop policy if exists events_raw_admin on public.events_raw;
create policy events_raw_admin on public.events_raw for select to authenticated using ((select app.is_admin()));

drop policy if exists metrics_daily_events_read on public.metrics_daily_events;
create policy metrics_daily_events_read on public.metrics_daily_events for select to authenticated
  using ((select app.is_admin())
         or (type = any (coalesce((select app.metrics_types_visible()), array[]::text[]))
             and ((select app.user_role()) = 'monitor' or reader_id = (select auth.uid()))));

drop policy if exists metrics_daily_users_admin on public.metrics_daily_users;
create policy metrics_daily_users_admin on public.metrics_daily_users for select to authenticated
  using ((select app.is_admin()));

-- ─── Reader utilisation (seeds 002) ────────────────────────────────────────────────────
-- Per reader and Beirut week (Monday): the minutes they made available (weekly rules in their
-- own zone turned into absolute time day by day, so a DST change moves the instants, plus
-- 'open' exceptions, minus 'block' ones) and the minutes booked (confirmed or completed
-- bookings), both clipped to the week. The rules have no history: past weeks use today's.
-- Invoker: RLS on rules and bookings scopes it (a reader sees only their own).
create or replace function app.multirange_minutes(p tstzmultirange) returns integer
language sql immutable set search_path = '' as $$
  select coalesce(round(sum(extract(epoch from upper(r) - lower(r))) / 60), 0)::integer from unnest(p) r
$$;

create or replace function app.reader_utilisation(p_from date, p_to date, p_reader uuid default null)
returns table (reader_id uuid, week date, available_minutes integer, booked_minutes integer)
language sql stable set search_path = '' as $$
  with weeks as (
    select w::date as week,
           tstzrange(w at time zone 'Asia/Beirut', (w + interval '7 days') at time zone 'Asia/Beirut') as span
      from generate_series(date_trunc('week', p_from::timestamp), p_to::timestamp, interval '7 days') w
     where app.metrics_visible('bookings')
  ),
  bounds as (select min(lower(span)) as lo, max(upper(span)) as hi from weeks),
  windows as (
    select r.reader_id, tstzrange((d::date + r.start_time) at time zone r.tz,
                                  (d::date + r.end_time) at time zone r.tz) as w
      from public.availability_rules r, bounds b,
           generate_series(((b.lo at time zone r.tz)::date - 1)::timestamp,
                           ((b.hi at time zone r.tz)::date + 1)::timestamp, interval '1 day') d
     where extract(isodow from d) = r.weekday and (p_reader is null or r.reader_id = p_reader)
    union all
    select e.reader_id, e.during from public.availability_exceptions e, bounds b
     where e.kind = 'open' and e.during && tstzrange(b.lo, b.hi) and (p_reader is null or e.reader_id = p_reader)
  ),
  opened as (select x.reader_id, range_agg(x.w) as m from windows x group by x.reader_id),
  blocked as (
    select e.reader_id, range_agg(e.during) as m from public.availability_exceptions e, bounds b
     where e.kind = 'block' and e.during && tstzrange(b.lo, b.hi) and (p_reader is null or e.reader_id = p_reader)
     group by e.reader_id
  ),
  booked as (
    select k.reader_id, range_agg(tstzrange(k.starts_at, k.ends_at)) as m from public.bookings k, bounds b
     where k.status in ('confirmed', 'completed') and tstzrange(k.starts_at, k.ends_at) && tstzrange(b.lo, b.hi)
       and (p_reader is null or k.reader_id = p_reader)
     group by k.reader_id
  ),
  readers as (
    select o.reader_id, o.m - coalesce(bl.m, '{}'::tstzmultirange) as free
      from opened o left join blocked bl on bl.reader_id = o.reader_id
    union all
    select k.reader_id, '{}'::tstzmultirange from booked k where not exists (select 1 from opened o
                                                                              where o.reader_id = k.reader_id)
  )
  select r.reader_id, w.week,
         app.multirange_minutes(r.free * tstzmultirange(w.span)),
         app.multirange_minutes(coalesce(k.m, '{}'::tstzmultirange) * tstzmultirange(w.span))
    from readers r cross join weeks w left join booked k on k.reader_id = r.reader_id
   order by r.reader_id, w.week
$$;

grant execute on function app.reader_utilisation(date, date, uuid), app.multirange_minutes(tstzmultirange)
  to authenticated, service_role;

-- ─── Personalization (M25, internal only) ──────────────────────────────────────────────
-- Rankings of content ids (readers, services, horoscopes) and notification candidates for one
-- user, from their engagement (their own events), cohort (new or established), country (what
-- people there book) and device. Deterministic: the same data and inputs give the same order.
-- The A/B split uses the feature flags' hash (app.flag_bucket); an opted-out user, or one
-- without analytics consent, gets the non-personalised order. Scores, rationale codes and
-- confidence are stored in personalization_decisions and returned to no client.
create or replace function app.personalization_allowed(p_user uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select app.analytics_allowed(p_user, null, 'operational')
     and not exists (select 1 from public.personalization_opt_outs o where o.user_id = p_user)
$$;

create or replace function app.personalization_variant(p_user uuid, p_kind text)
returns table (variant text, bucket integer)
language sql stable security definer set search_path = '' as $$
  select case when not app.personalization_allowed(p_user) then 'opted_out'
              when app.flag_bucket('personalization.' || a.kind, p_user) < a.personalised_pct * 100 then 'personalised'
              else 'control' end,
         app.flag_bucket('personalization.' || a.kind, p_user)
    from public.personalization_arms a where a.kind = p_kind
$$;

-- What the ranking knows of a user: their country, how many of their events there are (the
-- cohort: fewer than 3 is a new user) and which readers and services they used.
create or replace function app.personalization_history(p_user uuid)
returns table (country char(2), events bigint, readers uuid[], services bigint[])
language sql stable security definer set search_path = '' as $$
  select (select p.country_code from public.profiles p where p.id = p_user),
         count(*),
         coalesce(array_agg(e.reader_id) filter (where e.reader_id is not null
                                                   and e.type in ('order.delivered', 'booking.confirmed',
                                                                  'call.answered')), '{}'),
         coalesce(array_agg(e.service_id) filter (where e.service_id is not null
                                                    and e.type in ('order.created', 'booking.held')), '{}')
    from public.events_raw e
   where e.user_id = p_user and e.day > app.beirut_day(now()) - 365
$$;

-- Readers: the storefront's own order (online first, then rating, then name) unless
-- personalised; personalised adds past use of the reader, favourites, what clients of the same
-- country booked in the last 30 days (doubled for new users), and, on a phone, readers who can
-- take a call now.
create or replace function app.rank_readers(p_user uuid, p_device text, p_personalised boolean)
returns table (item text, score numeric, rationale text)
language sql stable security definer set search_path = '' as $$
  with me as (select * from app.personalization_history(p_user)),
  cand as (
    select rp.reader_id, coalesce(st.available, false) as online,
           (select avg(r.rating) from public.reviews r where r.reader_id = rp.reader_id and r.status = 'published') as rating,
           rp.display_name
      from public.reader_profiles rp
      join public.profiles p on p.id = rp.reader_id and p.role_id = 3 and p.deleted_at is null
                            and (p.blocked_at is null or p.blocked_until <= now())
      left join public.reader_status st on st.reader_id = rp.reader_id
  ),
  base as (
    select c.*, row_number() over (order by c.online desc, c.rating desc nulls last, c.display_name, c.reader_id) as pos,
           count(*) over () as n
      from cand c
  ),
  pop as (
    select m.reader_id, sum(m.events)::numeric as n
      from public.metrics_daily_events m, me
     where m.type in ('booking.held', 'call.created') and m.country = me.country and m.reader_id is not null
       and m.day > app.beirut_day(now()) - 30
     group by m.reader_id
  ),
  parts as (
    select b.reader_id, b.pos, b.n,
           3 * ln((1 + (select count(*) from unnest(me.readers) x where x = b.reader_id))::numeric) as affinity,
           case when exists (select 1 from public.favourites f where f.client_id = p_user and f.reader_id = b.reader_id)
                then 2 else 0 end as favourite,
           case when me.events < 3 then 3 else 1.5 end
             * coalesce(pp.n / nullif(max(pp.n) over (), 0), 0) as country_popularity,
           coalesce(b.rating, 0) / 5 as rating,
           case when b.online then 0.5 else 0 end as online_now,
           case when b.online and p_device in ('ios', 'android') then 1 else 0 end as mobile_instant
      from base b cross join me left join pop pp on pp.reader_id = b.reader_id
  )
  select p.reader_id::text,
         round(case when p_personalised
                    then p.affinity + p.favourite + p.country_popularity + p.rating + p.online_now + p.mobile_instant
                    else 0 end + (p.n - p.pos + 1)::numeric / (p.n * 1000), 6),
         case when not p_personalised
                   or greatest(p.affinity, p.favourite, p.country_popularity, p.rating, p.online_now,
                               p.mobile_instant) = 0 then 'default_order'
              when p.affinity >= greatest(p.favourite, p.country_popularity, p.rating, p.online_now, p.mobile_instant)
                then 'affinity'
              when p.favourite >= greatest(p.country_popularity, p.rating, p.online_now, p.mobile_instant) then 'favourite'
              when p.country_popularity >= greatest(p.rating, p.online_now, p.mobile_instant) then 'country_popularity'
              when p.mobile_instant >= greatest(p.rating, p.online_now) then 'mobile_instant'
              when p.rating >= p.online_now then 'rating'
              else 'online_now' end
    from parts p
$$;

-- Services: catalogue order unless personalised; personalised adds the user's own use of the
-- service, what clients of the same country ordered or booked in 30 days, and calls on a phone.
create or replace function app.rank_services(p_user uuid, p_device text, p_personalised boolean)
returns table (item text, score numeric, rationale text)
language sql stable security definer set search_path = '' as $$
  with me as (select * from app.personalization_history(p_user)),
  base as (
    select s.id, s.kind, row_number() over (order by s.id) as pos, count(*) over () as n
      from public.services s where s.is_active
  ),
  pop as (
    select m.service_id, sum(m.events)::numeric as n
      from public.metrics_daily_events m, me
     where m.type in ('order.created', 'booking.held') and m.country = me.country and m.service_id is not null
       and m.day > app.beirut_day(now()) - 30
     group by m.service_id
  ),
  parts as (
    select b.id, b.pos, b.n,
           3 * ln((1 + (select count(*) from unnest(me.services) x where x = b.id))::numeric) as affinity,
           case when me.events < 3 then 3 else 1.5 end
             * coalesce(pp.n / nullif(max(pp.n) over (), 0), 0) as country_popularity,
           case when b.kind = 'call' and p_device in ('ios', 'android') then 0.5 else 0 end as mobile_instant
      from base b cross join me left join pop pp on pp.service_id = b.id
  )
  select p.id::text,
         round(case when p_personalised then p.affinity + p.country_popularity + p.mobile_instant else 0 end
               + (p.n - p.pos + 1)::numeric / (p.n * 1000), 6),
         case when not p_personalised or greatest(p.affinity, p.country_popularity, p.mobile_instant) = 0
                then 'default_order'
              when p.affinity >= greatest(p.country_popularity, p.mobile_instant) then 'affinity'
              when p.country_popularity >= p.mobile_instant then 'country_popularity'
              else 'mobile_instant' end
    from parts p
$$;

-- Horoscopes: the latest approved daily horoscopes in zodiac order, the user's own sign first
-- when personalised, then the signs most listened to through (once listen events exist).
create or replace function app.rank_horoscopes(p_user uuid, p_device text, p_personalised boolean)
returns table (item text, score numeric, rationale text)
language sql stable security definer set search_path = '' as $$
  with latest as (
    select h.* from public.horoscopes h
     where h.scope = 'daily' and h.status = 'published'
       and h.ref_date = (select max(x.ref_date) from public.horoscopes x
                          where x.scope = 'daily' and x.status = 'published'
                            and x.ref_date <= app.beirut_day(now()))
  ),
  base as (
    select l.id, l.zodiac,
           row_number() over (order by array_position(array['Aries', 'Taurus', 'Gemini', 'Cancer', 'Leo', 'Virgo',
                                                            'Libra', 'Scorpio', 'Sagittarius', 'Capricorn',
                                                            'Aquarius', 'Pisces'], l.zodiac), l.id) as pos,
           count(*) over () as n
      from latest l
  ),
  listens as (
    select m.type, sum(m.events)::numeric as n
      from public.metrics_daily_events m
     where m.type = 'horoscope.listen_finished' and m.day > app.beirut_day(now()) - 30
     group by m.type
  ),
  parts as (
    select b.id, b.pos, b.n,
           case when b.zodiac = (select p.zodiac from public.profiles p where p.id = p_user) then 3 else 0 end as own_sign,
           0::numeric as engagement
      from base b
  )
  select p.id::text,
         round(case when p_personalised then p.own_sign + p.engagement else 0 end
               + (p.n - p.pos + 1)::numeric / (p.n * 1000), 6),
         case when p_personalised and p.own_sign > 0 then 'own_sign'
              when p_personalised and p.engagement > 0 then 'engagement'
              else 'default_order' end
    from parts p
$$;

-- Notification candidates (campaign codes the messaging work sends): a fixed order unless
-- personalised; personalised puts first what the user's state suggests (a favourite reader to
-- follow, a booking coming up, a lapsed user to bring back, a sign to read).
create or replace function app.rank_notifications(p_user uuid, p_device text, p_personalised boolean)
returns table (item text, score numeric, rationale text)
language sql stable security definer set search_path = '' as $$
  with base (code, pos) as (
    values ('daily_horoscope', 1), ('favourite_reader_online', 2), ('booking_reminder', 3), ('new_reader', 4),
           ('come_back', 5)
  ),
  facts as (
    select exists (select 1 from public.favourites f where f.client_id = p_user) as has_favourite,
           exists (select 1 from public.bookings b where b.client_id = p_user and b.status = 'confirmed'
                                                  and b.starts_at > now()) as has_booking,
           coalesce((select max(u.day) from public.metrics_daily_users u where u.user_id = p_user)
                      < app.beirut_day(now()) - 14, false) as lapsed,
           (select p.zodiac from public.profiles p where p.id = p_user) is not null as has_sign
  ),
  parts as (
    select b.code, b.pos,
           case when b.code = 'favourite_reader_online' and f.has_favourite then 2
                when b.code = 'booking_reminder' and f.has_booking then 2.5
                when b.code = 'come_back' and f.lapsed then 3
                when b.code = 'daily_horoscope' and f.has_sign then 1
                else 0 end as signal,
           case b.code when 'favourite_reader_online' then 'favourite' when 'booking_reminder' then 'affinity'
                       when 'come_back' then 'engagement' when 'daily_horoscope' then 'own_sign'
                       else 'default_order' end as why
      from base b cross join facts f
  )
  select p.code, round(case when p_personalised then p.signal else 0 end + (6 - p.pos)::numeric / 5000, 6),
         case when p_personalised and p.signal > 0 then p.why else 'default_order' end
    from parts p
$$;

create or replace function app.personalize(p_user uuid, p_kind text, p_device text, p_personalised boolean)
returns table (item text, score numeric, rationale text)
language sql stable security definer set search_path = '' as $$
  select * from app.rank_readers(p_user, p_device, p_personalised) where p_kind = 'readers'
  union all select * from app.rank_services(p_user, p_device, p_personalised) where p_kind = 'services'
  union all select * from app.rank_horoscopes(p_user, p_device, p_personalised) where p_kind = 'horoscopes'
  union all select * from app.rank_notifications(p_user, p_device, p_personalised) where p_kind = 'notifications'
$$;

-- Staff and services: rank for a user and record the decision (variant, bucket, scores,
-- rationale, confidence). Returns ids and ranks only (one row with no item when there is
-- nothing to rank).
create or replace function app.record_recommendation(p_user uuid, p_kind text, p_device text, p_limit integer)
returns table (decision_id bigint, variant text, item text, rank integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v record;
  did bigint;
  ids text[];
  sc numeric[];
  why text[];
  history bigint;
begin
  if not (coalesce(app.is_staff(), false) or current_setting('role') = 'service_role') then
    raise exception 'personalization is for staff and services' using errcode = '42501', hint = 'forbidden';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user and p.deleted_at is null) then
    raise exception 'no such user' using errcode = 'P0002', hint = 'not_found';
  end if;
  select * into v from app.personalization_variant(p_user, p_kind);
  if v.variant is null then
    raise exception 'unknown kind %', p_kind using errcode = '22023', hint = 'validation_error';
  end if;
  select coalesce(array_agg(x.item order by x.pos), '{}'), coalesce(array_agg(x.score order by x.pos), '{}'),
         coalesce(array_agg(x.rationale order by x.pos), '{}')
    into ids, sc, why
    from (select r.*, row_number() over (order by r.score desc, r.item) as pos
            from app.personalize(p_user, p_kind, p_device, v.variant = 'personalised') r) x
   where x.pos <= p_limit;
  select h.events into history from app.personalization_history(p_user) h;
  insert into public.personalization_decisions (user_id, kind, variant, bucket, device, items, scores, rationale,
                                                confidence, requested_by)
  values (p_user, p_kind, v.variant, v.bucket, p_device, ids, sc, why,
          case when v.variant = 'personalised' then round(least(1, history / 20.0), 3) else 0 end, auth.uid())
  returning id into did;
  return query select did, v.variant, u.item, u.ord::integer from unnest(ids) with ordinality as u (item, ord)
               union all select did, v.variant, null, null where cardinality(ids) = 0;
end
$$;

-- The storefront: the signed-in caller's own ranking (ids and ranks; nothing else).
create or replace function app.ranked_items(p_kind text, p_device text default null)
returns table (item text, rank integer)
language sql stable security definer set search_path = '' as $$
  select r.item, (row_number() over (order by r.score desc, r.item))::integer
    from app.personalization_variant(auth.uid(), p_kind) v
    cross join lateral app.personalize(auth.uid(), p_kind, p_device, v.variant = 'personalised') r
   where auth.uid() is not null
$$;

revoke all on function app.personalization_allowed(uuid), app.personalization_variant(uuid, text),
  app.personalization_history(uuid), app.rank_readers(uuid, text, boolean), app.rank_services(uuid, text, boolean),
  app.rank_horoscopes(uuid, text, boolean), app.rank_notifications(uuid, text, boolean),
  app.personalize(uuid, text, text, boolean), app.record_recommendation(uuid, text, text, integer),
  app.ranked_items(text, text) from public;
grant execute on function app.record_recommendation(uuid, text, text, integer), app.ranked_items(text, text)
  to authenticated, service_role;

select app.lock_down('personalization_arms', 'personalization_opt_outs', 'personalization_decisions');
grant select, update (personalised_pct) on public.personalization_arms to authenticated;
grant select, insert, delete on public.personalization_opt_outs to authenticated;
grant select on public.personalization_decisions to authenticated;

drop policy if exists personalization_arms_admin on public.personalization_arms;
create policy personalization_arms_admin on public.personalization_arms for select to authenticated
  using ((select app.is_admin()));

drop policy if exists personalization_arms_update on public.personalization_arms;
create policy personalization_arms_update on public.personalization_arms for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

drop policy if exists personalization_opt_outs_own on public.personalization_opt_outs;
create policy personalization_opt_outs_own on public.personalization_opt_outs for all to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

drop policy if exists personalization_opt_outs_admin on public.personalization_opt_outs;
create policy personalization_opt_outs_admin on public.personalization_opt_outs for select to authenticated
  using ((select app.is_admin()));

drop policy if exists personalization_decisions_admin on public.personalization_decisions;
create policy personalization_decisions_admin on public.personalization_decisions for select to authenticated
  using ((select app.is_admin()));
