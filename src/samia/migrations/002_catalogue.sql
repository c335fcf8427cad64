-- The storefront's catalogue and marketplace (issue 13): each service in both languages and
-- what it costs where, readers' public profiles, reviews, favourites, the Healing Energy
-- pre-ritual, and the rising per-minute rates of emergency calls. Rules: schema/05_catalogue.sql.

alter table public.services
  add column name_ar        text not null default '' check (length(name_ar) <= 100),
  add column description_en text not null default '' check (length(description_en) <= 2000),
  add column description_ar text not null default '' check (length(description_ar) <= 2000),
  -- instructions a client confirms before the call can start (seeds 003 §3: Healing Energy)
  add column pre_ritual_en  text check (length(pre_ritual_en) <= 4000),
  add column pre_ritual_ar  text check (length(pre_ritual_ar) <= 4000),
  add constraint services_pre_ritual_both_languages check ((pre_ritual_en is null) = (pre_ritual_ar is null));

update public.services s set name_ar = v.name_ar, description_en = v.den, description_ar = v.dar
  from (values
    ('tarot', 'قراءة التاروت',
     'Ask your question and a reader draws the cards for you. Your reading arrives as a recorded voice message, '
     'reviewed before you hear it.',
     'اطرح سؤالك ويسحب لك القارئ الأوراق. تصلك قراءتك رسالةً صوتية مسجّلة تُراجَع قبل أن تسمعها.'),
    ('coffee', 'قراءة فنجان القهوة',
     'Send photos of your cup when you finish your coffee; a reader interprets its shapes in a voice message.',
     'أرسل صور فنجانك حين تنهي قهوتك، ويفسّر القارئ أشكاله في رسالة صوتية.'),
    ('astro', 'الخريطة الفلكية (صوتية)',
     'Your natal chart, computed from your date, time and place of birth, explained in a recorded reading.',
     'خريطتك الفلكية محسوبة من تاريخ ووقت ومكان ميلادك، مشروحة في قراءة مسجّلة.'),
    ('healing', 'طاقة الشفاء (مكالمة)',
     'A live healing session by phone. Prepare with the short ritual before it starts.',
     'جلسة شفاء مباشرة عبر الهاتف. استعدّ لها بالطقس القصير قبل أن تبدأ.'),
    ('direct_call', 'مكالمة مباشرة مع سامية',
     'Talk live with a reader, at a time you book or right now when one is available.',
     'تحدّث مباشرة مع قارئ، في موعد تحجزه أو الآن حين يكون أحدهم متاحًا.')
  ) as v (code, name_ar, den, dar)
 where s.code = v.code;
update public.services set
  pre_ritual_en = 'Before the call: find a quiet place where nobody will disturb you for the whole session, '
                  'drink a glass of water, sit comfortably and take a few slow breaths, and make sure your phone '
                  'is charged with its volume up.',
  pre_ritual_ar = 'قبل المكالمة: اختر مكانًا هادئًا لن يزعجك فيه أحد طوال الجلسة، واشرب كوبًا من الماء، '
                  'واجلس بارتياح وخذ بضعة أنفاس بطيئة، وتأكّد أن هاتفك مشحون وصوته مرتفع.'
 where code = 'healing';

-- A price for one country, in the service's own currency; a country without a row pays the
-- service's price. Read at order, hold and call time and copied onto the order or booking.
create table public.service_prices (
  service_id       bigint not null references public.services (id),
  country_code     char(2) not null references public.countries (code),
  price_minor      integer not null check (price_minor >= 0),
  per_minute_minor integer check (per_minute_minor >= 0),
  primary key (service_id, country_code)
);

