-- Readings: the tarot deck (78 face cards + a back, EN/AR), spreads, Tarot V2 readings
-- whose cards are drawn server-side and revealed strictly in order (seeds 002), and the
-- readers' AI-assist drafts, which no client-reachable policy returns.

create table if not exists public.decks (
  code text primary key check (code ~ '^[a-z_]{2,40}$'),
  name text not null
);
insert into public.decks values ('rider_waite', 'Rider–Waite–Smith') on conflict do nothing;

create table if not exists public.deck_cards (
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
values ('rider_waite', 'back', true, 'Card back', 'ظهر البطاقة')
on conflict do nothing;

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
) as m (n, en, ar, ue, ua, re, ra)
on conflict do nothing;

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
) as r (code, en, ar, ue, ua, re, ra)
on conflict do nothing;

create table if not exists public.tarot_spreads (
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
     {"en": "Outcome", "ar": "النتيجة"}]')
on conflict (code) do nothing;

create table if not exists public.tarot_v2_readings (
  id                         bigint generated always as identity primary key,
  order_id                   bigint not null unique references public.orders (id),
  deck_code                  text not null references public.decks (code),
  spread_code                text not null references public.tarot_spreads (code),
  ai_draft_visible_to_client boolean not null default false check (not ai_draft_visible_to_client),
  created_at                 timestamptz not null default now()
);

create table if not exists public.tarot_v2_card_selections (
  reading_id    bigint not null references public.tarot_v2_readings (id),
  card_position smallint not null check (card_position >= 1),
  card_id       bigint not null references public.deck_cards (id),
  is_reversed   boolean not null,
  revealed_at   timestamptz,
  primary key (reading_id, card_position),
  unique (reading_id, card_id)
);

-- Reveals in order, whoever writes: position n only after n-1, and never un-revealed.
create or replace function app.reveal_in_order() returns trigger
language plpgsql set search_path = '' as $$
begin
  if old.revealed_at is not null and new.revealed_at is distinct from old.revealed_at then
    raise exception 'card % is already revealed', old.card_position using errcode = '55000', hint = 'already_revealed';
  end if;
  if (to_jsonb(new) - 'revealed_at') is distinct from (to_jsonb(old) - 'revealed_at') then
    raise exception 'a drawn card cannot change' using errcode = '42501', hint = 'protected_field';
  end if;
  if new.revealed_at is not null and old.revealed_at is null and new.card_position > 1
     and exists (select 1 from public.tarot_v2_card_selections s where s.reading_id = new.reading_id
                  and s.card_position = new.card_position - 1 and s.revealed_at is null) then
    raise exception 'reveal card % first', new.card_position - 1 using errcode = '22023', hint = 'reveal_out_of_order';
  end if;
  return new;
end
$$;
drop trigger if exists trg_reveal_in_order on public.tarot_v2_card_selections;
create trigger trg_reveal_in_order before update on public.tarot_v2_card_selections
  for each row execute function app.reveal_in_order();

-- Readers' assistant drafts: internal only.
create table if not exists public.reading_drafts (
  id         bigint generated always as identity primary key,
  order_id   bigint not null references public.orders (id),
  author_id  uuid not null references public.profiles (id),
  provider   text not null,
  label      text not null default 'Assistant Draft – Not for Client Delivery'
             check (label = 'Assistant Draft – Not for Client Delivery'),
  body       text not null check (length(body) <= 20000),
  created_at timestamptz not null default now()
);
create index if not exists reading_drafts_order on public.reading_drafts (order_id, id desc);

select app.lock_down('decks', 'deck_cards', 'tarot_spreads', 'tarot_v2_readings', 'tarot_v2_card_selections',
                     'reading_drafts');

grant select on public.decks, public.deck_cards, public.tarot_spreads to anon, authenticated;
drop policy if exists decks_read on public.decks;
create policy decks_read on public.decks for select to anon, authenticated using (true);
drop policy if exists deck_cards_read on public.deck_cards;
create policy deck_cards_read on public.deck_cards for select to anon, authenticated using (true);
drop policy if exists tarot_spreads_read on public.tarot_spreads;
create policy tarot_spreads_read on public.tarot_spreads for select to anon, authenticated using (true);

-- The draw is made in Python with `secrets` and recorded by the narrow samia_readings role
-- (the API switches into it for that one call); no request role inserts cards itself.
do $$
begin
  if not exists (select from pg_roles where rolname = 'samia_readings') then
    create role samia_readings nologin noinherit;
  end if;
