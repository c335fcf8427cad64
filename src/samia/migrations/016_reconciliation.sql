-- Daily reconciliation: payment transactions (what the providers did) against the ledger
-- (what we booked) against bookings (what was bought). Every mismatch is listed.

create or replace function app.reconciliation(p_day date)
returns table (kind text, ref text, detail text)
language plpgsql stable security definer set search_path = '' as $$
begin
  if not app.is_admin() and current_setting('role') <> 'service_role' then
    raise exception 'admin only' using errcode = '42501', hint = 'forbidden';
  end if;
  return query
  with day_txns as (
    select t.* from public.payment_transactions t
     where t.updated_at >= p_day and t.updated_at < p_day + 1 and t.status = 'succeeded'
  ),
  moved as (
    select e.txn_id, sum(e.amount_minor) filter (where e.amount_minor > 0) as credited
      from public.ledger_entries e where e.txn_id in (select id from day_txns) group by e.txn_id
  )
  -- money the provider took or returned with no (or the wrong) ledger movement
  select 'missing_ledger', 'payment:' || t.id, t.provider || ' ' || t.kind || ' of ' || t.amount_minor
    from day_txns t left join moved m on m.txn_id = t.id where m.txn_id is null
  union all
  select 'ledger_amount', 'payment:' || t.id, 'paid ' || t.amount_minor || ', ledger moved ' || m.credited
    from day_txns t join moved m on m.txn_id = t.id
   where m.credited <> t.amount_minor
     and not (t.kind = 'charge' and m.credited = 2 * t.amount_minor)  -- a late payment also credited the wallet
  union all
  -- ledger movements for payments that did not succeed
  select 'ledger_without_payment', 'payment:' || t.id, 'status ' || t.status
    from public.payment_transactions t
   where t.status <> 'succeeded' and t.updated_at >= p_day and t.updated_at < p_day + 1
     and exists (select 1 from public.ledger_entries e where e.txn_id = t.id)
  union all
  -- bookings confirmed that day without a matching paid charge
  select 'booking_unpaid', 'booking:' || b.id, 'price ' || b.price_minor
    from public.bookings b
   where b.status in ('confirmed', 'completed') and b.price_minor > 0
     and coalesce(b.confirmed_at, b.created_at) >= p_day and coalesce(b.confirmed_at, b.created_at) < p_day + 1
     and not exists (select 1 from public.payment_transactions t
                      where t.booking_id = b.id and t.kind = 'charge' and t.status = 'succeeded'
                        and t.amount_minor = b.price_minor)
  union all
  -- movements that do not balance (the commit trigger forbids it; a bypass would show here)
  select 'unbalanced_movement', 'movement:' || e.movement, 'sum ' || sum(e.amount_minor)
    from public.ledger_entries e
   where e.created_at >= p_day and e.created_at < p_day + 1
   group by e.movement having sum(e.amount_minor) <> 0;
end
$$;
revoke all on function app.reconciliation(date) from public;
grant execute on function app.reconciliation(date) to authenticated, service_role;

create or replace function app.reconciliation_totals(p_day date)
returns table (provider text, kind text, payments bigint, amount_minor bigint)
language sql stable security definer set search_path = '' as $$
  select t.provider, t.kind, count(*), sum(t.amount_minor)::bigint
    from public.payment_transactions t
   where t.status = 'succeeded' and t.updated_at >= p_day and t.updated_at < p_day + 1
     and (app.is_admin() or current_setting('role') = 'service_role')
   group by 1, 2 order by 1, 2
$$;
revoke all on function app.reconciliation_totals(date) from public;
grant execute on function app.reconciliation_totals(date) to authenticated, service_role;

-- migrate:down
drop function if exists app.reconciliation(date), app.reconciliation_totals(date);
