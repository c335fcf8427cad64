-- Row-level security: enabled and forced on every table in public; privileges granted
-- table by table; policies per app role (seeds 003 §5):
--   client: own rows · reader: assigned orders · monitor: read all + moderation writes
--   admin/superadmin: full. anon: public catalogue only.
-- Every policy reads the app role through `(select app.user_role())` (one call per statement).

-- Every public table starts locked: RLS enabled and forced, nothing granted to request
-- roles, everything to service_role. Later migrations call it for each table they add.
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

select app.lock_down(variadic array(select tablename::text from pg_tables where schemaname = 'public'
                                                                     and tablename <> '_migrations'));

-- Reference data: readable by everyone, written by admins.
grant select on public.roles, public.countries, public.services to anon, authenticated;
grant insert, update on public.services to authenticated;

drop policy if exists roles_read on public.roles;
create policy roles_read on public.roles for select to anon, authenticated using (true);

drop policy if exists countries_read on public.countries;
create policy countries_read on public.countries for select to anon, authenticated using (true);

drop policy if exists services_read on public.services;
create policy services_read on public.services for select to anon, authenticated
  using (is_active or (select app.is_admin()));
drop policy if exists services_admin_insert on public.services;
create policy services_admin_insert on public.services for insert to authenticated
  with check ((select app.is_admin()));
drop policy if exists services_admin_update on public.services;
create policy services_admin_update on public.services for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

-- Profiles: own row; staff read all; admins write (guard trigger applies M45 rules).
grant select, insert, update on public.profiles to authenticated;

drop policy if exists profiles_read on public.profiles;
create policy profiles_read on public.profiles for select to authenticated
  using (id = (select auth.uid()) or (select app.is_staff()));
drop policy if exists profiles_update on public.profiles;
create policy profiles_update on public.profiles for update to authenticated
  using (id = (select auth.uid()) or (select app.is_admin()))
  with check (id = (select auth.uid()) or (select app.is_admin()));
drop policy if exists profiles_admin_insert on public.profiles;
create policy profiles_admin_insert on public.profiles for insert to authenticated
  with check ((select app.is_admin()));

-- Media: owner; staff read all; readers read media of orders assigned to them.
grant select, insert on public.media_assets to authenticated;

drop policy if exists media_read on public.media_assets;
create policy media_read on public.media_assets for select to authenticated
  using (owner_id = (select auth.uid())
         or (select app.is_staff())
         or exists (select 1 from public.orders o
                     where o.assigned_reader = (select auth.uid())
                       and media_assets.id in (o.input_media_id, o.output_media_id)));
drop policy if exists media_insert on public.media_assets;
create policy media_insert on public.media_assets for insert to authenticated
  with check (owner_id = (select auth.uid()));

-- Orders: client own; reader assigned; monitor reads all; admin everything.
grant select, insert, update on public.orders to authenticated;

drop policy if exists orders_read on public.orders;
create policy orders_read on public.orders for select to authenticated
  using (user_id = (select auth.uid())
         or assigned_reader = (select auth.uid())
         or (select app.is_staff()));
drop policy if exists orders_insert on public.orders;
create policy orders_insert on public.orders for insert to authenticated
  with check ((user_id = (select auth.uid()) and (select app.user_role()) = 'client')
              or (select app.is_admin()));
drop policy if exists orders_update on public.orders;
create policy orders_update on public.orders for update to authenticated
  using ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
         or (select app.is_admin()))
  with check ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
              or (select app.is_admin()));

-- Horoscopes: approved ones are public; monitors/admins see and approve all.
grant select on public.horoscopes to anon, authenticated;
grant insert, update on public.horoscopes to authenticated;

drop policy if exists horoscopes_read on public.horoscopes;
create policy horoscopes_read on public.horoscopes for select to anon, authenticated
  using (approved_at is not null or (select app.is_staff()));
drop policy if exists horoscopes_write on public.horoscopes;
create policy horoscopes_write on public.horoscopes for insert to authenticated
  with check ((select app.is_staff()));
drop policy if exists horoscopes_update on public.horoscopes;
create policy horoscopes_update on public.horoscopes for update to authenticated
  using ((select app.is_staff())) with check ((select app.is_staff()));

-- Calls: the order's client and reader read; monitors read and drop; admins all.
grant select, update on public.calls to authenticated;

drop policy if exists calls_read on public.calls;
create policy calls_read on public.calls for select to authenticated
  using ((select app.is_staff())
         or exists (select 1 from public.orders o
                     where o.id = calls.order_id
                       and (select auth.uid()) in (o.user_id, o.assigned_reader)));
drop policy if exists calls_staff_update on public.calls;
create policy calls_staff_update on public.calls for update to authenticated
  using ((select app.is_staff())) with check ((select app.is_staff()));

-- Moderation: monitors and admins read and write (as themselves); nobody else.
grant select, insert on public.moderation_actions to authenticated;

drop policy if exists moderation_read on public.moderation_actions;
create policy moderation_read on public.moderation_actions for select to authenticated
  using ((select app.is_staff()));
drop policy if exists moderation_insert on public.moderation_actions;
create policy moderation_insert on public.moderation_actions for insert to authenticated
  with check ((select app.is_staff()) and actor_id = (select auth.uid()));

-- Phone verifications: read own (never the code hash); written by app_auth functions.
grant select (id, profile_id, phone, provider, status, attempts, expires_at, created_at, verified_at)
  on public.phone_verifications to authenticated;

drop policy if exists phone_verifications_read on public.phone_verifications;
create policy phone_verifications_read on public.phone_verifications for select to authenticated
  using (profile_id = (select auth.uid()) or (select app.is_admin()));

-- Outbox: a user sees what was sent to them; admins see all.
grant select on public.notification_outbox to authenticated;

drop policy if exists outbox_read on public.notification_outbox;
create policy outbox_read on public.notification_outbox for select to authenticated
  using (recipient_id = (select auth.uid()) or (select app.is_admin()));

-- Audit log: admins read; nobody updates or deletes; rows arrive through app.audit().
grant select on public.audit_log to authenticated;

drop policy if exists audit_read on public.audit_log;
create policy audit_read on public.audit_log for select to authenticated
  using ((select app.is_admin()));

-- Rate limits: admins read and tune.
grant select, update (limit_count, window_seconds) on public.rate_limits to authenticated;

drop policy if exists rate_limits_admin_read on public.rate_limits;
create policy rate_limits_admin_read on public.rate_limits for select to authenticated
  using ((select app.is_admin()));
drop policy if exists rate_limits_admin_update on public.rate_limits;
create policy rate_limits_admin_update on public.rate_limits for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

-- Nothing in app_auth/app_private is reachable except through the definer functions.
revoke all on all tables in schema app_auth from public, anon, authenticated;
revoke all on all tables in schema app_private from public, anon, authenticated;

-- Health checks compare the applied migrations with the code's, without any access to
-- the ledger itself.
create or replace function app.migration_state() returns table (name text, checksum text)
language sql stable security definer set search_path = '' as $$
  select m.name, m.checksum from public._migrations m order by m.name
$$;
revoke all on function app.migration_state() from public;
grant execute on function app.migration_state() to anon, authenticated, service_role;

-- migrate:down
drop function if exists app.lock_down(text[]);
do $$
declare
  p record;
begin
  for p in select policyname, tablename from pg_policies where schemaname = 'public' loop
    execute format('drop policy %I on public.%I', p.policyname, p.tablename);
  end loop;
end
$$;
