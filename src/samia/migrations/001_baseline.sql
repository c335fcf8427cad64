-- The baseline: every table, column, constraint, index and seed row of the platform as it
-- stood on 2026-12-02, squashed once from the 24 migrations before it (001_roles_and_auth …
-- 025_operations). Nothing had been deployed, so nothing was lost by squashing.
--
-- Migrations hold tables, columns, constraints, indexes and data only, forward-only. A
-- released migration never changes: released.sha256 lists them (`sha256sum -c` checks it, and
-- so does the suite). The rules on these tables — functions, triggers, views, policies and
-- grants — live in src/samia/schema/, one file per domain, re-applied whenever they change.
--
-- A database built by the legacy files adopts this baseline without running it (samia.db.migrate).
-- replaces: 001_roles_and_auth 002_core 003_countries 004_identity_and_audit 005_accounts
-- replaces: 006_rate_limits 007_rls 008_procrastinate_schema 009_jobs 010_bookings 011_payments
-- replaces: 012_payment_webhooks 013_booking_changes 014_booking_schedule 015_manual_transfers
-- replaces: 016_reconciliation 017_feature_flags 018_providers 019_queue_stats 020_orders 021_readings
-- replaces: 022_audit_sealing 023_moderation 024_calls 025_operations


-- ─── Roles and schemas ─────────────────────────────────────────────────────────────────
-- Supabase's roles (anon, authenticated, service_role, authenticator) and our narrow ones.
-- On a real Supabase project Supabase's already exist: every statement is guarded so that
-- it leaves Supabase's own objects untouched.
do $$
declare
  r record;
begin
  for r in select * from (values
      ('anon', 'nologin noinherit'),
      ('authenticated', 'nologin noinherit'),
      ('service_role', 'nologin noinherit bypassrls'),
      ('authenticator', 'login noinherit'),
      -- our counterpart of supabase_auth_admin: the only role that may call the credential
      -- functions in app_auth; it owns no tables and has no RLS bypass
      ('samia_auth', 'nologin noinherit'),
      ('samia_jobs', 'nologin noinherit'),       -- the cron endpoint: may only defer tasks
      ('samia_payments', 'nologin noinherit'),   -- settles a payment after the processor answered
      ('samia_readings', 'nologin noinherit'),   -- records the server-side tarot draw
      ('samia_calls', 'nologin noinherit'),      -- applies verified voice-provider events
      ('samia_alerts', 'nologin noinherit')      -- the Alertmanager receiver, after its token check
    ) as v (name, options) loop
    if not exists (select from pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, r.options);
    end if;
  end loop;
end
$$;
grant anon, authenticated, service_role, samia_auth to authenticator;
grant samia_jobs, samia_payments, samia_readings, samia_calls, samia_alerts to authenticator;

create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists citext with schema extensions;
create extension if not exists btree_gist with schema extensions;
create schema if not exists auth;
-- `app` holds helper functions callable by request roles, `app_auth` credentials and sessions
-- (no privileges for anon/authenticated), `app_private` internal bookkeeping touched only
-- through definer functions.
create schema if not exists app;
create schema if not exists app_auth;
create schema if not exists app_private;


-- ─── Identity ──────────────────────────────────────────────────────────────────────────
create table public.roles (
  id    smallint primary key,
  code  text unique not null check (code in ('superadmin', 'admin', 'reader', 'monitor', 'client')),
  label text not null
);
insert into public.roles (id, code, label) values
  (1, 'superadmin', 'Super Admin'), (2, 'admin', 'Admin'), (3, 'reader', 'Reader'),
  (4, 'monitor', 'Monitor'), (5, 'client', 'Client');

