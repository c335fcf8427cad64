"""The reader's and the monitor's consoles in a real browser (Debian's Chromium), EN and AR:
a reader uploads the audio of an assigned order and submits it, a monitor approves it by
keyboard alone, and the client's order page plays exactly that file; two monitors racing over
one approval; the emergency siren ringing on the reader's open console; forbidden paths and
forged posts; axe-core and a screenshot of every page at 1280x800 and on a tablet."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from samia.providers.ai import LABEL

from ..helpers import PASSWORD, Api, User, ok
from ..orders.conftest import tone
from .conftest import SHOTS, Page, off_loop

SIZES = (("desktop", 1280, 800), ("tablet", 820, 1180))


class Floor(Page):
    """The shared checks (axe, CSP, lang/dir) and the staff screens' own screenshot sizes."""

    def check(self, name: str, *, shots: bool = True) -> None:
        super().check(name, shots=False)
        if not shots:
            return
        page, folder = self.page, SHOTS / self.lang
        folder.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        for label, w, h in SIZES:
            page.set_viewport_size({"width": w, "height": h})
            page.screenshot(path=str(folder / f"floor-{name}-{label}.png"), full_page=True, timeout=90_000,
                            animations="disabled", caret="hide")
        page.set_viewport_size(size)


@pytest.fixture(scope="module")
def people(api: Api, client: TestClient) -> dict[str, User]:
    users = {r: off_loop(lambda r=r: api.user(r.rstrip("2"))) for r in ("admin", "monitor", "monitor2", "reader",
                                                                         "client")}
    for code in ("tarot", "astro"):
        ok(client.put(f"/admin/services/{code}", json={"price_minor": 0, "currency": "USD"}, headers=users["admin"].h))
    ok(client.put(f"/admin/readers/{users['reader'].id}/services", json={"services": ["tarot", "astro"]},
                  headers=users["admin"].h))
    return users


@pytest.fixture
def browse(browser: Any, site: str, people: dict[str, User]) -> Iterator[Any]:
    """new(lang) → a fresh browser session (its own cookies) in that language."""
    contexts: list[Any] = []

    def new(lang: str) -> Floor:
        ctx = browser.new_context(base_url=site, viewport={"width": 1280, "height": 800}, timezone_id="Asia/Beirut",
                                  extra_http_headers={"Accept-Language": lang})
        contexts.append(ctx)
        return Floor(ctx.new_page(), lang)

    yield new
    for ctx in contexts:
        ctx.close()


def log_in(p: Floor, user: User) -> None:
    page = p.page
    page.goto("/login")
    page.fill("#f-email", user.email)
    page.fill("#f-password", PASSWORD)
    page.click("form#page-form button.primary")
    page.wait_for_url(lambda url: "/login" not in url)
    if page.locator("html").get_attribute("lang") != p.lang:   # the profile speaks the other language
        where = page.url
        page.click("button.chip.lang")
        page.wait_for_url(where)
        assert page.locator("html").get_attribute("lang") == p.lang


def place(client: TestClient, people: dict[str, User], *, service: str = "tarot", question: str = "Will it work?",
          assign: bool = True, **extra: Any) -> int:
    order = ok(client.post("/orders", json={"service": service, "question": question, **extra},
                           headers=people["client"].h), 201)
    if assign:
        ok(client.post(f"/orders/{order['id']}/assign", json={"reader_id": people["reader"].id},
                       headers=people["admin"].h))
    return int(order["id"])


def submitted(client: TestClient, people: dict[str, User], audio: bytes, **kw: Any) -> int:
    """An order whose audio waits for a monitor, made through the API."""
    oid = place(client, people, **kw)
    reader = people["reader"].h
    ok(client.post(f"/orders/{oid}/start", headers=reader))
    ok(client.post(f"/orders/{oid}/output", content=audio, headers={**reader, "Content-Type": "audio/mpeg"}))
    ok(client.post(f"/orders/{oid}/submit", headers=reader))
    return oid


