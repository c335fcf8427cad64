-- Job queue saturation for /metrics, without exposing the queue itself.
create or replace function app.queue_stats()
returns table (status text, jobs bigint, oldest_seconds double precision)
language sql stable security definer set search_path = '' as $$
  select j.status::text, count(*), coalesce(extract(epoch from now() - min(j.scheduled_at)), 0)::double precision
    from procrastinate.procrastinate_jobs j
   where j.status in ('todo', 'doing')
   group by j.status
$$;
revoke all on function app.queue_stats() from public;
grant execute on function app.queue_stats() to anon, service_role;

-- migrate:down
drop function if exists app.queue_stats();