create table public.countries (
  code      char(2) primary key check (code ~ '^[A-Z]{2}$'),
  alpha3    char(3) not null,
  name      text not null,
  dial_code integer
);
create unique index countries_name_lower on public.countries (lower(name));
-- ISO 3166-1 countries with their calling codes (generated once from pycountry + phonenumbers).
insert into public.countries (code, alpha3, name, dial_code) values
('AD','AND','Andorra',376),
('AE','ARE','United Arab Emirates',971),
('AF','AFG','Afghanistan',93),
('AG','ATG','Antigua and Barbuda',1),
('AI','AIA','Anguilla',1),
('AL','ALB','Albania',355),
('AM','ARM','Armenia',374),
('AO','AGO','Angola',244),
('AQ','ATA','Antarctica',null),
('AR','ARG','Argentina',54),
('AS','ASM','American Samoa',1),
('AT','AUT','Austria',43),
('AU','AUS','Australia',61),
('AW','ABW','Aruba',297),
('AX','ALA','Åland Islands',358),
('AZ','AZE','Azerbaijan',994),
('BA','BIH','Bosnia and Herzegovina',387),
('BB','BRB','Barbados',1),
('BD','BGD','Bangladesh',880),
('BE','BEL','Belgium',32),
('BF','BFA','Burkina Faso',226),
('BG','BGR','Bulgaria',359),
('BH','BHR','Bahrain',973),
('BI','BDI','Burundi',257),
('BJ','BEN','Benin',229),
('BL','BLM','Saint Barthélemy',590),
('BM','BMU','Bermuda',1),
('BN','BRN','Brunei Darussalam',673),
('BO','BOL','Bolivia, Plurinational State of',591),
('BQ','BES','Bonaire, Sint Eustatius and Saba',599),
('BR','BRA','Brazil',55),
('BS','BHS','Bahamas',1),
('BT','BTN','Bhutan',975),
('BV','BVT','Bouvet Island',null),
('BW','BWA','Botswana',267),
('BY','BLR','Belarus',375),
('BZ','BLZ','Belize',501),
('CA','CAN','Canada',1),
('CC','CCK','Cocos (Keeling) Islands',61),
('CD','COD','Congo, The Democratic Republic of the',243),
('CF','CAF','Central African Republic',236),
('CG','COG','Congo',242),
('CH','CHE','Switzerland',41),
('CI','CIV','Côte d''Ivoire',225),
('CK','COK','Cook Islands',682),
('CL','CHL','Chile',56),
('CM','CMR','Cameroon',237),
('CN','CHN','China',86),
('CO','COL','Colombia',57),
('CR','CRI','Costa Rica',506),
('CU','CUB','Cuba',53),
('CV','CPV','Cabo Verde',238),
('CW','CUW','Curaçao',599),
('CX','CXR','Christmas Island',61),
('CY','CYP','Cyprus',357),
('CZ','CZE','Czechia',420),
('DE','DEU','Germany',49),
('DJ','DJI','Djibouti',253),
('DK','DNK','Denmark',45),
('DM','DMA','Dominica',1),
('DO','DOM','Dominican Republic',1),
('DZ','DZA','Algeria',213),
('EC','ECU','Ecuador',593),
('EE','EST','Estonia',372),
('EG','EGY','Egypt',20),
('EH','ESH','Western Sahara',212),
('ER','ERI','Eritrea',291),
('ES','ESP','Spain',34),
('ET','ETH','Ethiopia',251),
('FI','FIN','Finland',358),
('FJ','FJI','Fiji',679),
('FK','FLK','Falkland Islands (Malvinas)',500),
('FM','FSM','Micronesia, Federated States of',691),
('FO','FRO','Faroe Islands',298),
('FR','FRA','France',33),
('GA','GAB','Gabon',241),
('GB','GBR','United Kingdom',44),
('GD','GRD','Grenada',1),
('GE','GEO','Georgia',995),
('GF','GUF','French Guiana',594),
('GG','GGY','Guernsey',44),
('GH','GHA','Ghana',233),
('GI','GIB','Gibraltar',350),
('GL','GRL','Greenland',299),
('GM','GMB','Gambia',220),
('GN','GIN','Guinea',224),
('GP','GLP','Guadeloupe',590),
('GQ','GNQ','Equatorial Guinea',240),
('GR','GRC','Greece',30),
('GS','SGS','South Georgia and the South Sandwich Islands',null),
('GT','GTM','Guatemala',502),
('GU','GUM','Guam',1),
('GW','GNB','Guinea-Bissau',245),
('GY','GUY','Guyana',592),
('HK','HKG','Hong Kong',852),
('HM','HMD','Heard Island and McDonald Islands',null),
('HN','HND','Honduras',504),
('HR','HRV','Croatia',385),
('HT','HTI','Haiti',509),
('HU','HUN','Hungary',36),
('ID','IDN','Indonesia',62),
('IE','IRL','Ireland',353),
('IL','ISR','Israel',972),
('IM','IMN','Isle of Man',44),
('IN','IND','India',91),
('IO','IOT','British Indian Ocean Territory',246),
('IQ','IRQ','Iraq',964),
('IR','IRN','Iran, Islamic Republic of',98),
('IS','ISL','Iceland',354),
('IT','ITA','Italy',39),
('JE','JEY','Jersey',44),
('JM','JAM','Jamaica',1),
('JO','JOR','Jordan',962),
('JP','JPN','Japan',81),
('KE','KEN','Kenya',254),
('KG','KGZ','Kyrgyzstan',996),
('KH','KHM','Cambodia',855),
('KI','KIR','Kiribati',686),
('KM','COM','Comoros',269),
('KN','KNA','Saint Kitts and Nevis',1),
('KP','PRK','Korea, Democratic People''s Republic of',850),
('KR','KOR','Korea, Republic of',82),
('KW','KWT','Kuwait',965),
('KY','CYM','Cayman Islands',1),
('KZ','KAZ','Kazakhstan',7),
('LA','LAO','Lao People''s Democratic Republic',856),
('LB','LBN','Lebanon',961),
('LC','LCA','Saint Lucia',1),
('LI','LIE','Liechtenstein',423),
('LK','LKA','Sri Lanka',94),
('LR','LBR','Liberia',231),
('LS','LSO','Lesotho',266),
('LT','LTU','Lithuania',370),
('LU','LUX','Luxembourg',352),
('LV','LVA','Latvia',371),
('LY','LBY','Libya',218),
('MA','MAR','Morocco',212),
('MC','MCO','Monaco',377),
('MD','MDA','Moldova, Republic of',373),
('ME','MNE','Montenegro',382),
('MF','MAF','Saint Martin (French part)',590),
('MG','MDG','Madagascar',261),
('MH','MHL','Marshall Islands',692),
('MK','MKD','North Macedonia',389),
('ML','MLI','Mali',223),
('MM','MMR','Myanmar',95),
('MN','MNG','Mongolia',976),
('MO','MAC','Macao',853),
('MP','MNP','Northern Mariana Islands',1),
('MQ','MTQ','Martinique',596),
('MR','MRT','Mauritania',222),
('MS','MSR','Montserrat',1),
('MT','MLT','Malta',356),
('MU','MUS','Mauritius',230),
('MV','MDV','Maldives',960),
('MW','MWI','Malawi',265),
('MX','MEX','Mexico',52),
('MY','MYS','Malaysia',60),
('MZ','MOZ','Mozambique',258),
('NA','NAM','Namibia',264),
('NC','NCL','New Caledonia',687),
('NE','NER','Niger',227),
('NF','NFK','Norfolk Island',672),
('NG','NGA','Nigeria',234),
('NI','NIC','Nicaragua',505),
('NL','NLD','Netherlands',31),
('NO','NOR','Norway',47),
('NP','NPL','Nepal',977),
('NR','NRU','Nauru',674),
('NU','NIU','Niue',683),
('NZ','NZL','New Zealand',64),
('OM','OMN','Oman',968),
('PA','PAN','Panama',507),
('PE','PER','Peru',51),
('PF','PYF','French Polynesia',689),
('PG','PNG','Papua New Guinea',675),
('PH','PHL','Philippines',63),
('PK','PAK','Pakistan',92),
('PL','POL','Poland',48),
('PM','SPM','Saint Pierre and Miquelon',508),
('PN','PCN','Pitcairn',null),
('PR','PRI','Puerto Rico',1),
('PS','PSE','Palestine, State of',970),
('PT','PRT','Portugal',351),
('PW','PLW','Palau',680),
('PY','PRY','Paraguay',595),
('QA','QAT','Qatar',974),
('RE','REU','Réunion',262),
('RO','ROU','Romania',40),
('RS','SRB','Serbia',381),
('RU','RUS','Russian Federation',7),
('RW','RWA','Rwanda',250),
('SA','SAU','Saudi Arabia',966),
('SB','SLB','Solomon Islands',677),
('SC','SYC','Seychelles',248),
('SD','SDN','Sudan',249),
('SE','SWE','Sweden',46),
('SG','SGP','Singapore',65),
('SH','SHN','Saint Helena, Ascension and Tristan da Cunha',290),
('SI','SVN','Slovenia',386),
('SJ','SJM','Svalbard and Jan Mayen',47),
('SK','SVK','Slovakia',421),
('SL','SLE','Sierra Leone',232),
('SM','SMR','San Marino',378),
('SN','SEN','Senegal',221),
('SO','SOM','Somalia',252),
('SR','SUR','Suriname',597),
('SS','SSD','South Sudan',211),
('ST','STP','Sao Tome and Principe',239),
('SV','SLV','El Salvador',503),
('SX','SXM','Sint Maarten (Dutch part)',1),
('SY','SYR','Syrian Arab Republic',963),
('SZ','SWZ','Eswatini',268),
('TC','TCA','Turks and Caicos Islands',1),
('TD','TCD','Chad',235),
('TF','ATF','French Southern Territories',null),
('TG','TGO','Togo',228),
('TH','THA','Thailand',66),
('TJ','TJK','Tajikistan',992),
('TK','TKL','Tokelau',690),
('TL','TLS','Timor-Leste',670),
('TM','TKM','Turkmenistan',993),
('TN','TUN','Tunisia',216),
('TO','TON','Tonga',676),
('TR','TUR','Türkiye',90),
('TT','TTO','Trinidad and Tobago',1),
('TV','TUV','Tuvalu',688),
('TW','TWN','Taiwan, Province of China',886),
('TZ','TZA','Tanzania, United Republic of',255),
('UA','UKR','Ukraine',380),
('UG','UGA','Uganda',256),
('UM','UMI','United States Minor Outlying Islands',null),
('US','USA','United States',1),
('UY','URY','Uruguay',598),
('UZ','UZB','Uzbekistan',998),
('VA','VAT','Holy See (Vatican City State)',39),
('VC','VCT','Saint Vincent and the Grenadines',1),
('VE','VEN','Venezuela, Bolivarian Republic of',58),
('VG','VGB','Virgin Islands, British',1),
('VI','VIR','Virgin Islands, U.S.',1),
('VN','VNM','Viet Nam',84),
('VU','VUT','Vanuatu',678),
('WF','WLF','Wallis and Futuna',681),
('WS','WSM','Samoa',685),
('YE','YEM','Yemen',967),
('YT','MYT','Mayotte',262),
('ZA','ZAF','South Africa',27),
('ZM','ZMB','Zambia',260),
('ZW','ZWE','Zimbabwe',263);

create table public.profiles (
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
create index profiles_role on public.profiles (role_id) where deleted_at is null;

-- OTP codes are never stored: Twilio keeps its own; the local provider stores an HMAC.
create table public.phone_verifications (
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
create index phone_verifications_profile on public.phone_verifications (profile_id, created_at desc);

-- Credentials and sessions. Only hashes are stored.
create table app_auth.credentials (
  user_id       uuid primary key references public.profiles (id) on delete cascade,
  password_hash text not null,
  updated_at    timestamptz not null default now()
);

create table app_auth.sessions (
  id                uuid primary key default gen_random_uuid(),
  user_id           uuid not null references public.profiles (id) on delete cascade,
  created_at        timestamptz not null default now(),
  last_refreshed_at timestamptz,
  revoked_at        timestamptz,
  revoke_reason     text
);
create index sessions_user on app_auth.sessions (user_id) where revoked_at is null;

create table app_auth.refresh_tokens (
  token_hash text primary key,
  session_id uuid not null references app_auth.sessions (id) on delete cascade,
  issued_at  timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at    timestamptz
);
create index refresh_tokens_session on app_auth.refresh_tokens (session_id);


-- ─── Catalogue ─────────────────────────────────────────────────────────────────────────
-- Money is integer minor units + an ISO 4217 currency. `policy` is the booking policy copied
-- onto each booking at purchase (refund curve, reschedules, no-show window).
create table public.services (
  id                    bigint generated always as identity primary key,
  code                  text unique not null check (code ~ '^[a-z_]{2,40}$'),
  name                  text not null,
  is_premium            boolean not null default false,
  is_active             boolean not null default true,
  price_minor           integer not null default 0 check (price_minor >= 0),
  currency              char(3) not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  meta                  jsonb not null default '{}'::jsonb,
  duration_minutes      integer not null default 30 check (duration_minutes between 5 and 480),
  policy                jsonb not null default '{
    "refund_curve": [{"hours_before": 24, "refund_pct": 100},
                     {"hours_before": 2, "refund_pct": 50},
                     {"hours_before": 0, "refund_pct": 0}],
    "refund_to": "original",
    "reschedule": {"max": 1, "notice_hours": 12},
    "guarantee_quota": 0,
    "reader_no_show_minutes": 10}'::jsonb,
  kind                  text not null default 'reading' check (kind in ('reading', 'call')),
  delivery_minutes      integer not null default 1440 check (delivery_minutes between 5 and 43200),
  gold_delivery_minutes integer not null default 60 check (gold_delivery_minutes between 5 and 43200),
  review_minutes        integer not null default 120 check (review_minutes between 5 and 10080),
  gold_review_minutes   integer not null default 30 check (gold_review_minutes between 5 and 10080),
  gold_surcharge_minor  integer not null default 0 check (gold_surcharge_minor >= 0),
  per_minute_minor      integer not null default 0 check (per_minute_minor >= 0)
);
insert into public.services (code, name, is_premium, kind) values
  ('tarot', 'Tarot Reading', false, 'reading'),
  ('coffee', 'Coffee Cup Reading', false, 'reading'),
  ('astro', 'Astro Natal Chart (Audio)', false, 'reading'),
  ('healing', 'Healing Energy (Call)', true, 'call'),
  ('direct_call', 'Direct Call with Samia', true, 'call');

create table public.reader_services (
  reader_id  uuid not null references public.profiles (id),
  service_id bigint not null references public.services (id),
  active     boolean not null default true,
  primary key (reader_id, service_id)
);


-- ─── Media ─────────────────────────────────────────────────────────────────────────────
-- Rows keep a private storage key, never a public URL.
create table public.media_assets (
  id           bigint generated always as identity primary key,
  owner_id     uuid references public.profiles (id),
  kind         text not null check (kind in ('audio', 'image', 'pdf', 'other')),
  storage_key  text not null unique,
  content_type text,
  duration_sec integer check (duration_sec >= 0),
  bytes        bigint check (bytes >= 0),
  sha256       text check (sha256 ~ '^[0-9a-f]{64}$'),
  meta         jsonb not null default '{}'::jsonb,
  created_at   timestamptz not null default now(),
  removed_at   timestamptz
);
create index media_assets_owner on public.media_assets (owner_id);


-- ─── Orders and readings ───────────────────────────────────────────────────────────────
-- Golden orders are a priority flag. The monitor's approval pins the exact file (its
-- sha256); only that hash is ever served to the client.
create type public.order_status as enum
  ('new', 'assigned', 'in_progress', 'awaiting_approval', 'approved', 'rejected', 'delivered', 'cancelled',
   'archived');

