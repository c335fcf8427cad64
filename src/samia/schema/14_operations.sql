-- Operations (seeds 000 M32, 001 M28/M29): migration state for health checks, feature flags,
-- provider switches, usage and budgets, incidents with on-call paging and escalation, and the
-- encrypted secrets store.

-- Health checks compare the applied migrations with the code's, without any access to
-- the ledger itself.
create or replace function app.migration_state() returns table (name text, checksum text)
language sql stable security definer set search_path = '' as $$
  select m.name, m.checksum from public._migrations m order by m.name
$$;

revoke all on function app.migration_state() from public;
grant execute on function app.migration_state() to anon, authenticated, service_role;

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

-- The same rule for another user than the caller (a job, or a reader answering a client's
-- emergency call evaluates the client's flag).
create or replace function app.flag_on_for(p_key text, p_user uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((
    select f.enabled
       and (f.roles is null or u.role = any(f.roles))
       and (f.countries is null or u.country_code = any(f.countries))
       and (f.rollout_pct = 100 or (p_user is not null and app.flag_bucket(f.key, p_user) < f.rollout_pct * 100))
      from public.feature_flags f
      left join (select r.code as role, p.country_code from public.profiles p join public.roles r on r.id = p.role_id
                  where p.id = p_user and p.deleted_at is null) u on true
     where f.key = p_key), false)
$$;

grant execute on function app.flag_on(text), app.flag_bucket(text, uuid) to anon, authenticated, service_role;
revoke all on function app.flag_on_for(text, uuid) from public;
revoke execute on function app.flag_on_for(text, uuid) from authenticated;  -- it answers for any user
grant execute on function app.flag_on_for(text, uuid) to service_role;

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

create or replace trigger trg_feature_flags_audit before update on public.feature_flags
  for each row when (old.* is distinct from new.*) execute function app.feature_flags_audit();

select app.lock_down('feature_flags');
grant select on public.feature_flags to authenticated;
grant update (enabled, rollout_pct, roles, countries, description) on public.feature_flags to authenticated;

drop policy if exists feature_flags_read on public.feature_flags;
create policy feature_flags_read on public.feature_flags for select to authenticated using (true);

drop policy if exists feature_flags_admin on public.feature_flags;
create policy feature_flags_admin on public.feature_flags for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

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

create or replace trigger trg_provider_toggles_audit before update on public.provider_toggles
  for each row when (old.* is distinct from new.*) execute function app.provider_toggles_audit();

select app.lock_down('provider_toggles');
grant select, update (enabled, reason) on public.provider_toggles to authenticated;

drop policy if exists provider_toggles_admin_read on public.provider_toggles;
create policy provider_toggles_admin_read on public.provider_toggles for select to authenticated
  using ((select app.is_admin()));

drop policy if exists provider_toggles_admin on public.provider_toggles;
create policy provider_toggles_admin on public.provider_toggles for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));


-- Page one level: the rota's people on call now, or everyone with the level's role.
create or replace function app.incident_page(p_incident bigint, p_level smallint, p_at timestamptz) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  i public.incidents;
  pol public.incident_policy;
  who record;
  later timestamptz;
  n integer := 0;
begin
  select * into i from public.incidents where id = p_incident;
  select * into pol from public.incident_policy where severity = i.severity;
  for who in
    select r.user_id from public.oncall_rota r where r.level = p_level and r.during @> p_at
    union
    select p.id from public.profiles p
     where p.role_id = case p_level when 1 then 4 when 2 then 2 else 1 end and p.deleted_at is null
       and not exists (select 1 from public.oncall_rota r where r.level = p_level and r.during @> p_at)
  loop
    later := case when pol.ignores_quiet then null else app.in_quiet_hours(who.user_id, p_at) end;
    insert into public.incident_pages (incident_id, level, user_id, paged_at, send_after)
    values (p_incident, p_level, who.user_id, p_at, coalesce(later, p_at));
    insert into public.notification_outbox (recipient_id, channel, template, params, not_before)
    values (who.user_id, 'push', 'incident_page',
            jsonb_build_object('incident', p_incident, 'severity', i.severity, 'level', p_level,
                               'ignore_quiet_hours', pol.ignores_quiet), later);
    insert into public.incident_events (incident_id, kind, level, note, at)
    values (p_incident, case when later is null then 'paged' else 'deferred' end, p_level,
            case when later is not null then 'quiet hours until ' || later end, p_at);
    n := n + 1;
  end loop;
  update public.incidents set level = p_level,
         next_escalation_at = case when p_level < 3 then p_at + make_interval(mins => pol.ack_minutes) end
   where id = p_incident;
  return n;
