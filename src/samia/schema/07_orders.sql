-- Orders and readings (seeds 003 §8, seeds 002): the workflow from a client's question to
-- approved audio. The allowed status transitions are a table (app.order_transitions); a
-- trigger refuses any other move whichever path tries it, checks who may make it and which
-- columns each role may touch. Tarot V2: the draw is made server-side and recorded by the
-- narrow samia_readings role; cards are revealed strictly in order. Assistant drafts are
-- internal: no client-reachable policy returns them.

create or replace trigger trg_orders_touch before update on public.orders
  for each row execute function app.touch_updated_at();

select app.lock_down('orders');

-- Orders: client own; reader assigned; monitor reads all; admin everything.
grant select, insert, update on public.orders to authenticated;

drop policy if exists orders_read on public.orders;
create policy orders_read on public.orders for select to authenticated
  using (user_id = (select auth.uid())
         or assigned_reader = (select auth.uid())
         or (select app.is_staff()));

grant select on app.order_transitions to authenticated, service_role;

-- A reader who may take an order of this service now.
create or replace function app.reader_eligible(p_reader uuid, p_service bigint) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.profiles p
      join public.reader_services rs on rs.reader_id = p.id and rs.service_id = p_service and rs.active
     where p.id = p_reader and p.role_id = 3 and p.deleted_at is null
       and (p.blocked_at is null or p.blocked_until < now()))
$$;

grant execute on function app.reader_eligible(uuid, bigint) to authenticated, service_role;

-- New orders: lifecycle fields are the database's, never the caller's.
create or replace function app.orders_new() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  s public.services;
begin
  -- a request orders only as an adult who accepted the current terms (schema/01_identity.sql)
  if current_setting('role') = 'authenticated' then
    perform app.require_may_transact();
  end if;
  select * into s from public.services where id = new.service_id;
  if s.id is null or not s.is_active or s.kind <> 'reading' then
    raise exception 'this service cannot be ordered as a reading' using errcode = '23514', hint = 'not_orderable',
      column = 'service';
  end if;
  new.status := 'new';
  new.assigned_reader := null; new.assigned_at := null; new.output_media_id := null;
  new.submitted_at := null; new.review_by := null; new.delivered_at := null; new.cancelled_at := null;
  new.delivery_breached_at := null; new.review_breached_at := null; new.reject_reason := null;
  new.approved_media_id := null; new.approved_sha256 := null; new.approved_by := null; new.approved_at := null;
  -- the price of the client's country (schema/05_catalogue.sql), plus the golden surcharge
  new.price_minor := (select p.price_minor from app.service_price(s.id, (select country_code from public.profiles
                                                                      where id = new.user_id)) p)
                     + case when new.is_gold then s.gold_surcharge_minor else 0 end;
  new.currency := s.currency;
  new.created_at := now();
  new.deliver_by := now() + make_interval(mins => case when new.is_gold then s.gold_delivery_minutes
                                                        else s.delivery_minutes end);
  return new;
end
$$;

create or replace trigger trg_orders_new before insert on public.orders for each row execute function app.orders_new();

-- Every update: the transition table, the caller's role, the columns that role may touch,
-- then the fields each transition maintains. Invoker: in the request path current_user is
-- `authenticated` and RLS already limited the rows; jobs and the owner skip the role check.
create or replace function app.orders_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  r text := app.user_role();
  request boolean := current_user = 'authenticated';
  allowed text[];
  editable text[];
  m public.media_assets;
  s public.services;
