-- Analytics and personalization (issue 17; seeds 001 M23/M25, 000 Phase 4.1 item 11, 002 reports):
-- server events without PII, the catalogue of their types, the nightly roll-ups, and the
-- internal ranking's experiments, opt-outs and decisions. Rules: schema/16_analytics.sql.
--
-- No personal data can be stored in an event: every column is an id (uuid/bigint), a number,
-- a time, a boolean, a country or currency code, or a code from event_codes (a closed
-- vocabulary). There is no free-text or jsonb column to put a name, an email or a phone in.

-- ─── The catalogue ─────────────────────────────────────────────────────────────────────
-- One row per event type: its schema version, the domain whose figures it feeds (and so who
-- may see them), the columns its schema carries, whether it makes its user count as active
-- that day, and whether anything emits it yet ('reserved': the type is named so that the
-- messaging and horoscope work can start emitting it without a new catalogue design).
-- Mirrored by samia/analytics/catalogue.py; a test holds them equal.
create table public.event_types (
  code           text primary key check (code ~ '^[a-z_]{2,20}\.[a-z_]{2,30}$'),
  version        smallint not null check (version >= 1),
  domain         text not null check (domain in ('fulfillment', 'payments', 'bookings', 'calls', 'content',
                                                 'operations', 'engagement')),
  dims           text[] not null check (dims <@ array['user_id', 'reader_id', 'subject_id', 'service_id', 'country',
                                                      'provider', 'kind', 'code', 'reason', 'is_gold', 'attempt',
                                                      'seconds', 'amount_minor', 'currency', 'device']),
  counts_active  boolean not null default false,
  status         text not null default 'active' check (status in ('active', 'reserved')),
  description    text not null check (length(description) between 3 and 300)
);

-- The closed vocabulary of the code-valued columns (provider, kind, code, reason). An emitter
-- passing anything else stores 'other'.
create table public.event_codes (
  code  text primary key check (code ~ '^[a-z0-9_]{1,40}$'),
  about text not null
);
insert into public.event_codes (code, about) values
  ('other', 'a value outside this vocabulary'),
  ('unspecified', 'no reason code was given'),
  -- payment providers and methods, voice providers, notification channels
  ('testcard', 'provider'), ('stripe', 'provider'), ('square', 'provider'), ('usdt', 'provider'),
  ('bank_transfer', 'provider'), ('wallet', 'provider'), ('local', 'provider'), ('twilio', 'provider'),
  ('email', 'channel'), ('sms', 'channel'), ('push', 'channel'), ('whatsapp', 'channel'),
  -- what a payment is and what a refund gave back
  ('charge', 'payment kind'), ('topup', 'payment kind'), ('refund', 'payment kind'),
  ('order', 'subject kind'), ('booking', 'subject kind'), ('call', 'subject kind'), ('profile', 'subject kind'),
  ('media', 'subject kind'), ('horoscope', 'subject kind'), ('case', 'subject kind'), ('appeal', 'subject kind'),
  ('review', 'subject kind'),
  ('delivery_breach', 'refund reason / clock'), ('cancelled', 'refund reason'), ('no_show', 'refund reason'),
  ('delivery', 'clock'), ('review_clock', 'clock'), ('original', 'refund destination'),
  -- calls
  ('scheduled', 'call kind'), ('instant', 'call kind'), ('emergency', 'call kind'),
  ('completed', 'call end'), ('dropped_by_monitor', 'call end'), ('dropped_by_reader', 'call end'),
  ('dropped_by_client', 'call end'), ('failed', 'call end'), ('no_answer', 'call end'), ('busy', 'call end'),
  -- moderation: actions, reasons, case sources and outcomes
  ('approve', 'moderation action'), ('reject', 'moderation action'), ('block', 'moderation action'),
  ('unblock', 'moderation action'), ('drop_call', 'moderation action'), ('hold', 'moderation action'),
  ('release', 'moderation action'), ('unlist', 'moderation action'), ('remove_media', 'moderation action'),
  ('escalate', 'moderation action'), ('claim', 'moderation action'), ('resolve', 'moderation action'),
  ('dismiss', 'moderation action'), ('appeal_open', 'moderation action'), ('appeal_decide', 'moderation action'),
  ('flag', 'moderation action'), ('join_silent', 'moderation action'), ('publish_review', 'moderation action'),
  ('remove_review', 'moderation action'),
  ('harassment', 'moderation reason'), ('abuse', 'moderation reason'), ('fraud', 'moderation reason'),
  ('copyright', 'moderation reason'), ('safety', 'moderation reason'), ('spam', 'moderation reason'),
  ('report', 'case source'), ('sweep', 'case source'), ('moderation', 'case source'),
  ('resolved', 'case outcome'), ('dismissed', 'case outcome'),
  -- incidents
  ('sev1', 'incident severity'), ('sev2', 'incident severity'), ('sev3', 'incident severity'),
  ('manual', 'incident source'), ('alert', 'incident source'),
  ('mitigated', 'incident resolution'), ('unmitigated', 'incident resolution'),
  -- accounts
  ('client', 'role'), ('reader', 'role'), ('monitor', 'role'), ('admin', 'role'), ('superadmin', 'role');

