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

-- migrate:down
drop function if exists app.await_transfer(bigint, interval, text), app.attach_proof(bigint, bigint);