begin
  if new.status is distinct from old.status then
    select t.roles into allowed from app.order_transitions t
     where t.from_status = old.status and t.to_status = new.status;
    if allowed is null then
      raise exception 'an order cannot go from % to %', old.status, new.status
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    if request and not coalesce(r = any (allowed), false) then
      raise exception 'a % may not move an order from % to %', coalesce(r, 'caller'), old.status, new.status
        using errcode = '42501', hint = 'forbidden';
    end if;
  end if;
  if request then
    editable := case when r = 'reader' then array['output_media_id']
                     when r = 'monitor' then array['reject_reason']
                     when r in ('admin', 'superadmin') then array['assigned_reader', 'is_gold', 'reject_reason']
                     else array[]::text[] end;
    if (to_jsonb(new) - editable - 'status' - 'updated_at') is distinct from
       (to_jsonb(old) - editable - 'status' - 'updated_at') then
      raise exception 'these fields of an order are not yours to change' using errcode = '42501', hint = 'protected_field';
    end if;
  end if;

  if new.assigned_reader is distinct from old.assigned_reader then
    if new.status <> 'assigned' then
      raise exception 'an order is (re)assigned only by moving it to assigned'
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    if not app.reader_eligible(new.assigned_reader, new.service_id) then
      raise exception 'that reader does not offer this service or is not active'
        using errcode = '23514', hint = 'reader_not_eligible', column = 'reader_id';
    end if;
    new.assigned_at := now();
    new.output_media_id := null;  -- a new reader starts from nothing
  elsif new.status = 'assigned' and old.status <> 'assigned' then
    raise exception 'moving an order to assigned needs a (new) reader' using errcode = '23514', hint = 'reader_required',
      column = 'reader_id';
  end if;
  if new.status = 'assigned' and old.status = 'new' and new.service_id = (select id from public.services where code = 'coffee')
     and not exists (select 1 from public.order_attachments a where a.order_id = new.id) then
    raise exception 'a coffee-cup reading needs at least one photo of the cup' using errcode = '55000', hint = 'photos_missing';
  end if;

  if new.output_media_id is distinct from old.output_media_id and new.output_media_id is not null then
    if not (old.status = 'in_progress' and new.status = 'in_progress') then
      raise exception 'audio can be uploaded only while the order is in progress'
        using errcode = '55000', hint = 'illegal_transition';
    end if;
    select * into m from public.media_assets where id = new.output_media_id;
    if m.id is null or m.kind <> 'audio' or m.owner_id is distinct from new.assigned_reader then
      raise exception 'the output must be audio uploaded by the assigned reader' using errcode = '23514',
        hint = 'validation_error', column = 'output_media_id';
    end if;
  end if;

  if new.status is distinct from old.status then
    select * into s from public.services where id = new.service_id;
    case new.status
      when 'awaiting_approval' then
        if new.output_media_id is null then
          raise exception 'upload the audio before submitting' using errcode = '55000', hint = 'output_missing';
        end if;
        new.submitted_at := now();
        new.review_by := now() + make_interval(mins => case when new.is_gold then s.gold_review_minutes
                                                             else s.review_minutes end);
        new.review_breached_at := null;
        new.reject_reason := null;
      when 'approved' then
        new.approved_media_id := new.output_media_id;
        new.approved_sha256 := (select sha256 from public.media_assets where id = new.output_media_id);
        new.approved_by := auth.uid();
        new.approved_at := now();
        insert into public.moderation_actions (actor_id, target_kind, target_id, action)
        values (auth.uid(), 'order', new.id::text, 'approve');
      when 'rejected' then
        if new.reject_reason is null then
          raise exception 'a rejection needs a reason for the reader' using errcode = '23514', hint = 'reason_required',
            column = 'reason';
        end if;
        insert into public.moderation_actions (actor_id, target_kind, target_id, action, reason)
        values (auth.uid(), 'order', new.id::text, 'reject', new.reject_reason);
      when 'delivered' then
        if new.approved_sha256 is null or new.approved_media_id is distinct from new.output_media_id then
          raise exception 'only approved audio is delivered' using errcode = '55000', hint = 'illegal_transition';
        end if;
        new.delivered_at := now();
      when 'cancelled' then
        new.cancelled_at := now();
      else
    end case;
  end if;
  return new;
end
$$;

create or replace trigger trg_orders_guard before update on public.orders for each row execute function app.orders_guard();