insert into public.event_types (code, version, domain, dims, counts_active, status, description) values
  ('order.created', 1, 'fulfillment', '{user_id,subject_id,service_id,country,is_gold,amount_minor,currency}', true,
   'active', 'a client placed a reading order'),
  ('order.assigned', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold}', false, 'active',
   'an order was (re)assigned to a reader'),
  ('order.first_response', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold,seconds}', false,
   'active', 'a reader started an order for the first time; seconds since it was placed'),
  ('order.submitted', 1, 'fulfillment', '{reader_id,subject_id,service_id,is_gold}', false, 'active',
   'a reader submitted audio for review'),
  ('order.approved', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold,seconds}', false, 'active',
   'a monitor approved the audio; seconds since it was submitted'),
  ('order.rejected', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold,seconds}', false, 'active',
   'a monitor sent the audio back; seconds since it was submitted'),
  ('order.delivered', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold,seconds}', false, 'active',
   'the approved reading was delivered; seconds since the order was placed'),
  ('order.cancelled', 1, 'fulfillment', '{user_id,reader_id,subject_id,service_id,is_gold}', false, 'active',
   'an order was cancelled'),
  ('order.clock_breached', 1, 'fulfillment', '{reader_id,subject_id,service_id,is_gold,code}', false, 'active',
   'a service clock ran out: code delivery (the reader''s) or review_clock (the monitors'')'),
  ('payment.attempted', 1, 'payments', '{user_id,subject_id,provider,kind,country,attempt,amount_minor,currency}',
   true, 'active', 'a charge or top-up was started with a method (the method chosen); attempt 1 is a first pass'),
  ('payment.action_required', 1, 'payments', '{user_id,subject_id,provider,kind,country,attempt}', false, 'active',
   'the payer must act (3-D Secure, a transfer to make, a crypto invoice to pay)'),
  ('payment.succeeded', 1, 'payments',
   '{user_id,subject_id,provider,kind,country,attempt,seconds,amount_minor,currency}', false, 'active',
   'a charge or top-up succeeded; seconds since it was started'),
  ('payment.failed', 1, 'payments', '{user_id,subject_id,provider,kind,country,attempt,seconds}', false, 'active',
   'a charge or top-up failed or was cancelled; seconds since it was started'),
  ('payment.fallback', 1, 'payments', '{user_id,subject_id,provider,kind,country,reason}', false, 'active',
   'a payer retried with another method within 30 minutes of a failure; reason: the method that failed'),
  ('payment.refunded', 1, 'payments', '{user_id,subject_id,provider,kind,country,code,reason,amount_minor,currency}',
   false, 'active', 'money was given back: provider of the refunded charge, kind refunded (order/booking/call), '
                    'code where it went (wallet or the original method), reason'),
  ('booking.held', 1, 'bookings', '{user_id,reader_id,subject_id,service_id,country,amount_minor,currency}', true,
   'active', 'a client held a slot (checkout started)'),
  ('booking.confirmed', 1, 'bookings', '{user_id,reader_id,subject_id,service_id,seconds}', false, 'active',
   'a held slot was paid and confirmed; seconds since the hold'),
  ('booking.rescheduled', 1, 'bookings', '{user_id,reader_id,subject_id,service_id}', false, 'active',
   'a confirmed booking moved to another time'),
  ('booking.cancelled', 1, 'bookings', '{user_id,reader_id,subject_id,service_id}', false, 'active',
   'a confirmed booking was cancelled'),
  ('booking.released', 1, 'bookings', '{user_id,reader_id,subject_id,service_id}', false, 'active',
   'a hold was let go (payment failed or the client left)'),
  ('booking.expired', 1, 'bookings', '{user_id,reader_id,subject_id,service_id}', false, 'active',
   'a hold lapsed unpaid'),
  ('booking.completed', 1, 'bookings', '{user_id,reader_id,subject_id,service_id}', false, 'active',
   'a booked session took place'),
  ('call.created', 1, 'calls', '{user_id,reader_id,subject_id,kind,country}', true, 'active',
   'a call was set up (scheduled, instant or emergency)'),
  ('call.answered', 1, 'calls', '{user_id,reader_id,subject_id,kind,seconds}', false, 'active',
   'a call connected; seconds of setup since it was created'),
  ('call.ended', 1, 'calls', '{user_id,reader_id,subject_id,kind,reason,seconds}', false, 'active',
   'a connected call ended; reason: the end reason, seconds: connected time'),
  ('call.unanswered', 1, 'calls', '{user_id,reader_id,subject_id,kind,reason}', false, 'active',
   'a call ended before it connected'),
  ('moderation.decision', 1, 'content', '{reader_id,subject_id,kind,code,reason}', false, 'active',
   'a moderation act: kind the target, code the action, reason the reason code'),
  ('case.opened', 1, 'content', '{subject_id,kind,code,reason}', false, 'active',
   'a moderation case opened: kind the subject, code the source, reason the reason code'),
  ('case.closed', 1, 'content', '{subject_id,kind,code,reason,seconds}', false, 'active',
   'a case was resolved or dismissed (code); seconds since it opened'),
  ('incident.opened', 1, 'operations', '{subject_id,kind,code}', false, 'active',
   'an incident opened: kind manual/alert, code the severity'),
  ('incident.acknowledged', 1, 'operations', '{subject_id,code,seconds}', false, 'active',
   'someone paged acknowledged an incident; seconds since it opened'),
  ('incident.mitigated', 1, 'operations', '{subject_id,code,seconds}', false, 'active',
   'an incident was mitigated (service restored); seconds since it opened'),
  ('incident.resolved', 1, 'operations', '{subject_id,code,reason,seconds}', false, 'active',
   'an incident was resolved; reason mitigated/unmitigated (restored only now); seconds since it opened'),
  ('user.signed_up', 1, 'engagement', '{user_id,country,kind}', false, 'active',
   'an account was created; kind: its role'),
  ('user.logged_in', 1, 'engagement', '{user_id,country,device}', true, 'active',
   'a session started (counts only)'),
  -- reserved for the messaging work (issue: notifications) and the horoscopes work
  ('notification.sent', 1, 'engagement', '{user_id,subject_id,provider}', false, 'reserved',
   'a notification left us; provider: the channel'),
  ('notification.delivered', 1, 'engagement', '{user_id,subject_id,provider}', false, 'reserved',
   'the channel confirmed delivery'),
  ('notification.opened', 1, 'engagement', '{user_id,subject_id,provider,device}', true, 'reserved',
   'the recipient opened it'),
  ('notification.clicked', 1, 'engagement', '{user_id,subject_id,provider,device}', true, 'reserved',
   'the recipient followed its link'),
  ('horoscope.listen_started', 1, 'engagement', '{user_id,subject_id,device}', true, 'reserved',
   'a client started playing a horoscope''s audio'),
  ('horoscope.listen_finished', 1, 'engagement', '{user_id,subject_id,device,seconds}', false, 'reserved',
   'a client played it to the end; seconds listened');

