-- Core schema of seeds 003 §5, with its faults fixed:
--  * `create type` guarded (it has no IF NOT EXISTS);
--  * golden orders are a priority flag, so the nonsense gold/status check is gone;
--  * money is integer minor units + currency, never numeric floats;
--  * media rows keep a private storage key, never a public URL;
--  * FKs the seed left out (orders → media_assets) are declared.

create table if not exists public.roles (
  id    smallint primary key,
  code  text unique not null check (code in ('superadmin', 'admin', 'reader', 'monitor', 'client')),
  label text not null
);
insert into public.roles (id, code, label) values
  (1, 'superadmin', 'Super Admin'), (2, 'admin', 'Admin'), (3, 'reader', 'Reader'),
  (4, 'monitor', 'Monitor'), (5, 'client', 'Client')
on conflict (id) do nothing;

create table if not exists public.countries (
  code      char(2) primary key check (code ~ '^[A-Z]{2}$'),
  alpha3    char(3) not null,
  name      text not null,
  dial_code integer
);
create unique index if not exists countries_name_lower on public.countries (lower(name));

create table if not exists public.profiles (
  id             uuid primary key default gen_random_uuid(),
  email          extensions.citext unique,
  phone          text check (phone ~ '^\+[1-9][0-9]{6,14}$'),
  first_name     text check (length(first_name) <= 100),
  last_name      text check (length(last_name) <= 100),
  dob            date,
  zodiac         text,
  country        text,
  country_code   char(2) references public.countries (code),
  birth_place    text check (length(birth_place) <= 200),
  birth_time     time,
  birth_lat      numeric(8, 5) check (birth_lat between -90 and 90),
  birth_lon      numeric(8, 5) check (birth_lon between -180 and 180),
  birth_tz       text check (length(birth_tz) <= 64),
  role_id        smallint not null default 5 references public.roles (id),
  email_verified boolean not null default false,
  phone_verified boolean not null default false,
  is_test        boolean not null default false,
  locale         text not null default 'en' check (locale in ('en', 'ar')),
  blocked_at     timestamptz,
  blocked_until  timestamptz,
  deleted_at     timestamptz,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);
create index if not exists profiles_role on public.profiles (role_id) where deleted_at is null;

create table if not exists public.services (
  id          bigint generated always as identity primary key,
  code        text unique not null check (code ~ '^[a-z_]{2,40}$'),
  name        text not null,
  is_premium  boolean not null default false,
  is_active   boolean not null default true,
  price_minor integer not null default 0 check (price_minor >= 0),
  currency    char(3) not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  meta        jsonb not null default '{}'::jsonb
);
insert into public.services (code, name, is_premium) values
  ('tarot', 'Tarot Reading', false),
  ('coffee', 'Coffee Cup Reading', false),
  ('astro', 'Astro Natal Chart (Audio)', false),
  ('healing', 'Healing Energy (Call)', true),
  ('direct_call', 'Direct Call with Samia', true)
on conflict (code) do nothing;

create table if not exists public.media_assets (
  id           bigint generated always as identity primary key,
  owner_id     uuid references public.profiles (id),
  kind         text not null check (kind in ('audio', 'image', 'pdf', 'other')),
  storage_key  text not null unique,
  content_type text,
  duration_sec integer check (duration_sec >= 0),
  bytes        bigint check (bytes >= 0),
  sha256       text check (sha256 ~ '^[0-9a-f]{64}$'),
  meta         jsonb not null default '{}'::jsonb,
  created_at   timestamptz not null default now()
);
create index if not exists media_assets_owner on public.media_assets (owner_id);

do $$
begin
  if not exists (select from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'public' and t.typname = 'order_status') then
    create type public.order_status as enum
      ('new', 'assigned', 'in_progress', 'awaiting_approval', 'approved', 'rejected',
       'delivered', 'cancelled', 'archived');
  end if;
end
$$;

create table if not exists public.orders (
  id              bigint generated always as identity primary key,
  user_id         uuid not null references public.profiles (id),
  service_id      bigint not null references public.services (id),
  is_gold         boolean not null default false,
  status          public.order_status not null default 'new',
  question_text   text check (length(question_text) <= 4000),
  input_media_id  bigint references public.media_assets (id),
  output_media_id bigint references public.media_assets (id),
  assigned_reader uuid references public.profiles (id),
  scheduled_at    timestamptz,
  delivered_at    timestamptz,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);
create index if not exists orders_user on public.orders (user_id, created_at desc);
create index if not exists orders_reader on public.orders (assigned_reader, status);
create index if not exists orders_queue on public.orders (status, is_gold desc, created_at);

create table if not exists public.horoscopes (
  id             bigint generated always as identity primary key,
  scope          text not null check (scope in ('daily', 'monthly')),
  zodiac         text not null,
  ref_date       date not null,
  audio_media_id bigint references public.media_assets (id),
  text_content   text,
  tiktok_post_url text,
  approved_by    uuid references public.profiles (id),
  approved_at    timestamptz,
  unique (scope, zodiac, ref_date)
);

