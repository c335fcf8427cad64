-- Rate limits: an exact sliding window per (limit, subject), counted by the API's own login
-- before the request transaction switches role; admins tune the limits (audited).

-- The idempotency key arguments: a keyed request that replays a stored response, or that
-- duplicates one still in flight (its advisory lock is held), is not counted.
drop function if exists app.rate_limit_hit(text, text);
create or replace function app.rate_limit_hit(p_name text, p_subject text, p_idem_user uuid default null,
                                              p_idem_key text default null)
returns table (allowed boolean, limit_count integer, remaining integer, reset_seconds integer,
               retry_after integer, window_seconds integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  rl public.rate_limits;
  key text := p_name || ':' || p_subject;
  h timestamptz[];
  win interval;
  n integer;
  lock bigint;
begin
  select * into rl from public.rate_limits r where r.name = p_name;
  if rl.name is null then
    return query select true, null::integer, null::integer, null::integer, 0, null::integer;
    return;
  end if;
  win := make_interval(secs => rl.window_seconds);
  insert into app_private.rate_buckets (bucket) values (key) on conflict do nothing;
  select b.hits into h from app_private.rate_buckets b where b.bucket = key for update;
  h := array(select x from unnest(h) x where x > now() - win order by x);
  n := cardinality(h);
  if p_idem_key is not null then
    lock := hashtextextended('idem:' || p_idem_user::text || ':' || p_idem_key, 0);  -- as core/idempotency.py
    if exists (select 1 from public.idempotency_keys k where k.user_id = p_idem_user and k.key = p_idem_key
                  and k.created_at > now() - interval '24 hours')
       or exists (select 1 from pg_catalog.pg_locks l
                   where l.locktype = 'advisory' and l.granted and l.objsubid = 1
                     and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
                     and l.classid = ((lock >> 32) & 4294967295)::oid and l.objid = (lock & 4294967295)::oid) then
      update app_private.rate_buckets b set hits = h where b.bucket = key;
      return query select true, rl.limit_count, greatest(rl.limit_count - n, 0),
        greatest(1, ceil(extract(epoch from coalesce(h[1], now()) + win - now())))::integer, 0, rl.window_seconds;
      return;
    end if;
  end if;
  if n >= rl.limit_count then
    update app_private.rate_buckets b set hits = h where b.bucket = key;
    -- the window opens again when the oldest hit that keeps us at the limit leaves it
    return query select false, rl.limit_count, 0,
      greatest(1, ceil(extract(epoch from h[n - rl.limit_count + 1] + win - now())))::integer,
      greatest(1, ceil(extract(epoch from h[n - rl.limit_count + 1] + win - now())))::integer,
      rl.window_seconds;
    return;
  end if;
  h := h || now();
  update app_private.rate_buckets b set hits = h where b.bucket = key;
  return query select true, rl.limit_count, rl.limit_count - n - 1,
    greatest(1, ceil(extract(epoch from h[1] + win - now())))::integer, 0, rl.window_seconds;
end
$$;

create or replace function app.rate_limit_scope(p_name text) returns text
language sql stable security definer set search_path = '' as $$
  select per from public.rate_limits where name = p_name
$$;

-- Counting happens before the request transaction switches role, as the API's login.
revoke all on function app.rate_limit_hit(text, text, uuid, text), app.rate_limit_scope(text) from public;
grant execute on function app.rate_limit_hit(text, text, uuid, text), app.rate_limit_scope(text)
  to authenticator, anon, authenticated, service_role, samia_auth;

create or replace function app.rate_limits_audit() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  new.updated_by := auth.uid();
  perform app.audit('rate_limit.change', 'rate_limit', new.name,
                    jsonb_build_object('before', old.limit_count, 'after', new.limit_count,
                                       'window_seconds', new.window_seconds));
  return new;
end
$$;

create or replace trigger trg_rate_limits_audit before update on public.rate_limits
  for each row when (old.* is distinct from new.*) execute function app.rate_limits_audit();

select app.lock_down('rate_limits');

-- Rate limits: admins read and tune.
grant select, update (limit_count, window_seconds) on public.rate_limits to authenticated;

drop policy if exists rate_limits_admin_read on public.rate_limits;
create policy rate_limits_admin_read on public.rate_limits for select to authenticated
  using ((select app.is_admin()));

drop policy if exists rate_limits_admin_update on public.rate_limits;
create policy rate_limits_admin_update on public.rate_limits for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

grant select, insert, update, delete on app_private.rate_buckets to service_role;
