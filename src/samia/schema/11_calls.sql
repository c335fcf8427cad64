-- Live calls (seeds 003 §11, 000 M40/M41, 002 consent): scheduled calls from confirmed
-- bookings and instant calls from available readers, one state machine fed by the voice
-- provider's events, consent with the client's IP before any call starts, per-minute billing
-- on the connected time, readers' availability and admin-approved instant windows, the
-- emergency siren with its escalation ladder, monitor powers, and redacted transcripts.

select app.lock_down('calls');

-- Requests only read calls (calls_read, below); every change goes through the functions here.
grant select on public.calls to authenticated;

-- The call state machine, whoever writes.
create or replace function app.calls_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.status is distinct from old.status and not (old.status, new.status) in (
       ('created', 'ringing'), ('created', 'started'), ('ringing', 'started'),
       ('created', 'ended'), ('ringing', 'ended'), ('started', 'ended')) then
    raise exception 'a call cannot go from % to %', old.status, new.status using errcode = '55000',
      hint = 'illegal_transition';
  end if;
  if old.status = 'ended' and (to_jsonb(new) - 'billed_minor') is distinct from (to_jsonb(old) - 'billed_minor') then
    raise exception 'an ended call does not change' using errcode = '55000', hint = 'illegal_transition';
  end if;
  return new;
end
$$;

create or replace trigger trg_calls_guard before update on public.calls for each row execute function app.calls_guard();

create or replace function app.on_live_call(p_reader uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.calls c where c.reader_id = p_reader and c.status in ('ringing', 'started'))
$$;

-- Inside an approved instant window now (feature.readerInstant off: windows bind nobody).
create or replace function app.in_instant_window(p_reader uuid) returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
  return app.flag_on_for('feature.readerInstant', p_reader)
     and exists (select 1 from public.instant_windows w where w.reader_id = p_reader and w.status = 'approved'
                   and w.during @> now());
end
$$;

-- feature.readerInstant gates instant windows: off, a reader cannot ask for one.
create or replace function app.instant_windows_flag() returns trigger
language plpgsql set search_path = '' as $$
begin
  if not app.flag_on_for('feature.readerInstant', new.reader_id) then
    raise exception 'instant calls are switched off' using errcode = '42501', hint = 'feature_disabled';
  end if;
  return new;
end
$$;

create or replace trigger trg_instant_windows_flag before insert on public.instant_windows
  for each row execute function app.instant_windows_flag();

grant execute on function app.on_live_call(uuid), app.in_instant_window(uuid) to authenticated, samia_calls;

-- Inside an approved window a reader stays available unless on a call.
create or replace function app.reader_status_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'UPDATE' and old.available and not new.available
     and app.in_instant_window(new.reader_id) and not app.on_live_call(new.reader_id) then
    raise exception 'inside an approved instant window a reader stays available unless on a call'
      using errcode = '55000', hint = 'in_instant_window';
  end if;
  new.updated_at := now();
  return new;
end
$$;

create or replace trigger trg_reader_status_guard before insert or update on public.reader_status
  for each row execute function app.reader_status_guard();

-- Start a scheduled call: a party of a confirmed booking, near its time, after the client's
-- recorded consent (with IP) and, for a service with a pre-ritual (Healing Energy), after the
-- client confirmed the preparation. A booking paid in advance is not billed again by the
-- minute; one booked at no price (pay as you go) is, at the client's country's rate.
create or replace function app.start_booked_call(p_booking bigint) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.bookings;
  s public.services;
  consent public.call_consent_logs;
  cid bigint;
