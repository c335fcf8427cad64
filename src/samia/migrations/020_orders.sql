-- Orders: the workflow from a client's question to approved audio (seeds 003 §8).
--
-- The allowed status transitions are a table (mirrored by samia.orders.workflow and
-- compared by a test); a trigger refuses any other move whichever path tries it, checks
-- who may make it, and which columns each role may touch. The monitor's approval pins
-- the exact file (its sha256); only that hash is ever served to the client.

alter table public.services
  add column if not exists kind text not null default 'reading' check (kind in ('reading', 'call')),
  add column if not exists delivery_minutes integer not null default 1440 check (delivery_minutes between 5 and 43200),
  add column if not exists gold_delivery_minutes integer not null default 60 check (gold_delivery_minutes between 5 and 43200),
  add column if not exists review_minutes integer not null default 120 check (review_minutes between 5 and 10080),
  add column if not exists gold_review_minutes integer not null default 30 check (gold_review_minutes between 5 and 10080),
  add column if not exists gold_surcharge_minor integer not null default 0 check (gold_surcharge_minor >= 0);
update public.services set kind = 'call' where code in ('healing', 'direct_call');

alter table public.orders
  add column if not exists price_minor bigint not null default 0 check (price_minor >= 0),
  add column if not exists currency char(3) not null default 'USD',
  add column if not exists inputs jsonb not null default '{}'::jsonb,
  add column if not exists chart jsonb,
  add column if not exists assigned_at timestamptz,
  add column if not exists deliver_by timestamptz,
  add column if not exists submitted_at timestamptz,
  add column if not exists review_by timestamptz,
  add column if not exists delivery_breached_at timestamptz,
  add column if not exists review_breached_at timestamptz,
  add column if not exists reject_reason text check (length(reject_reason) between 3 and 2000),
  add column if not exists approved_media_id bigint references public.media_assets (id),
  add column if not exists approved_sha256 text check (approved_sha256 ~ '^[0-9a-f]{64}$'),
  add column if not exists approved_by uuid references public.profiles (id),
  add column if not exists approved_at timestamptz,
  add column if not exists cancelled_at timestamptz;
create index if not exists orders_clock_delivery on public.orders (deliver_by)
  where status in ('new', 'assigned', 'in_progress', 'rejected') and delivery_breached_at is null;
create index if not exists orders_clock_review on public.orders (review_by)
  where status = 'awaiting_approval' and review_breached_at is null;

create table if not exists app.order_transitions (
  from_status public.order_status not null,
  to_status   public.order_status not null,
  roles       text[] not null,
  primary key (from_status, to_status)
);
insert into app.order_transitions values
  ('new', 'assigned', '{admin,superadmin}'),
  ('new', 'cancelled', '{client,admin,superadmin}'),
  ('assigned', 'in_progress', '{reader}'),
  ('assigned', 'cancelled', '{client,admin,superadmin}'),
  ('in_progress', 'awaiting_approval', '{reader}'),
  ('in_progress', 'assigned', '{admin,superadmin}'),
  ('awaiting_approval', 'approved', '{monitor,admin,superadmin}'),
  ('awaiting_approval', 'rejected', '{monitor,admin,superadmin}'),
  ('rejected', 'in_progress', '{reader}'),
  ('rejected', 'assigned', '{admin,superadmin}'),
  ('approved', 'delivered', '{monitor,admin,superadmin}'),
  ('delivered', 'archived', '{client,admin,superadmin}'),
  ('cancelled', 'archived', '{admin,superadmin}')
on conflict (from_status, to_status) do update set roles = excluded.roles;
grant usage on schema app to authenticated;
grant select on app.order_transitions to authenticated, service_role;

-- A reader who may take an order of this service now.
create or replace function app.reader_eligible(p_reader uuid, p_service bigint) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.profiles p
      join public.reader_services rs on rs.reader_id = p.id and rs.service_id = p_service and rs.active
     where p.id = p_reader and p.role_id = 3 and p.deleted_at is null
       and (p.blocked_at is null or p.blocked_until < now()))
$$;
grant execute on function app.reader_eligible(uuid, bigint) to authenticated, service_role;