-- What a reader shows the public. Nothing here is private: no email, phone or birth data.
create table public.reader_profiles (
  reader_id      uuid primary key references public.profiles (id),
  display_name   text not null check (length(btrim(display_name)) between 2 and 60),
  photo_media_id bigint references public.media_assets (id),
  bio_en         text not null default '' check (length(bio_en) <= 2000),
  bio_ar         text not null default '' check (length(bio_ar) <= 2000),
  specialties    text[] not null default '{}' check (cardinality(specialties) <= 8
                                                     and array_to_string(specialties, '') !~ '[<>]'),
  languages      text[] not null default '{en}' check (languages <@ array['en', 'ar', 'fr']
                                                       and cardinality(languages) >= 1),
  updated_at     timestamptz not null default now()
);

-- One review per delivered order or completed call, by its client. A review whose text trips
-- a flagged word waits (held) for a monitor; removed reviews leave the average.
create table public.reviews (
  id             bigint generated always as identity primary key,
  client_id      uuid not null references public.profiles (id),
  reader_id      uuid not null references public.profiles (id),
  order_id       bigint unique references public.orders (id),
  call_id        bigint unique references public.calls (id),
  rating         smallint not null check (rating between 1 and 5),
  body           text check (length(body) <= 2000),
  status         text not null default 'published' check (status in ('published', 'held', 'removed')),
  decided_by     uuid references public.profiles (id),
  decided_at     timestamptz,
  removed_reason text check (length(removed_reason) <= 2000),
  reply          text check (length(reply) between 1 and 2000),
  replied_at     timestamptz,
  created_at     timestamptz not null default now(),
  check ((order_id is null) <> (call_id is null)),
  check ((reply is null) = (replied_at is null))
);
create index reviews_reader on public.reviews (reader_id, created_at desc) where status = 'published';

create table public.favourites (
  client_id  uuid not null references public.profiles (id),
  reader_id  uuid not null references public.profiles (id),
  created_at timestamptz not null default now(),
  primary key (client_id, reader_id)
);
create index favourites_reader on public.favourites (reader_id);

alter table public.bookings add column pre_ritual_confirmed_at timestamptz;

-- Emergency calls bill at a rising per-minute rate while billing.emergencyProgressivePricing
-- is on for the client: the rate from each minute on. The steps are copied onto the call when
-- it is answered, so a later change never re-prices a call.
create table public.emergency_rates (
  from_minute      integer primary key check (from_minute >= 0),
  per_minute_minor integer not null check (per_minute_minor > 0)
);
insert into public.emergency_rates values (0, 299), (10, 399), (20, 499);
alter table public.calls add column rate_steps jsonb check (jsonb_typeof(rate_steps) = 'array');

-- Reviews join the moderation pipeline.
alter table public.moderation_cases drop constraint moderation_cases_subject_kind_check,
  add constraint moderation_cases_subject_kind_check
    check (subject_kind in ('profile', 'order', 'media', 'call', 'review'));
alter table public.moderation_actions drop constraint moderation_actions_target_kind_check,
  add constraint moderation_actions_target_kind_check
    check (target_kind in ('order', 'profile', 'media', 'horoscope', 'call', 'case', 'appeal', 'review'));
alter table public.moderation_actions drop constraint moderation_actions_action_check,
  add constraint moderation_actions_action_check check (action in
    ('approve', 'reject', 'block', 'unblock', 'drop_call', 'hold', 'release', 'unlist', 'remove_media', 'escalate',
     'claim', 'resolve', 'dismiss', 'appeal_open', 'appeal_decide', 'flag', 'join_silent', 'publish_review',
     'remove_review'));

insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('reviews', 10, 3600, 'user', 'reviews and replies written per user');

-- Flags that gated nothing are removed, so that no runbook offers a switch that does not work:
--  * backend.flatTables: the seeds' rollback to an older codebase's schema; there is no other schema;
--  * calls.video: there are no video calls (WebRTC) to switch on;
--  * ui.rtlRefine: right-to-left is part of every page, not an option;
--  * feature.community: the optional community module (M24) is not built;
--  * uploads.deckBulk: there is no bulk upload of deck art yet (the staff consoles bring it back
--    with the upload it switches).
delete from public.feature_flags where key in ('backend.flatTables', 'calls.video', 'ui.rtlRefine',
                                                'feature.community', 'uploads.deckBulk');
