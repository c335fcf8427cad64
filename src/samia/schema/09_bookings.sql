-- Bookings: free slots computed from readers' weekly rules (in their own zone, DST-correct)
-- and exceptions; holds, confirmations, cancellations and reschedules on the one capacity
-- ledger (reader_capacity), whose exclusion constraint decides every race.

-- Free slots, computed here: weekly rules turned into absolute time day by day in the
-- reader's zone (so a DST change moves the instants, not the wall-clock hours), plus 'open'
-- exceptions, minus 'block' exceptions and every active capacity row, cut into slots of the
-- service's length, in the future only.
create or replace function app.free_slots(p_reader uuid, p_service bigint, p_from timestamptz, p_to timestamptz)
returns table (starts_at timestamptz, ends_at timestamptz)
language sql stable security definer set search_path = '' as $$
  with svc as (
    select make_interval(mins => s.duration_minutes) as len from public.services s
     where s.id = p_service and s.is_active
       and exists (select 1 from public.reader_services rs
                    where rs.reader_id = p_reader and rs.service_id = s.id and rs.active)
  ),
  windows as (
    select tstzrange((d::date + r.start_time) at time zone r.tz, (d::date + r.end_time) at time zone r.tz) as w
      from public.availability_rules r,
           -- local calendar days as plain timestamps: no dependence on the session's zone
           generate_series(((p_from at time zone r.tz)::date - 1)::timestamp,
                           ((p_to at time zone r.tz)::date + 1)::timestamp, interval '1 day') d
     where r.reader_id = p_reader and extract(isodow from d) = r.weekday
    union all
    select e.during from public.availability_exceptions e
     where e.reader_id = p_reader and e.kind = 'open' and e.during && tstzrange(p_from, p_to)
  ),
  slots as (
    select t as s, t + svc.len as e
      from windows, svc,
           generate_series(lower(w), upper(w) - svc.len, svc.len) t
  )
  select distinct s, e from slots
   where s >= greatest(p_from, now()) and e <= p_to
     and not exists (select 1 from public.availability_exceptions b
                      where b.reader_id = p_reader and b.kind = 'block' and b.during && tstzrange(s, e))
     and not exists (select 1 from public.reader_capacity c
                      where c.reader_id = p_reader and c.status in ('confirmed', 'live')
                        and c.during && tstzrange(s, e))
     and not exists (select 1 from public.reader_capacity c
                      where c.reader_id = p_reader and c.status = 'held' and c.expires_at > now()
                        and c.during && tstzrange(s, e))
   order by s
$$;

grant execute on function app.free_slots(uuid, bigint, timestamptz, timestamptz) to anon, authenticated, service_role;

create or replace function app.lock_reader_time(p_reader uuid) returns void
language sql volatile set search_path = '' as $$
  select pg_advisory_xact_lock(hashtextextended('reader_capacity:' || p_reader, 0))
$$;

-- A provisional hold. Expires the reader's stale holds first, in the same transaction, so an
-- expired hold never blocks anyone; the exclusion constraint decides every race.
create or replace function app.hold_slot(p_reader uuid, p_service bigint, p_starts timestamptz, p_ttl interval)
returns public.bookings
language plpgsql volatile security definer set search_path = '' as $$
declare
  svc public.services;
  cap_id bigint;
  b public.bookings;
