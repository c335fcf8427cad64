-- Notifications and messaging (issue 12): who reads which sends, devices, consents; the
-- delivery engine's fan-out and claim; campaign audiences and their time-zone cohorts; what
-- the signed provider webhooks may change.
--
-- Fan-out rule: an outbox row goes to the channel its feature chose (email → the account's
-- address; push → every registered device), plus SMS/WhatsApp when the user opted in to them.
-- A consent opt-out removes a device channel for everything but critical messages; STOP and
-- bounces are suppressions, which nothing overrides. Critical messages (the siren, SEV1/SEV2
-- pages, security codes) ignore quiet hours; the rest wait for the end of the quiet window.

grant samia_messaging to authenticator;
grant usage on schema app to samia_messaging;

select app.lock_down('notification_outbox', 'devices', 'consents', 'suppressions', 'campaigns', 'campaign_cohorts',
                     'notification_sends', 'notification_prefs');

grant select on public.notification_outbox to authenticated;

drop policy if exists outbox_read on public.notification_outbox;
create policy outbox_read on public.notification_outbox for select to authenticated
  using (recipient_id = (select auth.uid()) or (select app.is_admin()));

-- ─── per-user rows: the user's own, admins all ──────────────────────────────────────────
grant select, delete on public.devices to authenticated;
drop policy if exists devices_read on public.devices;
create policy devices_read on public.devices for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));
drop policy if exists devices_delete on public.devices;
create policy devices_delete on public.devices for delete to authenticated using (user_id = (select auth.uid()));

grant select, insert, update on public.consents to authenticated;
drop policy if exists consents_read on public.consents;
create policy consents_read on public.consents for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));
drop policy if exists consents_own on public.consents;
create policy consents_own on public.consents for insert to authenticated with check (user_id = (select auth.uid()));
drop policy if exists consents_own_update on public.consents;
create policy consents_own_update on public.consents for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

grant select, insert, update on public.notification_prefs to authenticated;
drop policy if exists notification_prefs_read on public.notification_prefs;
create policy notification_prefs_read on public.notification_prefs for select to authenticated
  using (user_id = (select auth.uid()) or (select app.is_admin()));
drop policy if exists notification_prefs_own on public.notification_prefs;
create policy notification_prefs_own on public.notification_prefs for insert to authenticated
  with check (user_id = (select auth.uid()));
drop policy if exists notification_prefs_own_update on public.notification_prefs;
create policy notification_prefs_own_update on public.notification_prefs for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

-- A user reads their own sends; admins everything; monitors the escalations (siren and
-- incident pages) only.
grant select on public.notification_sends to authenticated;
drop policy if exists sends_read on public.notification_sends;
create policy sends_read on public.notification_sends for select to authenticated
  using (recipient_id = (select auth.uid()) or (select app.is_admin())
         or ((select app.user_role()) = 'monitor' and template in ('emergency_siren', 'incident_page')));

-- ─── admin-only rows ─────────────────────────────────────────────────────────────────────
grant select, insert, delete on public.suppressions to authenticated;
drop policy if exists suppressions_admin on public.suppressions;
create policy suppressions_admin on public.suppressions for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

grant select, insert on public.campaigns to authenticated;
drop policy if exists campaigns_admin on public.campaigns;
create policy campaigns_admin on public.campaigns for all to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()));

grant select on public.campaign_cohorts to authenticated;
drop policy if exists campaign_cohorts_admin on public.campaign_cohorts;
create policy campaign_cohorts_admin on public.campaign_cohorts for select to authenticated
  using ((select app.is_admin()));

-- ─── helpers ─────────────────────────────────────────────────────────────────────────────
-- Suppressions are keyed by this: email lower-cased and trimmed, phone numbers as E.164.
create or replace function app.address_hash(p_address text) returns text
language sql immutable set search_path = '' as $$
  select encode(extensions.digest(lower(btrim(p_address)), 'sha256'), 'hex')
$$;