-- ─── Raw events ────────────────────────────────────────────────────────────────────────
-- Written only by app.analytics_emit(), in the transaction of the fact it describes. `day` is
-- the business day: the date in Asia/Beirut.
create table public.events_raw (
  id           bigint generated always as identity primary key,
  type         text not null references public.event_types (code),
  version      smallint not null,
  occurred_at  timestamptz not null,
  day          date not null generated always as ((occurred_at at time zone 'Asia/Beirut')::date) stored,
  recorded_at  timestamptz not null default now(),
  user_id      uuid,
  reader_id    uuid,
  subject_id   bigint,
  service_id   bigint,
  country      char(2) check (country ~ '^[A-Z]{2}$'),
  provider     text references public.event_codes (code),
  kind         text references public.event_codes (code),
  code         text references public.event_codes (code),
  reason       text references public.event_codes (code),
  is_gold      boolean,
  attempt      smallint check (attempt between 1 and 1000),
  seconds      integer check (seconds >= 0),
  amount_minor bigint check (amount_minor >= 0),
  currency     char(3) check (currency ~ '^[A-Z]{3}$'),
  device       text check (device in ('web', 'ios', 'android', 'api'))
);
create index events_raw_day on public.events_raw (day, type);
create index events_raw_user on public.events_raw (user_id, day) where user_id is not null;

