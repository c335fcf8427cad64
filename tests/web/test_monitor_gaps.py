"""The monitor's appeals page and joining a live call silently, in Debian's Chromium, EN and
AR: an appeal is opened and decided once (a second decision is told "already decided"), a
client never reaches the page, and joining a call shows what the voice provider answered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..helpers import Api, User, ok, problem
from .conftest import off_loop
from .test_floor import browse, log_in, people  # the floor's fixtures and sign-in

__all__ = ["browse", "people"]


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    """Requests come from a real address, as a call's consent log records it."""
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.7", 50000)) as c:
        yield c


def appeal_of_a_block(api: Api, client: TestClient, people: dict[str, User], statement: str) -> int:
    victim = off_loop(lambda: api.user("client"))
    block = ok(client.post("/monitor/block-user", json={"user_id": victim.id, "reason": "spam", "note": "bulk orders"},
                           headers=people["admin"].h), 201)
    appeal = ok(client.post("/appeals", json={"subject_kind": "block", "subject_id": block["id"],
                                              "statement": statement, "appellant_id": victim.id},
                            headers=people["monitor"].h), 201)
    return int(appeal["id"])


def decisions(api: Api, appeal_id: int) -> list[tuple[Any, ...]]:
    return api.sql("select action, reason_code from moderation_actions where target_kind = 'appeal' "
                   "and target_id = %s order by id", (str(appeal_id),))


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_monitor_opens_and_decides_an_appeal_once(lang: str, browse: Any, api: Api, client: TestClient,
                                                   people: dict[str, User], site: str) -> None:
    appeal_id = appeal_of_a_block(api, client, people, f"It was my sister ordering ({lang})")
    monitor = browse(lang)
    log_in(monitor, people["monitor"])
    mp = monitor.page
    mp.click("nav a[href='/staff/appeals']")
    card = mp.locator(f"#appeal-{appeal_id}")
    assert f"It was my sister ordering ({lang})" in card.inner_text()
    assert mp.locator(".tabs a[aria-current=page]").get_attribute("href") == "/staff/appeals?status=submitted"
    monitor.check("monitor-appeals")
    card.locator(f"form[action='/staff/appeals/{appeal_id}/open'] button").click()
    mp.wait_for_url("**/staff/appeals?status=under_review&done=opened*")
    assert api.sql("select status from appeals where id = %s", (appeal_id,)) == [("under_review",)]
    card = mp.locator(f"#appeal-{appeal_id}")
    csrf = card.locator("input[name=_csrf]").get_attribute("value")
    monitor.check("monitor-appeal-review")
    # no rationale: the browser's own check stops it; a post without one is refused with the field named
    r = mp.request.post(f"{site}/staff/appeals/{appeal_id}/resolve", form={"_csrf": csrf or "", "decision": "upheld"})
    assert r.status == 422
    assert api.sql("select status from appeals where id = %s", (appeal_id,)) == [("under_review",)]
    card.locator("input[name=decision][value=upheld]").check()
    mp.fill(f"#f-rationale-{appeal_id}", "Same card, same address")
    card.locator("button.primary").click()
    mp.wait_for_url("**/staff/appeals?status=decided&done=upheld*")
    assert api.sql("select status, decision, rationale from appeals where id = %s", (appeal_id,)) == [
        ("decided", "upheld", "Same card, same address")]
    monitor.check("monitor-appeals-decided")
    # the same decision posted again (a second tab, the back button): "already decided", nothing changes
    mp.go_back()
    mp.wait_for_url("**/staff/appeals?status=under_review*")
    mp.reload()            # the list no longer offers it; a stale form's post is what the race looks like
    r = mp.request.post(f"{site}/staff/appeals/{appeal_id}/resolve",
                        form={"_csrf": csrf or "", "decision": "overturned", f"rationale-{appeal_id}": "Second try"})
    assert r.status == 409
    assert "id=\"decided\"" in r.text()
    assert api.sql("select decision, rationale from appeals where id = %s", (appeal_id,)) == [
        ("upheld", "Same card, same address")]
    assert [a for (a, _) in decisions(api, appeal_id)] == ["appeal_open", "appeal_decide"]
    assert len(api.audit_rows("moderation.appeal_decide", str(appeal_id))) == 1