create or replace function app.is_suppressed(p_channel text, p_address text) returns boolean
language sql stable security definer set search_path = '' as $$
  select p_address is not null and exists (
    select 1 from public.suppressions s
     where s.channel = case when p_channel in ('sms', 'whatsapp') then p_channel else 'email' end
       and s.address_hash = app.address_hash(p_address))
$$;

-- Marketing may reach this user on this channel now: active, adult, opted in, not suppressed.
create or replace function app.marketing_eligible(p_user uuid, p_channel text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.profiles p
      join public.consents c on c.user_id = p.id and c.opted_in
                            and c.channel = case when p_channel in ('webpush', 'fcm', 'apns') then 'push'
                                                 else p_channel end
     where p.id = p_user and p.deleted_at is null
       and (p.blocked_at is null or p.blocked_until <= now())
       and p.dob is not null and p.dob <= current_date - interval '18 years'
       and not app.is_suppressed(p_channel, case p_channel when 'email' then p.email::text
                                                            when 'sms' then p.phone when 'whatsapp' then p.phone end))
$$;

-- Quiet hours (every user's, in their own zone; the on-call pages use them too).
create or replace function app.in_quiet_hours(p_user uuid, p_at timestamptz) returns timestamptz
language sql stable security definer set search_path = '' as $$
  -- the end of the quiet period p_at falls in, or null when it is not quiet
  select case
    when q.starts < q.ends and local_t >= q.starts and local_t < q.ends
      then ((p_at at time zone q.tz)::date + q.ends) at time zone q.tz
    when q.starts > q.ends and (local_t >= q.starts or local_t < q.ends)
      then ((p_at at time zone q.tz)::date + case when local_t >= q.starts then 1 else 0 end + q.ends) at time zone q.tz
  end
  from public.quiet_hours q, lateral (select (p_at at time zone q.tz)::time as local_t) l
  where q.user_id = p_user
$$;

-- ─── the engine: fan-out of outbox rows ─────────────────────────────────────────────────
-- Claims pending outbox rows (skip locked: two workers never plan the same row) and writes
-- one send per channel; a re-run finds nothing (the row is 'sent') and the unique index
-- stops a duplicate even if it did.
create or replace function app.plan_outbox(p_limit integer) returns integer
language sql volatile security definer set search_path = '' as $$
  with due as (
    select o.id from public.notification_outbox o
     where o.status = 'pending' and (o.not_before is null or o.not_before <= now())
     order by o.id limit p_limit for update skip locked),
  rows as (
    update public.notification_outbox o set status = 'sent', sent_at = now()
      from due where o.id = due.id
    returning o.id, o.recipient_id, o.channel, o.template, o.params,
              (o.template = 'verify_email' or coalesce((o.params->>'ignore_quiet_hours')::boolean, false)) as critical),
  targets as (
    select r.id, r.recipient_id, 'email' as channel, null::bigint as device_id, r.template, r.params, r.critical
      from rows r join public.profiles p on p.id = r.recipient_id
     where r.channel = 'email' and p.email is not null
    union all
    select r.id, r.recipient_id, d.kind, d.id, r.template, r.params, r.critical
      from rows r join public.devices d on d.user_id = r.recipient_id
     where r.template <> 'verify_email'
       and (r.critical or r.channel = 'push' or not exists (
             select 1 from public.consents c where c.user_id = r.recipient_id and c.channel = 'push' and not c.opted_in))
    union all
    select r.id, r.recipient_id, ch.channel, null, r.template, r.params, r.critical
      from rows r join public.profiles p on p.id = r.recipient_id and p.phone is not null
      cross join (values ('sms'), ('whatsapp')) ch (channel)
     where r.template <> 'verify_email'
       and (r.channel = ch.channel or exists (
             select 1 from public.consents c where c.user_id = r.recipient_id and c.channel = ch.channel and c.opted_in))),
  ins as (
    insert into public.notification_sends (outbox_id, recipient_id, channel, device_id, template, params, critical,
                                           not_before)
    select t.id, t.recipient_id, t.channel, t.device_id, t.template, t.params, t.critical,
           case when t.critical then now() else coalesce(app.in_quiet_hours(t.recipient_id, now()), now()) end
      from targets t where t.recipient_id is not null
    on conflict do nothing
    returning 1)
  select (select count(*) from rows)::integer + 0 * (select count(*) from ins)::integer
$$;

-- Claims up to p_limit due sends of the given channels: queued → sending, committed by the
-- caller before any provider is called. With what the sender needs, and why a send must not
-- go at all (`skip`): no address, suppressed, no longer eligible for marketing, over the cap.
drop function if exists app.claim_sends(integer, text[], boolean, timestamptz);
create or replace function app.claim_sends(p_limit integer, p_channels text[], p_marketing boolean,
                                           p_at timestamptz)
returns table (id bigint, channel text, key uuid, template text, params jsonb, critical boolean, attempts smallint,
               address text, lang text, recipient_id uuid, device_id bigint, campaign_id bigint, skip text)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select s.id from public.notification_sends s
    -- `p_at` (a catch-up run's or a test's clock) only moves time forward: what is due now is due
     where s.state = 'queued' and s.not_before <= greatest(p_at, now()) and s.channel = any(p_channels)
       and (p_marketing or not s.marketing)
     order by s.not_before, s.id limit p_limit for update skip locked),
  claimed as (
    update public.notification_sends s
       set state = 'sending', attempts = s.attempts + 1, claimed_at = now(), updated_at = now()
      from due where s.id = due.id
    returning s.*)
  select c.id, c.channel, c.key, c.template, c.params, c.critical, c.attempts, a.address, p.locale,
         c.recipient_id, c.device_id, c.campaign_id,
         case when a.address is null then 'no_address'
              when app.is_suppressed(c.channel, a.address) then 'suppressed'
              when c.marketing and not app.marketing_eligible(c.recipient_id, c.channel) then 'not_eligible'
              when c.marketing and (select count(*) from public.notification_sends m
                                     where m.recipient_id = c.recipient_id and m.marketing and m.id <> c.id
                                       and m.state in ('sent', 'delivered', 'opened', 'clicked')
                                       and m.sent_at > now() - interval '7 days')
                                   >= coalesce((select np.marketing_cap from public.notification_prefs np
                                                 where np.user_id = c.recipient_id), 3) then 'frequency_cap'
         end
    from claimed c
    join public.profiles p on p.id = c.recipient_id
    left join public.devices d on d.id = c.device_id
    cross join lateral (select case c.channel when 'email' then p.email::text when 'sms' then p.phone
                                              when 'whatsapp' then p.phone else d.address end as address) a