-- New orders: lifecycle fields are the database's, never the caller's.
create or replace function app.orders_new() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  s public.services;
begin
  select * into s from public.services where id = new.service_id;
  if s.id is null or not s.is_active or s.kind <> 'reading' then
    raise exception 'this service cannot be ordered as a reading' using errcode = '23514', hint = 'not_orderable',
      column = 'service';
  end if;
  new.status := 'new';
  new.assigned_reader := null; new.assigned_at := null; new.output_media_id := null;
  new.submitted_at := null; new.review_by := null; new.delivered_at := null; new.cancelled_at := null;
  new.delivery_breached_at := null; new.review_breached_at := null; new.reject_reason := null;
  new.approved_media_id := null; new.approved_sha256 := null; new.approved_by := null; new.approved_at := null;
  new.price_minor := s.price_minor + case when new.is_gold then s.gold_surcharge_minor else 0 end;
  new.currency := s.currency;
  new.created_at := now();
  new.deliver_by := now() + make_interval(mins => case when new.is_gold then s.gold_delivery_minutes
                                                        else s.delivery_minutes end);
  return new;
end
$$;
drop trigger if exists trg_orders_new on public.orders;
create trigger trg_orders_new before insert on public.orders for each row execute function app.orders_new();

-- Every update: the transition table, the caller's role, the columns that role may touch,
-- then the fields each transition maintains. Invoker: in the request path current_user is
-- `authenticated` and RLS already limited the rows; jobs and the owner skip the role check.
create or replace function app.orders_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  r text := app.user_role();
  request boolean := current_user = 'authenticated';
  allowed text[];
  editable text[];
  m public.media_assets;
  s public.services;
begin
  if new.status is distinct from old.status then
    select t.roles into allowed from app.order_transitions t
     where t.from_status = old.status and t.to_status = new.status;
    if allowed is null then
      raise exception 'an order cannot go from % to %', old.status, new.status
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    if request and not coalesce(r = any (allowed), false) then
      raise exception 'a % may not move an order from % to %', coalesce(r, 'caller'), old.status, new.status
        using errcode = '42501', hint = 'forbidden';
    end if;
  end if;
  if request then
    editable := case when r = 'reader' then array['output_media_id']
                     when r = 'monitor' then array['reject_reason']
                     when r in ('admin', 'superadmin') then array['assigned_reader', 'is_gold', 'reject_reason']
                     else array[]::text[] end;
    if (to_jsonb(new) - editable - 'status' - 'updated_at') is distinct from
       (to_jsonb(old) - editable - 'status' - 'updated_at') then
      raise exception 'these fields of an order are not yours to change' using errcode = '42501', hint = 'protected_field';
    end if;
  end if;

  if new.assigned_reader is distinct from old.assigned_reader then
    if new.status <> 'assigned' then
      raise exception 'an order is (re)assigned only by moving it to assigned'
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    if not app.reader_eligible(new.assigned_reader, new.service_id) then
      raise exception 'that reader does not offer this service or is not active'
        using errcode = '23514', hint = 'reader_not_eligible', column = 'reader_id';
    end if;
    new.assigned_at := now();
    new.output_media_id := null;  -- a new reader starts from nothing
  elsif new.status = 'assigned' and old.status <> 'assigned' then
    raise exception 'moving an order to assigned needs a (new) reader' using errcode = '23514', hint = 'reader_required',
      column = 'reader_id';
  end if;
  if new.status = 'assigned' and old.status = 'new' and new.service_id = (select id from public.services where code = 'coffee')
     and not exists (select 1 from public.order_attachments a where a.order_id = new.id) then
    raise exception 'a coffee-cup reading needs at least one photo of the cup' using errcode = '55000', hint = 'photos_missing';
  end if;

  if new.output_media_id is distinct from old.output_media_id and new.output_media_id is not null then
    if not (old.status = 'in_progress' and new.status = 'in_progress') then
      raise exception 'audio can be uploaded only while the order is in progress'
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    select * into m from public.media_assets where id = new.output_media_id;
    if m.id is null or m.kind <> 'audio' or m.owner_id is distinct from new.assigned_reader then
      raise exception 'the output must be audio uploaded by the assigned reader' using errcode = '23514',
        hint = 'validation_error', column = 'output_media_id';
    end if;
  end if;

  if new.status is distinct from old.status then
    select * into s from public.services where id = new.service_id;
    case new.status
      when 'awaiting_approval' then
        if new.output_media_id is null then
          raise exception 'upload the audio before submitting' using errcode = '55000', hint = 'output_missing';
        end if;
        new.submitted_at := now();
        new.review_by := now() + make_interval(mins => case when new.is_gold then s.gold_review_minutes
                                                             else s.review_minutes end);
        new.review_breached_at := null;
        new.reject_reason := null;
      when 'approved' then
        new.approved_media_id := new.output_media_id;
        new.approved_sha256 := (select sha256 from public.media_assets where id = new.output_media_id);
        new.approved_by := auth.uid();
        new.approved_at := now();
        insert into public.moderation_actions (actor_id, target_kind, target_id, action)
        values (auth.uid(), 'order', new.id::text, 'approve');
      when 'rejected' then
        if new.reject_reason is null then
          raise exception 'a rejection needs a reason for the reader' using errcode = '23514', hint = 'reason_required',
            column = 'reason';
        end if;
        insert into public.moderation_actions (actor_id, target_kind, target_id, action, reason)
        values (auth.uid(), 'order', new.id::text, 'reject', new.reject_reason);
      when 'delivered' then
        if new.approved_sha256 is null or new.approved_media_id is distinct from new.output_media_id then
          raise exception 'only approved audio is delivered' using errcode = '55000', hint = 'illegal_transition';
        end if;
        new.delivered_at := now();
      when 'cancelled' then
        new.cancelled_at := now();
      else
    end case;
  end if;
  return new;
