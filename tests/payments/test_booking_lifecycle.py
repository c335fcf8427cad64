"""After payment: rescheduling within the snapshot's rules, reminders 24 h and 15 min before,
and the reader no-show refund with its escalation. Time moves by editing the booking (and its
capacity row) in SQL, never by sleeping."""

from __future__ import annotations

import datetime as dt

from tests.helpers import problem, run_jobs
from tests.payments.test_payments import PRICE, hold, pay, reader  # noqa: F401  (module fixture)


def move(api, booking: int, starts_in: dt.timedelta) -> None:  # type: ignore[no-untyped-def]
    """Put a booking (and its capacity row) at now + starts_in, keeping its length."""
    api.sql("""with b as (update bookings set starts_at = now() + %(d)s,
                                         ends_at = now() + %(d)s + (ends_at - starts_at)
                           where id = %(id)s returning capacity_id, starts_at, ends_at)
               update reader_capacity c set during = tstzrange(b.starts_at, b.ends_at)
                 from b where c.id = b.capacity_id""", {"d": starts_in, "id": booking})


def test_reschedule_within_the_rules(client, api, reader) -> None:  # noqa: F811
    c, other = api.user("client"), api.user("client")
    a = hold(client, reader, c)
    pay(client, c, a)
    taken = client.get(f"/bookings/{hold(client, reader, other)}", headers=other.h).json()["starts_at"]
    problem(client.post(f"/bookings/{a}/reschedule", json={"starts_at": taken}, headers=c.h), 409, "slot_taken")
    free = client.get(f"/bookings/{hold(client, reader, other)}", headers=other.h).json()
    client.post(f"/bookings/{free['id']}/cancel", json={}, headers=other.h)  # released: its time is free again
    r = client.post(f"/bookings/{a}/reschedule", json={"starts_at": free["starts_at"]}, headers=c.h)
    assert r.status_code == 200, r.text
    assert r.json()["starts_at"] == free["starts_at"] and r.json()["status"] == "confirmed"
    assert api.sql("select lower(c.during) = b.starts_at, b.reschedules from bookings b "
                   "join reader_capacity c on c.id = b.capacity_id where b.id = %s", (a,)) == [(True, 1)]
    problem(client.post(f"/bookings/{a}/reschedule", json={"starts_at": taken}, headers=c.h), 409,
            "not_reschedulable")
    problem(client.post(f"/bookings/{a}/reschedule", json={"starts_at": taken}, headers=other.h), 404)
    held = hold(client, reader, c)
    api.sql("update bookings set reschedules = 0 where id = %s", (a,))
    problem(client.post(f"/bookings/{held}/reschedule", json={"starts_at": free["starts_at"]}, headers=c.h), 409)


def test_reminders_go_out_once_each(client, api, reader, settings, dsns) -> None:  # noqa: F811
    c = api.user("client")
    b = hold(client, reader, c)
    pay(client, c, b)

    def reminders() -> list[str]:
        rows = api.sql("select params->>'in' from notification_outbox "
                       "where template = 'booking_reminder' and (params->>'booking')::bigint = %s", (b,))
        return sorted(r[0] for r in rows)
    move(api, b, dt.timedelta(hours=23))
    run_jobs(settings, dsns, "booking_reminders")
    assert reminders() == ["24 hours", "24 hours"]  # client and reader
    run_jobs(settings, dsns, "booking_reminders")
    assert reminders() == ["24 hours", "24 hours"]
    move(api, b, dt.timedelta(minutes=10))
    run_jobs(settings, dsns, "booking_reminders")
    assert reminders() == ["15 minutes", "15 minutes", "24 hours", "24 hours"]
    run_jobs(settings, dsns, "booking_reminders")
    assert len(reminders()) == 4


def test_reader_no_show_refunds_the_client_and_escalates(client, api, reader, settings, dsns) -> None:  # noqa: F811
    admin, c = api.user("admin"), api.user("client")
    late, started = hold(client, reader, c), hold(client, reader, c)
    pay(client, c, late)
    pay(client, c, started)
    move(api, late, dt.timedelta(minutes=-45))  # 45 min ago: well past the 10-minute no-show window
    move(api, started, dt.timedelta(minutes=-300))
    api.sql("update bookings set started_at = starts_at + interval '1 minute' where id = %s", (started,))
    run_jobs(settings, dsns, "reader_no_show")
    assert api.sql("select status, refund_minor, cancel_reason from bookings where id = %s", (late,)) \
        == [("cancelled", PRICE, "reader no-show")]
    assert api.sql("select status from bookings where id = %s", (started,)) == [("confirmed",)]
    alerted = {r[0] for r in api.sql("select recipient_id::text from notification_outbox "
                                     "where template = 'reader_no_show' and (params->>'booking')::bigint = %s",
                                     (late,))}
    assert admin.id in alerted and c.id not in alerted
    (role,) = api.sql("select actor_role from audit_log where event = 'booking.reader_no_show' and entity_id = %s",
                      (str(late),))[0]
    assert role == "system:reader_no_show"
    assert api.sql("select coalesce(sum(amount_minor), 0) from ledger_entries") == [(0,)]
