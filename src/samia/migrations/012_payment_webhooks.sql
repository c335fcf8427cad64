-- Provider webhooks: each event applied once (replays are recorded and ignored), and
-- settlement by the provider's own reference. Only samia_payments (after the API verified
-- the provider's signature) may call these.

create table if not exists public.webhook_events (
  provider    text not null,
  event_id    text not null,
  event_type  text not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);
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

-- One provider event, verified by the API: recorded once (a replay answers 'duplicate'), then
-- p_outcome 'settled' or 'failed' applies to the charge with the provider's reference;
-- no outcome (an event type we do not act on) answers 'ignored'.
create or replace function app.apply_payment_event(p_provider text, p_event text, p_type text, p_ref text,
                                                   p_outcome text, p_reason text default null) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  tid bigint;
begin
  insert into public.webhook_events (provider, event_id, event_type) values (p_provider, p_event, p_type)
  on conflict do nothing;
  if not found then
    return 'duplicate';
  end if;
  if p_outcome is null then
    return 'ignored';
  end if;
  select id into tid from public.payment_transactions where provider = p_provider and provider_ref = p_ref;
  if tid is not null and p_outcome = 'settled' then
    perform app.settle_charge(tid, p_ref);
  elsif tid is not null and p_outcome = 'failed' then
    perform app.fail_charge(tid, coalesce(p_reason, 'payment failed'));
  end if;
  return 'applied';
end
$$;

revoke all on function app.mark_pending(bigint, text), app.apply_payment_event(text, text, text, text, text, text)
  from public;
grant execute on function app.mark_pending(bigint, text), app.apply_payment_event(text, text, text, text, text, text)
  to samia_payments, service_role;

-- migrate:down
drop function if exists app.mark_pending(bigint, text), app.apply_payment_event(text, text, text, text, text, text);
drop table if exists public.webhook_events;