begin
  select * into b from public.bookings where id = p_booking for update;
  if b.id is null or auth.uid() not in (b.client_id, b.reader_id) then
    raise exception 'no such booking' using errcode = 'P0002', hint = 'not_found';
  end if;
  perform app.require_may_transact();  -- adults who accepted the current terms (01_identity.sql)
  select * into consent from public.call_consent_logs where booking_id = p_booking order by id desc limit 1;
  if consent.id is null then
    raise exception 'the client has not consented to this call' using errcode = '22023', hint = 'consent_required';
  end if;
  if b.status <> 'confirmed' then
    raise exception 'the booking is %', b.status using errcode = '55000', hint = 'illegal_transition';
  end if;
  if now() < b.starts_at - interval '10 minutes' or now() > b.ends_at then
    raise exception 'the call can start from 10 minutes before the booking until its end'
      using errcode = '55000', hint = 'not_now';
  end if;
  if exists (select 1 from public.calls where booking_id = p_booking) then
    raise exception 'this booking''s call has already started' using errcode = '55000', hint = 'conflict';
  end if;
  select * into s from public.services where id = b.service_id;
  if s.pre_ritual_en is not null and b.pre_ritual_confirmed_at is null then
    raise exception 'the client has not confirmed the preparation for this session'
      using errcode = '22023', hint = 'pre_ritual_required';
  end if;
  insert into public.calls (booking_id, client_id, reader_id, kind, per_minute_minor, currency, record, max_seconds)
  values (b.id, b.client_id, b.reader_id, 'scheduled',
          case when b.price_minor = 0
               then (select p.per_minute_minor from app.service_price(s.id, (select country_code from public.profiles
                                                                             where id = b.client_id)) p)
               else 0 end,
          b.currency, consent.recording_consent,
          extract(epoch from b.ends_at - now())::int + 300)
  returning id into cid;
  update public.call_consent_logs set call_id = cid where id = consent.id;
  update public.bookings set started_at = now() where id = b.id;
  insert into public.call_events (call_id, event, actor) values (cid, 'created', auth.uid());
  perform app.audit('call.created', 'call', cid::text, jsonb_build_object('booking', b.id));
  return cid;
end
$$;

-- An instant call with an available reader who offers the service and is not on a call:
-- the time is claimed in the reader's one capacity ledger (so no booking can overlap).
create or replace function app.start_instant_call(p_reader uuid, p_service bigint, p_ip inet, p_agent text,
                                                  p_record boolean, p_kind text default 'instant') returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  s public.services;
  cap bigint;
  cid bigint;
  bal bigint;
  secs integer := 3600;
begin
  if coalesce(app.user_role(), '') <> 'client' then
    raise exception 'only clients call readers' using errcode = '42501', hint = 'forbidden';
  end if;
  if not app.flag_on('feature.readerInstant') then
    raise exception 'instant calls are switched off' using errcode = '42501', hint = 'feature_disabled';
  end if;
  perform app.require_may_transact();
  select * into s from public.services where id = p_service and kind = 'call' and is_active;
  s.per_minute_minor := (select p.per_minute_minor from app.service_price(s.id, null) p);
  if s.id is null or not app.reader_eligible(p_reader, p_service)
     or not coalesce((select available from public.reader_status where reader_id = p_reader), false) then
    raise exception 'this reader is not available for this call now' using errcode = '55000', hint = 'not_available';
  end if;
  if s.per_minute_minor > 0 then
    bal := app.wallet_balance(auth.uid(), s.currency);
    if bal < s.per_minute_minor then
      raise exception 'the wallet does not cover one minute' using errcode = '22023', hint = 'insufficient_funds';
    end if;
    secs := least(secs, (bal / s.per_minute_minor) * 60);
  end if;
  perform app.lock_reader_time(p_reader);
  if app.on_live_call(p_reader) then
    raise exception 'the reader is on another call' using errcode = '55000', hint = 'not_available';
  end if;
  update public.reader_capacity set status = 'expired' where reader_id = p_reader and status = 'held'
     and expires_at <= now();
  insert into public.reader_capacity (reader_id, during, kind, status)
  values (p_reader, tstzrange(now(), now() + make_interval(secs => secs)), 'call', 'live')
  returning id into cap;
  insert into public.calls (client_id, reader_id, kind, capacity_id, per_minute_minor, currency, record, max_seconds)
  values (auth.uid(), p_reader, p_kind, cap, s.per_minute_minor, s.currency, p_record, secs)
  returning id into cid;
  insert into public.call_consent_logs (call_id, client_id, client_ip, user_agent, consent_given, recording_consent)
  values (cid, auth.uid(), p_ip, left(p_agent, 300), true, p_record);
  insert into public.call_events (call_id, event, actor) values (cid, 'created', auth.uid());
  perform app.audit('call.created', 'call', cid::text, jsonb_build_object('kind', p_kind, 'reader', p_reader));
  return cid;
