-- Privacy, legal and trust (seeds 000 M38, M43, Phase 4.1 item 8): which legal versions a user
-- still has to accept, publishing and accepting them, cookie and consent choices (and what
-- analytics may read), data-subject requests from filing to the deadline alerts, erasure, the
-- storage objects waiting to be removed, the purge of test users and the data-QA report.
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

-- (it answers for any user: requests ask through app.my_legal_outstanding())
revoke all on function app.legal_outstanding(uuid) from public;
revoke execute on function app.legal_outstanding(uuid) from authenticated;
grant execute on function app.legal_outstanding(uuid) to service_role;

create or replace function app.my_legal_outstanding() returns text[]
language sql stable security definer set search_path = '' as $$
  select app.legal_outstanding(auth.uid())
$$;
revoke all on function app.my_legal_outstanding() from public;
grant execute on function app.my_legal_outstanding() to authenticated, service_role;

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

-- The sign-up form's "I accept the terms and the privacy policy": the current version of each
-- document, accepted by the account this very transaction created (source 'signup', with the
-- address and browser the form came from). Any other account is refused.
create or replace function app.legal_accept_at_signup(p_user uuid, p_ip inet, p_agent text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  if not exists (select 1 from public.profiles p where p.id = p_user and p.created_at = now()) then
    raise exception 'terms are accepted at sign-up only by the account being created'
      using errcode = '42501', hint = 'forbidden';
  end if;
  insert into public.legal_acceptances (user_id, version_id, ip, user_agent, source)
  select p_user, v.id, p_ip, left(p_agent, 300), 'signup'
    from (select distinct on (x.doc) x.id from public.legal_versions x order by x.doc, x.version desc) v
  on conflict (user_id, version_id) do nothing;
  get diagnostics n = row_count;
  perform app.audit('legal.accepted', 'profile', p_user::text, jsonb_build_object('source', 'signup', 'documents', n));
  return n;
end
$$;

revoke all on function app.legal_publish(text, boolean, text, text, text, text), app.legal_accept(text, integer, inet, text),
  app.legal_accept_current(uuid), app.legal_accept_at_signup(uuid, inet, text) from public;
grant execute on function app.legal_publish(text, boolean, text, text, text, text), app.legal_accept(text, integer, inet, text)
  to authenticated;
grant execute on function app.legal_accept_current(uuid) to service_role;
grant execute on function app.legal_accept_at_signup(uuid, inet, text) to samia_auth;

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
  if auth.uid() is not null and not p_analytics then
    perform app.analytics_unlink(auth.uid());  -- the objection reaches back (schema/16_analytics.sql)
  end if;
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

-- THE rule for what may be done with a person's data, per purpose (one place; analytics and
-- personalization read it):
--   necessary   — always;
--   operational — the server's own records of what they do here (orders, payments, calls,
--                 logins: the business's figures) linked to them, unless they objected with an
--                 explicit analytics "no" (the right to object, GDPR art. 21);
--   analytics, marketing — only when they said yes (tracking, campaigns).
-- It reads the choices itself, so the person's own choice decides whoever's action causes the
-- event (a reader's, a webhook's). Not granted to request roles: it answers for any user.
create or replace function app.analytics_allowed(p_user uuid, p_visitor uuid, p_purpose text) returns boolean
language sql stable security definer set search_path = '' as $$
  with choice as (
    select c.analytics, c.marketing from public.cookie_consents c
     where (p_user is not null and c.user_id = p_user) or (p_visitor is not null and c.visitor_id = p_visitor)
     order by (c.user_id is not distinct from p_user) desc, c.id desc
     limit 1)
  select case p_purpose
    when 'necessary' then true
    when 'operational' then coalesce((select analytics from choice), true)
    when 'analytics' then coalesce((select analytics from choice), false)
    when 'marketing' then coalesce((select marketing from choice), false)
    else false
  end
$$;

revoke all on function app.record_consent(uuid, boolean, boolean), app.consent_for(uuid, uuid),
  app.analytics_allowed(uuid, uuid, text) from public;
grant execute on function app.record_consent(uuid, boolean, boolean), app.consent_for(uuid, uuid)
  to anon, authenticated, service_role;
grant execute on function app.analytics_allowed(uuid, uuid, text) to service_role;

select app.lock_down('cookie_consents');
grant select on public.cookie_consents to authenticated;