create or replace function app.orders_audit() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform app.audit('order.created', 'order', new.id::text,
                      jsonb_build_object('service_id', new.service_id, 'is_gold', new.is_gold,
                                         'price_minor', new.price_minor));
  elsif new.status is distinct from old.status then
    perform app.audit('order.' || new.status::text, 'order', new.id::text,
                      jsonb_build_object('from', old.status, 'to', new.status, 'reader', new.assigned_reader)
                      || case when new.status = 'approved' then jsonb_build_object('sha256', new.approved_sha256)
                              else '{}'::jsonb end);
    -- who hears about it: the reader of new and returned work, the client of a delivery
    insert into public.notification_outbox (recipient_id, channel, template, params)
    select x.recipient, 'email', x.template, jsonb_build_object('order', new.id)
      from (values (new.assigned_reader, 'order_assigned', new.status = 'assigned'),
                   (new.assigned_reader, 'order_rejected', new.status = 'rejected'),
                   (new.user_id, 'reading_delivered', new.status = 'delivered')) as x (recipient, template, fires)
     where x.fires and x.recipient is not null;
  elsif new.assigned_reader is distinct from old.assigned_reader then
    perform app.audit('order.reassigned', 'order', new.id::text,
                      jsonb_build_object('from_reader', old.assigned_reader, 'reader', new.assigned_reader));
  elsif new.output_media_id is distinct from old.output_media_id then
    perform app.audit('order.output_uploaded', 'order', new.id::text, jsonb_build_object('media', new.output_media_id));
  end if;
  return null;
end
$$;

create or replace trigger trg_orders_audit after insert or update on public.orders
  for each row execute function app.orders_audit();