end
$$;

-- What a call of `p_seconds` costs: every started minute at its rate (the step it falls in,
-- for progressively priced calls; else the flat per-minute rate).
create or replace function app.call_amount(p_rate integer, p_steps jsonb, p_seconds integer) returns bigint
language sql immutable set search_path = '' as $$
  select case when p_steps is null then ceil(p_seconds / 60.0)::bigint * p_rate
              else (select coalesce(sum((select (s ->> 'per_minute_minor')::bigint
                                           from jsonb_array_elements(p_steps) s
                                          where (s ->> 'from_minute')::integer <= m
                                          order by (s ->> 'from_minute')::integer desc limit 1)), 0)::bigint
                      from generate_series(0, ceil(p_seconds / 60.0)::integer - 1) m)
         end
$$;

-- One provider event (verified webhook, the local simulator, or a monitor's drop), at most
-- once per provider event id. Ending settles the bill: connected seconds rounded up to the
-- minute at the call's rate, from the wallet, never more than the wallet holds.
create or replace function app.call_event(p_call bigint, p_event text, p_at timestamptz, p_reason text,
                                          p_provider_event text, p_provider_ref text default null) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.calls;
  secs integer;
  amount bigint;
  txn bigint;
begin
  select * into c from public.calls where id = p_call for update;
  if c.id is null then
    raise exception 'no such call' using errcode = 'P0002', hint = 'not_found';
  end if;
  if p_provider_event is not null and exists (select 1 from public.call_events e where e.call_id = c.id
                                                and e.provider_event_id = p_provider_event) then
    return 'duplicate';
  end if;
  if c.status = 'ended' or (c.status = p_event) or (c.status = 'started' and p_event = 'ringing') then
    insert into public.call_events (call_id, event, provider_event_id, at, meta)
    values (c.id, p_event, p_provider_event, p_at, jsonb_build_object('ignored', true));
    return 'ignored';
  end if;
  case p_event
    when 'ringing' then
      update public.calls set status = 'ringing', ringing_at = p_at, provider_ref = coalesce(p_provider_ref, provider_ref)
       where id = c.id;
    when 'started' then
      update public.calls set status = 'started', started_at = p_at, provider_ref = coalesce(p_provider_ref, provider_ref)
       where id = c.id;
    when 'ended' then
      secs := case when c.started_at is null then 0 else greatest(0, ceil(extract(epoch from p_at - c.started_at)))::int end;
      if c.max_seconds is not null then
        secs := least(secs, c.max_seconds);
      end if;
      amount := 0;
      if c.per_minute_minor > 0 and secs > 0 then
        perform pg_advisory_xact_lock(hashtextextended('wallet:' || c.client_id, 0));
        amount := least(app.call_amount(c.per_minute_minor, c.rate_steps, secs),
                        app.wallet_balance(c.client_id, c.currency));
        if amount > 0 then
          insert into public.payment_transactions (user_id, provider, kind, status, amount_minor, currency, call_id)
          values (c.client_id, 'wallet', 'charge', 'succeeded', amount, c.currency, c.id) returning id into txn;
          perform app.ledger_move('wallet:' || c.client_id, 'revenue', amount, c.currency, txn,
                                  'call ' || c.id || ': ' || ceil(secs / 60.0) || ' min', c.client_id);
        end if;
      end if;
      update public.calls set status = 'ended', ended_at = p_at, end_reason = coalesce(p_reason, 'completed'),
             connected_seconds = secs, billed_minor = amount where id = c.id;
      -- the reader's time is free again (an instant call's claim, or the rest of a booked slot)
      update public.reader_capacity set status = 'completed'
       where id in (c.capacity_id, (select b.capacity_id from public.bookings b where b.id = c.booking_id))
         and status in ('live', 'confirmed');
      update public.bookings set status = 'completed' where id = c.booking_id and status = 'confirmed';
    else
      raise exception 'unknown call event %', p_event using errcode = '22023', hint = 'validation_error';
  end case;
  insert into public.call_events (call_id, event, provider_event_id, at, meta)
  values (c.id, p_event, p_provider_event, p_at, jsonb_strip_nulls(jsonb_build_object('reason', p_reason)));
  perform app.audit('call.' || p_event, 'call', c.id::text,
                    jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'connected_seconds', secs,
                                                         'billed_minor', amount)));
  return p_event;
