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

-- Changes to a service are audited with the fields that changed (prices with before and after).
create or replace function app.services_audit() returns trigger
language plpgsql set search_path = '' as $$
begin
  perform app.audit('service.update', 'service', new.code, jsonb_build_object(
    'fields', (select coalesce(jsonb_agg(n.key order by n.key), '[]'::jsonb)
                 from jsonb_each(to_jsonb(new)) n join jsonb_each(to_jsonb(old)) o using (key)
                where n.value is distinct from o.value),
    'price_minor', jsonb_build_array(old.price_minor, new.price_minor),
    'currency', jsonb_build_array(old.currency, new.currency),
    'is_active', jsonb_build_array(old.is_active, new.is_active)));
  return new;
end
$$;

create or replace trigger trg_services_audit after update on public.services
  for each row when (old.* is distinct from new.*) execute function app.services_audit();

-- Prices per country: public like the services; admins set them (audited).
select app.lock_down('service_prices');
grant select on public.service_prices to anon, authenticated;
grant insert, update, delete on public.service_prices to authenticated;

drop policy if exists service_prices_read on public.service_prices;
create policy service_prices_read on public.service_prices for select to anon, authenticated using (true);

drop policy if exists service_prices_admin on public.service_prices;
create policy service_prices_admin on public.service_prices for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

create or replace function app.service_prices_audit() returns trigger
language plpgsql set search_path = '' as $$
declare
  r public.service_prices := case when tg_op = 'DELETE' then old else new end;
begin
  perform app.audit('service.price_' || lower(tg_op), 'service',
                    (select code from public.services where id = r.service_id),
                    jsonb_build_object('country', r.country_code, 'price_minor', r.price_minor,
                                       'per_minute_minor', r.per_minute_minor));
  return null;
end
$$;

create or replace trigger trg_service_prices_audit after insert or update or delete on public.service_prices
  for each row execute function app.service_prices_audit();

-- What a service costs a client from a country (the country's price, else the service's);
-- p_country null: the caller's own country (none for anonymous visitors).
create or replace function app.service_price(p_service bigint, p_country char(2))
returns table (price_minor integer, per_minute_minor integer, currency char(3))
language sql stable security definer set search_path = '' as $$
  select coalesce(p.price_minor, s.price_minor), coalesce(p.per_minute_minor, s.per_minute_minor), s.currency
    from public.services s
    left join public.service_prices p
           on p.service_id = s.id
          and p.country_code = coalesce(p_country, (select x.country_code from public.profiles x where x.id = auth.uid()))
   where s.id = p_service
$$;
revoke all on function app.service_price(bigint, char) from public;
grant execute on function app.service_price(bigint, char) to anon, authenticated, service_role;

-- Readers' public profiles: a reader writes their own, admins any; the public reads them
-- only through app.reader_directory(), which returns the public fields and nothing else.
select app.lock_down('reader_profiles');
grant select, insert, update on public.reader_profiles to authenticated;

drop policy if exists reader_profiles_read on public.reader_profiles;
create policy reader_profiles_read on public.reader_profiles for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