begin
  if app.user_role() is distinct from 'client' then
    raise exception 'only clients book' using errcode = '42501', hint = 'forbidden';
  end if;
  perform app.require_may_transact();  -- adults who accepted the current terms (01_identity.sql)
  select * into svc from public.services where id = p_service and is_active;
  if svc.id is null then
    raise exception 'unknown service' using errcode = '23503', hint = 'invalid_reference', column = 'service_id';
  end if;
  if not exists (select 1 from app.free_slots(p_reader, p_service, p_starts,
                                              p_starts + make_interval(mins => svc.duration_minutes)) f
                  where f.starts_at = p_starts) then
    -- not free: a stale hold on it is cleared below; anything else is outside availability
    if not exists (select 1 from public.reader_capacity c
                    where c.reader_id = p_reader and c.status = 'held' and c.expires_at <= now()
                      and c.during && tstzrange(p_starts, p_starts + make_interval(mins => svc.duration_minutes)))
       and not exists (select 1 from public.reader_capacity c
                        where c.reader_id = p_reader and c.status in ('held', 'confirmed', 'live')
                          and c.during && tstzrange(p_starts, p_starts + make_interval(mins => svc.duration_minutes)))
    then
      raise exception 'the reader is not available then' using errcode = '23514', hint = 'not_available',
        column = 'starts_at';
    end if;
  end if;
  -- Claims on one reader's time go one at a time. The exclusion constraint is what forbids
  -- overlaps; this lock only keeps concurrent conflicting inserts from deadlocking on each
  -- other's index entries (each would wait for the other), so a loser gets 23P01 at once.
  perform app.lock_reader_time(p_reader);
  update public.reader_capacity set status = 'expired'
   where reader_id = p_reader and status = 'held' and expires_at <= now();
  update public.bookings bk set status = 'expired'
   where bk.reader_id = p_reader and bk.status = 'held'
     and exists (select 1 from public.reader_capacity c where c.id = bk.capacity_id and c.status = 'expired');
  insert into public.reader_capacity (reader_id, during, kind, status, expires_at)
  values (p_reader, tstzrange(p_starts, p_starts + make_interval(mins => svc.duration_minutes)), 'hold', 'held',
          now() + p_ttl)
  returning id into cap_id;
  insert into public.bookings (client_id, reader_id, service_id, capacity_id, starts_at, ends_at, price_minor,
                               currency, policy)
  values (auth.uid(), p_reader, svc.id, cap_id, p_starts, p_starts + make_interval(mins => svc.duration_minutes),
          (select p.price_minor from app.service_price(svc.id, null) p), svc.currency, svc.policy)
  returning * into b;
  perform app.audit('booking.hold', 'booking', b.id::text,
                    jsonb_build_object('reader', p_reader, 'service', svc.code, 'starts_at', p_starts));
  return b;
end
$$;

revoke all on function app.hold_slot(uuid, bigint, timestamptz, interval) from public;
grant execute on function app.hold_slot(uuid, bigint, timestamptz, interval) to authenticated;

select app.lock_down('availability_rules', 'availability_exceptions', 'reader_capacity', 'bookings');

-- A reader manages their own time; an admin manages readers' time (never their own: only
-- readers have availability).
create or replace function app.may_manage_availability(p_reader uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select case
    when p_reader = auth.uid() then coalesce(app.user_role() = 'reader', false)
    else app.is_admin() and exists (select 1 from public.profiles p where p.id = p_reader and p.role_id = 3)
  end
$$;

grant execute on function app.may_manage_availability(uuid) to authenticated;
grant select, insert, update, delete on public.availability_rules, public.availability_exceptions to authenticated;

drop policy if exists availability_rules_read on public.availability_rules;
create policy availability_rules_read on public.availability_rules for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

drop policy if exists availability_rules_own on public.availability_rules;
create policy availability_rules_own on public.availability_rules for all to authenticated
  using (app.may_manage_availability(reader_id)) with check (app.may_manage_availability(reader_id));

drop policy if exists availability_exceptions_read on public.availability_exceptions;
create policy availability_exceptions_read on public.availability_exceptions for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

drop policy if exists availability_exceptions_own on public.availability_exceptions;
create policy availability_exceptions_own on public.availability_exceptions for all to authenticated
  using (app.may_manage_availability(reader_id)) with check (app.may_manage_availability(reader_id));

grant select on public.reader_capacity to authenticated;

drop policy if exists reader_capacity_read on public.reader_capacity;
create policy reader_capacity_read on public.reader_capacity for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff())
         or exists (select 1 from public.bookings b
                     where b.capacity_id = reader_capacity.id and b.client_id = (select auth.uid())));