end
$$;

create or replace function app.page_level(p_request bigint, p_level smallint) returns integer
language sql volatile security definer set search_path = '' as $$
  with who as (
    select p.id from public.profiles p join public.roles r on r.id = p.role_id
     where r.code = (select role from public.emergency_policy where level = p_level) and p.deleted_at is null
       and (p.blocked_at is null or p.blocked_until <= now())
       and (p_level > 0 or coalesce((select available from public.reader_status s where s.reader_id = p.id), false)))
  insert into public.notification_outbox (recipient_id, channel, template, params)
  select id, 'push', 'emergency_siren', jsonb_build_object('request', p_request, 'level', p_level,
                                                           'priority', 'emergency', 'ignore_quiet_hours', true)
    from who
  returning 1
$$;

create or replace function app.raise_emergency(p_note text, p_ip inet, p_agent text, p_record boolean) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  rid bigint;
begin
  if coalesce(app.user_role(), '') <> 'client' then
    raise exception 'only clients raise an emergency call' using errcode = '42501', hint = 'forbidden';
  end if;
  perform app.require_may_transact();
  if exists (select 1 from public.emergency_requests where client_id = auth.uid() and status = 'ringing') then
    raise exception 'your emergency call is already ringing' using errcode = '55000', hint = 'conflict';
  end if;
  insert into public.emergency_requests (client_id, note, client_ip, user_agent, record, next_step_at)
  values (auth.uid(), p_note, p_ip, left(p_agent, 300), p_record,
          now() + make_interval(secs => (select wait_seconds from public.emergency_policy where level = 0)))
  returning id into rid;
  insert into public.emergency_events (request_id, event, level, due_at) values (rid, 'raised', 0, now());
  perform app.page_level(rid, 0::smallint);
  insert into public.emergency_events (request_id, event, level, due_at) values (rid, 'rang_readers', 0, now());
  perform app.audit('emergency.raised', 'emergency', rid::text, '{}'::jsonb);
  return rid;
end
$$;

-- Every step that is due by p_now, in order (a worker that was down catches up step by
-- step, each recorded with the time it was due).
create or replace function app.emergency_escalate(p_now timestamptz default now()) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.emergency_requests;
  n integer := 0;
  next_level smallint;
