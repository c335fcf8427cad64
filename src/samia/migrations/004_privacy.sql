-- Privacy, legal and trust (issue 16; seeds 000 M38, M43, Phase 4.1 item 8): versioned legal
-- documents in both languages and who accepted which version, country disclosures, cookie and
-- consent choices, data-subject requests (export, delete) with their deadline, the retention
-- of archived logs, and the storage objects waiting to be erased. Rules: schema/15_privacy.sql
-- (the 18+ and terms gate itself: schema/01_identity.sql).

-- ─── Legal documents ───────────────────────────────────────────────────────────────────
create table public.legal_documents (
  code                text primary key check (code in ('terms', 'privacy')),
  title_en            text not null,
  title_ar            text not null,
  acceptance_required boolean not null default true
);
insert into public.legal_documents values
  ('terms', 'Terms of service', 'شروط الخدمة', true),
  ('privacy', 'Privacy policy', 'سياسة الخصوصية', true);

-- Every published version, never edited: a change is a new version. `material` versions must be
-- accepted again; a non-material one (a typo, a new contact address) keeps earlier acceptances.
create table public.legal_versions (
  id           bigint generated always as identity primary key,
  doc          text not null references public.legal_documents (code),
  version      integer not null check (version >= 1),
  material     boolean not null default true,
  body_en      text not null check (length(body_en) between 20 and 100000),
  body_ar      text not null check (length(body_ar) between 20 and 100000),
  summary_en   text check (length(summary_en) <= 2000),
  summary_ar   text check (length(summary_ar) <= 2000),
  published_at timestamptz not null default now(),
  published_by uuid references public.profiles (id),
  unique (doc, version),
  check ((summary_en is null) = (summary_ar is null))
);

create table public.legal_acceptances (
  id          bigint generated always as identity primary key,
  user_id     uuid not null references public.profiles (id),
  version_id  bigint not null references public.legal_versions (id),
  accepted_at timestamptz not null default now(),
  ip          inet,
  user_agent  text check (length(user_agent) <= 300),
  source      text not null default 'api' check (source in ('api', 'signup', 'cli')),
  unique (user_id, version_id)
);

-- Text shown to people in one country (or everywhere, country_code null), e.g. the
-- entertainment-purposes disclosure some jurisdictions require of psychic services.
create table public.legal_disclosures (
  id           bigint generated always as identity primary key,
  code         text not null check (code ~ '^[a-z_]{2,40}$'),
  country_code char(2) references public.countries (code),
  text_en      text not null check (length(text_en) between 3 and 4000),
  text_ar      text not null check (length(text_ar) between 3 and 4000),
  unique nulls not distinct (code, country_code)
);