-- Give an order's payment back to the client's wallet, at most once whatever calls it
-- (client cancel, the delivery-breach job, an admin).
create or replace function app.refund_order(p_order bigint, p_reason text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.payment_transactions;
  r bigint;
begin
  select * into c from public.payment_transactions
   where order_id = p_order and kind = 'charge' and status = 'succeeded' for update;
  if c.id is null then
    return 'nothing_paid';
  end if;
  insert into public.payment_transactions (user_id, provider, kind, status, amount_minor, currency, order_id,
                                           parent_id, metadata)
  values (c.user_id, 'wallet', 'refund', 'succeeded', c.amount_minor, c.currency, p_order, c.id,
          jsonb_build_object('reason', p_reason))
  on conflict (order_id) where kind = 'refund' do nothing
  returning id into r;
  if r is null then
    return 'already_refunded';
  end if;
  perform app.ledger_move('revenue', 'wallet:' || c.user_id, c.amount_minor, c.currency, r,
                          'refund of order ' || p_order || ' (' || p_reason || ')', c.user_id);
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (c.user_id, 'email', 'order_refunded', jsonb_build_object('order', p_order, 'reason', p_reason));
  perform app.audit('payment.refunded', 'order', p_order::text,
                    jsonb_build_object('amount_minor', c.amount_minor, 'reason', p_reason, 'to', 'wallet'));
  return 'refunded';
end
$$;

revoke all on function app.refund_order(bigint, text) from public;
grant execute on function app.refund_order(bigint, text) to samia_payments, service_role;

-- The service clocks, run by the job engine every minute: a late delivery strikes the
-- reader (or escalates an unassigned order) and refunds the client to the wallet, once;
-- an overdue review escalates to the admins.
create or replace function app.order_clocks() returns table (delivery_breaches integer, review_breaches integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  o record;
  nd integer := 0;
  nr integer := 0;
begin
  for o in update public.orders set delivery_breached_at = now()
            where status in ('new', 'assigned', 'in_progress', 'rejected') and deliver_by < now()
              and delivery_breached_at is null
           returning id, assigned_reader, user_id
  loop
    nd := nd + 1;
    if o.assigned_reader is not null then
      insert into public.reader_strikes (reader_id, order_id, reason) values (o.assigned_reader, o.id, 'delivery_breach')
      on conflict do nothing;
    end if;
    insert into public.order_escalations (order_id, kind) values (o.id, 'delivery_breach');
    perform app.audit('order.delivery_breached', 'order', o.id::text, jsonb_build_object('reader', o.assigned_reader));
    perform app.refund_order(o.id, 'delivery_breach');
  end loop;
  for o in update public.orders set review_breached_at = now()
            where status = 'awaiting_approval' and review_by < now() and review_breached_at is null
           returning id
  loop
    nr := nr + 1;
    insert into public.order_escalations (order_id, kind) values (o.id, 'review_overdue');
    insert into public.notification_outbox (recipient_id, channel, template, params)
    select p.id, 'email', 'review_overdue', jsonb_build_object('order', o.id)
      from public.profiles p where p.role_id in (1, 2) and p.deleted_at is null;
    perform app.audit('order.review_breached', 'order', o.id::text, '{}'::jsonb);
  end loop;
  return query select nd, nr;
end
$$;

revoke all on function app.order_clocks() from public;
grant execute on function app.order_clocks() to service_role;

-- Least-loaded active reader who offers the service (open work counted), ties to the one
-- who was assigned least recently.
create or replace function app.pick_reader(p_service bigint) returns uuid
language sql stable security definer set search_path = '' as $$
  select rs.reader_id
    from public.reader_services rs
   where rs.service_id = p_service and rs.active and app.reader_eligible(rs.reader_id, p_service)
   order by (select count(*) from public.orders o where o.assigned_reader = rs.reader_id
              and o.status in ('assigned', 'in_progress', 'rejected', 'awaiting_approval')),
            (select max(o.assigned_at) from public.orders o where o.assigned_reader = rs.reader_id) nulls first,
            rs.reader_id
   limit 1
$$;

revoke all on function app.pick_reader(bigint) from public;
grant execute on function app.pick_reader(bigint) to authenticated, service_role;

-- A reader's own record over the last p_days: deliveries and their average time, late ones,
-- and the monitors' decisions on their audio (readers cannot read moderation_actions itself).
create or replace function app.my_reader_stats(p_days integer default 30)
returns table (delivered bigint, avg_hours numeric, late bigint, approved bigint, rejected bigint)
language sql stable security definer set search_path = '' as $$
  with mine as (select * from public.orders o where o.assigned_reader = auth.uid()),
       decided as (select m.action from public.moderation_actions m join mine o on m.target_id = o.id::text
                    where m.target_kind = 'order' and m.action in ('approve', 'reject')
                      and m.created_at > now() - make_interval(days => p_days))
  select (select count(*) from mine where delivered_at > now() - make_interval(days => p_days)),
         (select round((avg(extract(epoch from delivered_at - created_at)) / 3600)::numeric, 1) from mine
           where delivered_at > now() - make_interval(days => p_days)),
         (select count(*) from mine where delivery_breached_at > now() - make_interval(days => p_days)),
         (select count(*) from decided where action = 'approve'),
         (select count(*) from decided where action = 'reject')
   where (select app.user_role()) = 'reader'
$$;

revoke all on function app.my_reader_stats(integer) from public;
grant execute on function app.my_reader_stats(integer) to authenticated;

select app.lock_down('order_attachments', 'reader_strikes', 'order_escalations');

-- Orders are placed by clients for themselves (not by admins on their behalf).
drop policy if exists orders_insert on public.orders;
create policy orders_insert on public.orders for insert to authenticated
  with check (user_id = (select auth.uid()) and (select app.user_role()) = 'client');

-- and only adults who accepted the current terms, whatever the trigger above does
drop policy if exists orders_insert_gate on public.orders;
create policy orders_insert_gate on public.orders as restrictive for insert to authenticated
  with check ((select app.my_transact_refusal()) is null);

-- Clients may also cancel and archive their own; monitors review.
drop policy if exists orders_update on public.orders;
create policy orders_update on public.orders for update to authenticated
  using ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
         or (user_id = (select auth.uid()) and (select app.user_role()) = 'client')
         or (select app.is_staff()))
  with check ((assigned_reader = (select auth.uid()) and (select app.user_role()) = 'reader')
              or (user_id = (select auth.uid()) and (select app.user_role()) = 'client')
              or (select app.is_staff()));

grant select, insert on public.order_attachments to authenticated;

drop policy if exists order_attachments_read on public.order_attachments;
create policy order_attachments_read on public.order_attachments for select to authenticated
  using (exists (select 1 from public.orders o where o.id = order_id));

drop policy if exists order_attachments_insert on public.order_attachments;
create policy order_attachments_insert on public.order_attachments for insert to authenticated
  with check (exists (select 1 from public.orders o where o.id = order_id and o.user_id = (select auth.uid())
                                                      and o.status = 'new'));

grant select on public.reader_strikes to authenticated;

drop policy if exists reader_strikes_read on public.reader_strikes;
create policy reader_strikes_read on public.reader_strikes for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

grant select, update (resolved_at) on public.order_escalations to authenticated;

drop policy if exists order_escalations_staff on public.order_escalations;
create policy order_escalations_staff on public.order_escalations for select to authenticated
  using ((select app.is_staff()));

drop policy if exists order_escalations_resolve on public.order_escalations;
create policy order_escalations_resolve on public.order_escalations for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

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

create or replace trigger trg_reveal_in_order before update on public.tarot_v2_card_selections
  for each row execute function app.reveal_in_order();

select app.lock_down('decks', 'deck_cards', 'tarot_spreads', 'tarot_v2_readings', 'tarot_v2_card_selections', 'reading_drafts');
grant select on public.decks, public.deck_cards, public.tarot_spreads to anon, authenticated;

drop policy if exists decks_read on public.decks;
create policy decks_read on public.decks for select to anon, authenticated using (true);

drop policy if exists deck_cards_read on public.deck_cards;
create policy deck_cards_read on public.deck_cards for select to anon, authenticated using (true);

drop policy if exists tarot_spreads_read on public.tarot_spreads;
create policy tarot_spreads_read on public.tarot_spreads for select to anon, authenticated using (true);

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
  -- feature.tarotV2 (for this client): cards are revealed one by one, in order; off, the
  -- whole spread is shown at once
  insert into public.tarot_v2_card_selections (reading_id, card_position, card_id, is_reversed, revealed_at)
  select rid, i, p_cards[i], p_reversed[i],
         case when not app.flag_on_for('feature.tarotV2', o.user_id) then now() end
    from generate_subscripts(p_cards, 1) i;
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

-- Deck art: an admin replaces a whole deck's images at once (every face and the back, or
-- nothing), while the flag uploads.deckBulk is on. p_art maps each card code to an uploaded
-- image the caller stored in this transaction. Audited with the deck and the count.
create or replace function app.replace_deck_art(p_deck text, p_art jsonb) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
  expected integer;
