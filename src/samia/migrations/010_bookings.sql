-- Bookings: readers' weekly availability in their own time zone, exceptions, and ONE
-- capacity ledger for all of a reader's time. Holds, confirmed bookings and live calls are
-- rows of reader_capacity; an exclusion constraint over the active statuses makes an
-- overlap impossible whatever path writes.

alter table public.services
  add column if not exists duration_minutes integer not null default 30 check (duration_minutes between 5 and 480),
  add column if not exists policy jsonb not null default '{
    "refund_curve": [{"hours_before": 24, "refund_pct": 100},
                     {"hours_before": 2, "refund_pct": 50},
                     {"hours_before": 0, "refund_pct": 0}],
    "refund_to": "original",
    "reschedule": {"max": 1, "notice_hours": 12},
    "guarantee_quota": 0,
    "reader_no_show_minutes": 10}'::jsonb;

create table if not exists public.reader_services (
  reader_id  uuid not null references public.profiles (id),
  service_id bigint not null references public.services (id),
  active     boolean not null default true,
  primary key (reader_id, service_id)
);

-- Weekly rules: ISO weekday (1 = Monday) and local wall-clock times in the reader's zone.
create table if not exists public.availability_rules (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  weekday    smallint not null check (weekday between 1 and 7),
  start_time time not null,
  end_time   time not null,
  tz         text not null,
  check (end_time > start_time)
);
create index if not exists availability_rules_reader on public.availability_rules (reader_id, weekday);

-- Exceptions in absolute time: 'block' removes time, 'open' adds it.
create table if not exists public.availability_exceptions (
  id        bigint generated always as identity primary key,
  reader_id uuid not null references public.profiles (id),
  during    tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
  kind      text not null check (kind in ('block', 'open')),
  note      text check (length(note) <= 200)
);
create index if not exists availability_exceptions_reader on public.availability_exceptions using gist (reader_id, during);

create table if not exists public.reader_capacity (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  during     tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
  kind       text not null check (kind in ('hold', 'booking', 'call')),
  status     text not null check (status in ('held', 'confirmed', 'live', 'expired', 'released', 'cancelled',
                                             'completed')),
  expires_at timestamptz,
  created_at timestamptz not null default now(),
  check (status <> 'held' or expires_at is not null),
  constraint reader_capacity_no_overlap exclude using gist (reader_id with =, during with &&)
    where (status in ('held', 'confirmed', 'live'))
);
create index if not exists reader_capacity_stale on public.reader_capacity (expires_at) where status = 'held';

create table if not exists public.bookings (
  id              bigint generated always as identity primary key,
  client_id       uuid not null references public.profiles (id),
  reader_id       uuid not null references public.profiles (id),
  service_id      bigint not null references public.services (id),
  capacity_id     bigint not null references public.reader_capacity (id),
  starts_at       timestamptz not null,
  ends_at         timestamptz not null,
  status          text not null default 'held'
                  check (status in ('held', 'confirmed', 'expired', 'released', 'cancelled', 'completed',
                                    'no_show')),
  price_minor     integer not null check (price_minor >= 0),
  currency        char(3) not null,
  policy          jsonb not null,          -- snapshot of the service policy at purchase
  reschedules     smallint not null default 0,
  reminded        text[] not null default '{}',
  created_at      timestamptz not null default now(),
  confirmed_at    timestamptz,
  cancelled_at    timestamptz,
  cancel_reason   text check (length(cancel_reason) <= 500),
  check (ends_at > starts_at)
);
create index if not exists bookings_client on public.bookings (client_id, starts_at desc);
create index if not exists bookings_reader on public.bookings (reader_id, starts_at);
create index if not exists bookings_upcoming on public.bookings (starts_at) where status = 'confirmed';

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
          svc.price_minor, svc.currency, svc.policy)
  returning * into b;
  perform app.audit('booking.hold', 'booking', b.id::text,
                    jsonb_build_object('reader', p_reader, 'service', svc.code, 'starts_at', p_starts));
  return b;
end
$$;
revoke all on function app.hold_slot(uuid, bigint, timestamptz, interval) from public;
grant execute on function app.hold_slot(uuid, bigint, timestamptz, interval) to authenticated;

-- RLS: readers manage their own availability; everyone signed in may read availability
-- rules (the probe); the capacity ledger and bookings are visible to the parties and staff.
select app.lock_down('reader_services', 'availability_rules', 'availability_exceptions', 'reader_capacity',
                     'bookings');

grant select on public.reader_services to authenticated;
grant insert, update, delete on public.reader_services to authenticated;
drop policy if exists reader_services_read on public.reader_services;
create policy reader_services_read on public.reader_services for select to authenticated using (true);
drop policy if exists reader_services_admin on public.reader_services;
create policy reader_services_admin on public.reader_services for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

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

-- migrate:down
drop function if exists app.hold_slot(uuid, bigint, timestamptz, interval);
drop function if exists app.lock_reader_time(uuid);
drop function if exists app.free_slots(uuid, bigint, timestamptz, timestamptz);
drop function if exists app.may_manage_availability(uuid) cascade;
drop table if exists public.bookings, public.reader_capacity, public.availability_exceptions,
  public.availability_rules, public.reader_services cascade;
alter table public.services drop column if exists policy, drop column if exists duration_minutes;