begin
  for r in select * from public.emergency_requests where status = 'ringing' and next_step_at <= p_now
            order by next_step_at for update skip locked loop
    while r.next_step_at <= p_now loop
      next_level := least(r.level + 1, 3);
      insert into public.emergency_events (request_id, event, level, due_at)
      values (r.id, case when r.level = 3 then 'repaged' else 'escalated' end, next_level, r.next_step_at);
      perform app.page_level(r.id, next_level);
      perform app.audit('emergency.' || case when r.level = 3 then 'repaged' else 'escalated' end, 'emergency',
                        r.id::text, jsonb_build_object('level', next_level));
      r.level := next_level;
      r.next_step_at := r.next_step_at + make_interval(secs => (select wait_seconds from public.emergency_policy
                                                                  where level = next_level));
      n := n + 1;
    end loop;
    update public.emergency_requests set level = r.level, next_step_at = r.next_step_at where id = r.id;
  end loop;
  return n;
end
$$;

create or replace function app.close_emergency(p_request bigint, p_how text, p_call bigint default null) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.emergency_requests;
begin
  select * into r from public.emergency_requests where id = p_request for update;
  if r.id is null then
    raise exception 'no such emergency call' using errcode = 'P0002', hint = 'not_found';
  end if;
  if r.status <> 'ringing' then
    raise exception 'this emergency call is already %', r.status using errcode = '55000', hint = 'conflict';
  end if;
  if p_how = 'cancelled' and r.client_id is distinct from auth.uid() then
    raise exception 'no such emergency call' using errcode = 'P0002', hint = 'not_found';
  end if;
  if p_how = 'acknowledged' and not coalesce(app.is_staff(), false) then
    raise exception 'monitors and admins acknowledge' using errcode = '42501', hint = 'forbidden';
  end if;
  if p_how = 'answered' and coalesce(app.user_role(), '') <> 'reader' then
    raise exception 'readers answer' using errcode = '42501', hint = 'forbidden';
  end if;
  update public.emergency_requests set status = p_how, closed_at = now(), call_id = p_call,
         answered_by = case when p_how = 'answered' then auth.uid() end,
         acknowledged_by = case when p_how = 'acknowledged' then auth.uid() end
   where id = r.id;
  insert into public.emergency_events (request_id, event, level, due_at, actor) values (r.id, p_how, r.level, now(), auth.uid());
  perform app.audit('emergency.' || p_how, 'emergency', r.id::text, jsonb_build_object('level', r.level));
end
$$;

-- An available reader answers: the call is theirs, the siren stops, the client's consent
-- given when raising it is the call's consent.
create or replace function app.answer_emergency(p_request bigint) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  r public.emergency_requests;
  cap bigint;
  cid bigint;
  steps jsonb;
begin
  if coalesce(app.user_role(), '') <> 'reader' then
    raise exception 'readers answer' using errcode = '42501', hint = 'forbidden';
  end if;
  perform app.require_may_transact();
  select * into r from public.emergency_requests where id = p_request for update;
  if r.id is null then
    raise exception 'no such emergency call' using errcode = 'P0002', hint = 'not_found';
  end if;
  if r.status <> 'ringing' then
    raise exception 'this emergency call is already %', r.status using errcode = '55000', hint = 'conflict';
  end if;
  perform app.lock_reader_time(auth.uid());
  if app.on_live_call(auth.uid()) then
    raise exception 'you are on another call' using errcode = '55000', hint = 'not_available';
  end if;
  insert into public.reader_capacity (reader_id, during, kind, status)
  values (auth.uid(), tstzrange(now(), now() + interval '1 hour'), 'call', 'live') returning id into cap;
  -- billing.emergencyProgressivePricing, evaluated for the client: the rising rates of the
  -- moment are copied onto the call; off, an emergency call is not billed by the minute
  if app.flag_on_for('billing.emergencyProgressivePricing', r.client_id) then
    steps := (select jsonb_agg(jsonb_build_object('from_minute', e.from_minute, 'per_minute_minor', e.per_minute_minor)
                               order by e.from_minute)
                from public.emergency_rates e);
  end if;
  insert into public.calls (client_id, reader_id, kind, capacity_id, record, max_seconds, rate_steps,
                            per_minute_minor)
  values (r.client_id, auth.uid(), 'emergency', cap, r.record, 3600, steps,
          coalesce((steps -> 0 ->> 'per_minute_minor')::integer, 0))
  returning id into cid;
  insert into public.call_consent_logs (call_id, client_id, client_ip, user_agent, consent_given, recording_consent,
                                        consented_at)
  values (cid, r.client_id, r.client_ip, r.user_agent, true, r.record, r.created_at);
  insert into public.call_events (call_id, event, actor) values (cid, 'created', auth.uid());
  perform app.close_emergency(p_request, 'answered', cid);
  return cid;
