do $$
begin
  if not exists (select from pg_roles where rolname = 'samia_payments') then
    -- the role the API switches into, after verifying a processor's answer, to settle a
    -- payment; it may execute the settlement functions and nothing else
    create role samia_payments nologin noinherit;
  end if;
end
$$;
grant samia_payments to authenticator;
grant usage on schema app to samia_payments;

-- Payments: methods gated by country (data, admin-editable), payment transactions (test
-- accounts cannot create them: RESTRICTIVE policy of seeds 002), a double-entry ledger whose
-- every movement sums to zero (checked at commit), and Idempotency-Key records.

create table if not exists public.payment_methods (
  code          text primary key check (code in ('card', 'square', 'usdt', 'bank_transfer', 'wallet')),
  name          text not null,
  enabled       boolean not null default true,
  all_countries boolean not null default false
);
insert into public.payment_methods (code, name, all_countries) values
  ('card', 'Card', true), ('square', 'Square', false), ('usdt', 'USDT', true),
  ('bank_transfer', 'Bank transfer', false), ('wallet', 'Wallet', true)
on conflict (code) do nothing;

create table if not exists public.payment_method_countries (
  method       text not null references public.payment_methods (code),
  country_code char(2) not null references public.countries (code),
  primary key (method, country_code)
);
insert into public.payment_method_countries (method, country_code)
select 'bank_transfer', c from unnest(array['LB', 'AE', 'SA', 'QA', 'KW', 'BH', 'OM', 'JO', 'EG']) c
union all select 'square', c from unnest(array['US', 'CA', 'GB', 'AU', 'IE', 'FR', 'ES', 'JP']) c
on conflict do nothing;

create or replace function app.methods_for_country(p_country char(2)) returns setof text
language sql stable security definer set search_path = '' as $$
  select m.code from public.payment_methods m
   where m.enabled
     and (m.all_countries or exists (select 1 from public.payment_method_countries c
                                      where c.method = m.code and c.country_code = p_country))
   order by m.code
$$;
grant execute on function app.methods_for_country(char) to authenticated, service_role;

create table if not exists public.payment_transactions (
  id             bigint generated always as identity primary key,
  user_id        uuid not null references public.profiles (id),
  provider       text not null check (provider in ('testcard', 'stripe', 'square', 'usdt', 'bank_transfer',
                                                   'wallet')),
  kind           text not null check (kind in ('charge', 'refund', 'topup')),
  status         text not null default 'pending'
                 check (status in ('pending', 'requires_action', 'succeeded', 'failed', 'cancelled')),
  amount_minor   bigint not null check (amount_minor > 0),
  currency       char(3) not null,
  booking_id     bigint references public.bookings (id),
  parent_id      bigint references public.payment_transactions (id),  -- a refund's charge
  provider_ref   text,
  failure_reason text check (length(failure_reason) <= 500),
  metadata       jsonb not null default '{}'::jsonb,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  unique (provider, provider_ref)
);
create index if not exists payment_transactions_user on public.payment_transactions (user_id, created_at desc);
create index if not exists payment_transactions_booking on public.payment_transactions (booking_id);
-- no double charge, whatever the API does: one live charge per booking
create unique index if not exists payment_transactions_one_live_charge on public.payment_transactions (booking_id)
  where kind = 'charge' and status in ('pending', 'requires_action', 'succeeded');

-- Double-entry ledger: a movement is a set of rows sharing `movement`; they sum to zero.
create table if not exists public.ledger_entries (
  id           bigint generated always as identity primary key,
  movement     uuid not null,
  account      text not null check (account ~ '^(wallet:[0-9a-f-]{36}|provider:[a-z_]+|revenue|refunds)$'),
  user_id      uuid references public.profiles (id),
  amount_minor bigint not null check (amount_minor <> 0),
  currency     char(3) not null,
  txn_id       bigint references public.payment_transactions (id),
  memo         text not null,
  created_at   timestamptz not null default now()
);
create index if not exists ledger_entries_account on public.ledger_entries (account, currency);
create index if not exists ledger_entries_movement on public.ledger_entries (movement);