insert into public.legal_versions (doc, version, material, body_en, body_ar) values
  ('terms', 1, true,
   E'Samia Tarot terms of service\n\n'
   '1. Who may use Samia Tarot. You must be at least 18 years old. You give us a true date of birth and keep '
   'your account to yourself.\n'
   '2. What we offer. Tarot, coffee-cup and astrology readings, recorded or live, given by independent readers. '
   'Readings are for entertainment and reflection. They are not medical, legal, financial or psychological '
   'advice and do not replace a professional.\n'
   '3. Orders, bookings and payments. Prices are shown before you pay, in the currency shown. Refunds follow '
   'the policy shown with each service at the time you buy it. Wallet credit has no cash value.\n'
   '4. Behaviour. No harassment, abuse, fraud, or payment outside the platform. Monitors review readings and '
   'calls for safety and may stop a call, hold an order or block an account.\n'
   '5. Recordings. Calls are recorded only with your consent, given before the call.\n'
   '6. Your data. The privacy policy says what we keep, why and for how long, and how to export or delete it.\n'
   '7. Changes. When these terms change materially we ask you to accept them again before you order, book or '
   'pay.',
   E'شروط خدمة سامية تاروت\n\n'
   '١. من يحق له الاستخدام: يجب أن يكون عمرك ١٨ عامًا على الأقل، وأن تعطينا تاريخ ميلادك الصحيح وأن تحتفظ '
   'بحسابك لنفسك.\n'
   '٢. ما نقدّمه: قراءات التاروت وفنجان القهوة والفلك، مسجّلة أو مباشرة، يقدّمها قرّاء مستقلون. القراءات '
   'للترفيه والتأمل، وليست نصيحة طبية أو قانونية أو مالية أو نفسية ولا تغني عن المختص.\n'
   '٣. الطلبات والحجوزات والدفع: تظهر الأسعار قبل الدفع وبالعملة المعروضة، ويتبع الاسترداد السياسة المعروضة '
   'مع كل خدمة وقت الشراء. رصيد المحفظة ليس له قيمة نقدية.\n'
   '٤. السلوك: لا تحرّش ولا إساءة ولا احتيال ولا دفع خارج المنصة. يراجع المراقبون القراءات والمكالمات حفاظًا '
   'على السلامة، ولهم إيقاف مكالمة أو تعليق طلب أو حظر حساب.\n'
   '٥. التسجيلات: لا تُسجَّل المكالمات إلا بموافقتك قبل بدئها.\n'
   '٦. بياناتك: توضّح سياسة الخصوصية ما نحتفظ به ولماذا وإلى متى، وكيف تصدّره أو تحذفه.\n'
   '٧. التغييرات: إذا تغيّرت هذه الشروط تغييرًا جوهريًا نطلب موافقتك من جديد قبل أن تطلب أو تحجز أو تدفع.'),
  ('privacy', 1, true,
   E'Samia Tarot privacy policy\n\n'
   '1. What we keep. Your account (email, name, date of birth, country, phone if you verify it), the birth '
   'details you give for astrology, your orders, questions, photos, bookings, calls, reviews, payments and '
   'wallet, and the choices you make about cookies and consent.\n'
   '2. Why. To give you readings and calls, to take payment, to keep people safe, and because the law asks us '
   'to keep financial records.\n'
   '3. Who sees it. Your reader sees what a reading needs; monitors and admins see what safety and support '
   'need. We never sell your data. Payment processors receive what a payment needs.\n'
   '4. How long. While your account is open; financial records for as long as the law requires; call '
   'transcripts, stored only with personal details removed, for 90 days unless a safety case is open.\n'
   '5. Your rights. From your account you can export everything we hold about you, or ask us to delete it. We '
   'answer within 30 days. After deletion we keep only pseudonymised financial records.\n'
   '6. Cookies. Necessary cookies keep you signed in. Analytics and marketing cookies are used only if you '
   'allow them, and you can change your choice at any time.',
   E'سياسة خصوصية سامية تاروت\n\n'
   '١. ما نحتفظ به: حسابك (البريد الإلكتروني والاسم وتاريخ الميلاد والبلد والهاتف إن وثّقته)، وبيانات الميلاد '
   'التي تعطيها للقراءات الفلكية، وطلباتك وأسئلتك وصورك وحجوزاتك ومكالماتك وتقييماتك ومدفوعاتك ومحفظتك، '
   'واختياراتك بشأن ملفات تعريف الارتباط والموافقة.\n'
   '٢. لماذا: لنقدّم لك القراءات والمكالمات، ولنتقاضى الدفع، ولنحافظ على سلامة الجميع، ولأن القانون يلزمنا '
   'بالاحتفاظ بالسجلات المالية.\n'
   '٣. من يطّلع عليها: يرى قارئك ما تحتاجه القراءة، ويرى المراقبون والمشرفون ما تحتاجه السلامة والدعم. لا '
   'نبيع بياناتك أبدًا، ويتلقى مزوّدو الدفع ما تحتاجه عملية الدفع فقط.\n'
   '٤. إلى متى: ما دام حسابك مفتوحًا؛ والسجلات المالية المدة التي يفرضها القانون؛ ونصوص المكالمات، المحفوظة '
   'بعد إزالة البيانات الشخصية، ٩٠ يومًا ما لم تكن هناك قضية سلامة مفتوحة.\n'
   '٥. حقوقك: يمكنك من حسابك تصدير كل ما نحتفظ به عنك أو طلب حذفه، ونجيب خلال ٣٠ يومًا. بعد الحذف لا نحتفظ إلا '
   'بسجلات مالية مستعارة الهوية.\n'
   '٦. ملفات تعريف الارتباط: الضرورية منها تبقيك مسجّل الدخول، ولا نستخدم ملفات التحليلات والتسويق إلا بإذنك، '
   'ويمكنك تغيير اختيارك في أي وقت.');

insert into public.legal_disclosures (code, country_code, text_en, text_ar)
select 'entertainment', c,
       'Readings on Samia Tarot are provided for entertainment purposes only.',
       'القراءات على سامية تاروت مقدَّمة لأغراض الترفيه فقط.'
  from unnest(array['GB', 'IE', 'US', 'CA', 'AU', 'NZ']) c;
insert into public.legal_disclosures (code, country_code, text_en, text_ar) values
  ('no_professional_advice', null,
   'A reading is not medical, legal, financial or psychological advice.',
   'القراءة ليست نصيحة طبية أو قانونية أو مالية أو نفسية.');


