-- The job engine's privileges (its schema comes from 008_procrastinate_schema, the pinned
-- library's own SQL, installed into the `procrastinate` schema, outside public).
-- Workers log in as authenticator and run as service_role. Requests never touch the queue
-- tables: they defer whitelisted, idempotent tasks through app.defer(), inside their own
-- transaction, so data and job commit or roll back together.

do $$
begin
  if not exists (select from pg_roles where rolname = 'samia_jobs') then
    create role samia_jobs nologin noinherit;  -- the cron endpoint's role: may only defer
  end if;
end
$$;
grant samia_jobs to authenticator;
grant usage on schema app to samia_jobs;

grant usage on schema procrastinate to service_role;
grant all on all tables in schema procrastinate to service_role;
grant all on all sequences in schema procrastinate to service_role;
grant execute on all functions in schema procrastinate to service_role;
grant usage on schema app_auth, app_private to service_role;
grant select, delete on app_auth.sessions, app_auth.refresh_tokens to service_role;
grant select, insert, update, delete on app_private.rate_buckets to service_role;

-- Tasks a request or the cron endpoint may queue (all idempotent). At most one waiting copy
-- of a task: a second defer while one waits is a no-op (null). No queueing lock (a retried
-- job must never collide with a newer copy) and no lock at all (requests must not queue
-- behind each other): two racing defers may leave two copies, harmless for idempotent tasks.
create or replace function app.defer(p_task text, p_args jsonb default '{}'::jsonb)
returns bigint
language plpgsql volatile security definer set search_path = procrastinate, pg_catalog as $$
declare
  jid bigint;
begin
  if p_task not in ('send_outbox', 'purge_old', 'sweep_rate_buckets', 'expire_holds', 'booking_reminders',
                    'reader_no_show') then
    raise exception 'task % may not be deferred from a request', p_task
      using errcode = '42501', hint = 'forbidden';
  end if;
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, priority, args)
  select 'default', p_task, 0, coalesce(p_args, '{}'::jsonb)
   where not exists (select 1 from procrastinate.procrastinate_jobs j where j.task_name = p_task and j.status = 'todo')
  returning id into jid;
  return jid;
end
$$;
revoke all on function app.defer(text, jsonb) from public;
grant execute on function app.defer(text, jsonb) to samia_jobs, samia_auth, authenticated, service_role;

-- migrate:down
drop function if exists app.defer(text, jsonb);
revoke all on schema procrastinate from service_role;