end
$$;
drop trigger if exists trg_orders_guard on public.orders;
create trigger trg_orders_guard before update on public.orders for each row execute function app.orders_guard();

create or replace function app.orders_audit() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform app.audit('order.created', 'order', new.id::text,
                      jsonb_build_object('service_id', new.service_id, 'is_gold', new.is_gold,
                                         'price_minor', new.price_minor));
  elsif new.status is distinct from old.status then
    perform app.audit('order.' || new.status::text, 'order', new.id::text,
                      jsonb_build_object('from', old.status, 'to', new.status, 'reader', new.assigned_reader)
                      || case when new.status = 'approved' then jsonb_build_object('sha256', new.approved_sha256)
                              else '{}'::jsonb end);
    -- who hears about it: the reader of new and returned work, the client of a delivery
    insert into public.notification_outbox (recipient_id, channel, template, params)
    select x.recipient, 'email', x.template, jsonb_build_object('order', new.id)
      from (values (new.assigned_reader, 'order_assigned', new.status = 'assigned'),
                   (new.assigned_reader, 'order_rejected', new.status = 'rejected'),
                   (new.user_id, 'reading_delivered', new.status = 'delivered')) as x (recipient, template, fires)
     where x.fires and x.recipient is not null;
  elsif new.assigned_reader is distinct from old.assigned_reader then
    perform app.audit('order.reassigned', 'order', new.id::text,
                      jsonb_build_object('from_reader', old.assigned_reader, 'reader', new.assigned_reader));
  elsif new.output_media_id is distinct from old.output_media_id then
    perform app.audit('order.output_uploaded', 'order', new.id::text, jsonb_build_object('media', new.output_media_id));
  end if;
  return null;
end
$$;
drop trigger if exists trg_orders_audit on public.orders;
create trigger trg_orders_audit after insert or update on public.orders
  for each row execute function app.orders_audit();

-- Cup photos and other client inputs of an order.
create table if not exists public.order_attachments (
  order_id   bigint not null references public.orders (id),
  media_id   bigint not null unique references public.media_assets (id),
  created_at timestamptz not null default now(),
  primary key (order_id, media_id)
);