def fetched(p: Floor, selector: str) -> bytes:
    """The bytes the page's audio element plays, fetched with the page's own cookies."""
    src = p.page.locator(selector).get_attribute("src")
    assert src
    r = p.page.request.get(src)
    assert r.status == 200
    return bytes(r.body())


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_reader_records_monitor_approves_client_hears_that_file(lang: str, browse: Any, api: Api,
                                                                client: TestClient, people: dict[str, User]) -> None:
    golden = place(client, people, question="Golden question", is_gold=True)
    oid = place(client, people, question="Will my shop open this spring?")
    audio = tone(2.0, 523 if lang == "en" else 587)
    sha = hashlib.sha256(audio).hexdigest()

    # the reader: signs in, lands on the console, works the queue
    reader = browse(lang)
    log_in(reader, people["reader"])
    page = reader.page
    assert page.url.endswith("/staff")
    assert page.locator(".stat").count() == 4
    reader.check("reader-home")
    page.click("nav a[href='/staff/queue']")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() >= 2
    classes = [rows.nth(i).get_attribute("class") or "" for i in range(rows.count())]
    golds = [i for i, c in enumerate(classes) if "gold" in c]
    assert golds and golds == list(range(len(golds)))          # golden first
    assert any(f"#{golden}" in page.locator("table.queue tbody tr.gold").nth(i).inner_text() for i in golds)
    assert page.locator("[data-due] time").first.inner_text().strip()
    reader.check("reader-queue")
    page.goto(f"/staff/orders/{oid}")
    assert "Will my shop open this spring?" in page.locator(".question").inner_text()
    assert page.locator("ol.mini-spread svg.tarot").count() == 3   # the three cards drawn, face up for the reader
    assert page.locator(".draft-panel .draft-label").inner_text().count("Assistant Draft") <= 1
    page.click("#start")
    page.wait_for_url(f"**/staff/orders/{oid}?done=started*")
    page.set_input_files("#f-audio", files=[{"name": "reading.mp3", "mimeType": "audio/mpeg", "buffer": audio}])
    page.click("#upload")
    page.wait_for_url(f"**/staff/orders/{oid}?done=uploaded*")
    assert hashlib.sha256(fetched(reader, "[data-testid=uploaded-audio]")).hexdigest() == sha   # listen back
    page.click(".draft-panel button")
    page.wait_for_url(f"**/staff/orders/{oid}?done=drafted*")
    assert LABEL in page.locator(".draft pre").first.inner_text()
    reader.check("reader-workspace")
    page.click("#submit")
    page.wait_for_url("**/staff/queue?done=submitted")
    assert api.sql("select status::text from orders where id = %s", (oid,))[0][0] == "awaiting_approval"

    # the monitor: listens, then approves with the keyboard alone
    monitor = browse(lang)
    log_in(monitor, people["monitor"])
    mp = monitor.page
    assert mp.url.endswith("/staff")
    monitor.check("monitor-home")
    mp.goto("/staff/review")
    assert mp.locator(f"a[href='/staff/review/{oid}']").count() == 1
    monitor.check("monitor-review-queue")
    mp.goto(f"/staff/review/{oid}")
    assert hashlib.sha256(fetched(monitor, "[data-testid=review-audio]")).hexdigest() == sha
    assert sha.startswith(mp.locator("code.sha").inner_text())
    monitor.check("monitor-review-item")
    mp.locator("body").focus()
    for _ in range(60):
        mp.keyboard.press("Tab")
        if mp.evaluate("document.activeElement && document.activeElement.id") == "approve":
            break
    else:
        raise AssertionError("the approve button is not reachable with Tab")
    mp.keyboard.press("Enter")
    mp.wait_for_url("**/staff/review?done=approved*")
    monitor.check("monitor-review-done", shots=False)

    # the client's order page plays exactly that file
    shopper = browse(lang)
    log_in(shopper, people["client"])
    shopper.page.goto(f"/my/orders/{oid}")
    assert hashlib.sha256(fetched(shopper, "[data-testid=reading-audio]")).hexdigest() == sha
    assert api.sql("select approved_sha256 from orders where id = %s", (oid,))[0][0] == sha


