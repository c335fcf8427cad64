-- The audit log: append-only for every role (the owner included) and hash-chained. A row is
-- stamped at insert and immutable from then on; a single sealer links committed rows in order
-- (chain_pos, prev_hash, row_hash = sha256(prev_hash || canonical)). Rows arrive through
-- app.audit(), whose actor and role come from the session, never from the caller.

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

create or replace trigger trg_audit_refuse_truncate before truncate on public.audit_log
  for each statement execute function app.append_only('audit_append_only');

select app.lock_down('audit_log');

-- Audit log: admins read; nobody updates or deletes; rows arrive through app.audit().
grant select on public.audit_log to authenticated;

drop policy if exists audit_read on public.audit_log;
create policy audit_read on public.audit_log for select to authenticated
  using ((select app.is_admin()));

-- Insert: the database stamps id and time; nobody pre-seals a row.
create or replace function app.audit_stamp() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  new.id := nextval('app.audit_log_id_seq');
  new.created_at := clock_timestamp();
  new.meta := coalesce(new.meta, '{}'::jsonb);
  new.chain_pos := null;
  new.prev_hash := null;
  new.row_hash := null;
  return new;
end
$$;

create or replace trigger trg_audit_stamp before insert on public.audit_log for each row execute function app.audit_stamp();

-- Update/delete: refused, except the sealer filling the chain fields of an unsealed row once.
create or replace function app.audit_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and current_setting('app.audit_sealing', true) = 'on' and old.row_hash is null
     and (to_jsonb(new) - array['chain_pos', 'prev_hash', 'row_hash']) =
         (to_jsonb(old) - array['chain_pos', 'prev_hash', 'row_hash']) then
    return new;
  end if;
  raise exception 'audit_log is append-only' using errcode = '42501', hint = 'audit_append_only';
end
$$;

create or replace trigger trg_audit_refuse before update or delete on public.audit_log
  for each row execute function app.audit_guard();

-- Link every committed, unsealed row to the head, in id order. One sealer at a time.
create or replace function app.audit_seal(p_limit integer default 100000) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.audit_log;
  pos bigint;
  prev text;
  att_pos bigint;
  att_hash text;
  n integer := 0;
begin
  if auth.uid() is not null and not coalesce(app.is_admin(), false) then
    raise exception 'only admins and the job engine seal the audit chain' using errcode = '42501', hint = 'forbidden';
  end if;
  perform pg_advisory_xact_lock(7384023117);
  select a.chain_pos, a.row_hash into pos, prev from public.audit_log a
   where a.chain_pos is not null order by a.chain_pos desc limit 1;
  pos := coalesce(pos, 0);
  prev := coalesce(prev, repeat('0', 64));
  -- never continue the chain from a cut: the newest attested head must still be there, as
  -- attested (`samia audit verify` names what is missing, from the attestations, the signed
  -- exports in storage and the anchors outside the database)
  select t.head_pos, t.head_hash into att_pos, att_hash from public.audit_attestations t
   order by t.head_pos desc, t.id desc limit 1;
  if att_pos > 0 and (pos < att_pos or not exists (select 1 from public.audit_log a
                                                    where a.chain_pos = att_pos and a.row_hash = att_hash)) then
    raise exception 'the audit chain no longer holds its attested head (chain_pos %); not sealing', att_pos
      using errcode = '55000', hint = 'audit_chain_cut';
  end if;
  perform set_config('app.audit_sealing', 'on', true);
  for r in select * from public.audit_log a where a.row_hash is null order by a.id limit p_limit loop
    pos := pos + 1;
    r.chain_pos := pos;
    r.prev_hash := prev;
    r.row_hash := app.audit_hash(r);
    update public.audit_log set chain_pos = r.chain_pos, prev_hash = r.prev_hash, row_hash = r.row_hash
     where id = r.id;
    prev := r.row_hash;
    n := n + 1;
  end loop;
  perform set_config('app.audit_sealing', 'off', true);
  return n;
end
$$;

revoke all on function app.audit_seal(integer) from public;
grant execute on function app.audit_seal(integer) to service_role, authenticated;

select app.lock_down('audit_attestations');
grant select, insert on public.audit_attestations to authenticated;

drop policy if exists audit_attestations_admin on public.audit_attestations;
create policy audit_attestations_admin on public.audit_attestations for select to authenticated
  using ((select app.is_admin()));

drop policy if exists audit_attestations_insert on public.audit_attestations;
create policy audit_attestations_insert on public.audit_attestations for insert to authenticated
  with check ((select app.is_admin()) and created_by = (select auth.uid()));

-- The append itself, in PL/pgSQL so the claims are read once per call (measured: 2x the
-- SQL-function version under 8 writers). Actor and role still come from the session only.
create or replace function app.audit(p_event text, p_entity text default null,
                                     p_entity_id text default null, p_meta jsonb default '{}')
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  uid uuid := auth.uid();
  new_id bigint;
begin
  insert into public.audit_log (actor, actor_role, event, entity, entity_id, meta, request_id)
  values (uid, coalesce(case when uid is not null then app.user_role() end,
                        nullif(auth.jwt() ->> 'actor', ''), auth.role(), 'system'),
          p_event, p_entity, p_entity_id, coalesce(p_meta, '{}'::jsonb),
          nullif(current_setting('request.id', true), ''))
  returning id into new_id;
  return new_id;
end
$$;

revoke all on function app.audit(text, text, text, jsonb) from public;
grant execute on function app.audit(text, text, text, jsonb) to anon, authenticated, service_role, samia_auth;

-- First broken link of the sealed chain, or no row when it is intact: positions without a
-- gap from 1, each row linked to its predecessor, each row's own hash.
create or replace function app.audit_verify()
returns table (id bigint, chain_pos bigint, problem text)
language sql stable set search_path = '' as $$
  with walk as (
    select a.id, a.chain_pos, a.prev_hash, a.row_hash, app.audit_hash(a) as recomputed,
           lag(a.chain_pos) over w as prev_pos, lag(a.row_hash) over w as prev_row_hash
      from public.audit_log a
     where a.chain_pos is not null
    window w as (order by a.chain_pos)
  )
  select w.id, w.chain_pos,
         case
           when w.chain_pos <> coalesce(w.prev_pos, 0) + 1 then 'gap before this row (rows deleted)'
           when w.prev_hash <> coalesce(w.prev_row_hash, repeat('0', 64)) then 'prev_hash does not match the previous row'
           else 'row_hash does not match the row contents'
         end
    from walk w
   where w.chain_pos <> coalesce(w.prev_pos, 0) + 1
      or w.prev_hash <> coalesce(w.prev_row_hash, repeat('0', 64))
      or w.row_hash <> w.recomputed
   order by w.chain_pos
   limit 1
$$;