end
$$;

-- Open an incident (declared by staff, or from an alert) and page level 1; an alert that
-- is already open only adds to the timeline.
create or replace function app.incident_open(p_title text, p_severity text, p_source text, p_dedupe text,
                                             p_runbooks text[], p_note text) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  iid bigint;
begin
  if p_dedupe is not null then
    select id into iid from public.incidents where dedupe_key = p_dedupe and status <> 'resolved';
    if iid is not null then
      insert into public.incident_events (incident_id, kind, note) values (iid, 'alert_firing', p_note);
      return iid;
    end if;
  end if;
  insert into public.incidents (title, severity, source, dedupe_key, runbooks, declared_by)
  values (p_title, p_severity, p_source, p_dedupe, coalesce(p_runbooks, '{}'), auth.uid())
  returning id into iid;
  insert into public.incident_events (incident_id, kind, note, actor)
  values (iid, case when p_source = 'alert' then 'alert_firing' else 'declared' end, p_note, auth.uid());
  perform app.incident_page(iid, 1::smallint, now());
  perform app.audit('incident.opened', 'incident', iid::text, jsonb_build_object('severity', p_severity,
                                                                                    'source', p_source));
  return iid;
end
$$;

create or replace function app.incident_declare(p_title text, p_severity text, p_runbooks text[], p_note text)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not coalesce(app.is_admin(), false) then
    raise exception 'only admins declare incidents' using errcode = '42501', hint = 'forbidden';
  end if;
  return app.incident_open(p_title, p_severity, 'manual', null, p_runbooks, p_note);
end
$$;

-- An alert from Alertmanager: firing opens (or adds to) the incident keyed by its
-- fingerprint; resolved adds to the timeline and, when nothing of it still fires, marks
-- the incident mitigated (people resolve incidents, alerts do not).
create or replace function app.incident_alert(p_status text, p_title text, p_severity text, p_key text,
                                              p_runbooks text[], p_note text) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  iid bigint;
begin
  if p_status = 'firing' then
    return app.incident_open(p_title, p_severity, 'alert', p_key, p_runbooks, p_note);
  end if;
  select id into iid from public.incidents where dedupe_key = p_key and status <> 'resolved';
  if iid is null then
    return null;
  end if;
  insert into public.incident_events (incident_id, kind, note) values (iid, 'alert_resolved', p_note);
  update public.incidents set status = 'mitigated', mitigated_at = now(), next_escalation_at = null
   where id = iid and status = 'open';
  return iid;
end
$$;

-- Unacknowledged incidents climb a level when their ack window passes (caught up in order).
create or replace function app.incident_escalate(p_now timestamptz default now()) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  i public.incidents;
  n integer := 0;
begin
  for i in select * from public.incidents where status = 'open' and next_escalation_at <= p_now
            order by next_escalation_at for update skip locked loop
    if exists (select 1 from public.incident_pages pg where pg.incident_id = i.id and pg.acked_at is not null) then
      update public.incidents set next_escalation_at = null where id = i.id;
      continue;
    end if;
    insert into public.incident_events (incident_id, kind, level, at) values (i.id, 'escalated', i.level + 1,
                                                                             i.next_escalation_at);
    perform app.incident_page(i.id, (i.level + 1)::smallint, i.next_escalation_at);
    n := n + 1;
  end loop;
  return n;
end
$$;