-- Definer: it fires at COMMIT as whatever role the transaction ended in, and must see
-- every row of the movement regardless of that role's privileges or RLS.
create or replace function app.ledger_balanced() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if exists (select 1 from public.ledger_entries e where e.movement = new.movement
              group by e.currency having sum(e.amount_minor) <> 0) then
    raise exception 'ledger movement % does not balance', new.movement
      using errcode = '23514', hint = 'ledger_unbalanced';
  end if;
  return null;
end
$$;
drop trigger if exists trg_ledger_balanced on public.ledger_entries;
create constraint trigger trg_ledger_balanced after insert on public.ledger_entries
  deferrable initially deferred for each row execute function app.ledger_balanced();

drop trigger if exists trg_ledger_refuse on public.ledger_entries;
create trigger trg_ledger_refuse before update or delete on public.ledger_entries
  for each row execute function app.append_only('ledger_append_only');

-- One movement from `p_from` to `p_to` (two rows summing to zero). Definer: request roles
-- never write the ledger directly.
create or replace function app.ledger_move(p_from text, p_to text, p_amount bigint, p_currency char(3),
                                           p_txn bigint, p_memo text, p_user uuid) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  m uuid := gen_random_uuid();
begin
  if p_amount <= 0 then
    raise exception 'amount must be positive' using errcode = '23514', hint = 'validation_error';
  end if;
  insert into public.ledger_entries (movement, account, user_id, amount_minor, currency, txn_id, memo) values
    (m, p_from, p_user, -p_amount, p_currency, p_txn, p_memo),
    (m, p_to, p_user, p_amount, p_currency, p_txn, p_memo);
  return m;
end
$$;
revoke all on function app.ledger_move(text, text, bigint, char, bigint, text, uuid) from public;

create or replace function app.wallet_balance(p_user uuid, p_currency char(3)) returns bigint
language sql stable security definer set search_path = '' as $$
  select coalesce(sum(amount_minor), 0)::bigint from public.ledger_entries
   where account = 'wallet:' || p_user and currency = p_currency
$$;
revoke all on function app.wallet_balance(uuid, char) from public;

create or replace function app.my_balance(p_currency char(3)) returns bigint
language sql stable security definer set search_path = '' as $$
  select app.wallet_balance(auth.uid(), p_currency)
$$;

-- Settle a charge the API has just seen succeed at the processor (or a wallet payment):
-- mark it, move the money in the ledger, confirm the booking it pays for. Wallet payments
-- take a per-user lock so two concurrent ones cannot overdraw. A payment that completes after
-- its booking's hold lapsed (3-D Secure finished late, a transfer approved late) re-claims the
-- time if it is still free; otherwise the money goes to the client's wallet, the booking is
-- released and the client told.
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
                          'revenue', t.amount_minor, t.currency, t.id, 'booking ' || t.booking_id, t.user_id);
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
                    jsonb_build_object('provider', t.provider, 'amount_minor', t.amount_minor, 'booking', t.booking_id));
  return 'settled';
end
$$;

-- A charge that failed or timed out: mark it and release the booking's hold (the
-- compensating step), so the slot is free again at once.
create or replace function app.fail_charge(p_txn bigint, p_reason text) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  t public.payment_transactions;
begin
  select * into t from public.payment_transactions where id = p_txn for update;
  if t.id is null or t.status = 'succeeded' then
    return;
  end if;
  update public.payment_transactions set status = 'failed', failure_reason = left(p_reason, 500), updated_at = now()
   where id = t.id;
  if t.booking_id is not null then
    update public.reader_capacity c set status = 'released'
      from public.bookings b where b.id = t.booking_id and c.id = b.capacity_id and c.status = 'held';
    update public.bookings set status = 'released' where id = t.booking_id and status = 'held';
    insert into public.notification_outbox (recipient_id, channel, template, params)
    values (t.user_id, 'email', 'payment_failed', jsonb_build_object('booking', t.booking_id));
  end if;
  perform app.audit('payment.failed', 'payment', t.id::text, jsonb_build_object('reason', left(p_reason, 200)));