-- Breaches of the service clocks: strikes on readers, escalations to admins.
create table if not exists public.reader_strikes (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  order_id   bigint references public.orders (id),
  reason     text not null check (reason in ('delivery_breach', 'other')),
  created_at timestamptz not null default now(),
  unique (order_id, reason)
);
create index if not exists reader_strikes_reader on public.reader_strikes (reader_id, created_at desc);

create table if not exists public.order_escalations (
  id          bigint generated always as identity primary key,
  order_id    bigint not null references public.orders (id),
  kind        text not null check (kind in ('delivery_breach', 'review_overdue')),
  created_at  timestamptz not null default now(),
  resolved_at timestamptz
);
create index if not exists order_escalations_open on public.order_escalations (created_at) where resolved_at is null;

-- Orders are paid from the wallet; one live charge and at most one refund per order.
alter table public.payment_transactions add column if not exists order_id bigint references public.orders (id);
create unique index if not exists payment_transactions_one_order_charge on public.payment_transactions (order_id)
  where kind = 'charge' and status in ('pending', 'requires_action', 'succeeded');
create unique index if not exists payment_transactions_one_order_refund on public.payment_transactions (order_id)
  where kind = 'refund';

-- The ledger memo now names what was paid for: a booking or an order.
create or replace function app.settle_charge(p_txn bigint, p_provider_ref text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  t public.payment_transactions;
  b public.bookings;
  won boolean := true;
begin
  select * into t from public.payment_transactions where id = p_txn for update;
  if t.id is null or t.kind not in ('charge', 'topup') then
    raise exception 'no such charge' using errcode = 'P0002', hint = 'not_found';
  end if;
  if t.status = 'succeeded' then
    return 'already_settled';
  end if;
  if t.provider = 'wallet' then
    perform pg_advisory_xact_lock(hashtextextended('wallet:' || t.user_id, 0));
    if app.wallet_balance(t.user_id, t.currency) < t.amount_minor then
      update public.payment_transactions set status = 'failed', failure_reason = 'insufficient wallet balance',
             updated_at = now() where id = t.id;
      return 'insufficient_funds';
    end if;
  end if;
  update public.payment_transactions set status = 'succeeded', provider_ref = coalesce(p_provider_ref, provider_ref),
         updated_at = now() where id = t.id;
  if t.kind = 'topup' then
    perform app.ledger_move('provider:' || t.provider, 'wallet:' || t.user_id, t.amount_minor, t.currency, t.id,
                            'wallet top-up', t.user_id);
    perform app.audit('payment.topup', 'payment', t.id::text, jsonb_build_object('amount_minor', t.amount_minor));
    return 'settled';
  end if;
  perform app.ledger_move(case when t.provider = 'wallet' then 'wallet:' || t.user_id else 'provider:' || t.provider end,
                          'revenue', t.amount_minor, t.currency, t.id,
                          coalesce('booking ' || t.booking_id, 'order ' || t.order_id, 'charge ' || t.id), t.user_id);
  if t.booking_id is not null then
    select * into b from public.bookings where id = t.booking_id for update;
    perform app.lock_reader_time(b.reader_id);
    begin
      update public.reader_capacity set status = 'confirmed', kind = 'booking', expires_at = null
       where id = b.capacity_id;
    exception when exclusion_violation then
      won := false;  -- the hold lapsed and the time was taken meanwhile
    end;
    if won then
      update public.bookings set status = 'confirmed', confirmed_at = now() where id = b.id;
    else
      update public.reader_capacity set status = 'released' where id = b.capacity_id and status <> 'released';
      update public.bookings set status = 'released', refund_minor = t.amount_minor, refund_to = 'wallet'
       where id = b.id;
      perform app.ledger_move('revenue', 'wallet:' || t.user_id, t.amount_minor, t.currency, t.id,
                              'late payment for a lapsed booking ' || b.id || ': credited to the wallet', t.user_id);
      insert into public.notification_outbox (recipient_id, channel, template, params)
      values (t.user_id, 'email', 'late_payment_credited', jsonb_build_object('booking', b.id));
      perform app.audit('payment.late_credited', 'payment', t.id::text,
                        jsonb_build_object('booking', b.id, 'amount_minor', t.amount_minor));
      return 'credited_to_wallet';
    end if;
  end if;
  perform app.audit('payment.settled', 'payment', t.id::text,
                    jsonb_build_object('provider', t.provider, 'amount_minor', t.amount_minor, 'booking', t.booking_id,
                                       'order', t.order_id));
  return 'settled';
end
$$;

-- A provider's "paid" event settles a charge only for at least the amount, in the currency,
-- the charge asked for; otherwise it is recorded, left for an admin and flagged in the
-- audit log (a tampered or mistaken event never confirms a booking on its own).
drop function if exists app.apply_payment_event(text, text, text, text, text, text);
create or replace function app.apply_payment_event(p_provider text, p_event text, p_type text, p_ref text,
                                                   p_outcome text, p_reason text default null,
                                                   p_amount bigint default null, p_currency text default null)
returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  t public.payment_transactions;
begin
  insert into public.webhook_events (provider, event_id, event_type) values (p_provider, p_event, p_type)
  on conflict do nothing;
  if not found then
    return 'duplicate';
  end if;
  if p_outcome is null then
    return 'ignored';
  end if;
  select * into t from public.payment_transactions where provider = p_provider and provider_ref = p_ref;
  if t.id is not null and p_outcome = 'settled' then
    if p_amount is null or p_amount < t.amount_minor or upper(coalesce(p_currency, '')) <> t.currency then
      perform app.audit('payment.amount_mismatch', 'payment', t.id::text,
                        jsonb_build_object('expected', t.amount_minor, 'currency', t.currency, 'reported', p_amount,
                                           'reported_currency', upper(p_currency), 'event', p_event));
      return 'amount_mismatch';
    end if;
    perform app.settle_charge(t.id, p_ref);
  elsif t.id is not null and p_outcome = 'failed' then
    perform app.fail_charge(t.id, coalesce(p_reason, 'payment failed'));
  end if;
  return 'applied';
end
$$;
revoke all on function app.apply_payment_event(text, text, text, text, text, text, bigint, text) from public;
grant execute on function app.apply_payment_event(text, text, text, text, text, text, bigint, text)
  to samia_payments, service_role;

-- Give an order's payment back to the client's wallet, at most once whatever calls it
-- (client cancel, the delivery-breach job, an admin).
create or replace function app.refund_order(p_order bigint, p_reason text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.payment_transactions;
  r bigint;
begin
  select * into c from public.payment_transactions
   where order_id = p_order and kind = 'charge' and status = 'succeeded' for update;
  if c.id is null then
    return 'nothing_paid';
  end if;
  insert into public.payment_transactions (user_id, provider, kind, status, amount_minor, currency, order_id,
                                           parent_id, metadata)
  values (c.user_id, 'wallet', 'refund', 'succeeded', c.amount_minor, c.currency, p_order, c.id,
          jsonb_build_object('reason', p_reason))
  on conflict (order_id) where kind = 'refund' do nothing
  returning id into r;
  if r is null then
    return 'already_refunded';
  end if;
  perform app.ledger_move('revenue', 'wallet:' || c.user_id, c.amount_minor, c.currency, r,
                          'refund of order ' || p_order || ' (' || p_reason || ')', c.user_id);
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (c.user_id, 'email', 'order_refunded', jsonb_build_object('order', p_order, 'reason', p_reason));
  perform app.audit('payment.refunded', 'order', p_order::text,
                    jsonb_build_object('amount_minor', c.amount_minor, 'reason', p_reason, 'to', 'wallet'));
  return 'refunded';
end
$$;
revoke all on function app.refund_order(bigint, text) from public;
grant execute on function app.refund_order(bigint, text) to samia_payments, service_role;

-- The service clocks, run by the job engine every minute: a late delivery strikes the
-- reader (or escalates an unassigned order) and refunds the client to the wallet, once;
-- an overdue review escalates to the admins.
create or replace function app.order_clocks() returns table (delivery_breaches integer, review_breaches integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  o record;
  nd integer := 0;
  nr integer := 0;
begin
  for o in update public.orders set delivery_breached_at = now()
            where status in ('new', 'assigned', 'in_progress', 'rejected') and deliver_by < now()
              and delivery_breached_at is null
           returning id, assigned_reader, user_id
  loop
    nd := nd + 1;
    if o.assigned_reader is not null then
      insert into public.reader_strikes (reader_id, order_id, reason) values (o.assigned_reader, o.id, 'delivery_breach')
      on conflict do nothing;
    end if;
    insert into public.order_escalations (order_id, kind) values (o.id, 'delivery_breach');
    perform app.audit('order.delivery_breached', 'order', o.id::text, jsonb_build_object('reader', o.assigned_reader));
    perform app.refund_order(o.id, 'delivery_breach');
  end loop;
  for o in update public.orders set review_breached_at = now()
            where status = 'awaiting_approval' and review_by < now() and review_breached_at is null
           returning id
  loop
    nr := nr + 1;
    insert into public.order_escalations (order_id, kind) values (o.id, 'review_overdue');
    insert into public.notification_outbox (recipient_id, channel, template, params)
    select p.id, 'email', 'review_overdue', jsonb_build_object('order', o.id)
      from public.profiles p where p.role_id in (1, 2) and p.deleted_at is null;
    perform app.audit('order.review_breached', 'order', o.id::text, '{}'::jsonb);
  end loop;
  return query select nd, nr;
end
$$;
revoke all on function app.order_clocks() from public;
grant execute on function app.order_clocks() to service_role;

-- Least-loaded active reader who offers the service (open work counted), ties to the one
-- who was assigned least recently.
create or replace function app.pick_reader(p_service bigint) returns uuid
language sql stable security definer set search_path = '' as $$
  select rs.reader_id
    from public.reader_services rs
   where rs.service_id = p_service and rs.active and app.reader_eligible(rs.reader_id, p_service)
   order by (select count(*) from public.orders o where o.assigned_reader = rs.reader_id
              and o.status in ('assigned', 'in_progress', 'rejected', 'awaiting_approval')),
            (select max(o.assigned_at) from public.orders o where o.assigned_reader = rs.reader_id) nulls first,
            rs.reader_id
   limit 1
$$;
revoke all on function app.pick_reader(bigint) from public;
grant execute on function app.pick_reader(bigint) to authenticated, service_role;

select app.lock_down('order_attachments', 'reader_strikes', 'order_escalations');

-- Orders are placed by clients for themselves (not by admins on their behalf).
drop policy if exists orders_insert on public.orders;
create policy orders_insert on public.orders for insert to authenticated
  with check (user_id = (select auth.uid()) and (select app.user_role()) = 'client');

-- Orders: clients may also cancel and archive their own; monitors review.
drop policy if exists orders_update on public.orders;
create policy orders_update on public.orders for update to authenticated
  using ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
         or (user_id = (select auth.uid()) and (select app.user_role()) = 'client')
         or (select app.is_staff()))
  with check ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
              or (user_id = (select auth.uid()) and (select app.user_role()) = 'client')
              or (select app.is_staff()));

grant select, insert on public.order_attachments to authenticated;
drop policy if exists order_attachments_read on public.order_attachments;
create policy order_attachments_read on public.order_attachments for select to authenticated
  using (exists (select 1 from public.orders o where o.id = order_id));
drop policy if exists order_attachments_insert on public.order_attachments;
create policy order_attachments_insert on public.order_attachments for insert to authenticated
  with check (exists (select 1 from public.orders o where o.id = order_id and o.user_id = (select auth.uid())
                                                      and o.status = 'new'));

-- Media: readers also see the attachments of orders assigned to them.
drop policy if exists media_read on public.media_assets;
create policy media_read on public.media_assets for select to authenticated
  using (owner_id = (select auth.uid())
         or (select app.is_staff())
         or exists (select 1 from public.orders o
                     where o.assigned_reader = (select auth.uid())
                       and (media_assets.id in (o.input_media_id, o.output_media_id)
                            or exists (select 1 from public.order_attachments a
                                        where a.order_id = o.id and a.media_id = media_assets.id))));

grant select on public.reader_strikes to authenticated;
drop policy if exists reader_strikes_read on public.reader_strikes;
create policy reader_strikes_read on public.reader_strikes for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

grant select, update (resolved_at) on public.order_escalations to authenticated;
drop policy if exists order_escalations_staff on public.order_escalations;
create policy order_escalations_staff on public.order_escalations for select to authenticated
  using ((select app.is_staff()));
drop policy if exists order_escalations_resolve on public.order_escalations;
create policy order_escalations_resolve on public.order_escalations for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

-- The signed-URL content route runs as anon (the signature is its authority): it learns a
-- storage key only for the exact id and hash the URL was signed for.
create or replace function app.media_object(p_id bigint, p_sha text)
returns table (storage_key text, content_type text)
language sql stable security definer set search_path = '' as $$
  select m.storage_key, m.content_type from public.media_assets m where m.id = p_id and m.sha256 = p_sha
$$;
revoke all on function app.media_object(bigint, text) from public;
grant execute on function app.media_object(bigint, text) to anon, authenticated;

-- The readers' assistant is an outside provider like the others (switch, breaker).
alter table public.provider_toggles drop constraint if exists provider_toggles_provider_check;
alter table public.provider_toggles add constraint provider_toggles_provider_check
  check (provider in ('stripe', 'square', 'usdt', 'twilio', 'email', 'testcard', 'ai'));
insert into public.provider_toggles (provider) values ('ai') on conflict do nothing;

-- The tasks a request (the cron route) may queue are rows from now on: each feature's
-- migration adds its own instead of redefining app.defer().
create table if not exists app.deferrable_tasks (name text primary key check (name ~ '^[a-z_]{2,40}$'));
insert into app.deferrable_tasks values ('send_outbox'), ('purge_old'), ('sweep_rate_buckets'), ('expire_holds'),
  ('booking_reminders'), ('reader_no_show'), ('order_clocks')
on conflict do nothing;

create or replace function app.defer(p_task text, p_args jsonb default '{}'::jsonb)
returns bigint
language plpgsql volatile security definer set search_path = procrastinate, pg_catalog as $$
declare
  jid bigint;
begin
  if not exists (select 1 from app.deferrable_tasks t where t.name = p_task) then
    raise exception 'task % may not be deferred from a request', p_task
      using errcode = '42501', hint = 'forbidden';
  end if;
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, priority, args)
  select 'default', p_task, 0, coalesce(p_args, '{}'::jsonb)
   where not exists (select 1 from procrastinate.procrastinate_jobs j where j.task_name = p_task and j.status = 'todo')
  returning id into jid;
  return jid;