$$;

-- ─── campaigns ───────────────────────────────────────────────────────────────────────────
-- Who a campaign reaches now (the same rule again at send time: an opt-out between schedule
-- and send wins), with each person's time zone and, for push, each device.
create or replace function app.campaign_audience(p_campaign bigint)
returns table (user_id uuid, tz text, device_id bigint)
language sql stable security definer set search_path = '' as $$
  select p.id, coalesce(p.tz, q.tz, 'UTC'), d.id
    from public.campaigns c
    join public.profiles p on true
    join public.roles r on r.id = p.role_id
    left join public.quiet_hours q on q.user_id = p.id
    left join public.devices d on c.channel = 'push' and d.user_id = p.id
   where c.id = p_campaign
     and (c.channel <> 'push' or d.id is not null)
     and app.marketing_eligible(p.id, case c.channel when 'push' then 'webpush' else c.channel end)
     and (c.audience->'roles' is null or r.code in (select jsonb_array_elements_text(c.audience->'roles')))
     and (c.audience->'countries' is null
          or p.country_code in (select jsonb_array_elements_text(c.audience->'countries')))
     and (c.audience->'languages' is null
          or p.locale in (select jsonb_array_elements_text(c.audience->'languages')))
     and (c.audience->'zodiac' is null
          or lower(p.zodiac) in (select lower(z) from jsonb_array_elements_text(c.audience->'zodiac') z))
     and (c.audience->>'segment' is null
          or (c.audience->>'segment' = 'listened_7d' and exists (
                select 1 from public.events_raw e
                 where e.user_id = p.id and e.type like '%.listen%' and e.occurred_at > now() - interval '7 days')))
