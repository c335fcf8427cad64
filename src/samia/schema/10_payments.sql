-- Payments: methods gated by country, transactions inserted by clients under RLS (test
-- accounts refused by a RESTRICTIVE policy), and settlement in definer functions only the
-- samia_payments role may call, after the processor answered: a double-entry ledger whose
-- every movement sums to zero, webhooks applied once, transfers awaiting proof, and the
-- daily reconciliation.

create or replace function app.methods_for_country(p_country char(2)) returns setof text
language sql stable security definer set search_path = '' as $$
  select m.code from public.payment_methods m
   where m.enabled
     and (m.all_countries or exists (select 1 from public.payment_method_countries c
                                      where c.method = m.code and c.country_code = p_country))
   order by m.code
$$;

grant execute on function app.methods_for_country(char) to authenticated, service_role;

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

create or replace trigger trg_ledger_refuse before update or delete on public.ledger_entries
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

select app.lock_down('payment_methods', 'payment_method_countries', 'payment_transactions', 'ledger_entries', 'idempotency_keys');
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

-- adults who accepted the current terms only (schema/01_identity.sql): the trigger answers with
-- the reason, the policy holds whatever the trigger does
create or replace function app.payment_transactions_gate() returns trigger
language plpgsql set search_path = '' as $$
begin
  if current_user = 'authenticated' then
    perform app.require_may_transact();
  end if;
  return new;
end
$$;

create or replace trigger trg_payment_transactions_gate before insert on public.payment_transactions
  for each row execute function app.payment_transactions_gate();

drop policy if exists pay_tx_gate on public.payment_transactions;
create policy pay_tx_gate on public.payment_transactions as restrictive for insert to authenticated
  with check ((select app.transact_refusal(auth.uid())) is null);

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

select app.lock_down('webhook_events');
grant select on public.webhook_events to authenticated;

drop policy if exists webhook_events_admin on public.webhook_events;
create policy webhook_events_admin on public.webhook_events for select to authenticated
  using ((select app.is_admin()));