drop policy if exists cookie_consents_read on public.cookie_consents;
create policy cookie_consents_read on public.cookie_consents for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));


-- ─── Data-subject requests ─────────────────────────────────────────────────────────────

create or replace function app.privacy_setting(p_name text) returns integer
language sql stable security definer set search_path = '' as $$
  select value from public.privacy_settings where name = p_name
$$;

-- The caller asks for an export or the deletion of their data; the admins hear of it.
create or replace function app.dsr_file(p_kind text, p_note text) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  rid bigint;
begin
  if auth.uid() is null then
    raise exception 'sign in first' using errcode = '42501', hint = 'unauthenticated';
  end if;
  if exists (select 1 from public.data_requests r where r.user_id = auth.uid() and r.kind = p_kind
               and r.status in ('pending', 'approved', 'processing', 'failed')) then
    raise exception 'you already have an open % request', p_kind using errcode = '55000', hint = 'request_open';
  end if;
  insert into public.data_requests (user_id, kind, note, due_at)
  values (auth.uid(), p_kind, p_note, now() + make_interval(days => app.privacy_setting('dsr_deadline_days')))
  returning id into rid;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  select p.id, 'email', 'data_request_filed', jsonb_build_object('request', rid, 'kind', p_kind)
    from public.profiles p where p.role_id in (1, 2) and p.deleted_at is null;
  perform app.audit('dsr.requested', 'data_request', rid::text, jsonb_build_object('kind', p_kind));
  return rid;
end
$$;

