-- Rate limits as data (defaults of seeds 004), editable by admins, and an exact
-- sliding-window counter: a bucket keeps the timestamps of its hits inside the window.

create table if not exists public.rate_limits (
  name           text primary key check (name ~ '^[a-z_]{2,40}$'),
  limit_count    integer not null check (limit_count between 1 and 1000000),
  window_seconds integer not null default 3600 check (window_seconds between 1 and 2678400),
  per            text not null check (per in ('user', 'ip')),
  description    text not null default '',
  updated_at     timestamptz not null default now(),
  updated_by     uuid
);

insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('orders', 10, 3600, 'user', 'orders created per user'),
  ('phone_verify', 5, 3600, 'user', 'phone verification starts per user'),
  ('assist_draft', 10, 3600, 'user', 'AI assist drafts per reader'),
  ('assist_search', 20, 3600, 'user', 'AI assist searches per reader'),
  ('knowledge_add', 5, 3600, 'user', 'knowledge entries added per admin'),
  ('login', 20, 900, 'ip', 'login attempts per client address'),
  ('signup', 10, 3600, 'ip', 'sign-ups per client address')
on conflict (name) do nothing;

create table if not exists app_private.rate_buckets (
  bucket text primary key,
  hits   timestamptz[] not null default '{}'
);

create or replace function app.rate_limit_hit(p_name text, p_subject text)
returns table (allowed boolean, limit_count integer, remaining integer, reset_seconds integer,
               retry_after integer, window_seconds integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  rl public.rate_limits;
  key text := p_name || ':' || p_subject;
  h timestamptz[];
  win interval;
  n integer;
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
revoke all on function app.rate_limit_hit(text, text), app.rate_limit_scope(text) from public;
grant execute on function app.rate_limit_hit(text, text), app.rate_limit_scope(text)
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
drop trigger if exists trg_rate_limits_audit on public.rate_limits;
create trigger trg_rate_limits_audit before update on public.rate_limits
  for each row when (old.* is distinct from new.*) execute function app.rate_limits_audit();

-- migrate:down
drop function if exists app.rate_limit_hit(text, text);
drop function if exists app.rate_limit_scope(text);
drop table if exists app_private.rate_buckets;
drop table if exists public.rate_limits;
