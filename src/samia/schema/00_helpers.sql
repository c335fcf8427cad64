-- Shared helpers and the schemas' privileges. Applied first; every other file may use them.
--
-- How the files in this folder work: each holds the CURRENT definition of the functions,
-- triggers, views, policies and grants of one domain. `samia migrate up` re-applies a file,
-- in name order, whenever its sha256 changes, after the pending table migrations and in the
-- same transaction. So every statement here must be safe to run again: `create or replace`,
-- `drop policy if exists` before `create policy`, privileges reset by app.lock_down() before
-- they are granted. A changed function signature is handled here too: `drop function if
-- exists` the old one first. Never `cascade`: a drop that would take something of another
-- file with it must fail.
--
-- Row-level security is enabled and forced on every table in public; privileges are granted
-- table by table; policies per app role (seeds 003 §5):
--   client: own rows · reader: assigned orders · monitor: read all + moderation writes
--   admin/superadmin: full · anon: the public catalogue only.
-- Every policy reads the app role through `(select app.user_role())`: one call per statement.

grant usage on schema extensions to anon, authenticated, service_role, samia_auth;
grant usage on schema auth to anon, authenticated, service_role, samia_auth;
grant usage on schema app to authenticator, anon, authenticated, service_role, samia_auth, samia_jobs,
  samia_payments, samia_readings, samia_calls, samia_alerts;
grant usage on schema app_auth to samia_auth, service_role;
grant usage on schema app_auth, app_private to service_role;
revoke all on schema app_auth, app_private from public;
-- Supabase grants these on public to anon/authenticated by default; we grant table by
-- table instead, so nothing is reachable before its policies exist.
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role, samia_auth;

-- Nothing in app_auth/app_private is reachable except through the definer functions.
revoke all on all tables in schema app_auth from public, anon, authenticated;
revoke all on all tables in schema app_private from public, anon, authenticated;

-- Every public table starts locked: RLS enabled and forced, nothing granted to request
-- roles, everything to service_role. Each domain file calls it for its tables, then grants
-- what its policies need, so re-applying a file resets its tables' privileges.
create or replace function app.lock_down(variadic p_tables text[]) returns void
language plpgsql set search_path = '' as $$
declare
  t text;
begin
  foreach t in array p_tables loop
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
    execute format('revoke all on public.%I from anon, authenticated', t);
    execute format('grant all on public.%I to service_role', t);
  end loop;
end
$$;
revoke all on function app.lock_down(text[]) from public;

create or replace function app.touch_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Refuses any change to an append-only table (audit_log, ledger_entries); the trigger's
-- argument is the problem code the API would report.
create or replace function app.append_only() returns trigger
language plpgsql set search_path = '' as $$
begin
  raise exception '% is append-only', tg_table_name using errcode = '42501', hint = tg_argv[0];
end
$$;