create table public.orders (
  id                   bigint generated always as identity primary key,
  user_id              uuid not null references public.profiles (id),
  service_id           bigint not null references public.services (id),
  is_gold              boolean not null default false,
  status               public.order_status not null default 'new',
  question_text        text check (length(question_text) <= 4000),
  input_media_id       bigint references public.media_assets (id),
  output_media_id      bigint references public.media_assets (id),
  assigned_reader      uuid references public.profiles (id),
  scheduled_at         timestamptz,
  delivered_at         timestamptz,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  price_minor          bigint not null default 0 check (price_minor >= 0),
  currency             char(3) not null default 'USD',
  inputs               jsonb not null default '{}'::jsonb,
  chart                jsonb,
  assigned_at          timestamptz,
  deliver_by           timestamptz,
  submitted_at         timestamptz,
  review_by            timestamptz,
  delivery_breached_at timestamptz,
  review_breached_at   timestamptz,
  reject_reason        text check (length(reject_reason) between 3 and 2000),
  approved_media_id    bigint references public.media_assets (id),
  approved_sha256      text check (approved_sha256 ~ '^[0-9a-f]{64}$'),
  approved_by          uuid references public.profiles (id),
  approved_at          timestamptz,
  cancelled_at         timestamptz,
  held_at              timestamptz,
  unlisted_at          timestamptz
);
create index orders_user on public.orders (user_id, created_at desc);
create index orders_reader on public.orders (assigned_reader, status);
create index orders_queue on public.orders (status, is_gold desc, created_at);
create index orders_clock_delivery on public.orders (deliver_by)
  where status in ('new', 'assigned', 'in_progress', 'rejected') and delivery_breached_at is null;
create index orders_clock_review on public.orders (review_by)
  where status = 'awaiting_approval' and review_breached_at is null;

-- The allowed status transitions and who may make each (mirrored by samia.orders.workflow,
-- compared by a test); the trigger in schema/orders.sql refuses any other move.
create table app.order_transitions (
  from_status public.order_status not null,
  to_status   public.order_status not null,
  roles       text[] not null,
  primary key (from_status, to_status)
);
insert into app.order_transitions values
  ('new', 'assigned', '{admin,superadmin}'),
  ('new', 'cancelled', '{client,admin,superadmin}'),
  ('assigned', 'in_progress', '{reader}'),
  ('assigned', 'cancelled', '{client,admin,superadmin}'),
  ('in_progress', 'awaiting_approval', '{reader}'),
  ('in_progress', 'assigned', '{admin,superadmin}'),
  ('awaiting_approval', 'approved', '{monitor,admin,superadmin}'),
  ('awaiting_approval', 'rejected', '{monitor,admin,superadmin}'),
  ('rejected', 'in_progress', '{reader}'),
  ('rejected', 'assigned', '{admin,superadmin}'),
  ('approved', 'delivered', '{monitor,admin,superadmin}'),
  ('delivered', 'archived', '{client,admin,superadmin}'),
  ('cancelled', 'archived', '{admin,superadmin}');

-- Cup photos and other client inputs of an order.
create table public.order_attachments (
  order_id   bigint not null references public.orders (id),
  media_id   bigint not null unique references public.media_assets (id),
  created_at timestamptz not null default now(),
  primary key (order_id, media_id)
);

-- Breaches of the service clocks: strikes on readers, escalations to admins.
create table public.reader_strikes (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  order_id   bigint references public.orders (id),
  reason     text not null check (reason in ('delivery_breach', 'other')),
  created_at timestamptz not null default now(),
  unique (order_id, reason)
);
create index reader_strikes_reader on public.reader_strikes (reader_id, created_at desc);

create table public.order_escalations (
  id          bigint generated always as identity primary key,
  order_id    bigint not null references public.orders (id),
  kind        text not null check (kind in ('delivery_breach', 'review_overdue')),
  created_at  timestamptz not null default now(),
  resolved_at timestamptz
);
create index order_escalations_open on public.order_escalations (created_at) where resolved_at is null;

-- The tarot deck (78 face cards + a back, EN/AR), spreads, and Tarot V2 readings whose cards
-- are drawn server-side and revealed strictly in order (seeds 002).
create table public.decks (
  code text primary key check (code ~ '^[a-z_]{2,40}$'),
  name text not null
);
insert into public.decks values ('rider_waite', 'Rider–Waite–Smith');

