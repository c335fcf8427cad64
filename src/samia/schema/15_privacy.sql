-- Privacy, legal and trust (seeds 000 M38): which legal versions a user still has to accept,
-- publishing and accepting them, and cookie and consent choices (and what analytics may read).
-- The gate that uses app.legal_outstanding() (adults who accepted the current terms order,
-- book, pay and call) is app.transact_refusal() in 01_identity.sql.

-- ─── Legal documents ───────────────────────────────────────────────────────────────────

-- The documents whose newest material version the user has not accepted (an acceptance of
-- that version or a later one counts).
create or replace function app.legal_outstanding(p_user uuid) returns text[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(d.code order by d.code), '{}')
    from public.legal_documents d
    join lateral (select max(v.version) as need from public.legal_versions v
                   where v.doc = d.code and v.material) m on m.need is not null
   where d.acceptance_required
     and not exists (select 1 from public.legal_acceptances a
                       join public.legal_versions av on av.id = a.version_id
                      where a.user_id = p_user and av.doc = d.code and av.version >= m.need)
$$;

revoke all on function app.legal_outstanding(uuid) from public;
grant execute on function app.legal_outstanding(uuid) to authenticated, service_role;

-- An admin publishes the next version of a document; a material one has to be accepted again
-- before anyone orders, books or pays.
create or replace function app.legal_publish(p_doc text, p_material boolean, p_body_en text, p_body_ar text,
                                             p_summary_en text default null, p_summary_ar text default null)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  vid bigint;
  n integer;
begin
  if not coalesce(app.is_admin(), false) then
    raise exception 'only admins publish legal documents' using errcode = '42501', hint = 'forbidden';
  end if;
  if not exists (select 1 from public.legal_documents where code = p_doc) then
    raise exception 'no such document' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('legal:' || p_doc, 0));
  select coalesce(max(version), 0) + 1 into n from public.legal_versions where doc = p_doc;
  insert into public.legal_versions (doc, version, material, body_en, body_ar, summary_en, summary_ar, published_by)
  values (p_doc, n, p_material, p_body_en, p_body_ar, p_summary_en, p_summary_ar, auth.uid())
  returning id into vid;
  perform app.audit('legal.published', 'legal_document', p_doc,
                    jsonb_build_object('version', n, 'material', p_material, 'version_id', vid));
  return vid;
end
$$;

-- The caller accepts a document's current version, with the address and browser it came from.
create or replace function app.legal_accept(p_doc text, p_version integer, p_ip inet, p_agent text)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v public.legal_versions;
  aid bigint;
begin
  if auth.uid() is null then
    raise exception 'sign in to accept' using errcode = '42501', hint = 'unauthenticated';
  end if;
  select * into v from public.legal_versions where doc = p_doc and version = p_version;
  if v.id is null then
    raise exception 'no such version' using errcode = 'P0002', hint = 'not_found';
  end if;
  if exists (select 1 from public.legal_versions x where x.doc = p_doc and x.version > p_version) then
    raise exception 'version % of % is no longer current', p_version, p_doc using errcode = '55000',
      hint = 'stale_version';
  end if;
  insert into public.legal_acceptances (user_id, version_id, ip, user_agent, source)
  values (auth.uid(), v.id, p_ip, left(p_agent, 300), 'api')
  on conflict (user_id, version_id) do nothing
  returning id into aid;
  if aid is null then
    select a.id into aid from public.legal_acceptances a where a.user_id = auth.uid() and a.version_id = v.id;
  else
    perform app.audit('legal.accepted', 'legal_document', p_doc,
                      jsonb_build_object('version', p_version, 'version_id', v.id));
  end if;
  return aid;
end
$$;

-- An account made by an operator (samia users create, the demo) with the current versions
-- accepted on the person's behalf; the owner and jobs only.
create or replace function app.legal_accept_current(p_user uuid) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  insert into public.legal_acceptances (user_id, version_id, source)
  select p_user, v.id, 'cli'
    from (select distinct on (x.doc) x.id from public.legal_versions x order by x.doc, x.version desc) v
  on conflict (user_id, version_id) do nothing;
  get diagnostics n = row_count;
  if n > 0 then
    perform app.audit('legal.accepted', 'profile', p_user::text, jsonb_build_object('source', 'cli', 'documents', n));
  end if;
  return n;
end
$$;

revoke all on function app.legal_publish(text, boolean, text, text, text, text), app.legal_accept(text, integer, inet, text),
  app.legal_accept_current(uuid) from public;
