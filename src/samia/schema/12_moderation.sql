-- Moderation (seeds 001 M21, 003 §12): cases claimed by one monitor at a time, blocks that
-- expire by themselves (unblock is for admins), order moderation (hold, unlist, remove media,
-- escalate), appeals, order ↔ media ↔ call lineage, nightly sweeps and retention.

select app.lock_down('moderation_actions');

-- Moderation: monitors and admins read and write (as themselves); nobody else.
grant select, insert on public.moderation_actions to authenticated;

drop policy if exists moderation_read on public.moderation_actions;
create policy moderation_read on public.moderation_actions for select to authenticated
  using ((select app.is_staff()));

drop policy if exists moderation_insert on public.moderation_actions;
create policy moderation_insert on public.moderation_actions for insert to authenticated
  with check ((select app.is_staff()) and actor_id = (select auth.uid()));

-- One record of a moderation act, with the caller as actor.
create or replace function app.moderation_record(p_kind text, p_target text, p_action text, p_reason text,
                                                 p_note text, p_case bigint, p_evidence jsonb) returns void
language sql volatile security definer set search_path = '' as $$
  insert into public.moderation_actions (actor_id, target_kind, target_id, action, reason, reason_code, case_id,
                                         evidence)
  values (auth.uid(), p_kind, p_target, p_action, p_note, p_reason, p_case, coalesce(p_evidence, '[]'::jsonb));
  select app.audit('moderation.' || p_action, p_kind, p_target,
                   jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'case', p_case)));
$$;

revoke all on function app.moderation_record(text, text, text, text, text, bigint, jsonb) from public;

-- Text written for others to read (reviews, replies): the moderation reason of the heaviest
-- safety rule it trips, 'spam' for an email address or a phone number, or null when clean.
create or replace function app.text_flag(p_text text) returns text
language plpgsql stable security definer set search_path = '' as $$
declare
  hit text;
begin
  if p_text is null or btrim(p_text) = '' then
    return null;
  end if;
  select r.category into hit from public.safety_rules r where p_text ~* r.pattern order by r.weight desc, r.code limit 1;
  if hit is null and (p_text ~* '[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+'
                      or p_text ~ '\+?[0-9][0-9 ()./-]{6,}[0-9]') then
    hit := 'spam';
  end if;
  return hit;
end
$$;
revoke all on function app.text_flag(text) from public;
grant execute on function app.text_flag(text) to authenticated, service_role;

-- The caller must hold the case's claim to act under it.
create or replace function app.require_claim(p_case bigint) returns void
language plpgsql stable security definer set search_path = '' as $$
begin
  if p_case is not null and not exists (
       select 1 from public.moderation_cases c where c.id = p_case and c.status = 'open'
          and c.claimed_by = auth.uid() and c.claim_expires_at > now()) then
    raise exception 'claim the case before acting on it' using errcode = '55000', hint = 'claim_required';
  end if;
end
$$;

-- Claim is atomic: an open case whose claim is free or expired goes to exactly one caller.
create or replace function app.claim_case(p_case bigint, p_minutes integer default 15) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  won boolean;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'only monitors and admins claim cases' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.moderation_cases set claimed_by = auth.uid(), claim_expires_at = now() + make_interval(mins => p_minutes),
         updated_at = now()
   where id = p_case and status = 'open'
     and (claimed_by is null or claim_expires_at <= now() or claimed_by = auth.uid())
  returning true into won;
  if won then
    perform app.moderation_record('case', p_case::text, 'claim', null, null, p_case, null);
  end if;
  return coalesce(won, false);
end
$$;

create or replace function app.block_user(p_user uuid, p_reason text, p_note text, p_evidence jsonb,
                                          p_minutes integer, p_case bigint) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  caller text := app.user_role();
  target text;
  b bigint;
  until timestamptz := case when p_minutes is null then null else now() + make_interval(mins => p_minutes) end;
