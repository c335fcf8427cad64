-- Cancelling bookings with refunds, and the facts later steps need (call started, refund).

alter table public.bookings
  add column if not exists started_at timestamptz,      -- set when the reader starts the call
  add column if not exists refund_minor bigint check (refund_minor >= 0),
  add column if not exists refund_to text check (refund_to in ('original', 'wallet'));

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

-- migrate:down
drop function if exists app.cancel_booking(bigint, text, text, bigint, text, text);
drop function if exists app.booking_charge(bigint);
drop function if exists app.booking_party(bigint);
alter table public.bookings drop column if exists started_at, drop column if exists refund_minor,
  drop column if exists refund_to;