begin
  if (select app.user_role()) is distinct from 'admin' and (select app.user_role()) is distinct from 'superadmin' then
    raise exception 'only admins replace deck art' using errcode = '42501', hint = 'forbidden';
  end if;
  if not app.flag_on('uploads.deckBulk') then
    raise exception 'bulk deck uploads are switched off' using errcode = '55000', hint = 'feature_disabled';
  end if;
  select count(*) into expected from public.deck_cards where deck_code = p_deck;
  if expected = 0 then
    raise exception 'no such deck' using errcode = 'P0002', hint = 'not_found';
  end if;
  if (select count(*) from jsonb_object_keys(p_art)) <> expected
     or exists (select 1 from jsonb_object_keys(p_art) k
                 where not exists (select 1 from public.deck_cards d where d.deck_code = p_deck and d.code = k))
     or exists (select 1 from jsonb_each_text(p_art) a
                 where not exists (select 1 from public.media_assets m where m.id = a.value::bigint
                                      and m.kind = 'image' and m.owner_id = auth.uid())) then
    raise exception 'the art must name every card of the deck once, each an image you uploaded'
      using errcode = '23514', hint = 'deck_incomplete';
  end if;
  update public.deck_cards d set art_media_id = (p_art ->> d.code)::bigint where d.deck_code = p_deck;
  get diagnostics n = row_count;
  perform app.audit('deck.art_replaced', 'deck', p_deck, jsonb_build_object('cards', n));
  return n;
end
$$;
revoke all on function app.replace_deck_art(text, jsonb) from public;
grant execute on function app.replace_deck_art(text, jsonb) to authenticated;