-- An admin approves (a job then does it) or declines with a reason, once: the row lock makes
-- concurrent decisions wait, and the second finds it decided. Nobody decides their own.
create or replace function app.dsr_decide(p_request bigint, p_decision text, p_reason text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.data_requests;
begin
  if not coalesce(app.is_admin(), false) then
    raise exception 'only admins decide data requests' using errcode = '42501', hint = 'forbidden';
  end if;
  if p_decision not in ('approved', 'declined') then
    raise exception 'approve or decline' using errcode = '22023', hint = 'validation_error';
  end if;
  select * into r from public.data_requests where id = p_request for update;
  if r.id is null then
    raise exception 'no such data request' using errcode = 'P0002', hint = 'not_found';
  end if;
  if r.user_id = auth.uid() then
    raise exception 'another admin decides your own request' using errcode = '42501', hint = 'own_request';
  end if;
  if r.status <> 'pending' then
    raise exception 'this request was already decided (%)', r.status using errcode = '55000', hint = 'already_decided';
  end if;
  if p_decision = 'declined' and nullif(btrim(p_reason), '') is null then
    raise exception 'a decline needs a reason' using errcode = '23514', hint = 'reason_required', column = 'reason';
  end if;
  if p_decision = 'approved' and r.kind = 'delete'
     and exists (select 1 from public.profiles p where p.id = r.user_id and p.role_id = 1)
     and not exists (select 1 from public.profiles p where p.role_id = 1 and p.deleted_at is null and p.id <> r.user_id)
  then
    raise exception 'the last superadmin cannot be deleted' using errcode = '42501', hint = 'last_superadmin';
  end if;
  update public.data_requests set status = p_decision, decided_by = auth.uid(), decided_at = now(),
         decision_reason = nullif(btrim(p_reason), '')
   where id = r.id;
  if p_decision = 'approved' then
    perform app.defer('dsr_process');
  end if;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (r.user_id, 'email', 'data_request_' || p_decision, jsonb_build_object('request', r.id, 'kind', r.kind));
  perform app.audit('dsr.' || p_decision, 'data_request', r.id::text,
                    jsonb_build_object('kind', r.kind, 'subject', r.user_id));
  return p_decision;
end
$$;

-- The job takes the next approved request (or one whose earlier run failed or stalled), one
-- worker per request.
create or replace function app.dsr_claim() returns table (id bigint, user_id uuid, kind text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.data_requests;
begin
  update public.data_requests x set status = 'processing', started_at = now(), attempts = x.attempts + 1
   where x.id = (select y.id from public.data_requests y
                  where (y.status = 'approved'
                         -- a failed run is tried again after 2, 4, 8, 16 minutes; after the fifth,
                         -- it waits for an admin (app.dsr_retry) and the deadline alerts
                         or (y.status = 'failed' and y.attempts < 5
                             and y.started_at < now() - make_interval(mins => power(2, y.attempts)::integer))
                         or (y.status = 'processing' and y.started_at < now() - interval '15 minutes'))
                  order by y.decided_at, y.id
                  limit 1 for update skip locked)
  returning * into r;
  if r.id is not null then
    perform app.audit('dsr.started', 'data_request', r.id::text,
                      jsonb_build_object('kind', r.kind, 'attempt', r.attempts));
    return query select r.id, r.user_id, r.kind;
  end if;
end
$$;

-- An admin sends a request that failed its five tries back to the job.
create or replace function app.dsr_retry(p_request bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not coalesce(app.is_admin(), false) then
    raise exception 'admin only' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.data_requests set status = 'approved', attempts = 0, failure = null
   where id = p_request and status = 'failed';
  if not found then
    raise exception 'only a failed request is retried' using errcode = '55000', hint = 'conflict';
  end if;
  perform app.audit('dsr.retried', 'data_request', p_request::text, '{}'::jsonb);
  perform app.defer('dsr_process');
end
$$;
revoke all on function app.dsr_retry(bigint) from public;
grant execute on function app.dsr_retry(bigint) to authenticated;

create or replace function app.dsr_fail(p_request bigint, p_error text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.data_requests set status = 'failed', failure = left(p_error, 500)
   where id = p_request and status = 'processing';
  perform app.audit('dsr.failed', 'data_request', p_request::text, jsonb_build_object('error', left(p_error, 200)));
end
$$;

-- The export is stored: it is downloadable until export_expires_at, then deleted.
create or replace function app.dsr_finish_export(p_request bigint, p_key text, p_sha text, p_bytes bigint,
                                                 p_counts jsonb) returns timestamptz
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.data_requests;
begin
  update public.data_requests
     set status = 'completed', completed_at = now(), failure = null, export_key = p_key, export_sha256 = p_sha,
         export_bytes = p_bytes, export_deleted_at = null,
         export_expires_at = now() + make_interval(hours => app.privacy_setting('export_ttl_hours'))
   where id = p_request and status = 'processing' and kind = 'export'
  returning * into r;
  if r.id is null then
    raise exception 'request % is not being exported', p_request using errcode = '55000', hint = 'conflict';
  end if;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (r.user_id, 'email', 'data_export_ready', jsonb_build_object('request', r.id));
  perform app.audit('dsr.export_completed', 'data_request', r.id::text,
                    jsonb_build_object('bytes', p_bytes, 'sha256', p_sha, 'rows', p_counts));
  return r.export_expires_at;
end
$$;

-- Erase or anonymise a person's data everywhere. Financial records the law requires
-- (payment_transactions, ledger_entries) stay, tied only to the now anonymous id; the audit
-- log holds ids, never personal data, and is not touched. Work the person delivered to others
-- stays unless it is theirs: a reader's recordings are theirs, a client's order record (and
-- the reader's delivery in it) is kept without the client's question and birth data. Storage
-- objects are listed in app_private.storage_deletions and removed by the job after commit.
-- Returns how many storage objects are to go.
create or replace function app.erase_user(p_user uuid, p_why text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  if not exists (select 1 from public.profiles where id = p_user) then
    raise exception 'no such user' using errcode = 'P0002', hint = 'not_found';
  end if;
  if exists (select 1 from public.profiles p where p.id = p_user and p.role_id = 1 and p.deleted_at is null)
     and not exists (select 1 from public.profiles p where p.role_id = 1 and p.deleted_at is null and p.id <> p_user)
  then
    raise exception 'the last superadmin cannot be deleted' using errcode = '42501', hint = 'last_superadmin';
  end if;
  -- files: what they uploaded or recorded, and the exports made for them
  insert into app_private.storage_deletions (key, reason)
  select m.storage_key, 'erasure' from public.media_assets m
   where m.owner_id = p_user and m.storage_key not like 'erased/%'
  union
  select r.export_key, 'erasure' from public.data_requests r
   where r.user_id = p_user and r.export_key is not null and r.export_deleted_at is null
  on conflict (key) do nothing;
  get diagnostics n = row_count;
  update public.media_assets set storage_key = 'erased/' || id, removed_at = coalesce(removed_at, now()), meta = '{}'
   where owner_id = p_user and storage_key not like 'erased/%';
  update public.data_requests
     set export_deleted_at = case when export_key is not null then coalesce(export_deleted_at, now()) end, note = null
   where user_id = p_user;
  -- the account: sign-in, sessions, phone codes, the profile's personal fields
  delete from app_auth.refresh_tokens t using app_auth.sessions s where t.session_id = s.id and s.user_id = p_user;
  delete from app_auth.sessions where user_id = p_user;
  delete from app_auth.credentials where user_id = p_user;
  delete from public.phone_verifications where profile_id = p_user;
  update public.profiles
     set email = null, phone = null, first_name = null, last_name = null, dob = null, country = null,
         birth_place = null, birth_time = null, birth_lat = null, birth_lon = null, birth_tz = null,
         email_verified = false, phone_verified = false, deleted_at = coalesce(deleted_at, now())
   where id = p_user;
  -- what they wrote or gave inside records others keep
  update public.orders set question_text = null, inputs = '{}', chart = null
   where user_id = p_user and (question_text is not null or inputs <> '{}' or chart is not null);
  update public.bookings set cancel_reason = null where p_user in (client_id, reader_id) and cancel_reason is not null;
  update public.reviews set body = null where client_id = p_user and body is not null;
  update public.reviews set reply = null, replied_at = null where reader_id = p_user and reply is not null;
  update public.call_consent_logs set client_ip = '0.0.0.0', user_agent = null where client_id = p_user;
  update public.emergency_requests set client_ip = '0.0.0.0', user_agent = null, note = null where client_id = p_user;
  update public.legal_acceptances set ip = null, user_agent = null where user_id = p_user;
  update public.moderation_cases set summary = null, evidence = '[]' where reporter_id = p_user and source = 'report';
  update public.appeals set statement = '[erased]' where appellant_id = p_user;
  -- redacted call transcripts, except those held by an open safety incident (as retention does)
  delete from public.call_transcripts t using public.calls c
   where c.id = t.call_id and p_user in (c.client_id, c.reader_id)
     and not exists (select 1 from public.safety_incidents i where i.call_id = t.call_id and i.status = 'open');
  -- drafts quote the client's question: theirs go with the question; a reader's own drafts too
  delete from public.reading_drafts d using public.orders o where o.id = d.order_id and o.user_id = p_user;
  delete from public.reading_drafts where author_id = p_user;
  perform app.analytics_forget(p_user);
  delete from public.cookie_consents where user_id = p_user;
  -- messaging: sends (theirs, and those of their outbox rows), devices, consents, prefs; a
  -- suppression stays (it holds a hash, no address, and must outlive the account)
  delete from public.notification_sends s using public.notification_outbox o
   where s.outbox_id = o.id and o.recipient_id = p_user;
  delete from public.notification_sends where recipient_id = p_user;
  delete from public.devices where user_id = p_user;
  delete from public.consents where user_id = p_user;
  delete from public.notification_prefs where user_id = p_user;
  update public.campaigns set created_by = null where created_by = p_user;
  -- the daily horoscope push: the opt-in, and the log of pushes (it points at outbox rows)
  delete from public.horoscope_push_log where user_id = p_user;
  delete from public.horoscope_subscriptions where user_id = p_user;
  delete from public.notification_outbox where recipient_id = p_user;
  delete from public.idempotency_keys where user_id = p_user;
  delete from public.favourites where p_user in (client_id, reader_id);
  delete from public.reader_profiles where reader_id = p_user;
  delete from public.reader_status where reader_id = p_user;
  delete from public.availability_rules where reader_id = p_user;
  delete from public.availability_exceptions where reader_id = p_user;
  update public.reader_services set active = false where reader_id = p_user;
  delete from public.quiet_hours where user_id = p_user;
  delete from public.oncall_rota where user_id = p_user;
  perform app.audit('privacy.erased', 'profile', p_user::text, jsonb_build_object('why', p_why, 'objects', n));
  return n;
end
$$;

-- The superadmin deletes an account (DELETE /admin/users/{id}): the same erasure as a data
-- request's, never their own account here.
create or replace function app.admin_erase_user(p_user uuid) returns integer
language plpgsql volatile security definer set search_path = '' as $$
begin
  if app.user_role() is distinct from 'superadmin' then
    raise exception 'only the superadmin may delete users' using errcode = '42501', hint = 'delete_reserved';
  end if;
  if p_user = auth.uid() then
    raise exception 'you cannot delete your own account here' using errcode = '55000', hint = 'conflict';
  end if;
  if not exists (select 1 from public.profiles where id = p_user and deleted_at is null) then
    raise exception 'no such user' using errcode = 'P0002', hint = 'not_found';
  end if;
  return app.erase_user(p_user, 'admin_delete');
end
$$;
revoke all on function app.admin_erase_user(uuid) from public;
grant execute on function app.admin_erase_user(uuid) to authenticated;

create or replace function app.dsr_finish_delete(p_request bigint) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.data_requests;
  n integer;
begin
  select * into r from public.data_requests where id = p_request and status = 'processing' and kind = 'delete'
     for update;
  if r.id is null then
    raise exception 'request % is not being deleted', p_request using errcode = '55000', hint = 'conflict';
  end if;
  n := app.erase_user(r.user_id, 'data_request');
  update public.data_requests set status = 'completed', completed_at = now(), failure = null where id = r.id;
  perform app.audit('dsr.delete_completed', 'data_request', r.id::text, jsonb_build_object('objects', n));
  return n;
end
$$;

-- Deadlines (an incident before a request's deadline and another when it has passed, each
-- once) and exports past their lifetime (their objects queued for deletion).
create or replace function app.dsr_sweep(p_now timestamptz default now()) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
  warned integer := 0;
  overdue integer := 0;
  expired integer;
begin
  for r in select * from public.data_requests x
            where x.status in ('pending', 'approved', 'processing', 'failed') and x.overdue_at is null
              and x.due_at - make_interval(days => app.privacy_setting('dsr_warn_days')) <= p_now
            order by x.due_at for update skip locked loop
    if r.due_at <= p_now then
      perform app.incident_open('Data request ' || r.id || ' (' || r.kind || ') is past its deadline', 'SEV2', 'alert',
                                'dsr:' || r.id || ':overdue', array['/admin/runbooks/data-requests'],
                                'due ' || to_char(r.due_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC');
      update public.data_requests set overdue_at = p_now, warned_at = coalesce(warned_at, p_now) where id = r.id;
      perform app.audit('dsr.deadline_passed', 'data_request', r.id::text, jsonb_build_object('kind', r.kind));
      overdue := overdue + 1;
    elsif r.warned_at is null then
      perform app.incident_open('Data request ' || r.id || ' (' || r.kind || ') is due soon', 'SEV3', 'alert',
                                'dsr:' || r.id || ':due', array['/admin/runbooks/data-requests'],
                                'due ' || to_char(r.due_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC');
      update public.data_requests set warned_at = p_now where id = r.id;
      perform app.audit('dsr.deadline_near', 'data_request', r.id::text, jsonb_build_object('kind', r.kind));
      warned := warned + 1;
    end if;
  end loop;
  with gone as (update public.data_requests set export_deleted_at = p_now
                 where export_key is not null and export_deleted_at is null and export_expires_at <= p_now
                returning export_key),
       queued as (insert into app_private.storage_deletions (key, reason)
                  select export_key, 'export_expired' from gone on conflict (key) do nothing returning 1)
  select count(*) into expired from gone;
  if warned + overdue + expired > 0 then
    perform app.audit('dsr.sweep', null, null,
                      jsonb_build_object('warned', warned, 'overdue', overdue, 'exports_expired', expired));
  end if;
  return jsonb_build_object('warned', warned, 'overdue', overdue, 'exports_expired', expired);
end
$$;

-- The object behind a signed download link: only while the export exists and has not expired.
create or replace function app.dsr_export_object(p_request bigint, p_sha text) returns text
language sql stable security definer set search_path = '' as $$
  select r.export_key from public.data_requests r
   where r.id = p_request and r.export_sha256 = p_sha and r.status = 'completed'
     and r.export_deleted_at is null and r.export_expires_at > now()
$$;

-- Storage objects waiting to be removed, and their removal confirmed (or another attempt counted).
create or replace function app.storage_deletions_due(p_limit integer default 500) returns setof text
language sql stable security definer set search_path = '' as $$
  select d.key from app_private.storage_deletions d order by d.created_at, d.key limit p_limit
$$;

create or replace function app.storage_deletion_done(p_done text[], p_failed text[]) returns void
language sql volatile security definer set search_path = '' as $$
  delete from app_private.storage_deletions where key = any(p_done);
  update app_private.storage_deletions set attempts = attempts + 1 where key = any(p_failed);
$$;

revoke all on function app.privacy_setting(text), app.dsr_file(text, text), app.dsr_decide(bigint, text, text),
  app.dsr_claim(), app.dsr_fail(bigint, text), app.dsr_finish_export(bigint, text, text, bigint, jsonb),
  app.erase_user(uuid, text), app.dsr_finish_delete(bigint), app.dsr_sweep(timestamptz),
  app.dsr_export_object(bigint, text), app.storage_deletions_due(integer),
  app.storage_deletion_done(text[], text[]) from public;
grant execute on function app.privacy_setting(text), app.dsr_file(text, text), app.dsr_decide(bigint, text, text)
  to authenticated;
grant execute on function app.dsr_export_object(bigint, text) to anon, authenticated;
grant execute on function app.privacy_setting(text), app.dsr_claim(), app.dsr_fail(bigint, text),
  app.dsr_finish_export(bigint, text, text, bigint, jsonb), app.erase_user(uuid, text), app.dsr_finish_delete(bigint),
  app.dsr_sweep(timestamptz), app.storage_deletions_due(integer), app.storage_deletion_done(text[], text[])
  to service_role;

select app.lock_down('data_requests', 'privacy_settings');

-- Requests: the requester and admins read; every change goes through the functions above.
grant select on public.data_requests to authenticated;

drop policy if exists data_requests_read on public.data_requests;
create policy data_requests_read on public.data_requests for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));

grant select, update (value) on public.privacy_settings to authenticated;

drop policy if exists privacy_settings_admin on public.privacy_settings;
create policy privacy_settings_admin on public.privacy_settings for select to authenticated
  using ((select app.is_admin()));

drop policy if exists privacy_settings_admin_update on public.privacy_settings;
create policy privacy_settings_admin_update on public.privacy_settings for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));


-- ─── Freeze and clean-up (M43) ─────────────────────────────────────────────────────────

-- M43: test users are erased like anyone who asked; they stay flagged is_test, so their
-- payments stay refused (pay_tx_block_tests) and they can never sign in again.
create or replace function app.purge_test_users() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  u uuid;
  n integer := 0;
begin
  for u in select p.id from public.profiles p where p.is_test and p.deleted_at is null order by p.created_at loop
    perform app.erase_user(u, 'test_user_purge');
    n := n + 1;
  end loop;
  perform app.audit('privacy.test_users_purged', null, null, jsonb_build_object('users', n));
  return n;
end
$$;

-- Seeds 003 §13C: the data-QA sweep. Orphan media: files nothing refers to (not an order's
-- input, output or approved audio, a cup photo, a reader's photo, a horoscope's audio or a
-- payment's proof), not removed, older than a day (an upload may be in flight).
create or replace function app.data_qa()
returns table (check_name text, found bigint, sample text[])
language sql stable security definer set search_path = '' as $$
  select 'profiles_without_role', count(*), (array_agg(p.id::text order by p.created_at))[1:5]
    from public.profiles p left join public.roles r on r.id = p.role_id where r.id is null
  union all
  select 'orders_without_service', count(*), (array_agg(o.id::text order by o.id))[1:5]
    from public.orders o left join public.services s on s.id = o.service_id where s.id is null
  union all
  select 'media_orphans', count(*), (array_agg(m.id::text order by m.id))[1:5]
    from public.media_assets m
   where m.removed_at is null and m.created_at < now() - interval '1 day'
     and not exists (select 1 from public.orders o where m.id in (o.input_media_id, o.output_media_id, o.approved_media_id))
     and not exists (select 1 from public.order_attachments a where a.media_id = m.id)
     and not exists (select 1 from public.reader_profiles rp where rp.photo_media_id = m.id)
     and not exists (select 1 from public.horoscopes h where h.audio_media_id = m.id)
     and not exists (select 1 from public.horoscope_clips c where m.id in (c.media_id, c.source_media_id))
     and not exists (select 1 from public.payment_transactions t where (t.metadata ->> 'proof_media_id')::bigint = m.id)
$$;

revoke all on function app.purge_test_users(), app.data_qa() from public;
grant execute on function app.purge_test_users(), app.data_qa() to service_role;

-- Retention of archived logs (samia.privacy.archive): admins read and tune it.
select app.lock_down('log_retention');
grant select, update (days, archive_days, note) on public.log_retention to authenticated;

drop policy if exists log_retention_admin on public.log_retention;
create policy log_retention_admin on public.log_retention for select to authenticated
  using ((select app.is_admin()));

drop policy if exists log_retention_admin_update on public.log_retention;
create policy log_retention_admin_update on public.log_retention for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