create table public.deck_cards (
  id          bigint generated always as identity primary key,
  deck_code   text not null references public.decks (code),
  code        text not null check (code ~ '^[a-z0-9_]{2,40}$'),
  is_back     boolean not null default false,
  arcana      text check (arcana in ('major', 'minor')),
  suit        text check (suit in ('wands', 'cups', 'swords', 'pentacles')),
  number      smallint check (number between 0 and 21),
  name_en     text not null,
  name_ar     text not null,
  upright_en  text,
  upright_ar  text,
  reversed_en text,
  reversed_ar text,
  unique (deck_code, code),
  check (is_back or (arcana is not null and upright_en is not null and upright_ar is not null
                     and reversed_en is not null and reversed_ar is not null)),
  check ((arcana = 'minor') = (suit is not null))
);
insert into public.deck_cards (deck_code, code, is_back, name_en, name_ar)
values ('rider_waite', 'back', true, 'Card back', 'ظهر البطاقة');
insert into public.deck_cards (deck_code, code, arcana, number, name_en, name_ar, upright_en, upright_ar, reversed_en, reversed_ar)
select 'rider_waite', 'major_' || lpad(n::text, 2, '0'), 'major', n, en, ar, ue, ua, re, ra
from (values
  (0, 'The Fool', 'الأحمق', 'new beginnings, spontaneity, a leap of faith', 'بدايات جديدة وعفوية وقفزة إيمان',
      'recklessness, hesitation, naivety', 'تهوّر وتردّد وسذاجة'),
  (1, 'The Magician', 'الساحر', 'willpower, skill, turning ideas into action', 'قوة الإرادة والمهارة وتحويل الأفكار إلى أفعال',
      'manipulation, untapped talent, poor planning', 'تلاعب وموهبة غير مستغلة وسوء تخطيط'),
  (2, 'The High Priestess', 'الكاهنة العليا', 'intuition, inner knowledge, mystery', 'الحدس والمعرفة الباطنة والغموض',
      'hidden agendas, ignoring intuition', 'نوايا خفية وتجاهل الحدس'),
  (3, 'The Empress', 'الإمبراطورة', 'abundance, nurturing, creativity', 'الوفرة والرعاية والإبداع',
      'dependence, creative block, neglect', 'اتكالية وتعطّل الإبداع وإهمال'),
  (4, 'The Emperor', 'الإمبراطور', 'structure, authority, stability', 'النظام والسلطة والاستقرار',
      'rigidity, domination, lack of discipline', 'تصلّب وتسلّط وقلة انضباط'),
  (5, 'The Hierophant', 'الكاهن الأعظم', 'tradition, guidance, shared beliefs', 'التقاليد والإرشاد والمعتقدات المشتركة',
      'rebellion, unconventional paths', 'تمرّد وطرق غير تقليدية'),
  (6, 'The Lovers', 'العشّاق', 'love, harmony, meaningful choices', 'الحب والانسجام والاختيارات المهمة',
      'imbalance, disharmony, misaligned values', 'اختلال التوازن وعدم الانسجام وتضارب القيم'),
  (7, 'The Chariot', 'العربة', 'determination, victory, control', 'العزيمة والانتصار والسيطرة',
      'lack of direction, scattered energy', 'غياب الاتجاه وتشتّت الطاقة'),
  (8, 'Strength', 'القوة', 'courage, patience, gentle strength', 'الشجاعة والصبر والقوة اللطيفة',
      'self-doubt, weakness, insecurity', 'الشك في النفس والضعف وعدم الأمان'),
  (9, 'The Hermit', 'الناسك', 'soul-searching, solitude, inner guidance', 'البحث في الذات والعزلة والإرشاد الداخلي',
      'isolation, loneliness, withdrawal', 'انعزال ووحدة وانسحاب'),
  (10, 'Wheel of Fortune', 'عجلة الحظ', 'cycles, fate, a turning point', 'الدورات والقدر ونقطة تحوّل',
      'bad luck, resistance to change', 'سوء حظ ومقاومة للتغيير'),
  (11, 'Justice', 'العدالة', 'fairness, truth, cause and effect', 'الإنصاف والحقيقة والسبب والنتيجة',
      'unfairness, dishonesty, avoiding accountability', 'ظلم وعدم صدق وتهرّب من المسؤولية'),
  (12, 'The Hanged Man', 'الرجل المعلّق', 'pause, surrender, a new perspective', 'توقّف واستسلام ومنظور جديد',
      'stalling, needless sacrifice', 'مماطلة وتضحية بلا داعٍ'),
  (13, 'Death', 'الموت', 'endings, transformation, transition', 'نهايات وتحوّل وانتقال',
      'resistance to change, stagnation', 'مقاومة التغيير والركود'),
  (14, 'Temperance', 'الاعتدال', 'balance, moderation, patience', 'التوازن والاعتدال والصبر',
      'excess, imbalance, haste', 'إفراط واختلال وتسرّع'),
  (15, 'The Devil', 'الشيطان', 'attachment, temptation, shadow self', 'التعلّق والإغراء والجانب المظلم',
      'release, breaking free, reclaiming power', 'التحرّر وكسر القيود واستعادة القوة'),
  (16, 'The Tower', 'البرج', 'sudden upheaval, revelation, awakening', 'اضطراب مفاجئ وكشف ويقظة',
      'averting disaster, fear of change', 'تجنّب الكارثة والخوف من التغيير'),
  (17, 'The Star', 'النجمة', 'hope, renewal, serenity', 'الأمل والتجدد والسكينة',
      'despair, lack of faith, discouragement', 'يأس وفقدان الإيمان وإحباط'),
  (18, 'The Moon', 'القمر', 'illusion, intuition, the unconscious', 'الوهم والحدس واللاوعي',
      'confusion lifting, released fear', 'انقشاع الحيرة وزوال الخوف'),
  (19, 'The Sun', 'الشمس', 'joy, success, vitality', 'الفرح والنجاح والحيوية',
      'temporary sadness, dimmed enthusiasm', 'حزن عابر وفتور الحماس'),
  (20, 'Judgement', 'البعث', 'reflection, reckoning, inner calling', 'التأمل والمحاسبة والنداء الداخلي',
      'self-doubt, refusing the call', 'الشك في النفس ورفض النداء'),
  (21, 'The World', 'العالم', 'completion, fulfilment, wholeness', 'الاكتمال والتحقق والتمام',
      'unfinished business, lack of closure', 'أمور معلّقة وغياب الخاتمة')
) as m (n, en, ar, ue, ua, re, ra);
-- The minor arcana: each rank's meaning in each suit's domain.
insert into public.deck_cards (deck_code, code, arcana, suit, number, name_en, name_ar, upright_en, upright_ar, reversed_en, reversed_ar)
select 'rider_waite', s.code || '_' || r.code, 'minor', s.code, null,
       r.en || ' of ' || s.en, r.ar || ' ' || s.ar,
       r.ue || ' in ' || s.domain_en, r.ua || ' في ' || s.domain_ar,
       r.re || ' in ' || s.domain_en, r.ra || ' في ' || s.domain_ar
from (values
  ('wands', 'Wands', 'العصي', 'ambition and action', 'الطموح والعمل'),
  ('cups', 'Cups', 'الكؤوس', 'love and emotions', 'الحب والمشاعر'),
  ('swords', 'Swords', 'السيوف', 'thought and conflict', 'الفكر والصراع'),
  ('pentacles', 'Pentacles', 'العملات', 'money and the material world', 'المال والعالم المادي')
) as s (code, en, ar, domain_en, domain_ar)
cross join (values
  ('ace', 'Ace', 'آس', 'a new beginning', 'بداية جديدة', 'a missed start', 'بداية ضائعة'),
  ('two', 'Two', 'اثنان من', 'a choice and balance', 'اختيار وتوازن', 'indecision', 'تردّد'),
  ('three', 'Three', 'ثلاثة من', 'growth and collaboration', 'نمو وتعاون', 'delays and misalignment', 'تأخير وعدم توافق'),
  ('four', 'Four', 'أربعة من', 'stability and rest', 'استقرار وراحة', 'restlessness or stagnation', 'قلق أو ركود'),
  ('five', 'Five', 'خمسة من', 'challenge and loss', 'تحدٍّ وخسارة', 'recovery after struggle', 'تعافٍ بعد معاناة'),
  ('six', 'Six', 'ستة من', 'harmony and generosity', 'انسجام وكرم', 'imbalance in giving', 'خلل في العطاء'),
  ('seven', 'Seven', 'سبعة من', 'assessment and perseverance', 'تقييم ومثابرة', 'doubt and distraction', 'شك وتشتّت'),
  ('eight', 'Eight', 'ثمانية من', 'movement and mastery', 'حركة وإتقان', 'feeling stuck', 'شعور بالجمود'),
  ('nine', 'Nine', 'تسعة من', 'near fulfilment', 'اقتراب التحقق', 'anxiety before the end', 'قلق قبل النهاية'),
  ('ten', 'Ten', 'عشرة من', 'completion of a cycle', 'اكتمال دورة', 'a burden carried too long', 'عبء طال حمله'),
  ('page', 'Page', 'غلام', 'curiosity and a message', 'فضول ورسالة', 'immaturity', 'عدم نضج'),
  ('knight', 'Knight', 'فارس', 'bold pursuit', 'سعي جريء', 'impulsiveness', 'اندفاع'),
  ('queen', 'Queen', 'ملكة', 'nurturing mastery', 'إتقان وحنان', 'insecurity', 'عدم ثقة'),
  ('king', 'King', 'ملك', 'leadership and control', 'قيادة وسيطرة', 'misused authority', 'سوء استخدام السلطة')
) as r (code, en, ar, ue, ua, re, ra);

create table public.tarot_spreads (
  code      text primary key check (code ~ '^[a-z_]{2,40}$'),
  name_en   text not null,
  name_ar   text not null,
  positions jsonb not null check (jsonb_typeof(positions) = 'array' and jsonb_array_length(positions) between 1 and 15)
);
insert into public.tarot_spreads values
  ('single', 'Single card', 'بطاقة واحدة', '[{"en": "Guidance", "ar": "الإرشاد"}]'),
  ('three_card', 'Past, present, future', 'الماضي والحاضر والمستقبل',
   '[{"en": "Past", "ar": "الماضي"}, {"en": "Present", "ar": "الحاضر"}, {"en": "Future", "ar": "المستقبل"}]'),
  ('celtic_cross', 'Celtic cross', 'الصليب السلتي',
   '[{"en": "Present", "ar": "الحاضر"}, {"en": "Challenge", "ar": "التحدي"}, {"en": "Foundation", "ar": "الأساس"},
     {"en": "Recent past", "ar": "الماضي القريب"}, {"en": "Crown", "ar": "الهدف"}, {"en": "Near future", "ar": "المستقبل القريب"},
     {"en": "Self", "ar": "الذات"}, {"en": "Environment", "ar": "المحيط"}, {"en": "Hopes and fears", "ar": "الآمال والمخاوف"},
     {"en": "Outcome", "ar": "النتيجة"}]');