end
$$;

revoke all on function app.settle_charge(bigint, text), app.fail_charge(bigint, text) from public;
grant execute on function app.settle_charge(bigint, text), app.fail_charge(bigint, text)
  to samia_payments, service_role;

-- Idempotency-Key records (Stripe semantics: replay, 422 on a different body, 409 while
-- the first is in flight — the in-flight case is an advisory lock held by that request).
create table if not exists public.idempotency_keys (
  user_id         uuid not null,
  key             text not null check (length(key) between 1 and 255),
  method          text not null,
  path            text not null,
  body_sha256     text not null,
  response_status smallint not null,
  response_body   jsonb not null,
  created_at      timestamptz not null default now(),
  primary key (user_id, key)
);
create index if not exists idempotency_keys_age on public.idempotency_keys (created_at);

select app.lock_down('payment_methods', 'payment_method_countries', 'payment_transactions', 'ledger_entries',
                     'idempotency_keys');

grant select on public.payment_methods, public.payment_method_countries to authenticated;
grant update (enabled, all_countries) on public.payment_methods to authenticated;
grant insert, delete on public.payment_method_countries to authenticated;
drop policy if exists payment_methods_read on public.payment_methods;
create policy payment_methods_read on public.payment_methods for select to authenticated using (true);
drop policy if exists payment_methods_admin on public.payment_methods;
create policy payment_methods_admin on public.payment_methods for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
drop policy if exists payment_method_countries_read on public.payment_method_countries;
create policy payment_method_countries_read on public.payment_method_countries for select to authenticated
  using (true);
drop policy if exists payment_method_countries_admin on public.payment_method_countries;
create policy payment_method_countries_admin on public.payment_method_countries for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

grant select, insert on public.payment_transactions to authenticated;
drop policy if exists payment_transactions_read on public.payment_transactions;
create policy payment_transactions_read on public.payment_transactions for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));
drop policy if exists payment_transactions_insert on public.payment_transactions;
create policy payment_transactions_insert on public.payment_transactions for insert to authenticated
  with check (user_id = (select auth.uid()) and (select app.user_role()) = 'client');
-- seeds 002: test accounts cannot create live transactions, whatever the API does
drop policy if exists pay_tx_block_tests on public.payment_transactions;
create policy pay_tx_block_tests on public.payment_transactions as restrictive for insert to authenticated
  with check (not exists (select 1 from public.profiles p where p.id = (select auth.uid()) and p.is_test));

grant select on public.ledger_entries to authenticated;
drop policy if exists ledger_read on public.ledger_entries;
create policy ledger_read on public.ledger_entries for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));

grant select, insert, delete on public.idempotency_keys to authenticated;
drop policy if exists idempotency_own on public.idempotency_keys;
create policy idempotency_own on public.idempotency_keys for select to authenticated
  using (user_id = (select auth.uid()));
drop policy if exists idempotency_expired on public.idempotency_keys;
create policy idempotency_expired on public.idempotency_keys for delete to authenticated
  using (user_id = (select auth.uid()) and created_at < now() - interval '24 hours');
drop policy if exists idempotency_insert on public.idempotency_keys;
create policy idempotency_insert on public.idempotency_keys for insert to authenticated
  with check (user_id = (select auth.uid()));

grant execute on function app.my_balance(char) to authenticated;
grant execute on function app.wallet_balance(uuid, char) to service_role;

-- migrate:down
drop table if exists public.idempotency_keys, public.ledger_entries, public.payment_transactions,
  public.payment_method_countries, public.payment_methods cascade;
drop function if exists app.ledger_move(text, text, bigint, char, bigint, text, uuid);
drop function if exists app.wallet_balance(uuid, char), app.my_balance(char);
drop function if exists app.settle_charge(bigint, text), app.fail_charge(bigint, text);
drop function if exists app.methods_for_country(char);
drop function if exists app.ledger_balanced();