create or replace function app.incident_ack(p_incident bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.incident_pages set acked_at = now()
   where incident_id = p_incident and user_id = auth.uid() and acked_at is null;
  if not found then
    raise exception 'you were not paged for this incident' using errcode = 'P0002', hint = 'not_found';
  end if;
  update public.incidents set next_escalation_at = null where id = p_incident;
  insert into public.incident_events (incident_id, kind, actor) values (p_incident, 'acked', auth.uid());
  perform app.audit('incident.acked', 'incident', p_incident::text, '{}'::jsonb);
end
$$;

create or replace function app.incident_status(p_incident bigint, p_status text, p_note text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if auth.uid() is not null and not coalesce(app.is_staff(), false) then
    raise exception 'only staff change incidents' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.incidents set status = p_status,
         mitigated_at = case when p_status = 'mitigated' then coalesce(mitigated_at, now()) else mitigated_at end,
         resolved_at = case when p_status = 'resolved' then now() end,
         next_escalation_at = case when p_status = 'open' then next_escalation_at end
   where id = p_incident;
  if not found then
    raise exception 'no such incident' using errcode = 'P0002', hint = 'not_found';
  end if;
  insert into public.incident_events (incident_id, kind, note, actor) values (p_incident, 'status', p_status
    || coalesce(': ' || p_note, ''), auth.uid());
  perform app.audit('incident.' || p_status, 'incident', p_incident::text, '{}'::jsonb);
end
$$;

create or replace function app.require_superadmin() returns void
language plpgsql stable security definer set search_path = '' as $$
begin
  if auth.uid() is not null and coalesce(app.user_role(), '') <> 'superadmin' then
    raise exception 'only the super admin manages secrets' using errcode = '42501', hint = 'superadmin_reserved';
  end if;
end
$$;

create or replace function app.secret_names()
returns table (name text, version integer, key_id text, created_at timestamptz)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  return query select distinct on (s.name) s.name, s.version, s.key_id, s.created_at
                 from app_private.config_secrets s order by s.name, s.version desc;
end
$$;

create or replace function app.secret_next_version(p_name text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  perform pg_advisory_xact_lock(hashtextextended('secret:' || p_name, 0));
  return coalesce((select max(version) from app_private.config_secrets where name = p_name), 0) + 1;
end
$$;

create or replace function app.secret_put(p_name text, p_version integer, p_key text, p_nonce bytea, p_ct bytea)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  insert into app_private.config_secrets (name, version, key_id, nonce, ciphertext, created_by)
  values (p_name, p_version, p_key, p_nonce, p_ct, auth.uid());
  perform app.audit('secrets.set', 'secret', p_name, jsonb_build_object('version', p_version, 'key_id', p_key));
end
$$;

-- the current version of every name (what rotation re-seals)
create or replace function app.secret_all()
returns table (name text, version integer, key_id text, nonce bytea, ciphertext bytea)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  return query select distinct on (s.name) s.name, s.version, s.key_id, s.nonce, s.ciphertext
                 from app_private.config_secrets s order by s.name, s.version desc;
end
$$;

create or replace function app.secret_reseal(p_name text, p_version integer, p_key text, p_nonce bytea, p_ct bytea)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  update app_private.config_secrets set key_id = p_key, nonce = p_nonce, ciphertext = p_ct
   where name = p_name and version = p_version;
end
$$;

create or replace function app.secret_current(p_name text)
returns table (version integer, key_id text, nonce bytea, ciphertext bytea)
language plpgsql stable security definer set search_path = '' as $$
begin
  perform app.require_superadmin();
  return query select s.version, s.key_id, s.nonce, s.ciphertext from app_private.config_secrets s
                where s.name = p_name order by s.version desc limit 1;
end
$$;

revoke all on function app.require_superadmin(), app.secret_names(), app.secret_next_version(text),
  app.secret_put(text, integer, text, bytea, bytea), app.secret_all(),
  app.secret_reseal(text, integer, text, bytea, bytea), app.secret_current(text) from public;
grant execute on function app.require_superadmin(), app.secret_names(), app.secret_next_version(text),
  app.secret_put(text, integer, text, bytea, bytea), app.secret_all(),
  app.secret_reseal(text, integer, text, bytea, bytea), app.secret_current(text) to authenticated, service_role;

-- Count a call; say whether the provider may be called (false: over budget, degraded).
-- At the alert threshold an SEV3 incident opens, once a month.
create or replace function app.provider_use(p_provider text, p_failed boolean) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  u public.provider_usage;
  b public.provider_budgets;
  m date := date_trunc('month', now())::date;
begin
  insert into public.provider_usage (provider, month, calls, failures) values (p_provider, m, 1, p_failed::int)
  on conflict (provider, month) do update set calls = provider_usage.calls + 1,
                                              failures = provider_usage.failures + p_failed::int
  returning * into u;
  select * into b from public.provider_budgets where provider = p_provider;
  if b.provider is not null and not u.alerted and u.calls * 100 >= b.monthly_calls * b.alert_pct then
    update public.provider_usage set alerted = true where provider = p_provider and month = m;
    perform app.incident_open(p_provider || ' at ' || b.alert_pct || '% of its monthly budget', 'SEV3', 'alert',
                              'budget:' || p_provider || ':' || m, array['/admin/runbooks/incident-sev3'], null);
  end if;
  return b.provider is null or not b.degrade or u.calls <= b.monthly_calls;
end
$$;

create or replace function app.provider_within_budget(p_provider text) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select not b.degrade or coalesce(u.calls, 0) < b.monthly_calls
                     from public.provider_budgets b
                     left join public.provider_usage u on u.provider = b.provider
                                                      and u.month = date_trunc('month', now())::date
                    where b.provider = p_provider), true)
$$;

revoke all on function app.incident_open(text, text, text, text, text[], text), app.incident_page(bigint, smallint, timestamptz),
  app.incident_escalate(timestamptz), app.incident_ack(bigint), app.incident_status(bigint, text, text),
  app.provider_use(text, boolean), app.provider_within_budget(text) from public;
revoke all on function app.incident_declare(text, text, text[], text),
  app.incident_alert(text, text, text, text, text[], text) from public;
grant execute on function app.incident_declare(text, text, text[], text), app.incident_ack(bigint),
  app.incident_status(bigint, text, text) to authenticated;
grant execute on function app.incident_alert(text, text, text, text, text[], text) to samia_alerts, service_role;
grant execute on function app.incident_escalate(timestamptz) to service_role;
-- Counting a call is the platform's own step (Platform.guarded, as service_role): a request
-- role that could count would spend a provider's budget and push it into degraded mode.
revoke all on function app.provider_use(text, boolean), app.provider_within_budget(text) from public;
revoke execute on function app.provider_use(text, boolean)
  from anon, authenticated, samia_auth, samia_payments, samia_calls, samia_readings;
grant execute on function app.provider_use(text, boolean) to service_role;
grant execute on function app.provider_within_budget(text)
  to anon, authenticated, samia_auth, samia_payments, samia_calls, samia_readings, service_role;

select app.lock_down('incidents', 'incident_events', 'oncall_rota', 'quiet_hours', 'incident_policy', 'incident_pages', 'provider_usage', 'provider_budgets');
grant select on public.incidents, public.incident_events, public.incident_pages, public.incident_policy
  to authenticated;

drop policy if exists incidents_staff on public.incidents;
create policy incidents_staff on public.incidents for select to authenticated using ((select app.is_staff()));

drop policy if exists incident_events_staff on public.incident_events;
create policy incident_events_staff on public.incident_events for select to authenticated
  using ((select app.is_staff()));

drop policy if exists incident_pages_staff on public.incident_pages;
create policy incident_pages_staff on public.incident_pages for select to authenticated
  using ((select app.is_staff()));

drop policy if exists incident_policy_staff on public.incident_policy;
create policy incident_policy_staff on public.incident_policy for select to authenticated
  using ((select app.is_staff()));

grant select, insert, delete on public.oncall_rota to authenticated;

drop policy if exists oncall_rota_read on public.oncall_rota;
create policy oncall_rota_read on public.oncall_rota for select to authenticated using ((select app.is_staff()));

drop policy if exists oncall_rota_admin on public.oncall_rota;
create policy oncall_rota_admin on public.oncall_rota for insert to authenticated with check ((select app.is_admin()));

drop policy if exists oncall_rota_admin_delete on public.oncall_rota;
create policy oncall_rota_admin_delete on public.oncall_rota for delete to authenticated using ((select app.is_admin()));

grant select, insert, update, delete on public.quiet_hours to authenticated;

drop policy if exists quiet_hours_own on public.quiet_hours;
create policy quiet_hours_own on public.quiet_hours for all to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));  -- every user (issue 12)

grant select on public.provider_usage, public.provider_budgets to authenticated;
grant insert, update on public.provider_budgets to authenticated;

drop policy if exists provider_usage_admin on public.provider_usage;
create policy provider_usage_admin on public.provider_usage for select to authenticated using ((select app.is_admin()));

drop policy if exists provider_budgets_admin on public.provider_budgets;
create policy provider_budgets_admin on public.provider_budgets for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
