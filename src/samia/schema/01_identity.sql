-- Identity and auth: who is calling (the app role comes from the database, never from the
-- token), profiles with their derived fields and the M45 guardrails, the credential store
-- reached only through definer functions, and phone verification.

-- auth.uid() / auth.role() / auth.jwt() exactly as Supabase defines their meaning:
-- read from the transaction-local claims. Created only where Supabase has not.
-- nullif(..., '') because a pooled connection that used the setting before returns ''.
do $$
begin
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'jwt') then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
    $f$;
  end if;
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'uid') then
    create function auth.uid() returns uuid language sql stable as $f$
      select nullif(coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                             nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'), '')::uuid
    $f$;
  end if;
  if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                 where n.nspname = 'auth' and p.proname = 'role') then
    create function auth.role() returns text language sql stable as $f$
      select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                      nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    $f$;
  end if;
end
$$;

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

create or replace trigger trg_profiles_derive before insert or update on public.profiles
  for each row execute function app.profiles_derive();

-- The caller's app role, or null when the caller is anonymous, unknown, deleted or
-- blocked. Policies call it as `(select app.user_role())` so it runs once per statement,
-- and a demotion or a block takes effect on the very next statement.
create or replace function app.user_role() returns text
language sql stable security definer set search_path = '' as $$
  select r.code
    from public.profiles p
    join public.roles r on r.id = p.role_id
   where p.id = auth.uid()
     and p.deleted_at is null
     and (p.blocked_at is null or p.blocked_until <= now())
$$;

create or replace function app.is_staff() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(app.user_role() in ('monitor', 'admin', 'superadmin'), false)
$$;

create or replace function app.is_admin() returns boolean
language sql stable set search_path = '' as $$
  select coalesce(app.user_role() in ('admin', 'superadmin'), false)
$$;

grant execute on function app.user_role(), app.is_staff(), app.is_admin()
  to anon, authenticated, service_role, samia_auth;

-- Adults only on every path that orders, books, pays or calls (seeds 000 M38): a date of birth
-- at least 18 years back, whoever made the profile (sign-up, an admin, the Supabase sync, a row
-- from before this rule), and then the current legal documents accepted (app.legal_outstanding,
-- schema/15_privacy.sql). Null when the user may go ahead, else the refusal's code. Called by
-- the orders, holds, payments and calls rules, and by their RESTRICTIVE policies.
create or replace function app.transact_refusal(p_user uuid) returns text
language plpgsql stable security definer set search_path = '' as $$
declare
  born date;
begin
  select p.dob into born from public.profiles p where p.id = p_user and p.deleted_at is null;
  if born is null or born > (current_date - interval '18 years')::date then
    return 'age_not_verified';
  end if;
  if cardinality(app.legal_outstanding(p_user)) > 0 then
    return 'terms_not_accepted';
  end if;
  return null;
end
$$;

-- The same rule for the caller, raised (403 with the code) by the definer functions that
-- create holds and calls and by the triggers of orders and payment transactions.
create or replace function app.require_may_transact() returns void
language plpgsql stable security definer set search_path = '' as $$
declare
  why text := app.transact_refusal(auth.uid());
begin
  if why = 'age_not_verified' then
    raise exception 'a date of birth showing you are 18 or older is needed first'
      using errcode = '42501', hint = why;
  elsif why is not null then
    raise exception 'accept the current terms of service and privacy policy first'
      using errcode = '42501', hint = why;
  end if;
end
$$;

-- The refusal for the caller alone: what the RESTRICTIVE insert policies ask.
create or replace function app.my_transact_refusal() returns text
language sql stable security definer set search_path = '' as $$
  select app.transact_refusal(auth.uid())
$$;

-- transact_refusal answers for any user: definer functions call it (as the owner); a request
-- asks through my_transact_refusal() and require_may_transact(), for itself.
revoke all on function app.transact_refusal(uuid), app.my_transact_refusal(), app.require_may_transact()
  from public;
revoke execute on function app.transact_refusal(uuid) from authenticated;
grant execute on function app.transact_refusal(uuid) to service_role;
grant execute on function app.my_transact_refusal(), app.require_may_transact() to authenticated, service_role;

-- The caller's country (null for anonymous visitors): what prices and disclosures follow.
create or replace function app.my_country() returns char(2)
language sql stable security definer set search_path = '' as $$
  select country_code from public.profiles where id = auth.uid()