end
$$;
grant samia_readings to authenticator;
grant usage on schema app to samia_readings;

create or replace function app.record_draw(p_order bigint, p_deck text, p_spread text, p_cards bigint[],
                                           p_reversed boolean[]) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  o public.orders;
  n integer;
  rid bigint;
begin
  select * into o from public.orders where id = p_order for update;
  if o.id is null or o.user_id is distinct from auth.uid() or o.status <> 'new' then
    raise exception 'no such new order of yours' using errcode = 'P0002', hint = 'not_found';
  end if;
  select jsonb_array_length(positions) into n from public.tarot_spreads where code = p_spread;
  if n is null or cardinality(p_cards) <> n or cardinality(p_reversed) <> n
     or (select count(distinct c) from unnest(p_cards) c) <> n
     or exists (select 1 from unnest(p_cards) c where not exists (
                  select 1 from public.deck_cards d where d.id = c and d.deck_code = p_deck and not d.is_back)) then
    raise exception 'a draw is % distinct face cards of the deck', n using errcode = '23514', hint = 'validation_error';
  end if;
  insert into public.tarot_v2_readings (order_id, deck_code, spread_code) values (p_order, p_deck, p_spread)
  returning id into rid;
  insert into public.tarot_v2_card_selections (reading_id, card_position, card_id, is_reversed)
  select rid, i, p_cards[i], p_reversed[i] from generate_subscripts(p_cards, 1) i;
  return rid;
end
$$;
revoke all on function app.record_draw(bigint, text, text, bigint[], boolean[]) from public;
grant execute on function app.record_draw(bigint, text, text, bigint[], boolean[]) to samia_readings;

-- Only the order's client turns the cards, one position at a time (the trigger enforces order).
create or replace function app.reveal_card(p_reading bigint, p_position integer) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not exists (select 1 from public.tarot_v2_readings r join public.orders o on o.id = r.order_id
                  where r.id = p_reading and o.user_id = auth.uid()) then
    raise exception 'no such reading' using errcode = 'P0002', hint = 'not_found';
  end if;
  update public.tarot_v2_card_selections set revealed_at = now()
   where reading_id = p_reading and card_position = p_position;
  if not found then
    raise exception 'this spread has no card %', p_position using errcode = 'P0002', hint = 'not_found';
  end if;
end
$$;
revoke all on function app.reveal_card(bigint, integer) from public;
grant execute on function app.reveal_card(bigint, integer) to authenticated;

-- A reading is seen by whoever sees its order (client, assigned reader, staff).
grant select on public.tarot_v2_readings to authenticated;
drop policy if exists tarot_readings_read on public.tarot_v2_readings;
create policy tarot_readings_read on public.tarot_v2_readings for select to authenticated
  using (exists (select 1 from public.orders o where o.id = order_id));

-- The client sees a card once revealed; readers and staff see the whole draw.
grant select on public.tarot_v2_card_selections to authenticated;
drop policy if exists tarot_selections_read on public.tarot_v2_card_selections;
create policy tarot_selections_read on public.tarot_v2_card_selections for select to authenticated
  using (exists (select 1 from public.tarot_v2_readings r join public.orders o on o.id = r.order_id
                  where r.id = reading_id
                    and (o.assigned_reader = (select auth.uid()) or (select app.is_staff())
                         or (o.user_id = (select auth.uid()) and revealed_at is not null))));

-- Drafts: the assigned reader writes and reads; monitors and admins read. No client policy.
grant select, insert on public.reading_drafts to authenticated;
drop policy if exists reading_drafts_read on public.reading_drafts;
create policy reading_drafts_read on public.reading_drafts for select to authenticated
  using ((select app.is_staff())
         or ((select app.user_role()) = 'reader'
             and exists (select 1 from public.orders o where o.id = order_id
                                                      and o.assigned_reader = (select auth.uid()))));
drop policy if exists reading_drafts_insert on public.reading_drafts;
create policy reading_drafts_insert on public.reading_drafts for insert to authenticated
  with check (author_id = (select auth.uid()) and (select app.user_role()) = 'reader'
              and exists (select 1 from public.orders o where o.id = order_id
                                                       and o.assigned_reader = (select auth.uid())));

-- migrate:down
drop table if exists public.reading_drafts, public.tarot_v2_card_selections, public.tarot_v2_readings,
  public.tarot_spreads, public.deck_cards, public.decks;
drop function if exists app.reveal_in_order(), app.reveal_card(bigint, integer),
  app.record_draw(bigint, text, text, bigint[], boolean[]);