create table public.tarot_v2_readings (
  id                         bigint generated always as identity primary key,
  order_id                   bigint not null unique references public.orders (id),
  deck_code                  text not null references public.decks (code),
  spread_code                text not null references public.tarot_spreads (code),
  ai_draft_visible_to_client boolean not null default false check (not ai_draft_visible_to_client),
  created_at                 timestamptz not null default now()
);

create table public.tarot_v2_card_selections (
  reading_id    bigint not null references public.tarot_v2_readings (id),
  card_position smallint not null check (card_position >= 1),
  card_id       bigint not null references public.deck_cards (id),
  is_reversed   boolean not null,
  revealed_at   timestamptz,
  primary key (reading_id, card_position),
  unique (reading_id, card_id)
);

-- Readers' assistant drafts: internal only, and always labelled so.
create table public.reading_drafts (
  id         bigint generated always as identity primary key,
  order_id   bigint not null references public.orders (id),
  author_id  uuid not null references public.profiles (id),
  provider   text not null,
  label      text not null default 'Assistant Draft – Not for Client Delivery'
             check (label = 'Assistant Draft – Not for Client Delivery'),
  body       text not null check (length(body) <= 20000),
  created_at timestamptz not null default now()
);
create index reading_drafts_order on public.reading_drafts (order_id, id desc);


-- ─── Horoscopes ────────────────────────────────────────────────────────────────────────
create table public.horoscopes (
  id              bigint generated always as identity primary key,
  scope           text not null check (scope in ('daily', 'monthly')),
  zodiac          text not null,
  ref_date        date not null,
  audio_media_id  bigint references public.media_assets (id),
  text_content    text,
  tiktok_post_url text,
  approved_by     uuid references public.profiles (id),
  approved_at     timestamptz,
  unique (scope, zodiac, ref_date)
);


-- ─── Bookings ──────────────────────────────────────────────────────────────────────────
-- Weekly rules: ISO weekday (1 = Monday) and local wall-clock times in the reader's zone.
create table public.availability_rules (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  weekday    smallint not null check (weekday between 1 and 7),
  start_time time not null,
  end_time   time not null,
  tz         text not null,
  check (end_time > start_time)
);
create index availability_rules_reader on public.availability_rules (reader_id, weekday);

-- Exceptions in absolute time: 'block' removes time, 'open' adds it.
create table public.availability_exceptions (
  id        bigint generated always as identity primary key,
  reader_id uuid not null references public.profiles (id),
  during    tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
  kind      text not null check (kind in ('block', 'open')),
  note      text check (length(note) <= 200)
);
create index availability_exceptions_reader on public.availability_exceptions using gist (reader_id, during);

-- ONE capacity ledger for all of a reader's time: holds, confirmed bookings and live calls
-- are its rows, and the exclusion constraint over the active statuses makes an overlap
-- impossible whatever path writes.
create table public.reader_capacity (
  id         bigint generated always as identity primary key,
  reader_id  uuid not null references public.profiles (id),
  during     tstzrange not null check (not isempty(during) and lower_inc(during) and not upper_inc(during)),
  kind       text not null check (kind in ('hold', 'booking', 'call')),
  status     text not null check (status in ('held', 'confirmed', 'live', 'expired', 'released', 'cancelled',
                                             'completed')),
  expires_at timestamptz,
  created_at timestamptz not null default now(),
  check (status <> 'held' or expires_at is not null),
  constraint reader_capacity_no_overlap exclude using gist (reader_id with =, during with &&)
    where (status in ('held', 'confirmed', 'live'))
);
create index reader_capacity_stale on public.reader_capacity (expires_at) where status = 'held';

create table public.bookings (
  id            bigint generated always as identity primary key,
  client_id     uuid not null references public.profiles (id),
  reader_id     uuid not null references public.profiles (id),
  service_id    bigint not null references public.services (id),
  capacity_id   bigint not null references public.reader_capacity (id),
  starts_at     timestamptz not null,
  ends_at       timestamptz not null,
  status        text not null default 'held'
                check (status in ('held', 'confirmed', 'expired', 'released', 'cancelled', 'completed',
                                  'no_show')),
  price_minor   integer not null check (price_minor >= 0),
  currency      char(3) not null,
  policy        jsonb not null,          -- snapshot of the service policy at purchase
  reschedules   smallint not null default 0,
  reminded      text[] not null default '{}',
  created_at    timestamptz not null default now(),
  confirmed_at  timestamptz,
  cancelled_at  timestamptz,
  cancel_reason text check (length(cancel_reason) <= 500),
  started_at    timestamptz,             -- set when the reader starts the call
  refund_minor  bigint check (refund_minor >= 0),
  refund_to     text check (refund_to in ('original', 'wallet')),
  check (ends_at > starts_at)
);
create index bookings_client on public.bookings (client_id, starts_at desc);
create index bookings_reader on public.bookings (reader_id, starts_at);
create index bookings_upcoming on public.bookings (starts_at) where status = 'confirmed';


-- ─── Calls ─────────────────────────────────────────────────────────────────────────────
-- Scheduled calls from confirmed bookings and instant calls from available readers, one
-- state machine fed by the voice provider's webhooks; per-minute billing on connected time.
create table public.calls (
  id                bigint generated always as identity primary key,
  order_id          bigint unique references public.orders (id),
  started_at        timestamptz,
  ended_at          timestamptz,
  end_reason        text check (end_reason in ('completed', 'dropped_by_monitor', 'dropped_by_reader',
                                               'dropped_by_client', 'failed', 'no_answer', 'busy', 'other')),
  booking_id        bigint unique references public.bookings (id),
  client_id         uuid references public.profiles (id),
  reader_id         uuid references public.profiles (id),
  kind              text not null default 'scheduled' check (kind in ('scheduled', 'instant', 'emergency')),
  status            text not null default 'created' check (status in ('created', 'ringing', 'started', 'ended')),
  provider          text not null default 'local' check (provider in ('local', 'twilio')),
  provider_ref      text unique,
  capacity_id       bigint references public.reader_capacity (id),
  per_minute_minor  integer not null default 0 check (per_minute_minor >= 0),
  currency          char(3) not null default 'USD',
  max_seconds       integer check (max_seconds > 0),
  record            boolean not null default false,
  connected_seconds integer check (connected_seconds >= 0),
  billed_minor      bigint check (billed_minor >= 0),
  created_at        timestamptz not null default now(),
  ringing_at        timestamptz,
  check (ended_at is null or started_at is null or ended_at >= started_at)
);
create unique index calls_one_live_per_reader on public.calls (reader_id) where status in ('ringing', 'started');

-- Consent, with the client's IP, before any call starts (seeds 002).
create table public.call_consent_logs (
  id                bigint generated always as identity primary key,
  booking_id        bigint references public.bookings (id),
  call_id           bigint references public.calls (id),
  client_id         uuid not null references public.profiles (id),
  client_ip         inet not null,
  user_agent        text check (length(user_agent) <= 300),
  consent_given     boolean not null check (consent_given),
  recording_consent boolean not null default false,
  consented_at      timestamptz not null default now(),
  check (booking_id is not null or call_id is not null)
);
create index call_consent_booking on public.call_consent_logs (booking_id);

create table public.call_events (
  id                bigint generated always as identity primary key,
  call_id           bigint not null references public.calls (id),
  event             text not null check (event in ('created', 'ringing', 'started', 'ended', 'monitor_joined',
                                                   'flagged', 'dropped')),
  provider_event_id text,
  at                timestamptz not null default now(),
  actor             uuid references public.profiles (id),
  meta              jsonb not null default '{}'::jsonb,
  unique (call_id, provider_event_id)
);

-- Readers' availability and admin-approved instant windows (M40).
create table public.reader_status (
  reader_id  uuid primary key references public.profiles (id),
  available  boolean not null default false,
  updated_at timestamptz not null default now()
);

create table public.instant_windows (
  id           bigint generated always as identity primary key,
  reader_id    uuid not null references public.profiles (id),
  during       tstzrange not null check (not isempty(during)),
  status       text not null default 'requested' check (status in ('requested', 'approved', 'rejected', 'cancelled')),
  requested_at timestamptz not null default now(),
  decided_by   uuid references public.profiles (id),
  decided_at   timestamptz,
  note         text check (length(note) <= 500)
);
create index instant_windows_reader on public.instant_windows using gist (reader_id, during)
  where status = 'approved';

