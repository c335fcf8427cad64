"""The scan of events_raw for personal data, run on every test module's database before it is
dropped (tests/conftest.py) and by the analytics acceptance module itself.

It looks for every user's email and phone anywhere in any event value, and for their first and
last names as a whole value (events hold ids, numbers, times and codes; a name would be a code).
A name that is a word of the closed code vocabulary ('Client', 'Reader' — what the test factories
call people) is no information about anyone and is not looked for, nor is a "name" made only of
digits (the fuzzer signs up a '1'; events hold numbers, and a number names nobody)."""

from __future__ import annotations

import re

import psycopg


def pii_findings(owner_dsn: str) -> list[str]:
    with psycopg.connect(owner_dsn) as conn:
        if conn.execute("select to_regclass('public.events_raw')").fetchone() == (None,):
            return []
        vocab = {c for (c,) in conn.execute("select code from event_codes union select code from event_types")}
        people = conn.execute("select id::text, email::text, phone, first_name, last_name from profiles").fetchall()
        events = conn.execute("select * from events_raw").fetchall()
    contained = {s.lower(): who for who, *found in people for s in found[:2] if s}
    names = {n.lower(): who for who, *found in people for n in found[2:]
             if n and n.lower() not in vocab and not n.isdigit()}
    if not events or not (contained or names):
        return []
    pattern = re.compile("|".join(re.escape(s) for s in sorted(contained, key=len, reverse=True)))
    findings = []
    for row in events:
        values = [str(v).lower() for v in row if v is not None]
        hit = pattern.search("\x1f".join(values)) if contained else None
        if hit:
            findings.append(f"event {row[0]} holds {hit.group(0)!r} of user {contained[hit.group(0)]}")
        for name in names.keys() & set(values):
            findings.append(f"event {row[0]} holds the name {name!r} of user {names[name]}")
    return findings
