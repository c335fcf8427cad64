-- Daily horoscopes (issue 15; seeds 003 §9, M44): clips ingested from a TikTok post or an
-- upload, classified to a sign/date/scope through an admin-edited caption table or by hand,
-- the text per sign (the assistant's draft kept apart, staff only), approval pinning the
-- audio's sha256, publishing of 12/12 at Beirut midnight (one run per scope and day), the
-- daily push (once per user and day) and listen events. Rules: schema/08_horoscopes.sql.

create table public.horoscope_clips (
  id            bigint generated always as identity primary key,
  source        text not null check (source in ('url', 'upload', 'tts')),
  source_url    text check (length(source_url) <= 2000),   -- staff only: never leaves the console
  caption       text check (length(caption) <= 4000),
  state         text not null default 'fetching'
                check (state in ('fetching', 'failed', 'unclassified', 'classified', 'discarded')),
  attempts      smallint not null default 0,
  last_error    text check (length(last_error) <= 300),
  media_id      bigint references public.media_assets (id),         -- the normalised audio
  source_media_id bigint references public.media_assets (id),       -- an uploaded file, as it came
  lang          text check (lang in ('en', 'ar')),
  scope         text check (scope in ('daily', 'monthly')),
  zodiac        text,
  ref_date      date,
  classified_by text check (classified_by in ('caption', 'hand')),
  submitted_by  uuid references public.profiles (id),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  check (state <> 'classified' or (scope is not null and zodiac is not null and ref_date is not null))
);
create index horoscope_clips_state on public.horoscope_clips (state, id);

-- The caption table: a word or spelling → a sign (kind 'sign') or a scope (kind 'scope').
create table public.horoscope_captions (
  term       text primary key check (term = lower(btrim(term)) and length(term) between 2 and 60),
  kind       text not null check (kind in ('sign', 'scope')),
  value      text not null,
  lang       text not null check (lang in ('en', 'ar')),
  updated_by uuid references public.profiles (id),
  updated_at timestamptz not null default now(),
  check (kind <> 'sign' or value in ('Aries', 'Taurus', 'Gemini', 'Cancer', 'Leo', 'Virgo', 'Libra', 'Scorpio',
                                     'Sagittarius', 'Capricorn', 'Aquarius', 'Pisces')),
  check (kind <> 'scope' or value in ('daily', 'monthly'))
);

insert into public.horoscope_captions (term, kind, value, lang) values
  ('aries', 'sign', 'Aries', 'en'), ('taurus', 'sign', 'Taurus', 'en'), ('gemini', 'sign', 'Gemini', 'en'),
  ('cancer', 'sign', 'Cancer', 'en'), ('leo', 'sign', 'Leo', 'en'), ('virgo', 'sign', 'Virgo', 'en'),
  ('libra', 'sign', 'Libra', 'en'), ('scorpio', 'sign', 'Scorpio', 'en'), ('scorpion', 'sign', 'Scorpio', 'en'),
  ('sagittarius', 'sign', 'Sagittarius', 'en'), ('sagitarius', 'sign', 'Sagittarius', 'en'),
  ('capricorn', 'sign', 'Capricorn', 'en'), ('capricorne', 'sign', 'Capricorn', 'en'),
  ('aquarius', 'sign', 'Aquarius', 'en'), ('aquarious', 'sign', 'Aquarius', 'en'), ('pisces', 'sign', 'Pisces', 'en'),
  ('الحمل', 'sign', 'Aries', 'ar'), ('حمل', 'sign', 'Aries', 'ar'),
  ('الثور', 'sign', 'Taurus', 'ar'), ('ثور', 'sign', 'Taurus', 'ar'),
  ('الجوزاء', 'sign', 'Gemini', 'ar'), ('جوزاء', 'sign', 'Gemini', 'ar'), ('الجوزا', 'sign', 'Gemini', 'ar'),
  ('السرطان', 'sign', 'Cancer', 'ar'), ('سرطان', 'sign', 'Cancer', 'ar'),
  ('الأسد', 'sign', 'Leo', 'ar'), ('الاسد', 'sign', 'Leo', 'ar'), ('أسد', 'sign', 'Leo', 'ar'), ('اسد', 'sign', 'Leo', 'ar'),
  ('العذراء', 'sign', 'Virgo', 'ar'), ('العذرا', 'sign', 'Virgo', 'ar'), ('عذراء', 'sign', 'Virgo', 'ar'),
  ('الميزان', 'sign', 'Libra', 'ar'), ('ميزان', 'sign', 'Libra', 'ar'),
  ('العقرب', 'sign', 'Scorpio', 'ar'), ('عقرب', 'sign', 'Scorpio', 'ar'),
  ('القوس', 'sign', 'Sagittarius', 'ar'), ('قوس', 'sign', 'Sagittarius', 'ar'), ('الرامي', 'sign', 'Sagittarius', 'ar'),
  ('الجدي', 'sign', 'Capricorn', 'ar'), ('جدي', 'sign', 'Capricorn', 'ar'),
  ('الدلو', 'sign', 'Aquarius', 'ar'), ('دلو', 'sign', 'Aquarius', 'ar'),
  ('الحوت', 'sign', 'Pisces', 'ar'), ('حوت', 'sign', 'Pisces', 'ar'),
  ('daily', 'scope', 'daily', 'en'), ('today', 'scope', 'daily', 'en'),
  ('monthly', 'scope', 'monthly', 'en'), ('month', 'scope', 'monthly', 'en'),
  ('اليوم', 'scope', 'daily', 'ar'), ('اليومي', 'scope', 'daily', 'ar'), ('يومي', 'scope', 'daily', 'ar'),
  ('الشهر', 'scope', 'monthly', 'ar'), ('الشهري', 'scope', 'monthly', 'ar'), ('شهري', 'scope', 'monthly', 'ar');

-- The horoscope of one sign, scope and day (monthly: the first of the month): the final text
-- in both languages, the audio and its pinned hash, its state. The old free-text and post URL
-- columns move out (the URL stays with the clip, staff only).
alter table public.horoscopes drop column tiktok_post_url, drop column text_content;
alter table public.horoscopes
  add constraint horoscopes_zodiac check (zodiac in ('Aries', 'Taurus', 'Gemini', 'Cancer', 'Leo', 'Virgo', 'Libra',
                                                    'Scorpio', 'Sagittarius', 'Capricorn', 'Aquarius', 'Pisces')),
  add column status        text not null default 'draft'
                           check (status in ('draft', 'approved', 'rejected', 'published')),
  add column text_en       text check (length(text_en) <= 4000),
  add column text_ar       text check (length(text_ar) <= 4000),
  add column audio_lang    text check (audio_lang in ('en', 'ar')),
  add column audio_sha256  text check (audio_sha256 ~ '^[0-9a-f]{64}$'),
  add column clip_id       bigint references public.horoscope_clips (id),
  add column reject_reason text check (length(reject_reason) <= 2000),
  add column published_at  timestamptz,
  add column updated_at    timestamptz not null default now(),
  add constraint horoscopes_pinned check (status not in ('approved', 'published') or audio_sha256 is not null);
create index horoscopes_published on public.horoscopes (scope, ref_date) where status = 'published';

-- The assistant's drafts: staff only, always labelled, never a client's.
create table public.horoscope_drafts (
  horoscope_id bigint not null references public.horoscopes (id),
  lang         text not null check (lang in ('en', 'ar')),
  label        text not null default 'Assistant Draft – Not for Client Delivery'
               check (label = 'Assistant Draft – Not for Client Delivery'),
  body         text not null check (length(body) <= 4000),
  created_at   timestamptz not null default now(),
  primary key (horoscope_id, lang)
);

-- One publishing run per scope and day: the row is the lock that makes it exactly once.
create table public.horoscope_publish_runs (
  scope       text not null check (scope in ('daily', 'monthly')),
  ref_date    date not null,
  outcome     text not null check (outcome in ('published', 'halted', 'partial')),
  published   smallint not null default 0,
  failing     jsonb not null default '[]'::jsonb,
  incident_id bigint references public.incidents (id),
  at          timestamptz not null default now(),
  by_user     uuid references public.profiles (id),
  primary key (scope, ref_date)
);

-- Opt-in to the daily push: at the user's local time (profiles.tz, else Beirut).
create table public.horoscope_subscriptions (
  user_id    uuid primary key references public.profiles (id),
  local_time time not null default '08:00',
  created_at timestamptz not null default now()
);

-- Once per user and local day, whatever runs concurrently: the primary key decides.
create table public.horoscope_push_log (
  user_id   uuid not null references public.profiles (id),
  day       date not null,
  outbox_id bigint references public.notification_outbox (id),
  primary key (user_id, day)
);

-- listen events are anonymous writes: held per address
insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('horoscope_listen', 600, 3600, 'ip', 'horoscope listen events per address');

-- what POST /api/cron/<task> may queue (the fetch job carries a clip id: app.horoscope_submit queues it)
insert into app.deferrable_tasks values ('horoscope_publish'), ('horoscope_push'), ('voice_refresh');

-- migrate:down
delete from public.rate_limits where name = 'horoscope_listen';
delete from app.deferrable_tasks where name in ('horoscope_publish', 'horoscope_push', 'voice_refresh');
drop table public.horoscope_push_log, public.horoscope_subscriptions, public.horoscope_publish_runs,
  public.horoscope_drafts;
drop index public.horoscopes_published;
-- schema/08_horoscopes.sql's policy reads the status column; the next `up` re-applies the file
drop policy if exists horoscopes_update on public.horoscopes;
alter table public.horoscopes drop constraint horoscopes_pinned, drop constraint horoscopes_zodiac,
  drop column status, drop column text_en, drop column text_ar, drop column audio_lang, drop column audio_sha256,
  drop column clip_id, drop column reject_reason, drop column published_at, drop column updated_at;
alter table public.horoscopes add column text_content text, add column tiktok_post_url text;
drop table public.horoscope_captions, public.horoscope_clips;