end
$$;

-- migrate:down
drop table if exists app.deferrable_tasks;
drop function if exists app.media_object(bigint, text);
drop function if exists app.pick_reader(bigint), app.order_clocks(), app.refund_order(bigint, text);
drop table if exists public.order_escalations, public.reader_strikes, public.order_attachments;
drop index if exists payment_transactions_one_order_charge, payment_transactions_one_order_refund;
alter table public.payment_transactions drop column if exists order_id;
drop trigger if exists trg_orders_audit on public.orders;
drop trigger if exists trg_orders_guard on public.orders;
drop trigger if exists trg_orders_new on public.orders;
drop function if exists app.orders_audit(), app.orders_guard(), app.orders_new(), app.reader_eligible(uuid, bigint);
drop table if exists app.order_transitions;
alter table public.orders drop column if exists price_minor, drop column if exists currency,
  drop column if exists inputs, drop column if exists chart, drop column if exists assigned_at,
  drop column if exists deliver_by, drop column if exists submitted_at, drop column if exists review_by,
  drop column if exists delivery_breached_at, drop column if exists review_breached_at,
  drop column if exists reject_reason, drop column if exists approved_media_id, drop column if exists approved_sha256,
  drop column if exists approved_by, drop column if exists approved_at, drop column if exists cancelled_at;
alter table public.services drop column if exists kind, drop column if exists delivery_minutes,
  drop column if exists gold_delivery_minutes, drop column if exists review_minutes,
  drop column if exists gold_review_minutes, drop column if exists gold_surcharge_minor;