-- The emergency siren: it rings available readers, then climbs Monitor → Admin → Super Admin,
-- each step with its own timer, until someone answers or acknowledges it; at the top it keeps
-- paging. Quiet hours never hold it back. Timers are data.
create table public.emergency_policy (
  level        smallint primary key check (level between 0 and 3),
  role         text not null check (role in ('reader', 'monitor', 'admin', 'superadmin')),
  wait_seconds integer not null check (wait_seconds between 5 and 3600)
);
insert into public.emergency_policy values (0, 'reader', 30), (1, 'monitor', 60), (2, 'admin', 120),
  (3, 'superadmin', 60);

create table public.emergency_requests (
  id              bigint generated always as identity primary key,
  client_id       uuid not null references public.profiles (id),
  status          text not null default 'ringing' check (status in ('ringing', 'answered', 'acknowledged',
                                                                     'cancelled')),
  level           smallint not null default 0 check (level between 0 and 3),
  next_step_at    timestamptz not null,
  note            text check (length(note) <= 500),
  client_ip       inet not null,                 -- the consent to be called, given when raising it
  user_agent      text check (length(user_agent) <= 300),
  record          boolean not null default false,
  answered_by     uuid references public.profiles (id),
  acknowledged_by uuid references public.profiles (id),
  call_id         bigint references public.calls (id),
  created_at      timestamptz not null default now(),
  closed_at       timestamptz
);
create index emergency_requests_open on public.emergency_requests (next_step_at) where status = 'ringing';

create table public.emergency_events (
  id          bigint generated always as identity primary key,
  request_id  bigint not null references public.emergency_requests (id),
  event       text not null check (event in ('raised', 'rang_readers', 'escalated', 'repaged', 'answered',
                                             'acknowledged', 'cancelled')),
  level       smallint not null,
  due_at      timestamptz not null,
  recorded_at timestamptz not null default now(),
  actor       uuid references public.profiles (id)
);


-- ─── Payments ──────────────────────────────────────────────────────────────────────────
-- Methods gated by country (data, admin-editable), payment transactions, a double-entry
-- ledger whose every movement sums to zero (checked at commit), Idempotency-Key records.
create table public.payment_methods (
  code          text primary key check (code in ('card', 'square', 'usdt', 'bank_transfer', 'wallet')),
  name          text not null,
  enabled       boolean not null default true,
  all_countries boolean not null default false
);
insert into public.payment_methods (code, name, all_countries) values
  ('card', 'Card', true), ('square', 'Square', false), ('usdt', 'USDT', true),
  ('bank_transfer', 'Bank transfer', false), ('wallet', 'Wallet', true);

create table public.payment_method_countries (
  method       text not null references public.payment_methods (code),
  country_code char(2) not null references public.countries (code),
  primary key (method, country_code)
);
insert into public.payment_method_countries (method, country_code)
select 'bank_transfer', c from unnest(array['LB', 'AE', 'SA', 'QA', 'KW', 'BH', 'OM', 'JO', 'EG']) c
union all select 'square', c from unnest(array['US', 'CA', 'GB', 'AU', 'IE', 'FR', 'ES', 'JP']) c;

create table public.payment_transactions (
  id             bigint generated always as identity primary key,
  user_id        uuid not null references public.profiles (id),
  provider       text not null check (provider in ('testcard', 'stripe', 'square', 'usdt', 'bank_transfer',
                                                   'wallet')),
  kind           text not null check (kind in ('charge', 'refund', 'topup')),
  status         text not null default 'pending'
                 check (status in ('pending', 'requires_action', 'succeeded', 'failed', 'cancelled')),
  amount_minor   bigint not null check (amount_minor > 0),
  currency       char(3) not null,
  booking_id     bigint references public.bookings (id),
  parent_id      bigint references public.payment_transactions (id),  -- a refund's charge
  provider_ref   text,
  failure_reason text check (length(failure_reason) <= 500),
  metadata       jsonb not null default '{}'::jsonb,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  order_id       bigint references public.orders (id),
  call_id        bigint references public.calls (id),
  unique (provider, provider_ref)
);
create index payment_transactions_user on public.payment_transactions (user_id, created_at desc);
create index payment_transactions_booking on public.payment_transactions (booking_id);
-- no double charge, whatever the API does: one live charge per booking, order or call, and at
-- most one refund per order
create unique index payment_transactions_one_live_charge on public.payment_transactions (booking_id)
  where kind = 'charge' and status in ('pending', 'requires_action', 'succeeded');
create unique index payment_transactions_one_order_charge on public.payment_transactions (order_id)
  where kind = 'charge' and status in ('pending', 'requires_action', 'succeeded');
create unique index payment_transactions_one_order_refund on public.payment_transactions (order_id)
  where kind = 'refund';
create unique index payment_transactions_one_call_charge on public.payment_transactions (call_id)
  where kind = 'charge';

-- Double-entry ledger: a movement is a set of rows sharing `movement`; they sum to zero.
create table public.ledger_entries (
  id           bigint generated always as identity primary key,
  movement     uuid not null,
  account      text not null check (account ~ '^(wallet:[0-9a-f-]{36}|provider:[a-z_]+|revenue|refunds)$'),
  user_id      uuid references public.profiles (id),
  amount_minor bigint not null check (amount_minor <> 0),
  currency     char(3) not null,
  txn_id       bigint references public.payment_transactions (id),
  memo         text not null,
  created_at   timestamptz not null default now()
);
create index ledger_entries_account on public.ledger_entries (account, currency);
create index ledger_entries_movement on public.ledger_entries (movement);

-- Idempotency-Key records (Stripe semantics: replay, 422 on a different body, 409 while
-- the first is in flight — the in-flight case is an advisory lock held by that request).
create table public.idempotency_keys (
  user_id         uuid not null,
  key             text not null check (length(key) between 1 and 255),
  method          text not null,
  path            text not null,
  body_sha256     text not null,
  response_status smallint not null,
  response_body   jsonb not null,
  created_at      timestamptz not null default now(),
  primary key (user_id, key)
);
create index idempotency_keys_age on public.idempotency_keys (created_at);

-- Provider webhooks: each event applied once (replays are recorded and ignored).
create table public.webhook_events (
  provider    text not null,
  event_id    text not null,
  event_type  text not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);


-- ─── Moderation ────────────────────────────────────────────────────────────────────────
-- A taxonomy of reasons, one queue of cases (reports, automated sweeps, moderation acts)
-- claimed by one monitor at a time, blocks that expire by themselves, appeals, order ↔ media
-- ↔ call lineage, sweep thresholds and retention windows as data (seeds 001 M21, 003 §12).
create table public.moderation_reasons (
  code     text primary key check (code in ('harassment', 'abuse', 'fraud', 'copyright', 'safety', 'spam', 'other')),
  severity smallint not null check (severity between 1 and 4),   -- 4 = critical
  label_en text not null,
  label_ar text not null
);
insert into public.moderation_reasons values
  ('harassment', 3, 'Harassment', 'تحرّش'),
  ('abuse', 3, 'Abuse', 'إساءة'),
  ('fraud', 4, 'Fraud', 'احتيال'),
  ('copyright', 2, 'Copyright', 'حقوق النشر'),
  ('safety', 4, 'Safety', 'السلامة'),
  ('spam', 1, 'Spam', 'رسائل مزعجة'),
  ('other', 1, 'Other', 'أخرى');

create table public.moderation_cases (
  id               bigint generated always as identity primary key,
  source           text not null check (source in ('report', 'sweep', 'moderation')),
  rule             text,
  reason           text not null references public.moderation_reasons (code),
  severity         smallint not null check (severity between 1 and 4),
  subject_kind     text not null check (subject_kind in ('profile', 'order', 'media', 'call')),
  subject_id       text not null check (length(subject_id) <= 64),
  subject_user     uuid references public.profiles (id),
  reporter_id      uuid references public.profiles (id),
  is_gold          boolean not null default false,
  status           text not null default 'open' check (status in ('open', 'resolved', 'dismissed')),
  claimed_by       uuid references public.profiles (id),
  claim_expires_at timestamptz,
  summary          text check (length(summary) <= 2000),
  evidence         jsonb not null default '[]'::jsonb check (jsonb_typeof(evidence) = 'array'),
  resolution       text check (length(resolution) <= 2000),
  resolved_by      uuid references public.profiles (id),
  resolved_at      timestamptz,
  dedupe_key       text unique,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now()
);
create index moderation_cases_queue on public.moderation_cases (severity desc, is_gold desc, created_at)
  where status = 'open';
create index moderation_cases_reporter on public.moderation_cases (reporter_id);