-- Days whose roll-up must be computed again because an event for them arrived late (more than
-- a day after the day ended): an append-only log, so concurrent writers never wait on each other.
create table app_private.analytics_dirty_days (
  id        bigint generated always as identity primary key,
  day       date not null,
  marked_at timestamptz not null default now()
);

-- How far the nightly roll-up has got (one row), and how long raw events are kept: the roll-ups
-- are kept for good, raw events (they carry user ids) for raw_retention_days after their day.
create table app_private.analytics_rollup_state (
  id                 boolean primary key default true check (id),
  rolled_through     date,
  raw_retention_days integer not null default 400 check (raw_retention_days >= 35)
);
insert into app_private.analytics_rollup_state (id, rolled_through) values (true, null);

-- Which orders have had their first response (a restart after a rejection is not one).
create table app_private.analytics_first_responses (
  order_id bigint primary key
);

-- ─── Roll-ups ──────────────────────────────────────────────────────────────────────────
-- One row per Beirut day, event type and combination of dimensions: the count, and the sorted
-- seconds of the events that carry a duration (so a percentile over any range of days is exact).
create table public.metrics_daily_events (
  day        date not null,
  type       text not null references public.event_types (code),
  reader_id  uuid,
  service_id bigint,
  country    char(2),
  provider   text,
  kind       text,
  code       text,
  reason     text,
  is_gold    boolean,
  first_pass boolean,
  events     integer not null check (events > 0),
  seconds    integer[] not null default '{}',
  constraint metrics_daily_events_cell unique nulls not distinct
    (day, type, reader_id, service_id, country, provider, kind, code, reason, is_gold, first_pass)
);
create index metrics_daily_events_reader on public.metrics_daily_events (reader_id, day) where reader_id is not null;

-- Who was active on which day (an event of a type that counts_active): DAU/WAU/MAU and the
-- weekly retention cohorts are read from here.
create table public.metrics_daily_users (
  day     date not null,
  user_id uuid not null,
  primary key (day, user_id)
);
create index metrics_daily_users_user on public.metrics_daily_users (user_id, day);

-- ─── Personalization (M25, internal) ───────────────────────────────────────────────────
-- The A/B split per kind of list: users whose bucket (app.flag_bucket, the feature flags'
-- hash) falls below personalised_pct × 100 get the personalised ranking, the rest the control.
create table public.personalization_arms (
  kind             text primary key check (kind in ('readers', 'services', 'horoscopes', 'notifications')),
  personalised_pct smallint not null default 50 check (personalised_pct between 0 and 100),
  updated_at       timestamptz not null default now()
);
insert into public.personalization_arms (kind, personalised_pct) values
  ('readers', 50), ('services', 50), ('horoscopes', 50), ('notifications', 50);

create table public.personalization_opt_outs (
  user_id    uuid primary key references public.profiles (id),
  created_at timestamptz not null default now()
);

-- Every ranking handed out, with its confidence and the reason code of each item (internal
-- only: no route returns them to a client). Items are ids; rationale codes a closed list.
create table public.personalization_decisions (
  id           bigint generated always as identity primary key,
  user_id      uuid not null references public.profiles (id),
  kind         text not null references public.personalization_arms (kind),
  variant      text not null check (variant in ('personalised', 'control', 'opted_out')),
  bucket       smallint not null check (bucket between 0 and 9999),
  device       text check (device in ('web', 'ios', 'android', 'api')),
  items        text[] not null check (array_to_string(items, ',') ~ '^[0-9a-z_,-]*$'),
  scores       numeric[] not null,
  rationale    text[] not null check (rationale <@ array['affinity', 'favourite', 'country_popularity',
                                                          'global_popularity', 'rating', 'online_now', 'own_sign',
                                                          'mobile_instant', 'engagement', 'default_order']),
  confidence   numeric(4, 3) not null check (confidence between 0 and 1),
  requested_by uuid,
  created_at   timestamptz not null default now(),
  check (cardinality(items) = cardinality(scores) and cardinality(items) = cardinality(rationale))
);
create index personalization_decisions_user on public.personalization_decisions (user_id, created_at);

-- The nightly roll-up may also be queued by an outside scheduler (POST /api/cron/analytics_rollup).
insert into app.deferrable_tasks values ('analytics_rollup');