end
$$;

-- What the voice adapter needs: the parties' numbers, whether to record.
create or replace function app.call_phones(p_call bigint) returns text[]
language sql stable security definer set search_path = '' as $$
  select array[(select phone from public.profiles where id = c.client_id),
               (select phone from public.profiles where id = c.reader_id)]
    from public.calls c where c.id = p_call
$$;

create or replace function app.call_setup_seconds(p_call bigint) returns double precision
language sql stable security definer set search_path = '' as $$
  select extract(epoch from started_at - created_at)::double precision from public.calls where id = p_call
$$;

create or replace function app.call_record_flag(p_call bigint) returns boolean
language sql stable security definer set search_path = '' as $$
  select record from public.calls where id = p_call
$$;

create or replace function app.monitor_flag(p_call bigint, p_category text, p_note text) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  fid bigint;
begin
  if not coalesce(app.is_staff(), false) then
    raise exception 'only monitors and admins flag calls' using errcode = '42501', hint = 'forbidden';
  end if;
  insert into public.call_flags (call_id, category, source, note, created_by)
  values (p_call, p_category, 'monitor', p_note, auth.uid()) returning id into fid;
  insert into public.call_events (call_id, event, actor) values (p_call, 'flagged', auth.uid());
  return fid;
end
$$;

-- A redacted segment arrives (redaction happens in the API before anything is stored):
-- score it against the rules, flag over the threshold, open an incident on repeated flags.
create or replace function app.analyse_segment(p_call bigint, p_speaker text, p_text text, p_redactions jsonb)
returns table (flags_raised integer, incident_id bigint)
language plpgsql volatile security definer set search_path = '' as $$
declare
  c public.calls;
  rec record;
  raised integer := 0;
  total integer;
  inc bigint;
  cs bigint;
begin
  select * into c from public.calls where id = p_call;
  if c.id is null or not (coalesce(app.is_staff(), false) or c.reader_id = auth.uid() or auth.uid() is null) then
    raise exception 'no such call' using errcode = 'P0002', hint = 'not_found';
  end if;
  insert into public.call_transcripts (call_id, speaker, text_redacted, redactions)
  values (p_call, p_speaker, p_text, coalesce(p_redactions, '{}'::jsonb));
  for rec in select r.category, sum(r.weight) as score from public.safety_rules r
              where p_text ~* r.pattern group by r.category loop
    if rec.score >= (select value from public.safety_settings where name = 'flag_score') then
      insert into public.call_flags (call_id, category, source, score) values (p_call, rec.category, 'analyser', rec.score);
      raised := raised + 1;
    end if;
  end loop;
  select count(*) into total from public.call_flags where call_id = p_call;
  if raised > 0 and total >= (select value from public.safety_settings where name = 'incident_flags')
     and not exists (select 1 from public.safety_incidents where call_id = p_call) then
    insert into public.moderation_cases (source, rule, reason, severity, subject_kind, subject_id, subject_user, summary)
    values ('sweep', 'live_safety', (select category from public.call_flags where call_id = p_call
                                      group by category order by count(*) desc limit 1),
            4, 'call', p_call::text, c.client_id, 'repeated live-safety flags on a call')
    returning id into cs;
    insert into public.safety_incidents (call_id, case_id, flags) values (p_call, cs, total) returning id into inc;
    perform app.audit('safety.incident', 'call', p_call::text, jsonb_build_object('flags', total, 'case', cs));
  end if;
  if raised > 0 then
    perform app.audit('safety.flagged', 'call', p_call::text, jsonb_build_object('flags', raised));
  end if;
  return query select raised, inc;