-- Every moderation act, with its reason, case and evidence.
create table public.moderation_actions (
  id          bigint generated always as identity primary key,
  actor_id    uuid references public.profiles (id),
  target_kind text not null check (target_kind in
    ('order', 'profile', 'media', 'horoscope', 'call', 'case', 'appeal')),
  target_id   text not null,
  action      text not null check (action in
    ('approve', 'reject', 'block', 'unblock', 'drop_call', 'hold', 'release', 'unlist', 'remove_media', 'escalate',
     'claim', 'resolve', 'dismiss', 'appeal_open', 'appeal_decide', 'flag', 'join_silent')),
  reason      text check (length(reason) <= 2000),
  created_at  timestamptz not null default now(),
  reason_code text references public.moderation_reasons (code),
  case_id     bigint references public.moderation_cases (id),
  evidence    jsonb not null default '[]'::jsonb
);
create index moderation_actions_target on public.moderation_actions (target_kind, target_id);

create table public.user_blocks (
  id         bigint generated always as identity primary key,
  user_id    uuid not null references public.profiles (id),
  blocked_by uuid references public.profiles (id),
  reason     text not null references public.moderation_reasons (code),
  note       text check (length(note) <= 2000),
  evidence   jsonb not null default '[]'::jsonb check (jsonb_typeof(evidence) = 'array'),
  case_id    bigint references public.moderation_cases (id),
  starts_at  timestamptz not null default now(),
  ends_at    timestamptz,                     -- null: until an admin lifts it
  lifted_at  timestamptz,
  lifted_by  uuid references public.profiles (id),
  lift_note  text check (length(lift_note) <= 2000),
  check (ends_at is null or ends_at > starts_at)
);
create index user_blocks_active on public.user_blocks (user_id) where lifted_at is null;

create table public.appeals (
  id           bigint generated always as identity primary key,
  subject_kind text not null check (subject_kind in ('block', 'case')),
  subject_id   bigint not null,
  appellant_id uuid not null references public.profiles (id),
  filed_by     uuid references public.profiles (id),
  statement    text not null check (length(statement) between 3 and 4000),
  status       text not null default 'submitted' check (status in ('submitted', 'under_review', 'decided')),
  reviewer_id  uuid references public.profiles (id),
  opened_at    timestamptz,
  decision     text check (decision in ('upheld', 'overturned')),
  rationale    text check (length(rationale) <= 4000),
  decided_by   uuid references public.profiles (id),
  decided_at   timestamptz,
  created_at   timestamptz not null default now(),
  check ((status = 'decided') = (decision is not null and rationale is not null))
);
create unique index appeals_one_live on public.appeals (subject_kind, subject_id) where status <> 'decided';

-- Evidence lineage: which media and calls belong to which order.
create table public.evidence_links (
  order_id    bigint not null references public.orders (id),
  kind        text not null check (kind in ('input', 'attachment', 'output', 'approved', 'call')),
  media_id    bigint references public.media_assets (id),
  call_id     bigint references public.calls (id),
  computed_at timestamptz not null default now(),
  check ((media_id is null) <> (call_id is null))
);
create unique index evidence_links_unique on public.evidence_links
  (order_id, kind, coalesce(media_id, 0), coalesce(call_id, 0));

create table public.sweep_rules (
  code         text primary key check (code in ('reader_reject_rate', 'refund_loop', 'call_drop_rate',
                                                 'payment_fallback_spike', 'order_burst')),
  enabled      boolean not null default true,
  threshold    numeric not null check (threshold > 0),
  min_volume   integer not null default 1 check (min_volume >= 1),
  window_hours integer not null check (window_hours between 1 and 8760),
  reason       text not null references public.moderation_reasons (code),
  description  text not null
);
insert into public.sweep_rules values
  ('reader_reject_rate', true, 0.5, 4, 168, 'other', 'share of a reader''s reviewed work rejected by monitors'),
  ('refund_loop', true, 3, 1, 720, 'fraud', 'refunds to one client'),
  ('call_drop_rate', true, 0.3, 5, 168, 'other', 'share of a reader''s calls they dropped'),
  ('payment_fallback_spike', true, 4, 1, 24, 'fraud', 'failed payment attempts by one client'),
  ('order_burst', true, 6, 1, 1, 'spam', 'orders placed by one client');

-- Retention windows; redacted transcripts and their flags are kept while the call has an
-- open safety incident.
create table public.retention_windows (
  name text primary key check (name in ('moderation_cases', 'appeals', 'user_blocks', 'moderation_actions',
                                        'call_transcripts')),
  days integer not null check (days between 30 and 3650)
);
insert into public.retention_windows values
  ('moderation_cases', 365), ('appeals', 730), ('user_blocks', 730), ('moderation_actions', 730),
  ('call_transcripts', 90);

-- Live safety (M41): transcripts are stored only redacted; flags and incidents are staff-only.
create table public.call_transcripts (
  id            bigint generated always as identity primary key,
  call_id       bigint not null references public.calls (id),
  speaker       text not null check (speaker in ('client', 'reader', 'unknown')),
  text_redacted text not null check (length(text_redacted) <= 8000),
  redactions    jsonb not null default '{}'::jsonb,
  at            timestamptz not null default now()
);

create table public.call_flags (
  id         bigint generated always as identity primary key,
  call_id    bigint not null references public.calls (id),
  category   text not null references public.moderation_reasons (code),
  source     text not null check (source in ('monitor', 'analyser')),
  score      numeric,
  note       text check (length(note) <= 2000),
  created_by uuid references public.profiles (id),
  created_at timestamptz not null default now()
);

create table public.safety_rules (
  code     text primary key check (code ~ '^[a-z_]{2,40}$'),
  category text not null references public.moderation_reasons (code),
  pattern  text not null,                      -- a case-insensitive regular expression
  weight   numeric not null check (weight > 0)
);
insert into public.safety_rules values
  ('self_harm', 'safety', '\m(kill myself|end my life|suicide|hurt myself)\M', 1.0),
  ('threat', 'harassment', '\m(i will (kill|hurt|find) you|you will regret)\M', 1.0),
  ('insult', 'abuse', '\m(idiot|stupid|worthless|shut up)\M', 0.5),
  ('off_platform_payment', 'fraud', '\m(pay me directly|western union|send (me )?money|outside the app)\M', 1.0),
  ('contact_exchange', 'spam', '\[(PHONE|EMAIL)\]', 0.5);

create table public.safety_settings (
  name  text primary key check (name in ('flag_score', 'incident_flags')),
  value numeric not null check (value > 0)
);
insert into public.safety_settings values ('flag_score', 1.0), ('incident_flags', 3);

create table public.safety_incidents (
  id        bigint generated always as identity primary key,
  call_id   bigint not null unique references public.calls (id),
  case_id   bigint references public.moderation_cases (id),
  flags     integer not null,
  status    text not null default 'open' check (status in ('open', 'closed')),
  opened_at timestamptz not null default now()
);


-- ─── Audit ─────────────────────────────────────────────────────────────────────────────
-- Append-only and hash-chained: a row gets its id from a sequence and is immutable from the
-- insert; a single sealer links committed rows in order (chain_pos, prev_hash, row_hash).
create table public.audit_log (
  id         bigint primary key,
  created_at timestamptz not null,
  actor      uuid,
  actor_role text,
  event      text not null check (event ~ '^[a-z0-9_.:-]{1,80}$'),
  entity     text,
  entity_id  text,
  meta       jsonb not null default '{}'::jsonb,
  request_id text,
  prev_hash  text,
  row_hash   text,
  chain_pos  bigint,
  constraint audit_log_sealed_together
    check ((chain_pos is null) = (row_hash is null) and (row_hash is null) = (prev_hash is null))
);
create index audit_log_entity on public.audit_log (entity, entity_id);
create index audit_log_actor on public.audit_log (actor, id);
create unique index audit_log_chain_pos on public.audit_log (chain_pos);
create index audit_log_unsealed on public.audit_log (id) where row_hash is null;
create sequence app.audit_log_id_seq;

-- Signed snapshots of the sealed chain: the export (JSON lines) lives in private storage.
create table public.audit_attestations (
  id            bigint generated always as identity primary key,
  head_pos      bigint not null,
  head_hash     text not null check (head_hash ~ '^[0-9a-f]{64}$'),
  rows          bigint not null,
  export_sha256 text not null check (export_sha256 ~ '^[0-9a-f]{64}$'),
  signature     text not null,
  public_key    text not null,
  storage_key   text not null,
  created_by    uuid references public.profiles (id),
  created_at    timestamptz not null default now()
);


