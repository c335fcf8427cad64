-- Horoscopes (issue 15): staff see and work on everything; clients and visitors reach only
-- published items, and only through the definer functions below, which return the public
-- columns alone (never a draft, a post URL, a caption or a clip). The assistant's drafts live
-- in their own staff-only table. Publishing is one run per scope and day (the run row is the
-- lock), 12/12 or nothing unless an admin publishes the passing signs; the daily push goes
-- once per user and local day (the push log's primary key).

select app.lock_down('horoscopes', 'horoscope_clips', 'horoscope_captions', 'horoscope_drafts',
                     'horoscope_publish_runs', 'horoscope_subscriptions', 'horoscope_push_log');

-- Who works on horoscopes: readers (text), monitors and admins (everything).
create or replace function app.horoscope_staff() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(app.user_role() in ('reader', 'monitor', 'admin', 'superadmin'), false)
$$;
grant execute on function app.horoscope_staff() to anon, authenticated, service_role;

-- ─── horoscopes: staff only at the table; the public goes through app.horoscopes_public ──
grant select on public.horoscopes to authenticated;
grant update (text_en, text_ar) on public.horoscopes to authenticated;

drop policy if exists horoscopes_read on public.horoscopes;
create policy horoscopes_read on public.horoscopes for select to authenticated
  using ((select app.horoscope_staff()));

drop policy if exists horoscopes_write on public.horoscopes;

drop policy if exists horoscopes_update on public.horoscopes;
create policy horoscopes_update on public.horoscopes for update to authenticated
  using ((select app.horoscope_staff()) and status <> 'published')
  with check ((select app.horoscope_staff()) and status <> 'published');

-- An edited text needs a new approval; the assistant's label never becomes final text.
create or replace function app.horoscopes_touch() returns trigger
language plpgsql set search_path = '' as $$
begin
  if (new.text_en, new.text_ar) is distinct from (old.text_en, old.text_ar) then
    if coalesce(new.text_en, '') ilike '%Assistant Draft%' or coalesce(new.text_ar, '') ilike '%Assistant Draft%' then
      raise exception 'the assistant''s label cannot be final text' using errcode = '22023', hint = 'validation_error';
    end if;
    if old.status = 'approved' then
      new.status := 'draft';
      new.approved_at := null;
      new.approved_by := null;
    end if;
  end if;
  new.updated_at := now();
  return new;
end
$$;
drop trigger if exists horoscopes_touch on public.horoscopes;
create trigger horoscopes_touch before update on public.horoscopes
  for each row execute function app.horoscopes_touch();

-- ─── clips, captions, drafts, runs: staff ────────────────────────────────────────────────
grant select on public.horoscope_clips to authenticated;
drop policy if exists horoscope_clips_read on public.horoscope_clips;
create policy horoscope_clips_read on public.horoscope_clips for select to authenticated
  using ((select app.is_staff()));
-- speech made in the console is a clip of its own (fetched ones come through app.horoscope_submit)
grant insert on public.horoscope_clips to authenticated;
drop policy if exists horoscope_clips_tts on public.horoscope_clips;
create policy horoscope_clips_tts on public.horoscope_clips for insert to authenticated
  with check ((select app.is_staff()) and source = 'tts' and submitted_by = (select auth.uid()));

grant select, insert, update, delete on public.horoscope_captions to authenticated;
drop policy if exists horoscope_captions_read on public.horoscope_captions;
create policy horoscope_captions_read on public.horoscope_captions for select to authenticated
  using ((select app.is_staff()));
drop policy if exists horoscope_captions_admin on public.horoscope_captions;
create policy horoscope_captions_admin on public.horoscope_captions for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

grant select, insert, update on public.horoscope_drafts to authenticated;
drop policy if exists horoscope_drafts_staff on public.horoscope_drafts;
create policy horoscope_drafts_staff on public.horoscope_drafts for all to authenticated
  using ((select app.horoscope_staff())) with check ((select app.horoscope_staff()));

grant select on public.horoscope_publish_runs to authenticated;
drop policy if exists horoscope_runs_read on public.horoscope_publish_runs;
create policy horoscope_runs_read on public.horoscope_publish_runs for select to authenticated
  using ((select app.is_staff()));

-- ─── a user's own opt-in and push log ───────────────────────────────────────────────────
grant select, insert, update, delete on public.horoscope_subscriptions to authenticated;
drop policy if exists horoscope_subs_own on public.horoscope_subscriptions;
create policy horoscope_subs_own on public.horoscope_subscriptions for all to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
drop policy if exists horoscope_subs_admin on public.horoscope_subscriptions;
create policy horoscope_subs_admin on public.horoscope_subscriptions for select to authenticated
  using ((select app.is_admin()));

grant select on public.horoscope_push_log to authenticated;
drop policy if exists horoscope_push_log_read on public.horoscope_push_log;
create policy horoscope_push_log_read on public.horoscope_push_log for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));