def test_two_monitors_racing_one_approval_make_one_decision(browse: Any, api: Api, client: TestClient,
                                                            people: dict[str, User]) -> None:
    oid = submitted(client, people, tone(1.0, 660))
    a, b = browse("en"), browse("en")
    log_in(a, people["monitor"])
    log_in(b, people["monitor2"])
    for p in (a, b):
        p.page.goto(f"/staff/review/{oid}")
    # both press Approve at the same moment: the forms submit without waiting for each other
    for p in (a, b):
        p.page.evaluate("document.querySelector('#approve').form.requestSubmit(document.querySelector('#approve'))")
    for p in (a, b):
        p.page.wait_for_load_state("load")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
            "done=approved" in p.page.url or p.page.locator("#decided").count() for p in (a, b)):
        time.sleep(0.2)
    won = [p for p in (a, b) if "done=approved" in p.page.url]
    lost = [p for p in (a, b) if p.page.locator("#decided").count()]
    assert len(won) == 1 and len(lost) == 1, ([p.page.url for p in (a, b)])
    assert "Already decided" in lost[0].page.locator("#decided").inner_text()
    lost[0].check("monitor-already-decided")
    assert api.sql("select count(*) from moderation_actions where target_kind = 'order' and target_id = %s "
                   "and action = 'approve'", (str(oid),))[0][0] == 1
    assert len(api.audit_rows("order.approved", str(oid))) == 1
    assert len(api.audit_rows("order.delivered", str(oid))) == 1


def test_concurrent_approval_posts_make_one_decision(browse: Any, api: Api, client: TestClient,
                                                     people: dict[str, User]) -> None:
    """The same race without a browser's timing: two sessions post at once from two threads."""
    from concurrent.futures import ThreadPoolExecutor

    oid = submitted(client, people, tone(1.0, 700))
    sessions = [browse("en"), browse("en")]
    log_in(sessions[0], people["monitor"])
    log_in(sessions[1], people["monitor2"])
    forms = []
    for p in sessions:
        p.page.goto(f"/staff/review/{oid}")
        forms.append((p.page.context.request, p.page.locator("#approve").locator("xpath=..").locator(
            "input[name=_csrf]").get_attribute("value")))
    # Playwright's request contexts are not thread-safe; post through the raw cookies instead
    import httpx

    base = sessions[0].page.url.split("/staff")[0]
    cookies = [{c["name"]: c["value"] for c in p.page.context.cookies()} for p in sessions]

    def post(i: int) -> int:
        with httpx.Client(base_url=base, cookies=cookies[i], follow_redirects=False) as h:
            return h.post(f"/staff/review/{oid}/approve", data={"_csrf": forms[i][1]}).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(post, range(2)))
    assert codes == [303, 409], codes
    assert api.sql("select count(*) from moderation_actions where target_kind = 'order' and target_id = %s "
                   "and action = 'approve'", (str(oid),))[0][0] == 1
    assert len(api.audit_rows("order.approved", str(oid))) == 1


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_emergency_rings_on_the_reader_console_and_the_board_shows_the_trace(
        lang: str, browse: Any, api: Api, client: TestClient, people: dict[str, User]) -> None:
    ok(client.put("/readers/me/status", json={"available": True}, headers=people["reader"].h))
    reader = browse(lang)
    log_in(reader, people["reader"])
    reader.page.goto("/staff/queue")
    assert reader.page.locator(".ring-overlay").count() == 0

    shopper = browse(lang)
    log_in(shopper, people["client"])
    shopper.page.goto("/")
    shopper.page.check("#f-emergency_consent")
    shopper.page.click(".emergency button.danger")
    shopper.page.wait_for_url("**/my/emergency/*")
    request_id = int(shopper.page.url.rsplit("/", 1)[1])

    started = time.monotonic()
    reader.page.wait_for_selector(".ring-overlay", timeout=10_000)
    assert time.monotonic() - started < 10
    overlay = reader.page.locator(".ring-overlay")
    assert overlay.get_attribute("role") == "alertdialog"
    sound = reader.page.locator("[data-ring-sound]")
    assert sound.get_attribute("loop") is not None
    reader.page.wait_for_function("() => { const a = document.querySelector('[data-ring-sound]'); "
                                  "return a && !a.paused; }", timeout=5_000)
    reader.check("reader-ringing")
    reader.page.click("#answer")
    reader.page.wait_for_url(f"**/staff/emergency/{request_id}/answer")
    assert reader.page.locator("h1").count() == 1
    reader.check("reader-answered")
    status, call_id = api.sql("select status, call_id from emergency_requests where id = %s", (request_id,))[0]
    assert status == "answered" and call_id

    monitor = browse(lang)
    log_in(monitor, people["monitor"])
    monitor.page.goto("/staff/emergency")
    card = monitor.page.locator(".board li.siren").filter(has_text=f"#{request_id}")
    assert card.count() == 1
    assert card.locator(".trace li").count() >= 3     # raised, rang the readers, answered
    assert card.locator(".trace li").last.locator(".trace-event").inner_text() == (
        "Answered by a reader" if lang == "en" else "أجاب قارئ")
    monitor.check("monitor-emergency")

    # live calls: a safety flag from the transcript (redacted), then dropping the call with confirmation
    ok(client.post(f"/calls/{call_id}/transcript", json={"speaker": "client", "text": "call me on +96170123456, "
                                                         "pay me directly"}, headers=people["reader"].h), 201)
    mp = monitor.page
    mp.click("nav a[href='/staff/calls']")
    row = mp.locator("table.queue tbody tr").filter(has_text=f"#{call_id}")
    assert row.count() == 1
    monitor.check("monitor-calls")
    mp.goto(f"/staff/calls/{call_id}/safety")
    transcript = mp.locator(".transcript").inner_text()
    assert "[PHONE]" in transcript and "70123456" not in mp.content()
    monitor.check("monitor-safety")
    mp.goto("/staff/calls")
    row.locator("select[name=category]").select_option("safety")
    row.locator(".flag-form button").click()
    mp.wait_for_url("**/staff/calls?done=flagged")
    assert api.sql("select category from call_flags where call_id = %s and source = 'monitor'",
                   (call_id,)) == [("safety",)]
    row.locator("form[action$='/drop'] button").click()
    mp.wait_for_selector("#confirm-drop")
    assert api.sql("select status from calls where id = %s", (call_id,))[0][0] != "ended"   # not yet
    monitor.check("monitor-drop-confirm")
    mp.click("#confirm-drop")                                          # no note: refused, nothing happens
    assert mp.locator(".error-summary").is_visible()
    assert api.sql("select status from calls where id = %s", (call_id,))[0][0] != "ended"
    mp.fill("#f-note", "Asked for payment outside the platform")
    mp.click("#confirm-drop")
    mp.wait_for_url("**/staff/calls?done=dropped")
    status, reason = api.sql("select status, end_reason from calls where id = %s", (call_id,))[0]
    assert (status, reason) == ("ended", "dropped_by_monitor")
    assert len(api.audit_rows("moderation.drop_call", str(call_id))) == 1