grant execute on function app.legal_publish(text, boolean, text, text, text, text), app.legal_accept(text, integer, inet, text)
  to authenticated;
grant execute on function app.legal_accept_current(uuid) to service_role;

-- A published version is never edited: a change is a new version.
create or replace trigger trg_legal_versions_refuse before update or delete on public.legal_versions
  for each row execute function app.append_only('legal_versions_append_only');

select app.lock_down('legal_documents', 'legal_versions', 'legal_acceptances', 'legal_disclosures');
grant select on public.legal_documents, public.legal_versions, public.legal_disclosures to anon, authenticated;

drop policy if exists legal_documents_read on public.legal_documents;
create policy legal_documents_read on public.legal_documents for select to anon, authenticated using (true);

drop policy if exists legal_versions_read on public.legal_versions;
create policy legal_versions_read on public.legal_versions for select to anon, authenticated using (true);

drop policy if exists legal_disclosures_read on public.legal_disclosures;
create policy legal_disclosures_read on public.legal_disclosures for select to anon, authenticated using (true);

-- Disclosures are data admins keep (text per country).
grant insert, update, delete on public.legal_disclosures to authenticated;

drop policy if exists legal_disclosures_admin on public.legal_disclosures;
create policy legal_disclosures_admin on public.legal_disclosures for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

create or replace function app.legal_disclosures_audit() returns trigger
language plpgsql set search_path = '' as $$
declare
  r public.legal_disclosures := case when tg_op = 'DELETE' then old else new end;
begin
  perform app.audit('legal.disclosure_' || lower(tg_op), 'legal_disclosure', r.code,
                    jsonb_build_object('country', r.country_code));
  return null;
end
$$;

create or replace trigger trg_legal_disclosures_audit after insert or update or delete on public.legal_disclosures
  for each row execute function app.legal_disclosures_audit();

grant select on public.legal_acceptances to authenticated;

drop policy if exists legal_acceptances_read on public.legal_acceptances;
create policy legal_acceptances_read on public.legal_acceptances for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));


-- ─── Cookie and consent choices ────────────────────────────────────────────────────────

-- Record the banner's choice, for the signed-in user and/or the anonymous visitor id.
create or replace function app.record_consent(p_visitor uuid, p_analytics boolean, p_marketing boolean)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  cid bigint;
begin
  if auth.uid() is null and p_visitor is null then
    raise exception 'a visitor id is needed before sign-in' using errcode = '22023', hint = 'validation_error';
  end if;
  insert into public.cookie_consents (user_id, visitor_id, analytics, marketing, version_id)
  values (auth.uid(), p_visitor, p_analytics, p_marketing,
          (select v.id from public.legal_versions v where v.doc = 'privacy' order by v.version desc limit 1))
  returning id into cid;
  return cid;
end
$$;

-- The choice that holds: the user's newest, else the visitor id's newest. Someone else's
-- account-level choice is for staff and jobs only; a visitor id is the banner's own secret.
create or replace function app.consent_for(p_user uuid, p_visitor uuid)
returns table (analytics boolean, marketing boolean, decided_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select c.analytics, c.marketing, c.created_at
    from public.cookie_consents c
   where (c.user_id = p_user
          and (p_user = auth.uid() or coalesce(app.is_staff(), false) or current_setting('role') = 'service_role'))
      or c.visitor_id = p_visitor
   order by (c.user_id is not distinct from p_user) desc, c.id desc
   limit 1
$$;

-- What analytics reads before it records anything about someone: necessary always; analytics
-- and marketing only when chosen (no choice is a no).
create or replace function app.analytics_allowed(p_user uuid, p_visitor uuid, p_purpose text) returns boolean
language sql stable security definer set search_path = '' as $$
  select case p_purpose
    when 'necessary' then true
    when 'analytics' then coalesce((select c.analytics from app.consent_for(p_user, p_visitor) c), false)
    when 'marketing' then coalesce((select c.marketing from app.consent_for(p_user, p_visitor) c), false)
    else false
  end
$$;

revoke all on function app.record_consent(uuid, boolean, boolean), app.consent_for(uuid, uuid),
  app.analytics_allowed(uuid, uuid, text) from public;
grant execute on function app.record_consent(uuid, boolean, boolean), app.consent_for(uuid, uuid),
  app.analytics_allowed(uuid, uuid, text) to anon, authenticated, service_role;

select app.lock_down('cookie_consents');
grant select on public.cookie_consents to authenticated;

drop policy if exists cookie_consents_read on public.cookie_consents;
create policy cookie_consents_read on public.cookie_consents for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));