-- ─── reading: published only, public columns only ───────────────────────────────────────
-- The set of one scope for a Beirut day: with p_exact, that day's (monthly: that month's)
-- or nothing; without, the newest published day up to it (yesterday's stays when today's
-- was halted). Nothing while feature.dailyZodiac is off.
drop function if exists app.horoscopes_public(text, date, boolean);
-- plpgsql, not sql: a definer function is never inlined, and plpgsql keeps its plan per session
-- (the hottest public read; bench/horoscopes.py)
create or replace function app.horoscopes_public(p_scope text, p_day date, p_exact boolean)
returns table (zodiac text, scope text, ref_date date, text_en text, text_ar text, audio_lang text,
               audio_media_id bigint, audio_sha256 text, audio_bytes bigint, duration_sec integer,
               published_at timestamptz)
language plpgsql stable security definer set search_path = '' as $$
declare
  d date;
begin
  if not exists (select 1 from public.feature_flags f where f.key = 'feature.dailyZodiac' and f.enabled) then
    return;
  end if;
  if p_exact then
    d := case p_scope when 'monthly' then date_trunc('month', p_day)::date else p_day end;
  else
    select max(h.ref_date) into d from public.horoscopes h
     where h.scope = p_scope and h.status = 'published' and h.ref_date <= p_day;
  end if;
  return query
    select h.zodiac, h.scope, h.ref_date, h.text_en, h.text_ar, h.audio_lang, h.audio_media_id, h.audio_sha256,
           m.bytes, m.duration_sec, h.published_at
      from public.horoscopes h
      join public.media_assets m on m.id = h.audio_media_id and m.sha256 = h.audio_sha256 and m.removed_at is null
     where h.scope = p_scope and h.status = 'published' and h.ref_date = d
     order by array_position(array['Aries', 'Taurus', 'Gemini', 'Cancer', 'Leo', 'Virgo', 'Libra', 'Scorpio',
                                   'Sagittarius', 'Capricorn', 'Aquarius', 'Pisces'], h.zodiac);
end
$$;

-- The stored object behind a published horoscope's audio: only the pinned file.
drop function if exists app.horoscope_audio(text, date, text);
create or replace function app.horoscope_audio(p_scope text, p_ref_date date, p_zodiac text)
returns table (storage_key text, content_type text, sha256 text, bytes bigint)
language plpgsql stable security definer set search_path = '' as $$
begin
  return query
    select m.storage_key, m.content_type, m.sha256, m.bytes
      from public.horoscopes h
      join public.media_assets m on m.id = h.audio_media_id and m.sha256 = h.audio_sha256 and m.removed_at is null
     where h.scope = p_scope and h.ref_date = p_ref_date and h.zodiac = p_zodiac and h.status = 'published'
       and exists (select 1 from public.feature_flags f where f.key = 'feature.dailyZodiac' and f.enabled);
end
$$;

-- A player started or finished a published horoscope: an analytics event (the user only as
-- their analytics consent allows, app.analytics_emit decides); unpublished ones do not exist.
drop function if exists app.horoscope_listen(text, date, text, text, integer);
create or replace function app.horoscope_listen(p_scope text, p_day date, p_sign text, p_event text,
                                                p_seconds integer)
returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  hid bigint;
begin
  select h.id into hid from public.horoscopes h
   where h.scope = p_scope and h.ref_date = p_day and h.zodiac = p_sign and h.status = 'published';
  if hid is null or p_event not in ('started', 'finished') then
    raise exception 'no such horoscope' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform app.analytics_emit('horoscope.listen_' || p_event, now(), p_user => auth.uid(), p_subject => hid,
                             p_seconds => p_seconds, p_device => 'web');
end
$$;

-- ─── ingest and classification ──────────────────────────────────────────────────────────
-- A monitor or admin submits a post URL (the host allowlist is checked by the API) or an
-- uploaded file already stored; the fetch job is queued in the same transaction.
drop function if exists app.horoscope_submit(text, text, text, bigint);
create or replace function app.horoscope_submit(p_source text, p_url text, p_caption text, p_media bigint)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  cid bigint;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'monitors and admins ingest horoscopes' using errcode = '42501', hint = 'forbidden';
  end if;
  if not app.flag_on('feature.dailyZodiac') then
    raise exception 'daily horoscopes are switched off' using errcode = '55000', hint = 'feature_disabled';
  end if;
  insert into public.horoscope_clips (source, source_url, caption, source_media_id, submitted_by)
  values (p_source, p_url, p_caption, p_media, auth.uid())
  returning id into cid;
  -- the job carries the clip id, so it is queued here (the owner's rule), not through app.defer
  insert into procrastinate.procrastinate_jobs (queue_name, task_name, priority, args)
  values ('default', 'horoscope_fetch', 0, jsonb_build_object('clip_id', cid));
  perform app.audit('horoscope.clip_submitted', 'horoscope_clip', cid::text, jsonb_build_object('source', p_source));
  return cid;
end
$$;

-- Classify a fetched clip (by the caption table in the job, or by hand) and make it the audio
-- of its sign's horoscope for that day, back to draft (a new file needs a new approval).
drop function if exists app.horoscope_classify(bigint, text, text, date, text, text);
create or replace function app.horoscope_classify(p_clip bigint, p_scope text, p_zodiac text, p_ref_date date,
                                                  p_lang text, p_by text)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.horoscope_clips;
  hid bigint;
  d date := case p_scope when 'monthly' then date_trunc('month', p_ref_date)::date else p_ref_date end;
begin
  if auth.uid() is not null and not coalesce(app.is_staff(), false) then
    raise exception 'monitors and admins classify clips' using errcode = '42501', hint = 'forbidden';
  end if;
  select * into c from public.horoscope_clips where id = p_clip for update;
  if c.id is null then
    raise exception 'no such clip' using errcode = 'P0002', hint = 'not_found';
  end if;
  if c.state not in ('unclassified', 'classified') or c.media_id is null then
    raise exception 'the clip has no audio yet' using errcode = '55000', hint = 'conflict';
  end if;
  if exists (select 1 from public.horoscopes h where h.scope = p_scope and h.zodiac = p_zodiac
                                                and h.ref_date = d and h.status = 'published') then
    raise exception 'that horoscope is already published' using errcode = '55000', hint = 'conflict';
  end if;
  update public.horoscope_clips set state = 'classified', scope = p_scope, zodiac = p_zodiac, ref_date = d,
         lang = coalesce(p_lang, lang), classified_by = p_by, updated_at = now()
   where id = p_clip;
  insert into public.horoscopes (scope, zodiac, ref_date, audio_media_id, audio_lang, clip_id)
  values (p_scope, p_zodiac, d, c.media_id, coalesce(p_lang, c.lang, 'ar'), p_clip)
  on conflict (scope, zodiac, ref_date) do update
     set audio_media_id = excluded.audio_media_id, audio_lang = excluded.audio_lang, clip_id = excluded.clip_id,
         status = 'draft', audio_sha256 = null, approved_at = null, approved_by = null, reject_reason = null
  returning id into hid;
  perform app.audit('horoscope.classified', 'horoscope', hid::text,
                    jsonb_build_object('clip', p_clip, 'by', p_by, 'zodiac', p_zodiac, 'scope', p_scope,
                                       'ref_date', d));
  return hid;
end
$$;

-- ─── approval: a monitor or admin pins the audio's sha256; reject sends it back ─────────
drop function if exists app.horoscope_approve(bigint);
create or replace function app.horoscope_approve(p_id bigint) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  h public.horoscopes;
  sha text;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'monitors and admins approve horoscopes' using errcode = '42501', hint = 'forbidden';
  end if;
  select * into h from public.horoscopes where id = p_id for update;
  if h.id is null then
    raise exception 'no such horoscope' using errcode = 'P0002', hint = 'not_found';
  end if;
  if h.status = 'published' then
    raise exception 'already published' using errcode = '55000', hint = 'conflict';
  end if;
  select m.sha256 into sha from public.media_assets m where m.id = h.audio_media_id and m.removed_at is null;
  if sha is null or coalesce(btrim(h.text_en), '') = '' or coalesce(btrim(h.text_ar), '') = '' then
    raise exception 'approval needs the audio and the text in English and Arabic'
      using errcode = '22023', hint = 'validation_error';
  end if;
  update public.horoscopes set status = 'approved', audio_sha256 = sha, approved_at = now(), approved_by = auth.uid(),
         reject_reason = null
   where id = p_id;
  insert into public.moderation_actions (actor_id, target_kind, target_id, action)
  values (auth.uid(), 'horoscope', p_id::text, 'approve');
  perform app.audit('horoscope.approved', 'horoscope', p_id::text, jsonb_build_object('sha256', sha));
  return sha;
end
$$;

drop function if exists app.horoscope_reject(bigint, text);
create or replace function app.horoscope_reject(p_id bigint, p_reason text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'monitors and admins reject horoscopes' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.horoscopes set status = 'rejected', reject_reason = p_reason, audio_sha256 = null,
         approved_at = null, approved_by = null
   where id = p_id and status <> 'published';
  if not found then
    raise exception 'no such horoscope awaiting approval' using errcode = 'P0002', hint = 'not_found';
  end if;
  insert into public.moderation_actions (actor_id, target_kind, target_id, action, reason)
  values (auth.uid(), 'horoscope', p_id::text, 'reject', p_reason);
  perform app.audit('horoscope.rejected', 'horoscope', p_id::text, '{}'::jsonb);
end
$$;

-- ─── publishing ─────────────────────────────────────────────────────────────────────────
-- The guard, per sign: approved, the pinned file present, a plausible duration (3 s – 10 min)
-- and level (loudness measured at ingest, above -50 LUFS), the text in both languages, no
-- assistant label.
drop function if exists app.horoscope_guard(text, date);
create or replace function app.horoscope_guard(p_scope text, p_ref_date date)
returns table (zodiac text, horoscope_id bigint, reasons text[])
language sql stable security definer set search_path = '' as $$
  select z.sign, h.id,
         array_remove(array[
           case when h.id is null then 'missing' end,
           case when h.id is not null and h.status <> 'approved' and h.status <> 'published' then 'not_approved' end,
           case when h.id is not null and m.id is null then 'audio_missing' end,
           case when m.id is not null and coalesce((m.meta->>'seconds')::numeric, m.duration_sec) not between 3 and 600
                then 'audio_duration' end,
           case when m.id is not null and coalesce((m.meta->>'lufs')::numeric, -99) < -50 then 'audio_level' end,
           case when h.id is not null and (coalesce(btrim(h.text_en), '') = '' or coalesce(btrim(h.text_ar), '') = '')
                then 'text_missing' end,
           case when h.text_en ilike '%Assistant Draft%' or h.text_ar ilike '%Assistant Draft%' then 'draft_label' end
         ], null)
    from unnest(array['Aries', 'Taurus', 'Gemini', 'Cancer', 'Leo', 'Virgo', 'Libra', 'Scorpio', 'Sagittarius',
                      'Capricorn', 'Aquarius', 'Pisces']) with ordinality z (sign, pos)
    left join public.horoscopes h on h.scope = p_scope and h.ref_date = p_ref_date and h.zodiac = z.sign
    left join public.media_assets m on m.id = h.audio_media_id and m.sha256 = h.audio_sha256 and m.removed_at is null
   where auth.uid() is null or app.horoscope_staff()
   order by z.pos
$$;

-- One run per scope and day. The job publishes 12/12 or halts: nothing of the day goes out,
-- a SEV3 incident opens (linking the failing signs and the runbook) and monitors and admins
-- are paged. An admin may then publish the passing signs (p_partial, audited), again as more
-- pass, or the whole day once all do. A second job call (another worker, a retry) finds the run
-- and does nothing.
drop function if exists app.horoscope_publish(text, date, boolean, timestamptz);
create or replace function app.horoscope_publish(p_scope text, p_ref_date date, p_partial boolean,
                                                 p_at timestamptz default now())
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  run public.horoscope_publish_runs;
  failing jsonb;
  passing bigint[];
  n integer;
  iid bigint;
  by_admin boolean := auth.uid() is not null;
begin
  if by_admin and not coalesce(app.is_admin(), false) then
    raise exception 'only admins publish by hand' using errcode = '42501', hint = 'forbidden';
  end if;
  if not app.flag_on('feature.dailyZodiac') then
    return jsonb_build_object('outcome', 'disabled');
  end if;
  perform pg_advisory_xact_lock(hashtext('horoscope_publish'), hashtext(p_scope || p_ref_date::text));
  select * into run from public.horoscope_publish_runs where scope = p_scope and ref_date = p_ref_date;
  if run.scope is not null and (run.outcome = 'published' or not by_admin) then
    return jsonb_build_object('outcome', 'already', 'previous', run.outcome);
  end if;
  select coalesce(jsonb_agg(jsonb_build_object('zodiac', g.zodiac, 'horoscope', g.horoscope_id,
                                               'reasons', to_jsonb(g.reasons)))
                    filter (where cardinality(g.reasons) > 0), '[]'::jsonb),
         array_agg(g.horoscope_id) filter (where cardinality(g.reasons) = 0)
    into failing, passing
    from app.horoscope_guard(p_scope, p_ref_date) g;
  n := coalesce(cardinality(passing), 0);
  if jsonb_array_length(failing) = 0 or (p_partial and n > 0) then
    update public.horoscopes set status = 'published', published_at = p_at
     where id = any (passing) and status <> 'published';
    insert into public.horoscope_publish_runs (scope, ref_date, outcome, published, failing, at, by_user)
    values (p_scope, p_ref_date, case when jsonb_array_length(failing) = 0 then 'published' else 'partial' end, n,
            failing, p_at, auth.uid())
    on conflict (scope, ref_date) do update
       set outcome = excluded.outcome, published = excluded.published, failing = excluded.failing,
           at = excluded.at, by_user = excluded.by_user;
    perform app.audit(case when jsonb_array_length(failing) = 0 then 'horoscope.published'
                           else 'horoscope.partial_publish' end,
                      'horoscope_day', p_scope || ':' || p_ref_date,
                      jsonb_build_object('published', n, 'failing', failing));
    return jsonb_build_object('outcome', case when jsonb_array_length(failing) = 0 then 'published'
                                              else 'partial' end, 'published', n, 'failing', failing);
  end if;
  if run.scope is not null then
    return jsonb_build_object('outcome', 'halted', 'published', 0, 'failing', failing,
                              'incident', run.incident_id);
  end if;
  iid := app.incident_open(format('Horoscopes halted: %s %s (%s of 12 ready)', p_scope, p_ref_date, n), 'SEV3',
                           'alert', 'horoscopes:' || p_scope || ':' || p_ref_date, array['horoscopes'],
                           'failing: ' || failing::text);
  perform app.incident_page(iid, 2::smallint, p_at);  -- admins as well as the monitors paged at open
  insert into public.horoscope_publish_runs (scope, ref_date, outcome, published, failing, incident_id, at)
  values (p_scope, p_ref_date, 'halted', 0, failing, iid, p_at);
  perform app.audit('horoscope.halted', 'horoscope_day', p_scope || ':' || p_ref_date,
                    jsonb_build_object('failing', failing, 'incident', iid));
  return jsonb_build_object('outcome', 'halted', 'published', 0, 'failing', failing, 'incident', iid);
end
$$;

-- What the every-minute job runs: the Beirut day that p_at falls in, once (a DST change that
-- repeats an hour finds the run already there); monthly ones on the first of the month. Only
-- in the day's first six hours (a worker that was down at midnight catches up): later, a day
-- without a run is an admin's to publish, and a fresh deployment does not page at noon.
drop function if exists app.horoscope_publish_due(timestamptz);
create or replace function app.horoscope_publish_due(p_at timestamptz) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  d date := (p_at at time zone 'Asia/Beirut')::date;
  out jsonb := '{}'::jsonb;
begin
  if (p_at at time zone 'Asia/Beirut')::time >= time '06:00' then
    return out;
  end if;
  if not exists (select 1 from public.horoscope_publish_runs where scope = 'daily' and ref_date = d) then
    out := out || jsonb_build_object('daily', app.horoscope_publish('daily', d, false, p_at));
  end if;
  if extract(day from d) = 1
     and not exists (select 1 from public.horoscope_publish_runs where scope = 'monthly' and ref_date = d) then
    out := out || jsonb_build_object('monthly', app.horoscope_publish('monthly', d, false, p_at));
  end if;
  return out;
end
$$;

-- ─── the daily push ─────────────────────────────────────────────────────────────────────
-- Opted-in users whose local time (profiles.tz, else Beirut) has reached their chosen time,
-- once the day's horoscopes are out: one outbox row per user and local day (the push log's
-- key decides between concurrent runs). Quiet hours and suppressions apply in the engine; a
-- push opt-out (consents) is respected here.
drop function if exists app.horoscope_push_due(timestamptz);
create or replace function app.horoscope_push_due(p_at timestamptz) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
  oid bigint;
  n integer := 0;
begin
  if not app.flag_on('feature.dailyZodiac') or not exists (
       select 1 from public.horoscopes h where h.scope = 'daily' and h.status = 'published'
                                          and h.ref_date = (p_at at time zone 'Asia/Beirut')::date) then
    return 0;
  end if;
  for r in
    insert into public.horoscope_push_log (user_id, day)
    select s.user_id, (p_at at time zone coalesce(p.tz, 'Asia/Beirut'))::date
      from public.horoscope_subscriptions s
      join public.profiles p on p.id = s.user_id and p.deleted_at is null
                             and (p.blocked_at is null or p.blocked_until <= p_at)
     where (p_at at time zone coalesce(p.tz, 'Asia/Beirut'))::time >= s.local_time
       and not exists (select 1 from public.consents c where c.user_id = s.user_id and c.channel = 'push'
                                                        and not c.opted_in)
    on conflict do nothing
    returning user_id, day
  loop
    insert into public.notification_outbox (recipient_id, channel, template, params)
    select r.user_id, 'push', 'horoscope_ready', jsonb_build_object('sign', coalesce(p.zodiac, ''), 'day', r.day)
      from public.profiles p where p.id = r.user_id
    returning id into oid;
    update public.horoscope_push_log set outbox_id = oid where user_id = r.user_id and day = r.day;
    n := n + 1;
  end loop;
  return n;
end
$$;

revoke all on function app.horoscopes_public(text, date, boolean), app.horoscope_audio(text, date, text),
  app.horoscope_listen(text, date, text, text, integer),
  app.horoscope_submit(text, text, text, bigint), app.horoscope_classify(bigint, text, text, date, text, text),
  app.horoscope_approve(bigint), app.horoscope_reject(bigint, text), app.horoscope_guard(text, date),
  app.horoscope_publish(text, date, boolean, timestamptz), app.horoscope_publish_due(timestamptz),
  app.horoscope_push_due(timestamptz) from public;
grant execute on function app.horoscopes_public(text, date, boolean), app.horoscope_audio(text, date, text),
  app.horoscope_listen(text, date, text, text, integer) to anon, authenticated, service_role;
grant execute on function app.horoscope_submit(text, text, text, bigint),
  app.horoscope_classify(bigint, text, text, date, text, text), app.horoscope_approve(bigint),
  app.horoscope_reject(bigint, text), app.horoscope_guard(text, date),
  app.horoscope_publish(text, date, boolean, timestamptz) to authenticated, service_role;
grant execute on function app.horoscope_publish_due(timestamptz), app.horoscope_push_due(timestamptz)
  to service_role;