$$;

-- Computes the time-zone cohorts and queues one send per recipient (and device) at their
-- local send time. Idempotent: the campaign row is locked, and a scheduled campaign answers
-- its cohorts again without queueing anything.
create or replace function app.schedule_campaign(p_campaign bigint) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.campaigns;
  n integer;
begin
  if not app.is_admin() then
    raise exception 'admins only' using errcode = '42501', hint = 'forbidden';
  end if;
  select * into c from public.campaigns where id = p_campaign for update;
  if not found then
    raise exception 'no such campaign' using errcode = 'P0002', hint = 'not_found';
  end if;
  if c.status = 'scheduled' then
    return (select coalesce(sum(recipients), 0)::integer from public.campaign_cohorts where campaign_id = p_campaign);
  end if;
  if c.status <> 'draft' then
    raise exception 'the campaign is %', c.status using errcode = '55000', hint = 'conflict';
  end if;
  create temporary table if not exists pg_temp.audience (user_id uuid, tz text, device_id bigint) on commit drop;
  delete from pg_temp.audience;
  insert into pg_temp.audience select * from app.campaign_audience(p_campaign);
  insert into public.campaign_cohorts (campaign_id, tz, send_at, recipients)
  select p_campaign, a.tz, (c.send_on + c.local_time) at time zone a.tz, count(distinct a.user_id)
    from pg_temp.audience a group by a.tz;
  insert into public.notification_sends (campaign_id, recipient_id, channel, device_id, template, params, marketing,
                                         not_before)
  select p_campaign, a.user_id,
         case c.channel when 'push' then d.kind else c.channel end, a.device_id, 'campaign',
         jsonb_build_object('campaign', p_campaign), true,
         greatest((c.send_on + c.local_time) at time zone a.tz,
                  coalesce(app.in_quiet_hours(a.user_id, (c.send_on + c.local_time) at time zone a.tz), '-infinity'))
    from pg_temp.audience a left join public.devices d on d.id = a.device_id
  on conflict do nothing;
  get diagnostics n = row_count;
  update public.campaigns set status = 'scheduled', scheduled_at = now() where id = p_campaign;
  perform app.audit('campaign.scheduled', 'campaign', p_campaign::text, jsonb_build_object('sends', n));
  return n;
end
$$;

create or replace function app.campaign_stats(p_campaign bigint)
returns table (sends bigint, queued bigint, sent bigint, delivered bigint, opened bigint, clicked bigint,
               bounced bigint, failed bigint, cancelled bigint, opted_out bigint)
language sql stable security definer set search_path = '' as $$
  select count(*),
         count(*) filter (where s.state in ('queued', 'sending')),
         count(*) filter (where s.state in ('sent', 'delivered', 'opened', 'clicked')),
         count(*) filter (where s.state in ('delivered', 'opened', 'clicked')),
         count(*) filter (where s.state in ('opened', 'clicked')),
         count(*) filter (where s.state = 'clicked'),
         count(*) filter (where s.state = 'bounced'),
         count(*) filter (where s.state = 'failed'),
         count(*) filter (where s.state = 'cancelled'),
         (select count(distinct co.user_id) from public.consents co, public.campaigns c
           where c.id = p_campaign and not co.opted_in and co.at > c.scheduled_at
             and co.channel = case when c.channel = 'push' then 'push' else c.channel end
             and co.user_id in (select x.recipient_id from public.notification_sends x where x.campaign_id = p_campaign))
    from public.notification_sends s
   where s.campaign_id = p_campaign and app.is_admin()
$$;

-- ─── devices ─────────────────────────────────────────────────────────────────────────────
-- Registers the caller's device; a target another account had moves to the caller (the
-- device changed hands), so one device never gets another person's messages.
create or replace function app.register_device(p_kind text, p_address text, p_label text) returns bigint
language sql volatile security definer set search_path = '' as $$
  insert into public.devices (user_id, kind, address, label)
  select auth.uid(), p_kind, p_address, p_label where auth.uid() is not null
  on conflict (kind, md5(address)) do update
    set user_id = excluded.user_id, label = excluded.label, last_seen = now()
  returning id
