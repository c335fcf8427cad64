-- Supabase-compatible roles and the `auth` schema.
-- On a real Supabase project all of these already exist: every statement is guarded
-- so that it leaves Supabase's own objects untouched.

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- Our counterpart of supabase_auth_admin: the only role that may call the
  -- credential functions in app_auth. It owns no tables and has no RLS bypass.
  if not exists (select from pg_roles where rolname = 'samia_auth') then
    create role samia_auth nologin noinherit;
  end if;
end
$$;

grant anon, authenticated, service_role, samia_auth to authenticator;

create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists citext with schema extensions;
create extension if not exists btree_gist with schema extensions;
grant usage on schema extensions to anon, authenticated, service_role, samia_auth;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role, samia_auth;

-- auth.uid() / auth.role() / auth.jwt() exactly as Supabase defines their meaning:
-- read from the transaction-local claims. Created only where Supabase has not.
-- nullif(..., '') because a pooled connection that used the setting before returns ''.
do $$
begin
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'jwt') then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
    $f$;
  end if;
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'uid') then
    create function auth.uid() returns uuid language sql stable as $f$
      select nullif(coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                             nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'), '')::uuid
    $f$;
  end if;
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'role') then
    create function auth.role() returns text language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    $f$;
  end if;
end
$$;

-- Our own schemas: `app` holds helper functions callable by request roles,
-- `app_auth` holds credentials and sessions (no privileges for anon/authenticated),
-- `app_private` holds internal bookkeeping touched only through definer functions.
create schema if not exists app;
create schema if not exists app_auth;
create schema if not exists app_private;
grant usage on schema app to authenticator, anon, authenticated, service_role, samia_auth;
grant usage on schema app_auth to samia_auth, service_role;
revoke all on schema app_auth, app_private from public;

-- Supabase grants these on public to anon/authenticated by default; we grant table by
-- table instead, so nothing is reachable before its policies exist.
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role, samia_auth;

-- migrate:down
drop schema if exists app_private cascade;
drop schema if exists app_auth cascade;
drop schema if exists app cascade;