$$;
revoke all on function app.my_country() from public;
grant execute on function app.my_country() to anon, authenticated, service_role;

-- Accounts: the profile guard (seeds 000 M45 in the database), the role-change
-- audit trail, and the credential store reached only through definer functions.

-- Request roles (anon/authenticated) are checked here; the owner, service_role and the
-- app_auth definer functions are trusted paths and pass through.
create or replace function app.profiles_guard() returns trigger
language plpgsql set search_path = '' as $$
declare
  caller text := app.user_role();
begin
  if current_user not in ('anon', 'authenticated') then
    return new;
  end if;
  -- staff accounts carry a date of birth (adults only, checked in profiles_derive), however made
  if new.role_id <> 5 and new.dob is null and new.deleted_at is null
     and (tg_op = 'INSERT' or new.role_id is distinct from old.role_id or old.dob is not null) then
    raise exception 'a staff account needs a date of birth'
      using errcode = '23514', hint = 'dob_required', column = 'dob';
  end if;
  if tg_op = 'INSERT' then
    if new.role_id = 1 and caller is distinct from 'superadmin' then
      raise exception 'only the superadmin may create a superadmin'
        using errcode = '42501', hint = 'superadmin_reserved';
    end if;
    return new;
  end if;

  if caller is null or caller not in ('admin', 'superadmin') then
    -- the country decides prices and payment methods: set once (at sign-up), then by an admin
    if old.country_code is not null and new.country_code is distinct from old.country_code then
      raise exception 'your country is changed by support, not here'
        using errcode = '42501', hint = 'protected_field', column = 'country';
    end if;
    if (new.role_id, new.email, new.email_verified, new.phone, new.phone_verified, new.is_test,
        new.blocked_at, new.blocked_until, new.deleted_at)
       is distinct from
       (old.role_id, old.email, old.email_verified, old.phone, old.phone_verified, old.is_test,
        old.blocked_at, old.blocked_until, old.deleted_at) then
      raise exception 'this field can only be changed by an admin'
        using errcode = '42501', hint = 'protected_field';
    end if;
    return new;
  end if;

  if caller = 'admin' then
    if old.role_id = 1 or new.role_id = 1 then
      raise exception 'only the superadmin may grant, change or revoke the superadmin role'
        using errcode = '42501', hint = 'superadmin_reserved';
    end if;
    if new.deleted_at is distinct from old.deleted_at then
      raise exception 'only the superadmin may delete users'
        using errcode = '42501', hint = 'delete_reserved';
    end if;
  end if;

  if old.role_id = 1 and (new.role_id <> 1 or new.deleted_at is not null)
     and not exists (select 1 from public.profiles p
                      where p.role_id = 1 and p.deleted_at is null and p.id <> old.id) then
    raise exception 'the last superadmin cannot be demoted or deleted'
      using errcode = '42501', hint = 'last_superadmin';
  end if;
  return new;
end
$$;

create or replace trigger trg_profiles_guard before insert or update on public.profiles
  for each row execute function app.profiles_guard();

-- Change log for role/permission edits (who and when come from app.audit).
create or replace function app.profiles_audit() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform app.audit('user.create', 'profile', new.id::text,
                      jsonb_build_object('role', (select code from public.roles where id = new.role_id)));
    return null;
  end if;
  if new.role_id is distinct from old.role_id then
    perform app.audit('user.role_change', 'profile', new.id::text,
                      jsonb_build_object('before', (select code from public.roles where id = old.role_id),
                                         'after', (select code from public.roles where id = new.role_id)));
  end if;
  if new.deleted_at is not null and old.deleted_at is null then
    perform app.audit('user.delete', 'profile', new.id::text, '{}'::jsonb);
  end if;
  if (new.blocked_at, new.blocked_until) is distinct from (old.blocked_at, old.blocked_until) then
    perform app.audit(case when new.blocked_at is null then 'user.unblock' else 'user.block' end,
                      'profile', new.id::text,
                      jsonb_build_object('until', new.blocked_until));
  end if;
  if new.is_test is distinct from old.is_test then
    perform app.audit('user.test_flag', 'profile', new.id::text, jsonb_build_object('after', new.is_test));
  end if;
  -- personal details: which fields changed, never their values
  if (new.first_name, new.last_name, new.dob, new.country, new.birth_place, new.birth_time, new.birth_lat,
      new.birth_lon, new.birth_tz, new.locale, new.email, new.phone)
     is distinct from
     (old.first_name, old.last_name, old.dob, old.country, old.birth_place, old.birth_time, old.birth_lat,
      old.birth_lon, old.birth_tz, old.locale, old.email, old.phone) then
    perform app.audit('profile.update', 'profile', new.id::text, jsonb_build_object('fields', (
      select coalesce(jsonb_agg(k order by k), '[]'::jsonb)
        from jsonb_each(to_jsonb(new)) n join jsonb_each(to_jsonb(old)) o using (key)
        cross join lateral (select n.key as k) x
       where n.value is distinct from o.value
         and n.key in ('first_name', 'last_name', 'dob', 'country', 'birth_place', 'birth_time', 'birth_lat',
                       'birth_lon', 'birth_tz', 'locale', 'email', 'phone'))));
  end if;
  return null;