$$;

-- ─── what the signed provider webhooks change (after their signature check) ─────────────
-- Inbound STOP / START (Twilio keywords or OptOutType): a STOP suppresses the number and
-- records the opt-out of every account with that number; START lifts both.
create or replace function app.sms_keyword(p_channel text, p_phone text, p_action text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  if p_action = 'opt_out' then
    insert into public.suppressions (channel, address_hash, reason)
    values (p_channel, app.address_hash(p_phone), 'stop') on conflict do nothing;
  elsif p_action = 'opt_in' then
    delete from public.suppressions
     where channel = p_channel and address_hash = app.address_hash(p_phone) and reason = 'stop';
  else
    return 0;
  end if;
  insert into public.consents (user_id, channel, opted_in, lawful_basis, source)
  select p.id, p_channel, p_action = 'opt_in', 'consent', 'sms_keyword' from public.profiles p where p.phone = p_phone
  on conflict (user_id, channel) do update
    set opted_in = excluded.opted_in, lawful_basis = 'consent', source = 'sms_keyword', at = now();
  get diagnostics n = row_count;
  perform app.audit('messaging.' || p_action, 'suppression', p_channel,
                    jsonb_build_object('accounts', n, 'source', 'sms_keyword'));
  return n;
end
$$;

-- A delivery report: the send's new state (never backwards), found by our key or the
-- provider's id. A hard bounce or complaint (or a number that is gone) suppresses the address.
create or replace function app.delivery_report(p_channel text, p_key uuid, p_provider_ref text, p_state text,
                                               p_address text, p_suppress text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  n integer;
begin
  update public.notification_sends s
     set state = p_state, updated_at = now(),
         provider_ref = coalesce(s.provider_ref, p_provider_ref)
   where ((p_key is not null and s.key = p_key) or (p_provider_ref is not null and s.provider_ref = p_provider_ref))
     and s.channel = p_channel
     and array_position(array['queued', 'sending', 'sent', 'delivered', 'opened', 'clicked', 'bounced', 'failed'],
                        p_state)
       > array_position(array['queued', 'sending', 'sent', 'delivered', 'opened', 'clicked', 'bounced', 'failed'],
                        s.state);
  get diagnostics n = row_count;
  if p_suppress is not null and p_address is not null then
    insert into public.suppressions (channel, address_hash, reason)
    values (case when p_channel in ('sms', 'whatsapp') then p_channel else 'email' end, app.address_hash(p_address),
            p_suppress)
    on conflict do nothing;
    perform app.audit('messaging.suppressed', 'suppression', p_channel, jsonb_build_object('reason', p_suppress));
  end if;
  return n;
end
$$;

revoke all on function app.in_quiet_hours(uuid, timestamptz), app.address_hash(text), app.is_suppressed(text, text), app.marketing_eligible(uuid, text),
  app.plan_outbox(integer), app.claim_sends(integer, text[], boolean, timestamptz), app.campaign_audience(bigint),
  app.schedule_campaign(bigint), app.campaign_stats(bigint), app.register_device(text, text, text),
  app.sms_keyword(text, text, text), app.delivery_report(text, uuid, text, text, text, text) from public;
grant execute on function app.address_hash(text) to authenticated, service_role, samia_messaging;
grant execute on function app.is_suppressed(text, text), app.marketing_eligible(uuid, text),
  app.plan_outbox(integer), app.claim_sends(integer, text[], boolean, timestamptz), app.campaign_audience(bigint)
  to service_role;
grant execute on function app.schedule_campaign(bigint), app.campaign_stats(bigint),
  app.register_device(text, text, text) to authenticated, service_role;
grant execute on function app.sms_keyword(text, text, text), app.delivery_report(text, uuid, text, text, text, text)
  to samia_messaging, service_role;
