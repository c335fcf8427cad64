-- Rescheduling a confirmed booking (moves its capacity row: the exclusion constraint decides
-- whether the new time is free).

create or replace function app.reschedule_booking(p_booking bigint, p_starts timestamptz) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.bookings;
  len interval;
begin
  select * into b from public.bookings where id = p_booking for update;
  if b.id is null or app.booking_party(p_booking) is distinct from 'client' then
    raise exception 'no such booking' using errcode = 'P0002', hint = 'not_found';
  end if;
  if b.status <> 'confirmed' then
    raise exception 'only a confirmed booking can be rescheduled' using errcode = '55000', hint = 'not_reschedulable';
  end if;
  len := b.ends_at - b.starts_at;
  perform app.lock_reader_time(b.reader_id);
  -- not offered at all → 422; offered but taken by someone else → the exclusion constraint (409)
  if not exists (select 1 from app.free_slots(b.reader_id, b.service_id, p_starts, p_starts + len) f
                  where f.starts_at = p_starts)
     and not exists (select 1 from public.reader_capacity c
                      where c.reader_id = b.reader_id and c.id <> b.capacity_id
                        and c.status in ('held', 'confirmed', 'live') and c.during && tstzrange(p_starts, p_starts + len)) then
    raise exception 'the reader is not available then' using errcode = '23514', hint = 'not_available',
      column = 'starts_at';
  end if;
  update public.reader_capacity set during = tstzrange(p_starts, p_starts + len) where id = b.capacity_id;
  update public.bookings set starts_at = p_starts, ends_at = p_starts + len, reschedules = reschedules + 1,
         reminded = '{}' where id = b.id;
  insert into public.notification_outbox (recipient_id, channel, template, params)
  values (b.reader_id, 'email', 'booking_rescheduled', jsonb_build_object('booking', b.id));
  perform app.audit('booking.reschedule', 'booking', b.id::text,
                    jsonb_build_object('from', b.starts_at, 'to', p_starts));
end
$$;
revoke all on function app.reschedule_booking(bigint, timestamptz) from public;
grant execute on function app.reschedule_booking(bigint, timestamptz) to authenticated;

-- migrate:down
drop function if exists app.reschedule_booking(bigint, timestamptz);