-- A charge waiting on the customer (3-D Secure etc.): remember the provider's reference.
create or replace function app.mark_pending(p_txn bigint, p_ref text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.payment_transactions set status = 'requires_action', provider_ref = p_ref, updated_at = now()
   where id = p_txn and status = 'pending'
$$;

revoke all on function app.mark_pending(bigint, text)
  from public;
grant execute on function app.mark_pending(bigint, text)
  to samia_payments, service_role;

-- Manual bank transfers: the charge waits for the client's proof of payment and an admin's
-- decision; the booking's hold is extended meanwhile.

-- samia_payments: park a payment made outside (bank transfer, crypto) and give the client time.
create or replace function app.await_transfer(p_txn bigint, p_hold interval, p_ref text default null) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  t public.payment_transactions;
begin
  select * into t from public.payment_transactions where id = p_txn for update;
  if t.id is null or t.provider not in ('bank_transfer', 'usdt') or t.status <> 'pending' then
    raise exception 'not a pending transfer' using errcode = '55000', hint = 'conflict';
  end if;
  update public.payment_transactions set status = 'requires_action', provider_ref = coalesce(p_ref, provider_ref),
         updated_at = now() where id = t.id;
  update public.reader_capacity c set expires_at = greatest(c.expires_at, now() + p_hold)
    from public.bookings b where b.id = t.booking_id and c.id = b.capacity_id and c.status = 'held';
  perform app.audit('payment.transfer_awaited', 'payment', t.id::text, jsonb_build_object('hold', p_hold::text));
end
$$;

revoke all on function app.await_transfer(bigint, interval, text) from public;
grant execute on function app.await_transfer(bigint, interval, text) to samia_payments, service_role;

-- The client attaches the proof they uploaded to their own waiting transfer.
create or replace function app.attach_proof(p_txn bigint, p_media bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.payment_transactions
     set metadata = metadata || jsonb_build_object('proof_media_id', p_media, 'proof_at', now()), updated_at = now()
   where id = p_txn and user_id = auth.uid() and provider = 'bank_transfer' and status = 'requires_action'
     and exists (select 1 from public.media_assets m where m.id = p_media and m.owner_id = auth.uid());
  if not found then
    raise exception 'no waiting transfer of yours' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform app.audit('payment.proof_attached', 'payment', p_txn::text, jsonb_build_object('media', p_media));
end
$$;

revoke all on function app.attach_proof(bigint, bigint) from public;
grant execute on function app.attach_proof(bigint, bigint) to authenticated;

-- Daily reconciliation: payment transactions (what the providers did) against the ledger
-- (what we booked) against bookings (what was bought). Every mismatch is listed.

create or replace function app.reconciliation(p_day date)
returns table (kind text, ref text, detail text)
language plpgsql stable security definer set search_path = '' as $$
begin
  if not app.is_admin() and current_setting('role') <> 'service_role' then
    raise exception 'admin only' using errcode = '42501', hint = 'forbidden';
  end if;
  return query
  with day_txns as (
    select t.* from public.payment_transactions t
     where t.updated_at >= p_day and t.updated_at < p_day + 1 and t.status = 'succeeded'
  ),
  moved as (
    select e.txn_id, sum(e.amount_minor) filter (where e.amount_minor > 0) as credited
      from public.ledger_entries e where e.txn_id in (select id from day_txns) group by e.txn_id
  )
  -- money the provider took or returned with no (or the wrong) ledger movement
  select 'missing_ledger', 'payment:' || t.id, t.provider || ' ' || t.kind || ' of ' || t.amount_minor
    from day_txns t left join moved m on m.txn_id = t.id where m.txn_id is null
  union all
  select 'ledger_amount', 'payment:' || t.id, 'paid ' || t.amount_minor || ', ledger moved ' || m.credited
    from day_txns t join moved m on m.txn_id = t.id
   where m.credited <> t.amount_minor
     and not (t.kind = 'charge' and m.credited = 2 * t.amount_minor)  -- a late payment also credited the wallet
  union all
  -- ledger movements for payments that did not succeed
  select 'ledger_without_payment', 'payment:' || t.id, 'status ' || t.status
    from public.payment_transactions t
   where t.status <> 'succeeded' and t.updated_at >= p_day and t.updated_at < p_day + 1
     and exists (select 1 from public.ledger_entries e where e.txn_id = t.id)
  union all
  -- bookings confirmed that day without a matching paid charge
  select 'booking_unpaid', 'booking:' || b.id, 'price ' || b.price_minor
    from public.bookings b
   where b.status in ('confirmed', 'completed') and b.price_minor > 0
     and coalesce(b.confirmed_at, b.created_at) >= p_day and coalesce(b.confirmed_at, b.created_at) < p_day + 1
     and not exists (select 1 from public.payment_transactions t
                      where t.booking_id = b.id and t.kind = 'charge' and t.status = 'succeeded'
                        and t.amount_minor = b.price_minor)
  union all
  -- movements that do not balance (the commit trigger forbids it; a bypass would show here)
  select 'unbalanced_movement', 'movement:' || e.movement, 'sum ' || sum(e.amount_minor)
    from public.ledger_entries e
   where e.created_at >= p_day and e.created_at < p_day + 1
   group by e.movement having sum(e.amount_minor) <> 0;
end
$$;

revoke all on function app.reconciliation(date) from public;
grant execute on function app.reconciliation(date) to authenticated, service_role;

create or replace function app.reconciliation_totals(p_day date)
returns table (provider text, kind text, payments bigint, amount_minor bigint)
language sql stable security definer set search_path = '' as $$
  select t.provider, t.kind, count(*), sum(t.amount_minor)::bigint
    from public.payment_transactions t
   where t.status = 'succeeded' and t.updated_at >= p_day and t.updated_at < p_day + 1
     and (app.is_admin() or current_setting('role') = 'service_role')
   group by 1, 2 order by 1, 2
$$;

revoke all on function app.reconciliation_totals(date) from public;
grant execute on function app.reconciliation_totals(date) to authenticated, service_role;

-- Settle a charge the API has just seen succeed at the processor (or a wallet payment): mark
-- it, move the money in the ledger (the memo names the booking or order paid for), confirm the
-- booking it pays for. Wallet payments take a per-user lock so two concurrent ones cannot
-- overdraw. A payment that completes after its booking's hold lapsed (3-D Secure finished
-- late, a transfer approved late) re-claims the time if it is still free; otherwise the money
-- goes to the client's wallet, the booking is released and the client told.
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

revoke all on function app.settle_charge(bigint, text), app.fail_charge(bigint, text) from public;
grant execute on function app.settle_charge(bigint, text), app.fail_charge(bigint, text)
  to samia_payments, service_role;

-- One provider event, verified by the API: recorded once (a replay answers 'duplicate'), then
-- p_outcome 'settled' or 'failed' applies to the charge with the provider's reference; no
-- outcome (an event type we do not act on) answers 'ignored'. A "paid" event settles a charge
-- only for at least the amount, in the currency, the charge asked for; otherwise it is
-- recorded, left for an admin and flagged in the audit log (a tampered or mistaken event never
-- confirms a booking on its own).
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