end
$$;

create or replace trigger trg_profiles_audit after insert or update on public.profiles
  for each row execute function app.profiles_audit();

-- The request prelude's identity check, in the same round trip as set_config: the app
-- role, or null when the user is unknown/blocked/deleted or the session was revoked.
create or replace function app.request_identity() returns text
language sql stable security definer set search_path = '' as $$
  select case
    when auth.uid() is null then null
    when auth.jwt() ? 'sid'
         and not exists (select 1 from app_auth.sessions s
                          where s.id = (auth.jwt() ->> 'sid')::uuid and s.revoked_at is null) then null
    else app.user_role()
  end
$$;

-- authenticator too: the prelude's privilege check happens before set_config switches role.
grant execute on function app.request_identity() to authenticator, anon, authenticated, service_role, samia_auth;

create or replace function app_auth.signup(p_email text, p_password_hash text, p_first text, p_last text,
                                           p_dob date, p_country text, p_locale text default 'en')
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  uid uuid;
begin
  insert into public.profiles (email, first_name, last_name, dob, country, locale)
  values (p_email, p_first, p_last, p_dob, p_country, coalesce(p_locale, 'en'))
  returning id into uid;
  insert into app_auth.credentials (user_id, password_hash) values (uid, p_password_hash);
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (uid, 'email', 'verify_email', jsonb_build_object('issued_at', extract(epoch from now())::bigint));
  return uid;
end
$$;

create or replace function app_auth.set_password_hash(p_user uuid, p_password_hash text) returns void
language sql volatile security definer set search_path = '' as $$
  insert into app_auth.credentials (user_id, password_hash) values (p_user, p_password_hash)
  on conflict (user_id) do update set password_hash = excluded.password_hash, updated_at = now()
$$;