end
$$;

create or replace function app.retention_purge_calls() returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  cutoff timestamptz := now() - make_interval(days => (select days from public.retention_windows
                                                         where name = 'call_transcripts'));
  t integer;
  f integer;
begin
  delete from public.call_transcripts x where x.at < cutoff
     and not exists (select 1 from public.safety_incidents i where i.call_id = x.call_id and i.status = 'open');
  get diagnostics t = row_count;
  delete from public.call_flags x where x.created_at < cutoff and x.source = 'analyser'
     and not exists (select 1 from public.safety_incidents i where i.call_id = x.call_id and i.status = 'open');
  get diagnostics f = row_count;
  perform app.audit('retention.purged_calls', null, null, jsonb_build_object('call_transcripts', t, 'call_flags', f));
  return jsonb_build_object('call_transcripts', t, 'call_flags', f);
end
$$;

revoke all on function app.retention_purge_calls() from public;
grant execute on function app.retention_purge_calls() to service_role;
revoke all on function app.start_booked_call(bigint), app.start_instant_call(uuid, bigint, inet, text, boolean, text),
  app.call_event(bigint, text, timestamptz, text, text, text), app.raise_emergency(text, inet, text, boolean),
  app.answer_emergency(bigint),
  app.emergency_escalate(timestamptz), app.close_emergency(bigint, text, bigint), app.page_level(bigint, smallint),
  app.analyse_segment(bigint, text, text, jsonb) from public;
grant execute on function app.start_booked_call(bigint), app.start_instant_call(uuid, bigint, inet, text, boolean, text),
  app.raise_emergency(text, inet, text, boolean), app.answer_emergency(bigint), app.close_emergency(bigint, text, bigint),
  app.analyse_segment(bigint, text, text, jsonb) to authenticated;
grant execute on function app.call_event(bigint, text, timestamptz, text, text, text) to samia_calls, service_role;
revoke all on function app.call_phones(bigint), app.call_record_flag(bigint), app.monitor_flag(bigint, text, text),
  app.call_setup_seconds(bigint) from public;
grant execute on function app.call_phones(bigint), app.call_record_flag(bigint), app.call_setup_seconds(bigint)
  to samia_calls;
grant execute on function app.monitor_flag(bigint, text, text) to authenticated;
grant execute on function app.emergency_escalate(timestamptz) to service_role;

select app.lock_down('call_consent_logs', 'call_events', 'reader_status', 'instant_windows', 'emergency_policy', 'emergency_requests', 'emergency_events', 'call_transcripts', 'call_flags', 'safety_rules', 'safety_settings', 'safety_incidents');

-- Calls: the two parties and staff read; every change goes through the functions above.
drop policy if exists calls_read on public.calls;
create policy calls_read on public.calls for select to authenticated
  using ((select app.is_staff()) or (select auth.uid()) in (client_id, reader_id)
         or exists (select 1 from public.orders o where o.id = calls.order_id
                     and (select auth.uid()) in (o.user_id, o.assigned_reader)));

-- Consent: the client records it for their own booking; parties and staff read.
grant select, insert on public.call_consent_logs to authenticated;

drop policy if exists call_consent_read on public.call_consent_logs;
create policy call_consent_read on public.call_consent_logs for select to authenticated
  using ((select app.is_staff()) or client_id = (select auth.uid()));

drop policy if exists call_consent_insert on public.call_consent_logs;
create policy call_consent_insert on public.call_consent_logs for insert to authenticated
  with check (client_id = (select auth.uid()) and call_id is null
              and exists (select 1 from public.bookings b where b.id = booking_id and b.client_id = (select auth.uid())));

grant select, insert on public.call_events to authenticated;