-- ─── Rate limits ───────────────────────────────────────────────────────────────────────
-- Limits as data (defaults of seeds 004), editable by admins, and an exact sliding-window
-- counter: a bucket keeps the timestamps of its hits inside the window.
create table public.rate_limits (
  name           text primary key check (name ~ '^[a-z_]{2,40}$'),
  limit_count    integer not null check (limit_count between 1 and 1000000),
  window_seconds integer not null default 3600 check (window_seconds between 1 and 2678400),
  per            text not null check (per in ('user', 'ip')),
  description    text not null default '',
  updated_at     timestamptz not null default now(),
  updated_by     uuid
);
insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('orders', 10, 3600, 'user', 'orders created per user'),
  ('phone_verify', 5, 3600, 'user', 'phone verification starts per user'),
  ('assist_draft', 10, 3600, 'user', 'AI assist drafts per reader'),
  ('assist_search', 20, 3600, 'user', 'AI assist searches per reader'),
  ('knowledge_add', 5, 3600, 'user', 'knowledge entries added per admin'),
  ('login', 20, 900, 'ip', 'login attempts per client address'),
  ('signup', 10, 3600, 'ip', 'sign-ups per client address');

create table app_private.rate_buckets (
  bucket text primary key,
  hits   timestamptz[] not null default '{}'
);


-- ─── Notifications ─────────────────────────────────────────────────────────────────────
-- Notifications waiting for (or done with) delivery. Never holds a secret: a verification
-- link is minted by the sender at delivery time from the params. `not_before`: a message
-- that waits (a SEV3 page inside someone's quiet hours).
create table public.notification_outbox (
  id           bigint generated always as identity primary key,
  recipient_id uuid references public.profiles (id),
  channel      text not null check (channel in ('email', 'sms', 'push')),
  template     text not null,
  params       jsonb not null default '{}'::jsonb,
  status       text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
  attempts     smallint not null default 0,
  provider_ref text,
  created_at   timestamptz not null default now(),
  sent_at      timestamptz,
  not_before   timestamptz
);
create index notification_outbox_pending on public.notification_outbox (created_at) where status = 'pending';


-- ─── Operations ────────────────────────────────────────────────────────────────────────
-- Feature flags (seeds 000 §4.3, 002): on/off (the kill switch), percentage rollout by a
-- stable hash of the user id, per-role and per-country targeting.
create table public.feature_flags (
  key         text primary key check (key ~ '^[a-zA-Z][a-zA-Z0-9_.]{1,63}$'),
  description text not null default '',
  enabled     boolean not null default false,              -- false: off for everyone (kill switch)
  rollout_pct smallint not null default 100 check (rollout_pct between 0 and 100),
  roles       text[] check (roles <@ array['superadmin', 'admin', 'reader', 'monitor', 'client']),
  countries   char(2)[],
  updated_at  timestamptz not null default now(),
  updated_by  uuid
);
insert into public.feature_flags (key, description, enabled) values
  ('backend.flatTables', 'flat tables backend (rollback level 1 of the go-live runbook)', true),
  ('calls.video', 'video calls (WebRTC)', false),
  ('billing.emergencyProgressivePricing', 'progressive pricing of emergency calls', false),
  ('ui.rtlRefine', 'refined right-to-left layout', true),
  ('uploads.deckBulk', 'bulk upload of tarot decks', true),
  ('feature.readerInstant', 'readers instant-availability windows', true),
  ('feature.emergencyExtension', 'emergency call (siren) extension', true),
  ('feature.tarotV2', 'Tarot V2 readings', true),
  ('feature.dailyZodiac', 'daily zodiac pipeline', true),
  ('feature.community', 'community comments and reactions (M24)', false);

-- Provider on/off switches (seeds 001 M28): the source of truth every API process reads.
create table public.provider_toggles (
  provider   text primary key check (provider in ('stripe', 'square', 'usdt', 'twilio', 'email', 'testcard', 'ai')),
  enabled    boolean not null default true,
  reason     text check (length(reason) <= 300),
  updated_at timestamptz not null default now(),
  updated_by uuid
);
insert into public.provider_toggles (provider) values
  ('stripe'), ('square'), ('usdt'), ('twilio'), ('email'), ('testcard'), ('ai');

-- Providers: usage per month and monthly budgets; over budget with degrade on → 503.
create table public.provider_usage (
  provider text not null,
  month    date not null,
  calls    bigint not null default 0,
  failures bigint not null default 0,
  alerted  boolean not null default false,
  primary key (provider, month)
);

create table public.provider_budgets (
  provider      text primary key,
  monthly_calls bigint not null check (monthly_calls > 0),
  alert_pct     smallint not null default 80 check (alert_pct between 1 and 100),
  degrade       boolean not null default true,
  updated_at    timestamptz not null default now()
);

-- Incidents with a timeline, opened by hand or by Alertmanager; on-call paging with
-- escalation Monitor → Admin → Super Admin (quiet hours respected except for SEV1/SEV2).
create table public.incidents (
  id                 bigint generated always as identity primary key,
  title              text not null check (length(title) between 3 and 200),
  severity           text not null check (severity in ('SEV1', 'SEV2', 'SEV3')),
  status             text not null default 'open' check (status in ('open', 'mitigated', 'resolved')),
  source             text not null check (source in ('manual', 'alert')),
  dedupe_key         text,
  runbooks           text[] not null default '{}',
  declared_by        uuid references public.profiles (id),
  created_at         timestamptz not null default now(),
  mitigated_at       timestamptz,
  resolved_at        timestamptz,
  level              smallint not null default 1 check (level between 1 and 3),
  next_escalation_at timestamptz
);
create unique index incidents_one_live_per_alert on public.incidents (dedupe_key) where status <> 'resolved';

create table public.incident_events (
  id          bigint generated always as identity primary key,
  incident_id bigint not null references public.incidents (id),
  kind        text not null check (kind in ('declared', 'alert_firing', 'alert_resolved', 'paged', 'deferred',
                                            'acked', 'escalated', 'status', 'note')),
  level       smallint,
  note        text check (length(note) <= 2000),
  actor       uuid references public.profiles (id),
  at          timestamptz not null default now()
);
create index incident_events_incident on public.incident_events (incident_id, id);

-- Who is on call: rota entries per level; a level with nobody on the rota pages everyone
-- with that role. Quiet hours hold back SEV3 pages only.
create table public.oncall_rota (
  id      bigint generated always as identity primary key,
  level   smallint not null check (level between 1 and 3),   -- 1 monitor, 2 admin, 3 super admin
  user_id uuid not null references public.profiles (id),
  during  tstzrange not null check (not isempty(during))
);
create index oncall_rota_now on public.oncall_rota using gist (during);

create table public.quiet_hours (
  user_id uuid primary key references public.profiles (id),
  starts  time not null,
  ends    time not null,
  tz      text not null check (length(tz) <= 64)
);

create table public.incident_policy (
  severity      text primary key check (severity in ('SEV1', 'SEV2', 'SEV3')),
  ack_minutes   integer not null check (ack_minutes between 1 and 1440),
  ignores_quiet boolean not null
);
insert into public.incident_policy values ('SEV1', 5, true), ('SEV2', 15, true), ('SEV3', 60, false);

create table public.incident_pages (
  id          bigint generated always as identity primary key,
  incident_id bigint not null references public.incidents (id),
  level       smallint not null check (level between 1 and 3),
  user_id     uuid not null references public.profiles (id),
  paged_at    timestamptz not null,
  send_after  timestamptz not null,
  acked_at    timestamptz
);
create index incident_pages_incident on public.incident_pages (incident_id, level);

-- The encrypted config store: AES-GCM ciphertexts, versioned per name; the key that sealed
-- each row is named (key_id) so a master-key rotation leaves old rows readable until they
-- are re-encrypted.
create table app_private.config_secrets (
  name       text not null check (name ~ '^[A-Z][A-Z0-9_]{1,63}$'),
  version    integer not null check (version >= 1),
  key_id     text not null check (key_id ~ '^v[0-9]+$'),
  nonce      bytea not null,
  ciphertext bytea not null,
  created_at timestamptz not null default now(),
  created_by uuid,
  primary key (name, version)
);


-- ─── Jobs ──────────────────────────────────────────────────────────────────────────────
-- The tasks a request (the cron route) may queue; each later migration adds its own rows.
create table app.deferrable_tasks (name text primary key check (name ~ '^[a-z_]{2,40}$'));
insert into app.deferrable_tasks values
  ('send_outbox'), ('purge_old'), ('sweep_rate_buckets'), ('expire_holds'), ('booking_reminders'),
  ('reader_no_show'), ('order_clocks'), ('lift_expired_blocks'), ('moderation_sweeps'), ('retention_purge'),
  ('audit_seal'), ('audit_attest'), ('emergency_escalate'), ('incident_escalate');
