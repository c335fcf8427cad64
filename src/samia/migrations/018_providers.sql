-- Provider on/off switches (seeds 001 M28): the source of truth every API process reads.

create table if not exists public.provider_toggles (
  provider   text primary key check (provider in ('stripe', 'square', 'usdt', 'twilio', 'email', 'testcard')),
  enabled    boolean not null default true,
  reason     text check (length(reason) <= 300),
  updated_at timestamptz not null default now(),
  updated_by uuid
);
insert into public.provider_toggles (provider) values ('stripe'), ('square'), ('usdt'), ('twilio'), ('email'),
  ('testcard') on conflict do nothing;

create or replace function app.provider_enabled(p_provider text) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select enabled from public.provider_toggles where provider = p_provider), true)
$$;
grant execute on function app.provider_enabled(text) to anon, authenticated, samia_auth, samia_payments, service_role;

create or replace function app.provider_toggles_audit() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  new.updated_by := auth.uid();
  perform app.audit('provider.toggle', 'provider', new.provider,
                    jsonb_build_object('enabled', new.enabled, 'reason', new.reason));
  return new;
end
$$;
drop trigger if exists trg_provider_toggles_audit on public.provider_toggles;
create trigger trg_provider_toggles_audit before update on public.provider_toggles
  for each row when (old.* is distinct from new.*) execute function app.provider_toggles_audit();

select app.lock_down('provider_toggles');
grant select, update (enabled, reason) on public.provider_toggles to authenticated;
drop policy if exists provider_toggles_admin_read on public.provider_toggles;
create policy provider_toggles_admin_read on public.provider_toggles for select to authenticated
  using ((select app.is_admin()));
drop policy if exists provider_toggles_admin on public.provider_toggles;
create policy provider_toggles_admin on public.provider_toggles for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

-- migrate:down
drop table if exists public.provider_toggles;
drop function if exists app.provider_enabled(text), app.provider_toggles_audit();
