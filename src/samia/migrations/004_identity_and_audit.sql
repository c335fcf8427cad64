-- Who is calling (app role from the database, never from the token) and the
-- append-only, hash-chained audit log.

-- The caller's app role, or null when the caller is anonymous, unknown, deleted or
-- blocked. Policies call it as `(select app.user_role())` so it runs once per statement,
-- and a demotion or a block takes effect on the very next statement.
create or replace function app.user_role() returns text
language sql stable security definer set search_path = '' as $$
  select r.code
    from public.profiles p
    join public.roles r on r.id = p.role_id
   where p.id = auth.uid()
     and p.deleted_at is null
     and (p.blocked_at is null or p.blocked_until <= now())
$$;

create or replace function app.is_staff() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(app.user_role() in ('monitor', 'admin', 'superadmin'), false)
$$;

create or replace function app.is_admin() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(app.user_role() in ('admin', 'superadmin'), false)
$$;

grant execute on function app.user_role(), app.is_staff(), app.is_admin()
  to anon, authenticated, service_role, samia_auth;

create table if not exists public.audit_log (
  id         bigint primary key,          -- gapless, assigned under the chain lock
  created_at timestamptz not null,
  actor      uuid,
  actor_role text,
  event      text not null check (event ~ '^[a-z0-9_.:-]{1,80}$'),
  entity     text,
  entity_id  text,
  meta       jsonb not null default '{}'::jsonb,
  request_id text,
  prev_hash  text not null,
  row_hash   text not null
);
create index if not exists audit_log_entity on public.audit_log (entity, entity_id);
create index if not exists audit_log_actor on public.audit_log (actor, id);

-- Canonical encoding: a JSON array (jsonb text form is deterministic) of every field
-- but the hashes; row_hash = sha256(prev_hash || canonical), hex.
create or replace function app.audit_canonical(a public.audit_log) returns text
language sql immutable set search_path = '' as $$
  select jsonb_build_array(a.id,
                           to_char(a.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           a.actor, a.actor_role, a.event, a.entity, a.entity_id, a.meta, a.request_id)::text
$$;

create or replace function app.audit_hash(a public.audit_log) returns text
language sql immutable set search_path = '' as $$
  select encode(extensions.digest(a.prev_hash || app.audit_canonical(a), 'sha256'), 'hex')
$$;

create or replace function app.audit_chain() returns trigger
language plpgsql set search_path = '' as $$
declare
  last public.audit_log;
begin
  -- One writer at a time links to the head; held until commit so an aborted
  -- transaction never leaves a successor pointing at a row that vanished.
  perform pg_advisory_xact_lock(7384023117);
  select * into last from public.audit_log order by id desc limit 1;
  new.id := coalesce(last.id, 0) + 1;
  new.created_at := clock_timestamp();
  new.prev_hash := coalesce(last.row_hash, repeat('0', 64));
  new.meta := coalesce(new.meta, '{}'::jsonb);
  new.row_hash := app.audit_hash(new);
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

drop trigger if exists trg_audit_chain on public.audit_log;
create trigger trg_audit_chain before insert on public.audit_log
  for each row execute function app.audit_chain();
drop trigger if exists trg_audit_refuse on public.audit_log;
create trigger trg_audit_refuse before update or delete on public.audit_log
  for each row execute function app.append_only('audit_append_only');
drop trigger if exists trg_audit_refuse_truncate on public.audit_log;
create trigger trg_audit_refuse_truncate before truncate on public.audit_log
  for each statement execute function app.append_only('audit_append_only');

-- The one way request roles write the audit log: actor and role come from the
-- session, not from the caller's arguments.
create or replace function app.audit(p_event text, p_entity text default null,
                                     p_entity_id text default null, p_meta jsonb default '{}')
returns bigint
language sql volatile security definer set search_path = '' as $$
  insert into public.audit_log (actor, actor_role, event, entity, entity_id, meta, request_id)
  values (auth.uid(),
          coalesce(app.user_role(), nullif(auth.jwt() ->> 'actor', ''), auth.role(), 'system'),
          p_event, p_entity, p_entity_id, coalesce(p_meta, '{}'::jsonb),
          nullif(current_setting('request.id', true), ''))
  returning id
$$;
revoke all on function app.audit(text, text, text, jsonb) from public;
grant execute on function app.audit(text, text, text, jsonb) to anon, authenticated, service_role, samia_auth;

-- First broken link, or no row when the chain is intact. Checks the gapless id, the
-- link to the predecessor and each row's own hash.
create or replace function app.audit_verify()
returns table (id bigint, problem text)
language sql stable set search_path = '' as $$
  with walk as (
    select a.id, a.prev_hash, a.row_hash, app.audit_hash(a) as recomputed,
           lag(a.id) over w as prev_id, lag(a.row_hash) over w as prev_row_hash
      from public.audit_log a
    window w as (order by a.id)
  )
  select w.id,
         case
           when w.id <> coalesce(w.prev_id, 0) + 1 then 'gap before this row (rows deleted)'
           when w.prev_hash <> coalesce(w.prev_row_hash, repeat('0', 64)) then 'prev_hash does not match the previous row'
           else 'row_hash does not match the row contents'
         end
    from walk w
   where w.id <> coalesce(w.prev_id, 0) + 1
      or w.prev_hash <> coalesce(w.prev_row_hash, repeat('0', 64))
      or w.row_hash <> w.recomputed
   order by w.id
   limit 1
$$;

-- migrate:down
drop function if exists app.audit_verify();
drop function if exists app.audit(text, text, text, jsonb);
drop table if exists public.audit_log cascade;
drop function if exists app.audit_chain(), app.append_only();
drop function if exists app.is_admin(), app.is_staff(), app.user_role();