drop policy if exists call_events_monitor on public.call_events;
create policy call_events_monitor on public.call_events for insert to authenticated
  with check ((select app.is_staff()) and actor = (select auth.uid()) and event in ('monitor_joined', 'dropped')
              and provider_event_id is null);

drop policy if exists call_events_read on public.call_events;
create policy call_events_read on public.call_events for select to authenticated
  using ((select app.is_staff()) or exists (select 1 from public.calls c where c.id = call_id
                                             and (select auth.uid()) in (c.client_id, c.reader_id)));

-- Availability: everyone signed in sees who is available; a reader sets their own.
grant select, insert, update (available) on public.reader_status to authenticated;

drop policy if exists reader_status_read on public.reader_status;
create policy reader_status_read on public.reader_status for select to authenticated using (true);

drop policy if exists reader_status_own on public.reader_status;
create policy reader_status_own on public.reader_status for insert to authenticated
  with check (reader_id = (select auth.uid()) and (select app.user_role()) = 'reader');

drop policy if exists reader_status_update on public.reader_status;
create policy reader_status_update on public.reader_status for update to authenticated
  using (reader_id = (select auth.uid()) and (select app.user_role()) = 'reader')
  with check (reader_id = (select auth.uid()));

-- Windows: readers request their own; admins approve or reject.
grant select, insert, update (status, decided_by, decided_at, note) on public.instant_windows to authenticated;

drop policy if exists instant_windows_read on public.instant_windows;
create policy instant_windows_read on public.instant_windows for select to authenticated
  using (reader_id = (select auth.uid()) or (select app.is_staff()));

drop policy if exists instant_windows_request on public.instant_windows;
create policy instant_windows_request on public.instant_windows for insert to authenticated
  with check (reader_id = (select auth.uid()) and status = 'requested' and (select app.user_role()) = 'reader');

drop policy if exists instant_windows_decide on public.instant_windows;
create policy instant_windows_decide on public.instant_windows for update to authenticated
  using ((select app.is_admin())) with check ((select app.is_admin()) and decided_by = (select auth.uid()));

-- The siren: the client sees their own; staff and readers see ringing ones (readers may answer).
grant select on public.emergency_requests, public.emergency_events to authenticated;

drop policy if exists emergency_requests_read on public.emergency_requests;
create policy emergency_requests_read on public.emergency_requests for select to authenticated
  using (client_id = (select auth.uid()) or (select app.is_staff())
         or (status = 'ringing' and (select app.user_role()) = 'reader'));

drop policy if exists emergency_events_read on public.emergency_events;
create policy emergency_events_read on public.emergency_events for select to authenticated
  using ((select app.is_staff()));

grant select on public.emergency_policy to authenticated;

drop policy if exists emergency_policy_staff on public.emergency_policy;
create policy emergency_policy_staff on public.emergency_policy for select to authenticated
  using ((select app.is_staff()));

-- Live safety data: staff only. Clients never see any of it.
grant select on public.call_transcripts, public.call_flags, public.safety_incidents, public.safety_rules,
  public.safety_settings to authenticated;

drop policy if exists call_transcripts_staff on public.call_transcripts;
create policy call_transcripts_staff on public.call_transcripts for select to authenticated using ((select app.is_staff()));

drop policy if exists call_flags_staff on public.call_flags;
create policy call_flags_staff on public.call_flags for select to authenticated using ((select app.is_staff()));

drop policy if exists safety_incidents_staff on public.safety_incidents;
create policy safety_incidents_staff on public.safety_incidents for select to authenticated using ((select app.is_staff()));

drop policy if exists safety_rules_staff on public.safety_rules;
create policy safety_rules_staff on public.safety_rules for select to authenticated using ((select app.is_staff()));

drop policy if exists safety_settings_staff on public.safety_settings;
create policy safety_settings_staff on public.safety_settings for select to authenticated using ((select app.is_staff()));
