-- The job queue (procrastinate, in its own schema) and what may reach it. Workers log in as
-- authenticator and run as service_role. Requests never touch the queue tables: they defer
-- whitelisted, idempotent tasks (app.deferrable_tasks) through app.defer(), inside their own
-- transaction, so data and job commit or roll back together. `samia migrate up` re-applies
-- this file whenever procrastinate's own schema is installed or upgraded.

-- procrastinate's functions and triggers use unqualified names: pin their search_path so
-- they work whoever calls them (a trigger fired by the owner's own DELETE, say).
do $pin$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = 'procrastinate' loop
    execute format('alter function %s set search_path = procrastinate, pg_catalog', f);
  end loop;
end
$pin$;

grant usage on schema procrastinate to service_role;
grant all on all tables in schema procrastinate to service_role;
grant all on all sequences in schema procrastinate to service_role;
grant execute on all functions in schema procrastinate to service_role;

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
grant execute on function app.queue_stats() to anon, authenticated, service_role;

-- Queue a job once: a second call while the same task with the same arguments waits is a no-op
-- (null). Arguments move a job's clock or scope (a clip to fetch, a test's clock, a backfill):
-- the owner's rules (definer functions), the job engine's and the owner's business, never a
-- request's. A request asks for a task by name alone, through app.defer.
create or replace function app.defer_job(p_task text, p_args jsonb)
returns bigint
language plpgsql volatile security definer set search_path = procrastinate, pg_catalog as $$
declare
  jid bigint;
  a jsonb := coalesce(p_args, '{}'::jsonb);
begin
  if not exists (select 1 from app.deferrable_tasks t where t.name = p_task) then
    raise exception 'task % may not be deferred from a request', p_task
      using errcode = '42501', hint = 'forbidden';
  end if;
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, priority, args)
  select 'default', p_task, 0, a
   where not exists (select 1 from procrastinate.procrastinate_jobs j
                      where j.task_name = p_task and j.args = a and j.status = 'todo')
  returning id into jid;
  return jid;
end
$$;

-- the two-argument form that requests could call once
drop function if exists app.defer(text, jsonb);
create or replace function app.defer(p_task text) returns bigint
language sql volatile security definer set search_path = '' as $$
  select app.defer_job(p_task, '{}'::jsonb)
$$;

revoke all on function app.defer_job(text, jsonb), app.defer(text) from public;
grant execute on function app.defer_job(text, jsonb) to samia_jobs, service_role;
grant execute on function app.defer(text) to samia_jobs, samia_auth, authenticated, service_role;
