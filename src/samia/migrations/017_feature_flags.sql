-- Feature flags (seeds 000 §4.3, 002): on/off (the kill switch), percentage rollout by a stable
-- hash of the user id, per-role and per-country targeting. Read on every request: a change
-- takes effect on the next one. The same evaluation exists in Python (core/flags.py); a test
-- holds them equal.

create table if not exists public.feature_flags (
  key         text primary key check (key ~ '^[a-zA-Z][a-zA-Z0-9_.]{1,63}$'),
  description text not null default '',
  enabled     boolean not null default false,              -- false: off for everyone (kill switch)
  rollout_pct smallint not null default 100 check (rollout_pct between 0 and 100),
  roles       text[] check (roles <@ array['superadmin', 'admin', 'reader', 'monitor', 'client']),
  countries   char(2)[],
  updated_at  timestamptz not null default now(),
  updated_by  uuid
);

insert into public.feature_flags (key, description, enabled) values
  ('backend.flatTables', 'flat tables backend (rollback level 1 of the go-live runbook)', true),
  ('calls.video', 'video calls (WebRTC)', false),
  ('billing.emergencyProgressivePricing', 'progressive pricing of emergency calls', false),
  ('ui.rtlRefine', 'refined right-to-left layout', true),
  ('uploads.deckBulk', 'bulk upload of tarot decks', true),
  ('feature.readerInstant', 'readers instant-availability windows', true),
  ('feature.emergencyExtension', 'emergency call (siren) extension', true),
  ('feature.tarotV2', 'Tarot V2 readings', true),
  ('feature.dailyZodiac', 'daily zodiac pipeline', true),
  ('feature.community', 'community comments and reactions (M24)', false)
on conflict (key) do nothing;

-- stable bucket 0..9999 of (flag, user): the first 32 bits of sha256("key:user")
create or replace function app.flag_bucket(p_key text, p_user uuid) returns integer
language sql immutable set search_path = '' as $$
  select (('x' || substr(encode(extensions.digest(p_key || ':' || p_user::text, 'sha256'), 'hex'), 1, 8))::bit(32)::bigint
          % 10000)::integer
$$;

create or replace function app.flag_on(p_key text) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((
    select f.enabled
       and (f.roles is null or app.user_role() = any(f.roles))
       and (f.countries is null or (select p.country_code from public.profiles p where p.id = auth.uid()) = any(f.countries))
       and (f.rollout_pct = 100 or (auth.uid() is not null and app.flag_bucket(f.key, auth.uid()) < f.rollout_pct * 100))
      from public.feature_flags f where f.key = p_key), false)
$$;
grant execute on function app.flag_on(text), app.flag_bucket(text, uuid) to anon, authenticated, service_role;

create or replace function app.feature_flags_audit() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  new.updated_by := auth.uid();
  perform app.audit('flag.change', 'feature_flag', new.key,
                    jsonb_build_object('enabled', new.enabled, 'rollout_pct', new.rollout_pct,
                                       'roles', new.roles, 'countries', new.countries,
                                       'before', jsonb_build_object('enabled', old.enabled, 'rollout_pct', old.rollout_pct)));
  return new;
end
$$;
drop trigger if exists trg_feature_flags_audit on public.feature_flags;
create trigger trg_feature_flags_audit before update on public.feature_flags
  for each row when (old.* is distinct from new.*) execute function app.feature_flags_audit();

select app.lock_down('feature_flags');
grant select on public.feature_flags to authenticated;
grant update (enabled, rollout_pct, roles, countries, description) on public.feature_flags to authenticated;
drop policy if exists feature_flags_read on public.feature_flags;
create policy feature_flags_read on public.feature_flags for select to authenticated using (true);
drop policy if exists feature_flags_admin on public.feature_flags;
create policy feature_flags_admin on public.feature_flags for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

-- migrate:down
drop table if exists public.feature_flags;
drop function if exists app.flag_on(text), app.flag_bucket(text, uuid), app.feature_flags_audit();