-- Admins create staff accounts with an initial password; never for an existing login.
create or replace function app.set_initial_password(p_user uuid, p_password_hash text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not app.is_admin() then
    raise exception 'admin only' using errcode = '42501', hint = 'forbidden';
  end if;
  insert into app_auth.credentials (user_id, password_hash) values (p_user, p_password_hash);
end
$$;

revoke all on function app.set_initial_password(uuid, text) from public;
grant execute on function app.set_initial_password(uuid, text) to authenticated;

create or replace function app_auth.login_lookup(p_email text)
returns table (user_id uuid, password_hash text, active boolean)
language sql stable security definer set search_path = '' as $$
  select p.id, c.password_hash,
         p.deleted_at is null and (p.blocked_at is null or p.blocked_until <= now())
    from public.profiles p
    join app_auth.credentials c on c.user_id = p.id
   where p.email = p_email::extensions.citext
$$;

create or replace function app_auth.start_session(p_user uuid, p_refresh_hash text, p_ttl interval)
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  sid uuid;
begin
  insert into app_auth.sessions (user_id) values (p_user) returning id into sid;
  insert into app_auth.refresh_tokens (token_hash, session_id, expires_at)
  values (p_refresh_hash, sid, now() + p_ttl);
  return sid;
end
$$;

-- Rotation with reuse detection (OAuth 2.0 Security BCP): presenting a refresh token
-- that was already used revokes the whole session. Within p_grace of its first use, a used
-- token is taken as the same client racing itself (two requests, or two workers, carrying one
-- expired cookie) and gets a sibling token instead (a "reuse interval", as Supabase Auth and
-- Auth0 have): the API passes none, the web session layer a few seconds.
drop function if exists app_auth.rotate_refresh(text, text, interval);
create or replace function app_auth.rotate_refresh(p_old_hash text, p_new_hash text, p_ttl interval,
                                                   p_grace interval default interval '0 seconds')
returns table (status text, user_id uuid, session_id uuid)
language plpgsql volatile security definer set search_path = '' as $$
declare
  t app_auth.refresh_tokens;
  s app_auth.sessions;
begin
  update app_auth.refresh_tokens r set used_at = now()
   where r.token_hash = p_old_hash and r.used_at is null
  returning * into t;
  if t.token_hash is null then
    -- already used (a concurrent rotation committed first: its row lock made this one wait)
    select * into t from app_auth.refresh_tokens r where r.token_hash = p_old_hash;
    if t.token_hash is null then
      return query select 'invalid'::text, null::uuid, null::uuid;
      return;
    end if;
    if t.used_at <= clock_timestamp() - p_grace then
      update app_auth.sessions x set revoked_at = now(), revoke_reason = 'refresh_reuse'
       where x.id = t.session_id and x.revoked_at is null;
      return query select 'reused'::text, null::uuid, t.session_id;
      return;
    end if;
  end if;
  select * into s from app_auth.sessions x where x.id = t.session_id;
  if s.revoked_at is not null or t.expires_at <= now() or app_auth.user_active(s.user_id) is not true then
    return query select 'invalid'::text, null::uuid, null::uuid;
    return;
  end if;
  insert into app_auth.refresh_tokens (token_hash, session_id, expires_at)
  values (p_new_hash, s.id, now() + p_ttl);
  update app_auth.sessions x set last_refreshed_at = now() where x.id = s.id;
  return query select 'ok'::text, s.user_id, s.id;
end
$$;

create or replace function app_auth.user_active(p_user uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select p.deleted_at is null and (p.blocked_at is null or p.blocked_until <= now())
    from public.profiles p where p.id = p_user
$$;

-- Logout: revokes the caller's own session (claims sid), whichever token they hold.
create or replace function app_auth.revoke_session(p_session uuid, p_reason text) returns boolean
language sql volatile security definer set search_path = '' as $$
  update app_auth.sessions set revoked_at = now(), revoke_reason = p_reason
   where id = p_session and user_id = auth.uid() and revoked_at is null
  returning true
$$;

create or replace function app_auth.confirm_email(p_user uuid, p_email text) returns boolean
language sql volatile security definer set search_path = '' as $$
  update public.profiles set email_verified = true
   where id = p_user and email = p_email::extensions.citext and deleted_at is null
  returning true
$$;

-- Phone verification lifecycle. The caller is always auth.uid() (the request's
-- verified token), never an argument.
create or replace function app_auth.phone_start(p_phone text, p_provider text, p_ref text,
                                                p_code_hash text, p_ttl interval) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  vid bigint;
begin
  if auth.uid() is null then
    raise exception 'authentication required' using errcode = '42501', hint = 'unauthenticated';
  end if;
  update public.phone_verifications set status = 'expired'
   where profile_id = auth.uid() and status = 'sent';
  insert into public.phone_verifications (profile_id, phone, provider, status, provider_ref, code_hash, expires_at)
  values (auth.uid(), p_phone, p_provider, 'sent', p_ref, p_code_hash, now() + p_ttl)
  returning id into vid;
  return vid;
end
$$;

-- Checks one attempt. p_code_hash is null when the outside provider already decided
-- (p_approved); the local provider compares HMACs here. At most 5 attempts per code.
create or replace function app_auth.phone_check(p_phone text, p_code_hash text, p_approved boolean default null)
returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  v public.phone_verifications;
  ok boolean;
begin
  select * into v from public.phone_verifications
   where profile_id = auth.uid() and phone = p_phone and status = 'sent'
   order by id desc limit 1
   for update;
  if v.id is null then
    return 'not_found';
  end if;
  if v.expires_at <= now() then
    update public.phone_verifications set status = 'expired' where id = v.id;
    return 'expired';
  end if;
  if v.attempts >= 5 then
    update public.phone_verifications set status = 'failed' where id = v.id;
    return 'too_many_attempts';
  end if;
  ok := coalesce(p_approved, v.code_hash is not null and v.code_hash = p_code_hash);
  update public.phone_verifications
     set attempts = attempts + 1,
         status = case when ok then 'verified' else status end,
         verified_at = case when ok then now() end
   where id = v.id;
  if not ok then
    return 'mismatch';
  end if;
  update public.profiles set phone = p_phone, phone_verified = true where id = auth.uid();
  perform app.audit('phone.verified', 'profile', auth.uid()::text, jsonb_build_object('verification_id', v.id));
  return 'verified';
end
$$;

create or replace function app_auth.caller_country() returns text
language sql stable security definer set search_path = '' as $$
  select country_code from public.profiles where id = auth.uid()
$$;

do $$
declare
  f text;
begin
  foreach f in array array['app_auth.caller_country()',
                           'app_auth.signup(text,text,text,text,date,text,text)',
                           'app_auth.set_password_hash(uuid,text)',
                           'app_auth.login_lookup(text)',
                           'app_auth.start_session(uuid,text,interval)',
                           'app_auth.rotate_refresh(text,text,interval,interval)',
                           'app_auth.user_active(uuid)',
                           'app_auth.revoke_session(uuid,text)',
                           'app_auth.confirm_email(uuid,text)',
                           'app_auth.phone_start(text,text,text,text,interval)',
                           'app_auth.phone_check(text,text,boolean)'] loop
    execute format('revoke all on function %s from public', f);
    execute format('grant execute on function %s to samia_auth, service_role', f);
  end loop;
end
$$;

-- Behind Supabase Auth: mirror auth.users into profiles (seeds 003 §7). Only where
-- Supabase's auth.users exists; never on the embedded cluster.
do $$
begin
  if exists (select from pg_tables where schemaname = 'auth' and tablename = 'users') then
    execute $f$
      create or replace function app.sync_supabase_user() returns trigger
      language plpgsql security definer set search_path = '' as $b$
      declare
        born date;
      begin
        -- a date of birth given at sign-up (user metadata) is kept when it is a valid adult one;
        -- anything else leaves it unset, and such a profile cannot order, book, pay or call
        -- (app.transact_refusal) until the user gives one
        begin
          born := (new.raw_user_meta_data ->> 'dob')::date;
        exception when others then
          born := null;
        end;
        if born > (current_date - interval '18 years')::date then
          born := null;
        end if;
        insert into public.profiles (id, email, email_verified, dob)
        values (new.id, new.email, new.email_confirmed_at is not null, born)
        on conflict (id) do update set email = excluded.email, email_verified = excluded.email_verified;
        return new;
      end
      $b$;
      drop trigger if exists samia_sync_profile on auth.users;
      create trigger samia_sync_profile after insert or update of email, email_confirmed_at on auth.users
        for each row execute function app.sync_supabase_user();
    $f$;
  end if;
end
$$;

select app.lock_down('roles', 'countries', 'profiles', 'phone_verifications');

-- Reference data: readable by everyone, written by admins.
grant select on public.roles, public.countries to anon, authenticated;

drop policy if exists roles_read on public.roles;
create policy roles_read on public.roles for select to anon, authenticated using (true);

drop policy if exists countries_read on public.countries;
create policy countries_read on public.countries for select to anon, authenticated using (true);

-- Profiles: own row; staff read all; admins write (guard trigger applies M45 rules).
grant select, insert, update on public.profiles to authenticated;

drop policy if exists profiles_read on public.profiles;
create policy profiles_read on public.profiles for select to authenticated
  using (id = (select auth.uid()) or (select app.is_staff()));

drop policy if exists profiles_update on public.profiles;
create policy profiles_update on public.profiles for update to authenticated
  using (id = (select auth.uid()) or (select app.is_admin()))
  with check (id = (select auth.uid()) or (select app.is_admin()));

drop policy if exists profiles_admin_insert on public.profiles;
create policy profiles_admin_insert on public.profiles for insert to authenticated
  with check ((select app.is_admin()));

-- Phone verifications: read own (never the code hash); written by app_auth functions.
grant select (id, profile_id, phone, provider, status, attempts, expires_at, created_at, verified_at)
  on public.phone_verifications to authenticated;

drop policy if exists phone_verifications_read on public.phone_verifications;
create policy phone_verifications_read on public.phone_verifications for select to authenticated
  using (profile_id = (select auth.uid()) or (select app.is_admin()));

grant select, delete on app_auth.sessions, app_auth.refresh_tokens to service_role;