-- ─── Cookie and consent choices ────────────────────────────────────────────────────────
-- One row per choice, never edited: the newest row of a user (or, before sign-in, of an
-- anonymous visitor id kept in the banner's cookie) is what holds. Necessary cookies cannot be
-- refused; analytics and marketing are opt-in.
create table public.cookie_consents (
  id         bigint generated always as identity primary key,
  user_id    uuid references public.profiles (id),
  visitor_id uuid,
  necessary  boolean not null default true check (necessary),
  analytics  boolean not null,
  marketing  boolean not null,
  version_id bigint references public.legal_versions (id),   -- the privacy policy shown with the banner
  created_at timestamptz not null default now(),
  check (user_id is not null or visitor_id is not null)
);
create index cookie_consents_user on public.cookie_consents (user_id, id desc) where user_id is not null;
create index cookie_consents_visitor on public.cookie_consents (visitor_id, id desc) where visitor_id is not null;

insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('consent', 60, 3600, 'ip', 'cookie-consent choices recorded per client address');


-- ─── Data-subject requests ─────────────────────────────────────────────────────────────
-- Export or delete, worked by admins: pending → approved (a job takes it: processing →
-- completed, or failed and retried) or declined, with the reason. The deadline is copied onto
-- each request when it is filed (privacy_settings.dsr_deadline_days).
create table public.data_requests (
  id                bigint generated always as identity primary key,
  user_id           uuid not null references public.profiles (id),
  kind              text not null check (kind in ('export', 'delete')),
  status            text not null default 'pending'
                    check (status in ('pending', 'approved', 'declined', 'processing', 'completed', 'failed')),
  note              text check (length(note) <= 2000),
  created_at        timestamptz not null default now(),
  due_at            timestamptz not null,
  decided_by        uuid references public.profiles (id),
  decided_at        timestamptz,
  decision_reason   text check (length(decision_reason) between 3 and 2000),
  started_at        timestamptz,
  attempts          smallint not null default 0,
  failure           text check (length(failure) <= 500),
  completed_at      timestamptz,
  export_key        text,
  export_sha256     text check (export_sha256 ~ '^[0-9a-f]{64}$'),
  export_bytes      bigint check (export_bytes >= 0),
  export_expires_at timestamptz,
  export_deleted_at timestamptz,
  warned_at         timestamptz,      -- the deadline is near: alerted once
  overdue_at        timestamptz,      -- the deadline passed: alerted once
  check (status <> 'declined' or decision_reason is not null)
);
create unique index data_requests_one_open on public.data_requests (user_id, kind)
  where status in ('pending', 'approved', 'processing', 'failed');
create index data_requests_queue on public.data_requests (status, created_at);
create index data_requests_due on public.data_requests (due_at)
  where status in ('pending', 'approved', 'processing', 'failed');

-- Privacy figures as data, editable by admins.
create table public.privacy_settings (
  name        text primary key check (name in ('dsr_deadline_days', 'dsr_warn_days', 'export_ttl_hours',
                                                'export_url_ttl_seconds')),
  value       integer not null check (value > 0),
  description text not null
);
insert into public.privacy_settings values
  ('dsr_deadline_days', 30, 'days to answer a data-subject request'),
  ('dsr_warn_days', 7, 'alert when an open request is this close to its deadline'),
  ('export_ttl_hours', 72, 'how long a finished export stays downloadable before it is deleted'),
  ('export_url_ttl_seconds', 900, 'lifetime of one signed download link of an export');

-- Storage objects that must go (erased uploads, expired exports): written in the transaction that
-- decides it, removed from storage afterwards by the job, retried until storage confirms.
create table app_private.storage_deletions (
  key        text primary key,
  reason     text not null check (reason in ('erasure', 'export_expired')),
  attempts   integer not null default 0,
  created_at timestamptz not null default now()
);

insert into app.deferrable_tasks values ('dsr_process'), ('dsr_sweep');

insert into public.rate_limits (name, limit_count, window_seconds, per, description) values
  ('data_requests', 5, 86400, 'user', 'data-subject requests filed per user');


-- ─── Freeze and clean-up (M43) ─────────────────────────────────────────────────────────
-- Logs past their retention are archived to storage (with a retention note) and removed here.
create table public.log_retention (
  name         text primary key check (name in ('notification_outbox', 'webhook_events', 'audit_exports')),
  days         integer not null check (days between 7 and 3650),
  archive_days integer not null check (archive_days between 30 and 7300),   -- how long the archive is kept
  note         text not null
);
insert into public.log_retention values
  ('notification_outbox', 180, 730, 'sent and failed notifications: delivery evidence for support'),
  ('webhook_events', 365, 2555, 'payment provider events: kept with the financial records'),
  ('audit_exports', 400, 2555,
   'signed audit exports superseded by newer ones; the newest export and every attestation row stay');

insert into app.deferrable_tasks values ('archive_logs');
