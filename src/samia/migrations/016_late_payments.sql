-- A payment that completes after its booking's hold lapsed (3-D Secure finished late, a bank
-- transfer approved after the slot went to someone else): take the time back if it is still
-- free, otherwise put the money in the client's wallet, release the booking and tell them.

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

-- migrate:down
select 1;
