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

-- true the first time an event is seen, false for a replay
create or replace function app.record_webhook(p_provider text, p_event text, p_type text) returns boolean
language sql volatile security definer set search_path = '' as $$
  with ins as (
    insert into public.webhook_events (provider, event_id, event_type) values (p_provider, p_event, p_type)
    on conflict do nothing returning 1)
  select exists (select 1 from ins)
$$;

-- A charge waiting on the customer (3-D Secure etc.): remember the provider's reference.
create or replace function app.mark_pending(p_txn bigint, p_ref text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.payment_transactions set status = 'requires_action', provider_ref = p_ref, updated_at = now()
   where id = p_txn and status = 'pending'
$$;

create or replace function app.settle_by_ref(p_provider text, p_ref text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  tid bigint;
begin
  select id into tid from public.payment_transactions where provider = p_provider and provider_ref = p_ref;
  if tid is null then
    return 'unknown';
  end if;
  return app.settle_charge(tid, p_ref);
end
$$;

create or replace function app.fail_by_ref(p_provider text, p_ref text, p_reason text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  tid bigint;
begin
  select id into tid from public.payment_transactions where provider = p_provider and provider_ref = p_ref;
  if tid is null then
    return 'unknown';
  end if;
  perform app.fail_charge(tid, p_reason);
  return 'failed';
end
$$;

revoke all on function app.record_webhook(text, text, text), app.mark_pending(bigint, text),
  app.settle_by_ref(text, text), app.fail_by_ref(text, text, text) from public;
grant execute on function app.record_webhook(text, text, text), app.mark_pending(bigint, text),
  app.settle_by_ref(text, text), app.fail_by_ref(text, text, text) to samia_payments, service_role;

-- migrate:down
drop function if exists app.record_webhook(text, text, text), app.mark_pending(bigint, text),
  app.settle_by_ref(text, text), app.fail_by_ref(text, text, text);
drop table if exists public.webhook_events;
