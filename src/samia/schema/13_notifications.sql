-- Notifications: a user sees what was sent to them; admins see all.

select app.lock_down('notification_outbox');

grant select on public.notification_outbox to authenticated;

drop policy if exists outbox_read on public.notification_outbox;
create policy outbox_read on public.notification_outbox for select to authenticated
  using (recipient_id = (select auth.uid()) or (select app.is_admin()));
