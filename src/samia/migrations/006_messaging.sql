-- Messaging (issue 12; seeds 001 M22): devices, consents, suppressions, per-channel sends,
-- campaigns and their time-zone cohorts, each user's marketing cap and time zone, and one
-- feature flag per stream. Rules (policies, the engine's claim, the audience): in
-- schema/13_notifications.sql.

-- The provider webhooks (Twilio, SES through SNS) act through this narrow role after their
-- signature check, as the Alertmanager receiver does through samia_alerts.
do $$
begin
  if not exists (select from pg_roles where rolname = 'samia_messaging') then
    create role samia_messaging nologin noinherit;
  end if;
end
$$;

-- Each user's own time zone (campaign send windows and quiet hours are in local time).
alter table public.profiles add column tz text check (length(tz) <= 64);

-- Registered push targets: a browser's Web Push subscription (JSON), an FCM or APNs token.
-- One row per target: a token that moves to another account moves its row.
create table public.devices (
  id         bigint generated always as identity primary key,
  user_id    uuid not null references public.profiles (id),
  kind       text not null check (kind in ('webpush', 'fcm', 'apns')),
  address    text not null check (length(address) between 8 and 4096),
  label      text check (length(label) <= 100),
  created_at timestamptz not null default now(),
  last_seen  timestamptz not null default now()
);
create unique index devices_one_target on public.devices (kind, md5(address));
create index devices_user on public.devices (user_id);

-- Consent per channel: opted in or out, the lawful basis, where it came from and when.
-- No row: transactional messages go (contract), marketing does not (it needs opted_in).
create table public.consents (
  user_id      uuid not null references public.profiles (id),
  channel      text not null check (channel in ('email', 'push', 'sms', 'whatsapp')),
  opted_in     boolean not null,
  lawful_basis text not null check (lawful_basis in ('consent', 'contract', 'legitimate_interest', 'legal_obligation')),
  source       text not null check (source in ('api', 'web', 'sms_keyword', 'admin', 'signup')),
  at           timestamptz not null default now(),
  primary key (user_id, channel)
);

-- Addresses nothing may be sent to: hard bounces, complaints, STOP, or an admin. Keyed by a
-- SHA-256 of the normalised address, so the list holds no address and survives an erasure
-- (a suppression must outlive the account it came from).
create table public.suppressions (
  id           bigint generated always as identity primary key,
  channel      text not null check (channel in ('email', 'sms', 'whatsapp')),
  address_hash text not null check (address_hash ~ '^[0-9a-f]{64}$'),
  reason       text not null check (reason in ('hard_bounce', 'complaint', 'stop', 'manual')),
  note         text check (length(note) <= 300),
  created_by   uuid,
  created_at   timestamptz not null default now(),
  unique (channel, address_hash)
);

-- Marketing campaigns: audience, channel, the EN and AR text, the local send time.
create table public.campaigns (
  id            bigint generated always as identity primary key,
  name          text not null check (length(name) between 3 and 120),
  channel       text not null check (channel in ('email', 'push', 'sms', 'whatsapp')),
  audience      jsonb not null default '{}'::jsonb,
  title_en      text not null check (length(title_en) between 1 and 200),
  body_en       text not null check (length(body_en) between 1 and 2000),
  title_ar      text not null check (length(title_ar) between 1 and 200),
  body_ar       text not null check (length(body_ar) between 1 and 2000),
  send_on       date not null,                 -- the recipients' local date
  local_time    time not null,                 -- and local time of day
  status        text not null default 'draft' check (status in ('draft', 'scheduled', 'cancelled')),
  created_by    uuid references public.profiles (id),
  created_at    timestamptz not null default now(),
  scheduled_at  timestamptz
);

-- One cohort per time zone: when its local time comes, and how many it holds.
create table public.campaign_cohorts (
  campaign_id bigint not null references public.campaigns (id),
  tz          text not null,
  send_at     timestamptz not null,
  recipients  integer not null,
  primary key (campaign_id, tz)
);

-- One row per message, recipient and channel (and device for push). The claim moves
-- queued → sending (committed before the provider is called), so a crash between the two
-- leaves `sending`, never a second send. `key` is the provider idempotency key.
create table public.notification_sends (
  id          bigint generated always as identity primary key,
  outbox_id   bigint references public.notification_outbox (id),
  campaign_id bigint references public.campaigns (id),
  recipient_id uuid not null references public.profiles (id),
  channel     text not null check (channel in ('email', 'webpush', 'fcm', 'apns', 'sms', 'whatsapp')),
  device_id   bigint,                          -- no FK: the send outlives a removed device
  template    text not null,
  params      jsonb not null default '{}'::jsonb,
  critical    boolean not null default false,
  marketing   boolean not null default false,
  state       text not null default 'queued'
              check (state in ('queued', 'sending', 'sent', 'delivered', 'opened', 'clicked', 'bounced', 'failed',
                               'cancelled')),
  key         uuid not null default gen_random_uuid() unique,
  provider_ref text,
  attempts    smallint not null default 0,
  not_before  timestamptz not null default now(),
  claimed_at  timestamptz,
  sent_at     timestamptz,
  error       text check (length(error) <= 100),
  dead_letter boolean not null default false,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  check (num_nonnulls(outbox_id, campaign_id) = 1)
);
create unique index notification_sends_once on public.notification_sends (outbox_id, channel, coalesce(device_id, 0))
  where outbox_id is not null;
create unique index notification_sends_once_campaign
  on public.notification_sends (campaign_id, recipient_id, coalesce(device_id, 0)) where campaign_id is not null;
create index notification_sends_due on public.notification_sends (not_before) where state = 'queued';
create index notification_sends_recipient on public.notification_sends (recipient_id, id);
create index notification_sends_ref on public.notification_sends (provider_ref) where provider_ref is not null;
create index notification_sends_dead on public.notification_sends (id) where dead_letter;

-- Each user's marketing frequency cap (messages per rolling 7 days).
create table public.notification_prefs (
  user_id       uuid primary key references public.profiles (id),
  marketing_cap smallint not null default 3 check (marketing_cap between 0 and 50),
  updated_at    timestamptz not null default now()
);

insert into public.feature_flags (key, description, enabled) values
  ('messaging.campaigns', 'marketing campaigns (scheduling and sending)', true),
  ('messaging.email', 'messages by email', true),
  ('messaging.webpush', 'messages by Web Push', true),
  ('messaging.fcm', 'messages by FCM (Android)', true),
  ('messaging.apns', 'messages by APNs (iOS)', true),
  ('messaging.sms', 'messages by SMS', true),
  ('messaging.whatsapp', 'messages by WhatsApp', true);

-- migrate:down
delete from public.feature_flags where key like 'messaging.%';
drop table public.notification_prefs, public.notification_sends, public.campaign_cohorts, public.campaigns,
  public.suppressions, public.consents, public.devices;
alter table public.profiles drop column tz;
