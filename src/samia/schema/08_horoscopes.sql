-- Horoscopes: approved ones are public; monitors and admins see and approve all.

select app.lock_down('horoscopes');

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
