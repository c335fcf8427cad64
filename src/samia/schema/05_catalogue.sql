-- The catalogue: services (readable by everyone while active, written by admins) and which
-- readers offer which service.

select app.lock_down('services');
grant select on public.services to anon, authenticated;
grant insert, update on public.services to authenticated;

drop policy if exists services_read on public.services;
create policy services_read on public.services for select to anon, authenticated
  using (is_active or (select app.is_admin()));

drop policy if exists services_admin_insert on public.services;
create policy services_admin_insert on public.services for insert to authenticated
  with check ((select app.is_admin()));

drop policy if exists services_admin_update on public.services;
create policy services_admin_update on public.services for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

select app.lock_down('reader_services');
grant select on public.reader_services to authenticated;
grant insert, update, delete on public.reader_services to authenticated;

drop policy if exists reader_services_read on public.reader_services;
create policy reader_services_read on public.reader_services for select to authenticated using (true);

drop policy if exists reader_services_admin on public.reader_services;
create policy reader_services_admin on public.reader_services for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