def test_a_second_reviewer_and_a_client_are_refused(browse: Any, api: Api, client: TestClient,
                                                    people: dict[str, User], site: str) -> None:
    appeal_id = appeal_of_a_block(api, client, people, "A private statement about my block")
    one, two = browse("en"), browse("en")
    log_in(one, people["monitor"])
    log_in(two, people["monitor2"])
    one.page.goto("/staff/appeals")
    two.page.goto("/staff/appeals")
    one.page.locator(f"form[action='/staff/appeals/{appeal_id}/open'] button").click()
    one.page.wait_for_url("**status=under_review*")
    two.page.locator(f"form[action='/staff/appeals/{appeal_id}/open'] button").click()   # too late
    assert two.page.locator(".error-summary").is_visible()
    assert api.sql("select count(*) from moderation_actions where target_kind = 'appeal' and target_id = %s "
                   "and action = 'appeal_open'", (str(appeal_id),)) == [(1,)]
    # a forged post (no CSRF token) changes nothing
    r = one.page.request.post(f"{site}/staff/appeals/{appeal_id}/resolve",
                              form={"decision": "upheld", f"rationale-{appeal_id}": "forged"})
    assert r.status == 403
    assert api.sql("select status from appeals where id = %s", (appeal_id,)) == [("under_review",)]
    # clients never see appeals staff work on: not the page, not the API list
    shopper = browse("en")
    log_in(shopper, people["client"])
    res = shopper.page.goto("/staff/appeals")
    assert res is not None and res.status in (403, 404)
    assert "A private statement" not in shopper.page.content()
    assert not shopper.page.locator("nav a[href='/staff/appeals']").count()
    problem(client.get("/monitor/appeals", headers=people["client"].h), 403)
    reader = browse("en")
    log_in(reader, people["reader"])
    res = reader.page.goto("/staff/appeals")
    assert res is not None and res.status in (403, 404)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_monitor_joins_a_live_call_silently(lang: str, browse: Any, api: Api, client: TestClient,
                                            people: dict[str, User]) -> None:
    ok(client.put("/readers/me/status", json={"available": True}, headers=people["reader"].h))
    siren = ok(client.post("/calls/emergency", json={"consent_given": True, "recording": False},
                           headers=people["client"].h), 201)
    call = ok(client.post(f"/calls/emergency/{siren['id']}/answer", headers=people["reader"].h), 201)
    monitor = browse(lang)
    log_in(monitor, people["monitor"])
    mp = monitor.page
    mp.click("nav a[href='/staff/calls']")
    row = mp.locator("table.queue tbody tr").filter(has_text=f"#{call['id']}")
    row.locator(".join-form button").click()
    mp.wait_for_selector("#joined")
    joined = mp.locator("#joined").inner_text()
    assert f"#{call['id']}" in joined
    assert "local" in joined                                       # the provider that answered
    assert ("Muted, listen only" if lang == "en" else "مكتوم، استماع فقط") in joined
    assert api.sql("select event from call_events where call_id = %s and event = 'monitor_joined'",
                   (call["id"],)) == [("monitor_joined",)]
    assert api.sql("select action from moderation_actions where target_kind = 'call' and target_id = %s",
                   (str(call["id"]),)) == [("join_silent",)]
    assert len(api.audit_rows("moderation.join_silent", str(call["id"]))) == 1
    monitor.check("monitor-call-joined")
    # a call that has ended cannot be joined: the page says so and records nothing
    ok(client.post(f"/monitor/calls/{call['id']}/drop", json={"note": "test over"}, headers=people["monitor"].h))
    r = mp.request.post(f"/staff/calls/{call['id']}/join",
                        form={"_csrf": mp.locator("input[name=_csrf]").first.get_attribute("value") or ""})
    assert r.status == 409
    assert len(api.audit_rows("moderation.join_silent", str(call["id"]))) == 1