-- (admins see every profile, so the role check in the subquery reads the row's reader)
drop policy if exists reader_profiles_write on public.reader_profiles;
create policy reader_profiles_write on public.reader_profiles for insert to authenticated
  with check ((reader_id = (select auth.uid()) and (select app.user_role()) = 'reader')
              or ((select app.is_admin()) and exists (select 1 from public.profiles p
                                                       where p.id = reader_profiles.reader_id and p.role_id = 3)));

drop policy if exists reader_profiles_update on public.reader_profiles;
create policy reader_profiles_update on public.reader_profiles for update to authenticated
  using ((reader_id = (select auth.uid()) and (select app.user_role()) = 'reader') or (select app.is_admin()))
  with check ((reader_id = (select auth.uid()) and (select app.user_role()) = 'reader')
              or ((select app.is_admin()) and exists (select 1 from public.profiles p
                                                       where p.id = reader_profiles.reader_id and p.role_id = 3)));

create or replace function app.reader_profiles_touch() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create or replace trigger trg_reader_profiles_touch before update on public.reader_profiles
  for each row execute function app.reader_profiles_touch();

-- The reader directory: readers with a public profile who are active (not blocked, not
-- deleted), with the services they offer at the prices of p_country (null: the caller's), their published reviews'
-- average, and whether they are online now and can take an instant call.
create or replace function app.reader_directory(p_reader uuid default null, p_country char(2) default null)
returns table (reader_id uuid, display_name text, photo_media_id bigint, photo_sha256 text, bio_en text,
               bio_ar text, specialties text[], languages text[], rating numeric, reviews bigint, online boolean,
               instant boolean, services jsonb)
language plpgsql stable security definer set search_path = '' as $$
declare
  instant_on boolean := app.flag_on('feature.readerInstant');
begin
  return query
  select rp.reader_id, rp.display_name, m.id, m.sha256, rp.bio_en, rp.bio_ar, rp.specialties, rp.languages,
         round(rv.avg, 2), coalesce(rv.n, 0),
         coalesce(st.available, false),
         instant_on and coalesce(st.available, false) and not app.on_live_call(rp.reader_id),
         coalesce(sv.list, '[]'::jsonb)
    from public.reader_profiles rp
    join public.profiles p on p.id = rp.reader_id and p.role_id = 3 and p.deleted_at is null
                          and (p.blocked_at is null or p.blocked_until <= now())
    left join public.media_assets m on m.id = rp.photo_media_id and m.removed_at is null
    left join public.reader_status st on st.reader_id = rp.reader_id
    left join lateral (select avg(r.rating)::numeric as avg, count(*) as n from public.reviews r
                        where r.reader_id = rp.reader_id and r.status = 'published') rv on true
    left join lateral (
      select jsonb_agg(jsonb_build_object('code', s.code, 'kind', s.kind, 'name_en', s.name, 'name_ar', s.name_ar,
                                          'price_minor', pr.price_minor, 'per_minute_minor', pr.per_minute_minor,
                                          'currency', pr.currency, 'duration_minutes', s.duration_minutes)
                       order by s.id) as list
        from public.reader_services x
        join public.services s on s.id = x.service_id and s.is_active
        cross join lateral app.service_price(s.id, p_country) pr
       where x.reader_id = rp.reader_id and x.active) sv on true
   where p_reader is null or rp.reader_id = p_reader
   order by coalesce(st.available, false) desc, rv.avg desc nulls last, rp.display_name;
end
$$;
revoke all on function app.reader_directory(uuid, char) from public;
grant execute on function app.reader_directory(uuid, char) to anon, authenticated, service_role;

-- Reviews: the client who wrote one and the reviewed reader read it, staff read all; the
-- public reads published ones through app.reader_reviews() (no client identity). Every write
-- goes through the functions below.
select app.lock_down('reviews');
grant select on public.reviews to authenticated;

drop policy if exists reviews_read on public.reviews;
create policy reviews_read on public.reviews for select to authenticated
  using (client_id = (select auth.uid()) or reader_id = (select auth.uid()) or (select app.is_staff()));

create or replace function app.reader_reviews(p_reader uuid, p_limit integer default 20, p_before bigint default null)
returns table (id bigint, rating smallint, body text, reply text, replied_at timestamptz, created_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select r.id, r.rating, r.body, r.reply, r.replied_at, r.created_at from public.reviews r
   where r.reader_id = p_reader and r.status = 'published' and (p_before is null or r.id < p_before)
   order by r.id desc limit least(greatest(p_limit, 1), 100)
$$;
revoke all on function app.reader_reviews(uuid, integer, bigint) from public;
grant execute on function app.reader_reviews(uuid, integer, bigint) to anon, authenticated, service_role;

-- A client reviews a delivered order or a completed call of theirs, once. Text that trips a
-- flagged word or carries contact details waits (held) for a monitor and opens a case.
create or replace function app.leave_review(p_order bigint, p_call bigint, p_rating integer, p_body text)
returns public.reviews
language plpgsql volatile security definer set search_path = '' as $$
declare
  who uuid;
  flag text;
  r public.reviews;
begin
  if app.user_role() is distinct from 'client' then
    raise exception 'only clients write reviews' using errcode = '42501', hint = 'forbidden';
  end if;
  if p_order is not null then
    select o.assigned_reader into who from public.orders o
     where o.id = p_order and o.user_id = auth.uid() and o.status in ('delivered', 'archived');
  else
    select c.reader_id into who from public.calls c
     where c.id = p_call and c.client_id = auth.uid() and c.status = 'ended' and c.connected_seconds > 0;
  end if;
  if who is null then
    raise exception 'no delivered order or completed call of yours to review' using errcode = 'P0002', hint = 'not_found';
  end if;
  flag := app.text_flag(p_body);
  insert into public.reviews (client_id, reader_id, order_id, call_id, rating, body, status)
  values (auth.uid(), who, p_order, p_call, p_rating, nullif(btrim(p_body), ''),
          case when flag is null then 'published' else 'held' end)
  returning * into r;
  if flag is not null then
    insert into public.moderation_cases (source, rule, reason, severity, subject_kind, subject_id, subject_user,
                                         summary, dedupe_key)
    select 'sweep', 'review_text', m.code, m.severity, 'review', r.id::text, auth.uid(),
           'a review waits: its text tripped a flagged word or carries contact details', 'review:' || r.id
      from public.moderation_reasons m where m.code = flag;
  end if;
  perform app.audit('review.create', 'review', r.id::text,
                    jsonb_build_object('rating', p_rating, 'held', flag is not null));
  return r;
end
$$;
revoke all on function app.leave_review(bigint, bigint, integer, text) from public;
grant execute on function app.leave_review(bigint, bigint, integer, text) to authenticated;

-- The reviewed reader replies once; a reply that trips a flagged word is refused.
create or replace function app.reply_review(p_review bigint, p_reply text) returns public.reviews
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.reviews;
begin
  select * into r from public.reviews where id = p_review and reader_id = auth.uid() for update;
  if r.id is null or app.user_role() is distinct from 'reader' then
    raise exception 'no such review of yours' using errcode = 'P0002', hint = 'not_found';
  end if;
  if r.reply is not null then
    raise exception 'you have already replied to this review' using errcode = '55000', hint = 'already_replied';
  end if;
  if app.text_flag(p_reply) is not null then
    raise exception 'the reply has words or contact details that cannot be published'
      using errcode = '23514', hint = 'flagged_text', column = 'reply';
  end if;
  update public.reviews set reply = btrim(p_reply), replied_at = now() where id = r.id returning * into r;
  perform app.audit('review.reply', 'review', r.id::text, '{}'::jsonb);
  return r;
end
$$;
revoke all on function app.reply_review(bigint, text) from public;
grant execute on function app.reply_review(bigint, text) to authenticated;

-- A monitor publishes a held review or removes one (it leaves the reader's average).
create or replace function app.decide_review(p_review bigint, p_action text, p_reason text, p_note text,
                                             p_case bigint default null) returns public.reviews
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.reviews;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'staff only' using errcode = '42501', hint = 'forbidden';
  end if;
  if p_action not in ('publish_review', 'remove_review') then
    raise exception 'unknown action %', p_action using errcode = '22023', hint = 'validation_error';
  end if;
  update public.reviews
     set status = case p_action when 'publish_review' then 'published' else 'removed' end,
         decided_by = auth.uid(), decided_at = now(),
         removed_reason = case when p_action = 'remove_review' then p_note end
   where id = p_review
  returning * into r;
  if r.id is null then
    raise exception 'no such review' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform app.moderation_record('review', r.id::text, p_action, p_reason, p_note, p_case, null);
  return r;
end
$$;
revoke all on function app.decide_review(bigint, text, text, text, bigint) from public;
grant execute on function app.decide_review(bigint, text, text, text, bigint) to authenticated;

-- A reader the directory lists (favourites may name only those).
create or replace function app.listed_reader(p_reader uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.reader_profiles rp
                   join public.profiles p on p.id = rp.reader_id and p.role_id = 3 and p.deleted_at is null
                  where rp.reader_id = p_reader)
$$;
revoke all on function app.listed_reader(uuid) from public;
grant execute on function app.listed_reader(uuid) to authenticated;

-- Favourites: a client's own list.
select app.lock_down('favourites');
grant select, insert, delete on public.favourites to authenticated;

drop policy if exists favourites_own on public.favourites;
create policy favourites_own on public.favourites for all to authenticated
  using (client_id = (select auth.uid()))
  with check (client_id = (select auth.uid()) and (select app.user_role()) = 'client'
              and app.listed_reader(reader_id));

-- Emergency rates are public (the client sees them before calling); admins edit them.
select app.lock_down('emergency_rates');
grant select on public.emergency_rates to anon, authenticated;
grant insert, update, delete on public.emergency_rates to authenticated;

drop policy if exists emergency_rates_read on public.emergency_rates;
create policy emergency_rates_read on public.emergency_rates for select to anon, authenticated using (true);

drop policy if exists emergency_rates_admin on public.emergency_rates;
create policy emergency_rates_admin on public.emergency_rates for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