def test_forbidden_paths_and_forged_posts(browse: Any, api: Api, client: TestClient, people: dict[str, User],
                                          site: str) -> None:
    oid = submitted(client, people, tone(1.0, 770), question="A private question for the reader")
    shopper = browse("en")
    log_in(shopper, people["client"])
    for path in ("/staff", "/staff/queue", f"/staff/orders/{oid}", "/staff/review", f"/staff/review/{oid}",
                 "/staff/emergency"):
        r = shopper.page.goto(path)
        assert r is not None and r.status in (403, 404), path
        assert "A private question" not in shopper.page.content()
    shopper.check("forbidden", shots=False)
    monitor = browse("en")
    log_in(monitor, people["monitor"])
    for path in ("/staff/queue", f"/staff/orders/{oid}"):
        r = monitor.page.goto(path)
        assert r is not None and r.status in (403, 404), path
        assert "A private question" not in monitor.page.content()
    assert not monitor.page.locator("nav a[href='/staff/queue']").count()
    reader = browse("en")
    log_in(reader, people["reader"])
    r = reader.page.goto(f"/staff/review/{oid}")
    assert r is not None and r.status in (403, 404)
    assert not reader.page.locator("nav a[href='/staff/review']").count()
    # a forged post: the monitor's own cookies, but no CSRF token
    r2 = monitor.page.request.post(f"{site}/staff/review/{oid}/approve", form={"x": "1"})
    assert r2.status == 403
    r3 = monitor.page.request.post(f"{site}/staff/review/{oid}/approve", form={"_csrf": "forged"})
    assert r3.status == 403
    assert api.sql("select status::text from orders where id = %s", (oid,))[0][0] == "awaiting_approval"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_workspace_of_an_astrology_order_draws_the_natal_wheel(lang: str, browse: Any, client: TestClient,
                                                                    people: dict[str, User]) -> None:
    oid = place(client, people, service="astro", question="What does my chart say about work?",
                birth={"date": "1990-05-15", "time": "14:30", "lat": 33.89, "lon": 35.50, "tz": "Asia/Beirut"})
    reader = browse(lang)
    log_in(reader, people["reader"])
    reader.page.goto(f"/staff/orders/{oid}")
    wheel = reader.page.locator("svg.wheel")
    assert wheel.count() == 1
    assert wheel.locator("text.body-glyph").count() == 10
    assert wheel.locator("text.sign-glyph").count() == 12
    table = reader.page.locator("#chart-title ~ .chart-grid table tbody tr")
    assert table.count() == 12                          # ten bodies, the ascendant and the midheaven
    sun = table.first.inner_text()
    assert ("Taurus" if lang == "en" else "الثور") in sun
    reader.check("reader-astro")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_monitor_claims_a_case_blocks_after_confirming_and_resolves(lang: str, browse: Any, api: Api,
                                                                     client: TestClient,
                                                                     people: dict[str, User]) -> None:
    offender = off_loop(lambda: api.user("client"))
    case = ok(client.post("/reports", json={"subject_kind": "profile", "subject_id": offender.id,
                                            "reason": "harassment", "details": "Rude messages after the call"},
                          headers=people["client"].h), 201)
    monitor = browse(lang)
    log_in(monitor, people["monitor"])
    mp = monitor.page
    mp.click("nav a[href='/staff/cases']")
    item = mp.locator(f"#case-{case['id']}")
    assert "Rude messages" in item.inner_text()
    monitor.check("monitor-cases")
    item.locator(f"form[action='/staff/cases/{case['id']}/claim'] button").click()
    mp.wait_for_url("**/staff/cases?done=claimed*")
    item = mp.locator(f"#case-{case['id']}")
    item.locator("a[href^='/staff/block']").click()
    mp.wait_for_url("**/staff/block?*")
    monitor.check("monitor-block-form")
    mp.select_option("#f-reason", "harassment")
    mp.select_option("#f-duration", "1440")
    mp.fill("#f-note", "Repeated insults to the reader")
    mp.fill("#f-evidence", f"case:{case['id']}")
    mp.click("#review-block")
    mp.wait_for_selector("#confirm-block")
    assert api.sql("select count(*) from user_blocks where user_id = %s", (offender.id,))[0][0] == 0   # not yet
    monitor.check("monitor-block-confirm")
    mp.click("#confirm-block")
    mp.wait_for_url("**/staff/cases?done=blocked")
    rows = api.sql("select reason, ends_at - starts_at, case_id from user_blocks where user_id = %s", (offender.id,))
    assert len(rows) == 1 and rows[0][0] == "harassment" and rows[0][1].total_seconds() == 86400
    assert rows[0][2] == case["id"]
    mp.fill(f"#f-note-{case['id']}", "Blocked for a day")
    mp.locator(f"#case-{case['id']} button[value=resolved]").click()
    mp.wait_for_url("**/staff/cases?done=resolved")
    assert api.sql("select status from moderation_cases where id = %s", (case["id"],))[0][0] == "resolved"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_reader_sets_hours_and_cannot_go_offline_inside_an_approved_window(lang: str, browse: Any, api: Api,
                                                                          client: TestClient,
                                                                          people: dict[str, User]) -> None:
    from zoneinfo import ZoneInfo

    reader = browse(lang)
    log_in(reader, people["reader"])
    page = reader.page
    page.click("nav a[href='/staff/availability']")
    reader.check("reader-availability")
    page.fill("#f-start-1", "17:00")
    page.fill("#f-end-1", "09:00")                      # ends before it starts: refused, nothing saved
    page.click("#save-week")
    assert page.locator(".error-summary").is_visible()
    for d in range(1, 6):
        page.fill(f"#f-start-{d}", "09:00")
        page.fill(f"#f-end-{d}", "17:30")
    page.fill("#f-tz", "Asia/Beirut")
    page.click("#save-week")
    page.wait_for_url("**/staff/availability?done=rules")
    rules = api.sql("select weekday, to_char(start_time, 'HH24:MI'), to_char(end_time, 'HH24:MI'), tz "
                    "from availability_rules where reader_id = %s order by weekday", (people["reader"].id,))
    assert rules == [(d, "09:00", "17:30", "Asia/Beirut") for d in range(1, 6)]

    now = dt.datetime.now(ZoneInfo("Asia/Beirut")).replace(second=0, microsecond=0)
    tomorrow = now + dt.timedelta(days=1)
    page.fill("#f-ex_start", tomorrow.replace(hour=10, minute=0).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#f-ex_end", tomorrow.replace(hour=12, minute=0).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#f-kind", "block")
    page.click("#add-exception")
    page.wait_for_url("**/staff/availability?done=exception")
    assert page.locator("#ex-title ~ ul.list li").count() >= 1

    page.fill("#f-w_start", (now - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#f-w_end", (now + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#request-window")
    page.wait_for_url("**/staff/availability?done=window")
    window = api.sql("select id from instant_windows where reader_id = %s and status = 'requested' "
                     "order by id desc limit 1", (people["reader"].id,))[0][0]
    ok(client.post(f"/admin/instant-windows/{window}/approve", json={}, headers=people["admin"].h))

    page.goto("/staff/availability")
    if page.locator("#go-online").count():
        page.click("#go-online")
        page.wait_for_url("**/staff/availability?done=online")
    page.click("#go-offline")
    refused = page.locator("#refused")
    assert refused.is_visible()
    assert api.sql("select available from reader_status where reader_id = %s", (people["reader"].id,))[0][0] is True
    reader.check("reader-availability-refused")


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_reader_previews_then_saves_the_profile_and_sees_performance(lang: str, browse: Any, api: Api,
                                                                     people: dict[str, User]) -> None:
    reader = browse(lang)
    log_in(reader, people["reader"])
    page = reader.page
    page.click("nav a[href='/staff/profile']")
    page.fill("#f-display_name", f"Layla {lang.upper()}")
    page.fill("#f-specialties", "love, career")
    page.check("#f-lang_ar")
    page.fill("#f-bio_en", "Calm, direct, kind.")
    page.click("#preview")
    assert f"Layla {lang.upper()}" in page.locator("#card-preview").inner_text()
    saved = api.sql("select display_name from reader_profiles where reader_id = %s", (people["reader"].id,))
    assert saved == [] or saved[0][0] != f"Layla {lang.upper()}"          # a preview saves nothing
    reader.check("reader-profile-preview")
    page.click("#save-profile")
    page.wait_for_url("**/staff/profile?done=saved")
    assert api.sql("select display_name, specialties from reader_profiles where reader_id = %s",
                   (people["reader"].id,))[0] == (f"Layla {lang.upper()}", ["love", "career"])
    page.click("nav a[href='/staff/performance']")
    values = page.locator(".stat-value").all_inner_texts()
    delivered = api.sql("select count(*) from orders where assigned_reader = %s and delivered_at > now() - "
                        "interval '30 days'", (people["reader"].id,))[0][0]
    assert len(values) == 5 and values[0].strip("\u2066\u2069") == str(delivered)
    reader.check("reader-performance")


def test_staff_acknowledge_a_ringing_siren_on_the_board(browse: Any, api: Api, client: TestClient,
                                                        people: dict[str, User]) -> None:
    shopper = browse("en")
    log_in(shopper, people["client"])
    shopper.page.goto("/")
    shopper.page.check("#f-emergency_consent")
    shopper.page.click(".emergency button.danger")
    shopper.page.wait_for_url("**/my/emergency/*")
    siren = {"id": int(shopper.page.url.rsplit("/", 1)[1])}
    monitor = browse("en")
    log_in(monitor, people["monitor"])
    mp = monitor.page
    mp.goto("/staff")
    assert mp.locator(".stat.alert").count() >= 1             # a siren rings: the dashboard says so
    mp.goto("/staff/emergency")
    card = mp.locator(".board li.siren-ringing").filter(has_text=f"#{siren['id']}")
    assert card.count() == 1
    card.locator("button").click()
    mp.wait_for_url("**/staff/emergency?done=acknowledged")
    assert api.sql("select status from emergency_requests where id = %s", (siren["id"],))[0][0] == "acknowledged"
    assert len(api.audit_rows("emergency.acknowledged", str(siren["id"]))) == 1
