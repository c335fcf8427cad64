-- Media: private objects (a storage key, never a public URL). An owner reads their own, staff
-- read all, readers read the media of orders assigned to them; a client's route to the
-- approved audio goes through app.media_object(), which serves only the pinned hash.

select app.lock_down('media_assets');

grant select, insert on public.media_assets to authenticated;

drop policy if exists media_insert on public.media_assets;
create policy media_insert on public.media_assets for insert to authenticated
  with check (owner_id = (select auth.uid()));

-- Readers also see the attachments of orders assigned to them.
drop policy if exists media_read on public.media_assets;
create policy media_read on public.media_assets for select to authenticated
  using (owner_id = (select auth.uid())
         or (select app.is_staff())
         or exists (select 1 from public.orders o
                     where o.assigned_reader = (select auth.uid())
                       and (media_assets.id in (o.input_media_id, o.output_media_id)
                            or exists (select 1 from public.order_attachments a
                                        where a.order_id = o.id and a.media_id = media_assets.id))));

-- A removed file is never served; an unlisted order's audio neither.
create or replace function app.media_object(p_id bigint, p_sha text)
returns table (storage_key text, content_type text)
language sql stable security definer set search_path = '' as $$
  select m.storage_key, m.content_type from public.media_assets m
   where m.id = p_id and m.sha256 = p_sha and m.removed_at is null
     and not exists (select 1 from public.orders o where o.approved_media_id = m.id and o.unlisted_at is not null)
$$;

revoke all on function app.media_object(bigint, text) from public;
grant execute on function app.media_object(bigint, text) to anon, authenticated;