create table if not exists public.calls (
  id         bigint generated always as identity primary key,
  order_id   bigint unique references public.orders (id),
  started_at timestamptz,
  ended_at   timestamptz,
  end_reason text check (end_reason in ('completed', 'dropped_by_monitor', 'dropped_by_reader',
                                        'dropped_by_client', 'failed', 'other')),
  check (ended_at is null or started_at is null or ended_at >= started_at)
);

create table if not exists public.moderation_actions (
  id          bigint generated always as identity primary key,
  actor_id    uuid references public.profiles (id),
  target_kind text not null check (target_kind in ('order', 'profile', 'media', 'horoscope', 'call')),
  target_id   text not null,
  action      text not null check (action in ('approve', 'reject', 'block', 'unblock', 'drop_call')),
  reason      text check (length(reason) <= 2000),
  created_at  timestamptz not null default now()
);
create index if not exists moderation_actions_target on public.moderation_actions (target_kind, target_id);

-- OTP codes are never stored: Twilio keeps its own; the local provider stores an HMAC.
create table if not exists public.phone_verifications (
  id           bigint generated always as identity primary key,
  profile_id   uuid not null references public.profiles (id),
  phone        text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
  provider     text not null check (provider in ('twilio', 'local')),
  status       text not null check (status in ('sent', 'verified', 'failed', 'expired')),
  provider_ref text,
  code_hash    text,
  attempts     smallint not null default 0,
  expires_at   timestamptz not null,
  created_at   timestamptz not null default now(),
  verified_at  timestamptz
);
create index if not exists phone_verifications_profile on public.phone_verifications (profile_id, created_at desc);

-- Notifications waiting for (or done with) delivery. Never holds a secret: a
-- verification link is minted by the sender at delivery time from the params.
create table if not exists public.notification_outbox (
  id           bigint generated always as identity primary key,
  recipient_id uuid references public.profiles (id),
  channel      text not null check (channel in ('email', 'sms', 'push')),
  template     text not null,
  params       jsonb not null default '{}'::jsonb,
  status       text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
  attempts     smallint not null default 0,
  provider_ref text,
  created_at   timestamptz not null default now(),
  sent_at      timestamptz
);
create index if not exists notification_outbox_pending on public.notification_outbox (created_at) where status = 'pending';

-- Zodiac from date of birth (tropical sun-sign boundaries).
create or replace function public.calc_zodiac(d date) returns text
language sql immutable parallel safe as $$
  select case
    when d is null then null
    when md between 321 and 419 then 'Aries'
    when md between 420 and 520 then 'Taurus'
    when md between 521 and 620 then 'Gemini'
    when md between 621 and 722 then 'Cancer'
    when md between 723 and 822 then 'Leo'
    when md between 823 and 922 then 'Virgo'
    when md between 923 and 1022 then 'Libra'
    when md between 1023 and 1121 then 'Scorpio'
    when md between 1122 and 1221 then 'Sagittarius'
    when md >= 1222 or md <= 119 then 'Capricorn'
    when md between 120 and 218 then 'Aquarius'
    else 'Pisces'
  end
  from (select extract(month from d)::int * 100 + extract(day from d)::int as md) x
$$;

-- Derived fields: zodiac from dob, country_code from the chosen country (code or name),
-- adults only. Runs before the guard and before the write.
create or replace function app.profiles_derive() returns trigger
language plpgsql set search_path = '' as $$
declare
  cc char(2);
begin
  if tg_op = 'INSERT' or new.dob is distinct from old.dob then
    if new.dob is not null and new.dob > (current_date - interval '18 years')::date then
      raise exception 'must be at least 18 years old'
        using errcode = '23514', hint = 'under_age', column = 'dob';
    end if;
    new.zodiac := public.calc_zodiac(new.dob);
  end if;
  if tg_op = 'INSERT' or new.country is distinct from old.country then
    if new.country is null then
      new.country_code := null;
    else
      select c.code into cc from public.countries c
       where c.code = upper(btrim(new.country)) or lower(c.name) = lower(btrim(new.country));
      if cc is null then
        raise exception 'unknown country' using errcode = '23514', hint = 'unknown_country', column = 'country';
      end if;
      new.country_code := cc;
      select c.name into new.country from public.countries c where c.code = cc;
    end if;
  end if;
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists trg_profiles_derive on public.profiles;
create trigger trg_profiles_derive before insert or update on public.profiles
  for each row execute function app.profiles_derive();

create or replace function app.touch_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists trg_orders_touch on public.orders;
create trigger trg_orders_touch before update on public.orders
  for each row execute function app.touch_updated_at();

-- migrate:down
drop table if exists public.notification_outbox, public.phone_verifications, public.moderation_actions,
  public.calls, public.horoscopes, public.orders, public.media_assets, public.services,
  public.profiles, public.countries, public.roles cascade;
drop type if exists public.order_status;
drop function if exists public.calc_zodiac(date);
drop function if exists app.profiles_derive();
drop function if exists app.touch_updated_at();