begin
  select r.code into target from public.profiles p join public.roles r on r.id = p.role_id
   where p.id = p_user and p.deleted_at is null;
  if target is null then
    raise exception 'no such user' using errcode = 'P0002', hint = 'not_found';
  end if;
  if caller is null or caller not in ('monitor', 'admin', 'superadmin') or p_user = auth.uid()
     or target = 'superadmin'
     or (caller = 'monitor' and target not in ('client', 'reader'))
     or (caller = 'admin' and target = 'admin') then
    raise exception 'a % may not block a %', coalesce(caller, 'caller'), target using errcode = '42501', hint = 'forbidden';
  end if;
  perform app.require_claim(p_case);
  insert into public.user_blocks (user_id, blocked_by, reason, note, evidence, case_id, ends_at)
  values (p_user, auth.uid(), p_reason, p_note, coalesce(p_evidence, '[]'::jsonb), p_case, until)
  returning id into b;
  update public.profiles set blocked_at = now(), blocked_until = until where id = p_user;
  perform app.moderation_record('profile', p_user::text, 'block', p_reason, p_note, p_case, p_evidence);
  return b;
end
$$;

-- Unblock is for admins only (seeds 003 §8: "only admin may unblock").
create or replace function app.unblock_user(p_user uuid, p_note text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  if not coalesce(app.is_admin(), false) then
    raise exception 'only an admin may unblock' using errcode = '42501', hint = 'admin_only';
  end if;
  update public.user_blocks set lifted_at = now(), lifted_by = auth.uid(), lift_note = p_note
   where user_id = p_user and lifted_at is null;
  get diagnostics n = row_count;
  update public.profiles set blocked_at = null, blocked_until = null where id = p_user and blocked_at is not null;
  if n = 0 and not found then
    raise exception 'this user is not blocked' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform app.moderation_record('profile', p_user::text, 'unblock', null, p_note, null, null);
  return n;
end
$$;

-- Expired blocks lift themselves at the very moment they end (app.user_role() compares
-- blocked_until with now()); this job closes their records.
create or replace function app.lift_expired_blocks() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  b record;
  n integer := 0;
begin
  for b in update public.user_blocks set lifted_at = ends_at, lift_note = 'expired'
            where lifted_at is null and ends_at <= now() returning id, user_id loop
    n := n + 1;
    update public.profiles set blocked_at = null, blocked_until = null
     where id = b.user_id and blocked_until <= now()
       and not exists (select 1 from public.user_blocks u where u.user_id = b.user_id and u.lifted_at is null);
    perform app.audit('moderation.block_expired', 'profile', b.user_id::text, jsonb_build_object('block', b.id));
  end loop;
  return n;
end
$$;

create or replace function app.moderate_order(p_order bigint, p_action text, p_reason text, p_note text,
                                              p_evidence jsonb, p_case bigint) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  o public.orders;
  new_case bigint;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'only monitors and admins moderate orders' using errcode = '42501', hint = 'forbidden';
  end if;
  perform app.require_claim(p_case);
  select * into o from public.orders where id = p_order for update;
  if o.id is null then
    raise exception 'no such order' using errcode = 'P0002', hint = 'not_found';
  end if;
  case p_action
    when 'hold' then update public.orders set held_at = now() where id = p_order;
    when 'release' then update public.orders set held_at = null where id = p_order;
    when 'unlist' then update public.orders set unlisted_at = now() where id = p_order;
    when 'remove_media' then
      if o.output_media_id is null and o.approved_media_id is null then
        raise exception 'this order has no audio to remove' using errcode = '55000', hint = 'no_media';
      end if;
      update public.media_assets set removed_at = now()
       where id in (o.output_media_id, o.approved_media_id) and removed_at is null;
    when 'escalate' then
      insert into public.moderation_cases (source, reason, severity, subject_kind, subject_id, subject_user,
                                           is_gold, summary, evidence)
      values ('moderation', p_reason, 4, 'order', p_order::text, o.assigned_reader, o.is_gold,
              coalesce(p_note, 'escalated by a monitor'), coalesce(p_evidence, '[]'::jsonb))
      returning id into new_case;
    else
      raise exception 'unknown action %', p_action using errcode = '22023', hint = 'validation_error';
  end case;
  perform app.moderation_record('order', p_order::text, p_action, p_reason, p_note, coalesce(p_case, new_case),
                                p_evidence);
  return new_case;
end
$$;

-- A held order does not move until released.
create or replace function app.orders_hold_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if old.held_at is not null and new.held_at is not null and new.status is distinct from old.status then
    raise exception 'this order is on hold by moderation' using errcode = '55000', hint = 'on_hold';
  end if;
  return new;
end
$$;

create or replace trigger trg_orders_hold before update on public.orders for each row execute function app.orders_hold_guard();

create or replace function app.resolve_case(p_case bigint, p_outcome text, p_note text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform app.require_claim(p_case);
  update public.moderation_cases set status = p_outcome, resolution = p_note, resolved_by = auth.uid(),
         resolved_at = now(), claimed_by = null, claim_expires_at = null, updated_at = now()
   where id = p_case;
  perform app.moderation_record('case', p_case::text, case when p_outcome = 'dismissed' then 'dismiss' else 'resolve' end,
                                null, p_note, p_case, null);
end
$$;

create or replace function app.open_appeal(p_appeal bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'only monitors and admins review appeals' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.appeals set status = 'under_review', reviewer_id = auth.uid(), opened_at = now()
   where id = p_appeal and status = 'submitted';
  if not found then
    if not exists (select 1 from public.appeals where id = p_appeal) then
      raise exception 'no such appeal' using errcode = 'P0002', hint = 'not_found';
    end if;
    raise exception 'this appeal is already under review or decided' using errcode = '55000', hint = 'conflict';
  end if;
  perform app.moderation_record('appeal', p_appeal::text, 'appeal_open', null, null, null, null);
end
$$;

-- Deciding: overturning a block lifts it, and that is an unblock (admins only).
create or replace function app.decide_appeal(p_appeal bigint, p_decision text, p_rationale text) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  a public.appeals;
begin
  select * into a from public.appeals where id = p_appeal for update;
  if a.id is null then
    raise exception 'no such appeal' using errcode = 'P0002', hint = 'not_found';
  end if;
  if a.status <> 'under_review' or a.reviewer_id is distinct from auth.uid() then
    raise exception 'open the appeal for review first' using errcode = '55000', hint = 'conflict';
  end if;
  if p_decision = 'overturned' and a.subject_kind = 'block' then
    if not coalesce(app.is_admin(), false) then
      raise exception 'overturning a block lifts it: only an admin may' using errcode = '42501', hint = 'admin_only';
    end if;
    perform app.unblock_user((select user_id from public.user_blocks where id = a.subject_id),
                             'appeal ' || p_appeal || ' overturned');
  elsif p_decision = 'overturned' and a.subject_kind = 'case' then
    update public.moderation_cases set status = 'dismissed', resolution = 'overturned on appeal ' || p_appeal,
           resolved_by = auth.uid(), resolved_at = now(), updated_at = now()
     where id = a.subject_id;
    update public.orders set held_at = null, unlisted_at = null
     where id::text = (select subject_id from public.moderation_cases where id = a.subject_id and subject_kind = 'order');
  end if;
  update public.appeals set status = 'decided', decision = p_decision, rationale = p_rationale,
         decided_by = auth.uid(), decided_at = now() where id = p_appeal;
  perform app.moderation_record('appeal', p_appeal::text, 'appeal_decide', null, p_decision, null, null);
end
$$;

-- Whom a block or case is about (for appeals): the appellant must be that person.
create or replace function app.appeal_subject_user(p_kind text, p_id bigint) returns uuid
language sql stable security definer set search_path = '' as $$
  select case p_kind when 'block' then (select user_id from public.user_blocks where id = p_id)
                     when 'case' then (select subject_user from public.moderation_cases where id = p_id) end
   where auth.uid() is not null
$$;

create or replace function app.recompute_lineage(p_order bigint) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'only monitors and admins rebuild lineage' using errcode = '42501', hint = 'forbidden';
  end if;
  delete from public.evidence_links where p_order is null or order_id = p_order;
  insert into public.evidence_links (order_id, kind, media_id, call_id)
  select o.id, x.kind, x.media_id, x.call_id
    from public.orders o
    cross join lateral (
      select 'input' as kind, o.input_media_id as media_id, null::bigint as call_id where o.input_media_id is not null
      union all select 'output', o.output_media_id, null where o.output_media_id is not null
      union all select 'approved', o.approved_media_id, null where o.approved_media_id is not null
      union all select 'attachment', a.media_id, null from public.order_attachments a where a.order_id = o.id
      union all select 'call', null, c.id from public.calls c where c.order_id = o.id) x
   where p_order is null or o.id = p_order
  on conflict do nothing;
  get diagnostics n = row_count;
  perform app.audit('moderation.lineage_recomputed', 'order', p_order::text, jsonb_build_object('links', n));
  return n;
end
$$;

-- Nightly sweeps: each rule opens at most one case per subject per day (dedupe_key).
create or replace function app.moderation_sweeps() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.sweep_rules;
  n integer := 0;
  k integer;
  since timestamptz;
  day text := to_char(now() at time zone 'UTC', 'YYYY-MM-DD');
begin
  for r in select * from public.sweep_rules where enabled order by code loop
    since := now() - make_interval(hours => r.window_hours);
    insert into public.moderation_cases (source, rule, reason, severity, subject_kind, subject_id, subject_user,
                                         summary, evidence, dedupe_key)
    select 'sweep', r.code, r.reason, (select severity from public.moderation_reasons where code = r.reason),
           'profile', s.who::text, s.who, r.description || ': ' || s.detail,
           jsonb_build_array(jsonb_build_object('rule', r.code, 'value', s.value, 'threshold', r.threshold,
                                                'volume', s.volume, 'window_hours', r.window_hours)),
           r.code || ':' || s.who || ':' || day
      from (
        -- a reader's rejected share of reviewed work
        select o.assigned_reader as who, count(*) filter (where m.action = 'reject')::numeric / count(*) as value,
               count(*) as volume, round(100 * count(*) filter (where m.action = 'reject')::numeric / count(*)) || '%' as detail
          from public.moderation_actions m join public.orders o on o.id::text = m.target_id
         where r.code = 'reader_reject_rate' and m.target_kind = 'order' and m.action in ('approve', 'reject')
           and m.created_at > since and o.assigned_reader is not null
         group by o.assigned_reader
        union all
        select t.user_id, count(*), count(*), count(*) || ' refunds'
          from public.payment_transactions t
         where r.code = 'refund_loop' and t.kind = 'refund' and t.status = 'succeeded' and t.created_at > since
         group by t.user_id
        union all
        -- a reader's calls they dropped (the call's own reader once calls carry one, else its order's)
        select x.reader, count(*) filter (where x.end_reason = 'dropped_by_reader')::numeric / count(*),
               count(*), round(100 * count(*) filter (where x.end_reason = 'dropped_by_reader')::numeric / count(*)) || '%'
          from (select coalesce((to_jsonb(c) ->> 'reader_id')::uuid, o.assigned_reader) as reader, c.end_reason
                  from public.calls c left join public.orders o on o.id = c.order_id
                 where r.code = 'call_drop_rate' and c.ended_at > since) x
         where x.reader is not null
         group by x.reader
        union all
        select t.user_id, count(*), count(*), count(*) || ' failed payments'
          from public.payment_transactions t
         where r.code = 'payment_fallback_spike' and t.status = 'failed' and t.created_at > since
         group by t.user_id
        union all
        select o.user_id, count(*), count(*), count(*) || ' orders'
          from public.orders o
         where r.code = 'order_burst' and o.created_at > since
         group by o.user_id
      ) s
     where s.who is not null and s.value >= r.threshold and s.volume >= r.min_volume
    on conflict (dedupe_key) do nothing;
    get diagnostics k = row_count;
    n := n + k;
  end loop;
  perform app.audit('moderation.sweeps', null, null, jsonb_build_object('cases_opened', n));
  return n;
end
$$;

-- Retention: fixed windows, purged by the job engine; the purge itself is audited.
create or replace function app.retention_purge() returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  w jsonb := (select jsonb_object_agg(name, days) from public.retention_windows);
  out jsonb := '{}'::jsonb;
  k integer;
begin
  delete from public.appeals where status = 'decided' and decided_at < now() - make_interval(days => (w->>'appeals')::int);
  get diagnostics k = row_count; out := out || jsonb_build_object('appeals', k);
  delete from public.moderation_actions m
   where m.created_at < now() - make_interval(days => (w->>'moderation_actions')::int);
  get diagnostics k = row_count; out := out || jsonb_build_object('moderation_actions', k);
  delete from public.user_blocks b where b.lifted_at < now() - make_interval(days => (w->>'user_blocks')::int)
     and not exists (select 1 from public.appeals a where a.subject_kind = 'block' and a.subject_id = b.id);
  get diagnostics k = row_count; out := out || jsonb_build_object('user_blocks', k);
  delete from public.moderation_cases c
   where c.status <> 'open' and c.resolved_at < now() - make_interval(days => (w->>'moderation_cases')::int)
     and not exists (select 1 from public.appeals a where a.subject_kind = 'case' and a.subject_id = c.id)
     and not exists (select 1 from public.moderation_actions m where m.case_id = c.id)
     and not exists (select 1 from public.user_blocks b where b.case_id = c.id);
  get diagnostics k = row_count; out := out || jsonb_build_object('moderation_cases', k);
  perform app.audit('retention.purged', null, null, out);
  return out;
end
$$;

revoke all on function app.claim_case(bigint, integer), app.block_user(uuid, text, text, jsonb, integer, bigint),
  app.unblock_user(uuid, text), app.moderate_order(bigint, text, text, text, jsonb, bigint),
  app.resolve_case(bigint, text, text), app.open_appeal(bigint), app.decide_appeal(bigint, text, text),
  app.recompute_lineage(bigint), app.require_claim(bigint) from public;
grant execute on function app.claim_case(bigint, integer), app.block_user(uuid, text, text, jsonb, integer, bigint),
  app.unblock_user(uuid, text), app.moderate_order(bigint, text, text, text, jsonb, bigint),
  app.resolve_case(bigint, text, text), app.open_appeal(bigint), app.decide_appeal(bigint, text, text),
  app.recompute_lineage(bigint), app.require_claim(bigint), app.appeal_subject_user(text, bigint) to authenticated;
revoke all on function app.lift_expired_blocks(), app.moderation_sweeps(), app.retention_purge() from public;
grant execute on function app.lift_expired_blocks(), app.moderation_sweeps(), app.retention_purge() to service_role;

select app.lock_down('moderation_reasons', 'moderation_cases', 'user_blocks', 'appeals', 'evidence_links', 'sweep_rules', 'retention_windows');
grant select on public.moderation_reasons to authenticated;

drop policy if exists moderation_reasons_read on public.moderation_reasons;
create policy moderation_reasons_read on public.moderation_reasons for select to authenticated using (true);

-- Cases: staff see all; anyone else only the reports they filed. Reports are inserted by
-- their reporter; every other change goes through the functions above.
grant select, insert on public.moderation_cases to authenticated;

drop policy if exists moderation_cases_read on public.moderation_cases;
create policy moderation_cases_read on public.moderation_cases for select to authenticated
  using ((select app.is_staff()) or reporter_id = (select auth.uid()));

drop policy if exists moderation_cases_report on public.moderation_cases;
create policy moderation_cases_report on public.moderation_cases for insert to authenticated
  with check (source = 'report' and reporter_id = (select auth.uid()) and status = 'open' and claimed_by is null);

grant select on public.user_blocks, public.evidence_links to authenticated;

drop policy if exists user_blocks_staff on public.user_blocks;
create policy user_blocks_staff on public.user_blocks for select to authenticated using ((select app.is_staff()));

drop policy if exists evidence_links_staff on public.evidence_links;
create policy evidence_links_staff on public.evidence_links for select to authenticated using ((select app.is_staff()));

-- Appeals: staff all; the appellant their own. Filed by the appellant (or staff on their behalf).
grant select, insert on public.appeals to authenticated;

drop policy if exists appeals_read on public.appeals;
create policy appeals_read on public.appeals for select to authenticated
  using ((select app.is_staff()) or appellant_id = (select auth.uid()));

drop policy if exists appeals_file on public.appeals;
create policy appeals_file on public.appeals for insert to authenticated
  with check (status = 'submitted' and filed_by = (select auth.uid())
              and (appellant_id = (select auth.uid()) or (select app.is_staff())));

grant select, update (enabled, threshold, min_volume, window_hours) on public.sweep_rules to authenticated;
grant select, update (days) on public.retention_windows to authenticated;

drop policy if exists sweep_rules_staff on public.sweep_rules;
create policy sweep_rules_staff on public.sweep_rules for select to authenticated using ((select app.is_staff()));

drop policy if exists sweep_rules_admin on public.sweep_rules;
create policy sweep_rules_admin on public.sweep_rules for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

drop policy if exists retention_windows_staff on public.retention_windows;
create policy retention_windows_staff on public.retention_windows for select to authenticated
  using ((select app.is_staff()));

drop policy if exists retention_windows_admin on public.retention_windows;
create policy retention_windows_admin on public.retention_windows for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));