grant select on public.bookings to authenticated;
grant update (status, cancelled_at, cancel_reason) on public.bookings to authenticated;

drop policy if exists bookings_read on public.bookings;
create policy bookings_read on public.bookings for select to authenticated
  using (client_id = (select auth.uid()) or reader_id = (select auth.uid()) or (select app.is_staff()));

-- The caller's relation to a booking: 'client', 'reader', 'admin', or null (monitors and
-- strangers may look but not change).
create or replace function app.booking_party(p_booking bigint) returns text
language sql stable security definer set search_path = '' as $$
  select case
    when b.client_id = auth.uid() then 'client'
    when b.reader_id = auth.uid() then 'reader'
    when app.is_admin() then 'admin'
  end
  from public.bookings b where b.id = p_booking
$$;

grant execute on function app.booking_party(bigint) to authenticated, samia_payments, service_role;

-- What was paid for a booking, for any party of it (a reader cancelling cannot read the
-- client's payment rows under RLS, yet must refund them).
create or replace function app.booking_charge(p_booking bigint)
returns table (amount_minor bigint, provider text, provider_ref text)
language sql stable security definer set search_path = '' as $$
  select t.amount_minor, t.provider, t.provider_ref from public.payment_transactions t
   where t.booking_id = p_booking and t.kind = 'charge' and t.status = 'succeeded'
     and app.booking_party(p_booking) is not null
$$;

grant execute on function app.booking_charge(bigint) to authenticated, samia_payments, service_role;

-- Cancel (or release, while only held). The refund amount and destination come from the
-- policy snapshot, evaluated by the API's pure function; a provider refund, if any, has
-- already been executed (p_refund_ref). Money moves here, in the same transaction.
create or replace function app.cancel_booking(p_booking bigint, p_by text, p_reason text, p_refund bigint,
                                              p_destination text, p_refund_ref text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.bookings;
  charge public.payment_transactions;
  rid bigint;
begin
  select * into b from public.bookings where id = p_booking for update;
  -- 'system' only from a job: the role that was SET (current_user here is the definer)
  if b.id is null or (p_by is distinct from app.booking_party(p_booking)
                      and not (p_by = 'system' and current_setting('role') = 'service_role')) then
    raise exception 'no such booking' using errcode = 'P0002', hint = 'not_found';
  end if;
  if b.status = 'held' then
    update public.reader_capacity set status = 'released' where id = b.capacity_id and status = 'held';
    update public.bookings set status = 'released', cancelled_at = now(), cancel_reason = p_reason where id = b.id;
    perform app.audit('booking.release', 'booking', b.id::text, jsonb_build_object('by', p_by));
    return 'released';
  end if;
  if b.status <> 'confirmed' then
    raise exception 'this booking can no longer be cancelled (%)', b.status
      using errcode = '55000', hint = 'not_cancellable';
  end if;
  if p_refund > 0 then
    select * into charge from public.payment_transactions
     where booking_id = b.id and kind = 'charge' and status = 'succeeded';
    if charge.id is null or p_refund > charge.amount_minor then
      raise exception 'refund exceeds what was paid' using errcode = '23514', hint = 'validation_error';
    end if;
    insert into public.payment_transactions (user_id, provider, kind, status, amount_minor, currency, booking_id,
                                             parent_id, provider_ref)
    values (b.client_id, case when p_destination = 'wallet' then 'wallet' else charge.provider end, 'refund',
            'succeeded', p_refund, charge.currency, b.id, charge.id, p_refund_ref)
    returning id into rid;
    perform app.ledger_move('revenue',
                            case when p_destination = 'wallet' or charge.provider = 'wallet' then 'wallet:' || b.client_id
                                 else 'provider:' || charge.provider end,
                            p_refund, charge.currency, rid, 'refund booking ' || b.id, b.client_id);
  end if;
  update public.reader_capacity set status = 'cancelled' where id = b.capacity_id;
  update public.bookings set status = 'cancelled', cancelled_at = now(), cancel_reason = p_reason,
         refund_minor = p_refund, refund_to = p_destination where id = b.id;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  select r, 'email', 'booking_cancelled', jsonb_build_object('booking', b.id, 'by', p_by)
    from unnest(array[b.client_id, b.reader_id]) r;
  perform app.audit('booking.cancel', 'booking', b.id::text,
                    jsonb_build_object('by', p_by, 'refund_minor', p_refund, 'refund_to', p_destination));
  return 'cancelled';
end
$$;

revoke all on function app.cancel_booking(bigint, text, text, bigint, text, text) from public;
grant execute on function app.cancel_booking(bigint, text, text, bigint, text, text) to samia_payments, service_role;

-- Rescheduling a confirmed booking (moves its capacity row: the exclusion constraint decides
-- whether the new time is free).

create or replace function app.reschedule_booking(p_booking bigint, p_starts timestamptz) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.bookings;
  len interval;
begin
  select * into b from public.bookings where id = p_booking for update;
  if b.id is null or app.booking_party(p_booking) is distinct from 'client' then
    raise exception 'no such booking' using errcode = 'P0002', hint = 'not_found';
  end if;
  if b.status <> 'confirmed' then
    raise exception 'only a confirmed booking can be rescheduled' using errcode = '55000', hint = 'not_reschedulable';
  end if;
  len := b.ends_at - b.starts_at;
  perform app.lock_reader_time(b.reader_id);
  -- not offered at all → 422; offered but taken by someone else → the exclusion constraint (409)
  if not exists (select 1 from app.free_slots(b.reader_id, b.service_id, p_starts, p_starts + len) f
                  where f.starts_at = p_starts)
     and not exists (select 1 from public.reader_capacity c
                      where c.reader_id = b.reader_id and c.id <> b.capacity_id
                        and c.status in ('held', 'confirmed', 'live') and c.during && tstzrange(p_starts, p_starts + len)) then
    raise exception 'the reader is not available then' using errcode = '23514', hint = 'not_available',
      column = 'starts_at';
  end if;
  update public.reader_capacity set during = tstzrange(p_starts, p_starts + len) where id = b.capacity_id;
  update public.bookings set starts_at = p_starts, ends_at = p_starts + len, reschedules = reschedules + 1,
         reminded = '{}' where id = b.id;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (b.reader_id, 'email', 'booking_rescheduled', jsonb_build_object('booking', b.id));
  perform app.audit('booking.reschedule', 'booking', b.id::text,
                    jsonb_build_object('from', b.starts_at, 'to', p_starts));
end
$$;

revoke all on function app.reschedule_booking(bigint, timestamptz) from public;
grant execute on function app.reschedule_booking(bigint, timestamptz) to authenticated;

-- The client confirms the preparation a service asks for (Healing Energy's pre-ritual) before
-- its call can start; the reader sees when. Confirming twice keeps the first time.
create or replace function app.confirm_pre_ritual(p_booking bigint) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.bookings;
begin
  select * into b from public.bookings where id = p_booking and client_id = auth.uid() for update;
  if b.id is null then
    raise exception 'no such booking' using errcode = 'P0002', hint = 'not_found';
  end if;
  if not exists (select 1 from public.services s where s.id = b.service_id and s.pre_ritual_en is not null) then
    raise exception 'this session has no preparation to confirm' using errcode = '55000', hint = 'no_pre_ritual';
  end if;
  if b.status not in ('held', 'confirmed') then
    raise exception 'the booking is %', b.status using errcode = '55000', hint = 'illegal_transition';
  end if;
  if b.pre_ritual_confirmed_at is null then
    update public.bookings set pre_ritual_confirmed_at = now() where id = b.id returning * into b;
    perform app.audit('booking.pre_ritual_confirmed', 'booking', b.id::text, '{}'::jsonb);
  end if;
  return b.pre_ritual_confirmed_at;
end
$$;
revoke all on function app.confirm_pre_ritual(bigint) from public;
grant execute on function app.confirm_pre_ritual(bigint) to authenticated;
