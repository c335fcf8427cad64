"""Web tests: one data directory per module shared by the served site and the API test
client (so a reader's upload through the API is the file the page serves), the site served
by uvicorn on loopback, and one Chromium for the whole session (Debian's, through
Playwright; no browser download)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from samia import db
from samia.app import create_app
from samia.config import Settings
from samia.jobs import worker
from samia.providers.email import MailboxMailer

from ..conftest import make_settings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-data")


@pytest.fixture(scope="module")
def settings(data_dir: Path, port: int) -> Settings:
    return make_settings(SAMIA_DATA_DIR=str(data_dir), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def site(settings: Settings, dsns: db.Dsns, port: int) -> Iterator[str]:
    """The app on a loopback port, as a browser reaches it (local mailbox and storage)."""
    app = create_app(settings, dsns=dsns)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def off_loop(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread of its own: Playwright's sync API keeps an event loop running in the
    test's thread, and the helpers that create users or run jobs start one with asyncio.run."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def deliver_mail(settings: Settings, dsns: db.Dsns) -> None:
    """Run the job worker over what is queued: the outbox's emails land in the local mailbox."""
    off_loop(lambda: asyncio.run(worker.run(settings, dsns, concurrency=1, wait=False,
                                            mailer=MailboxMailer(settings.data_dir / "mail"))))


def mailbox_link(settings: Settings, to: str, path: str) -> str:
    """The newest link to `path` in a message for `to` in the local mailbox (var/mail/*.eml)."""
    for eml in sorted((settings.data_dir / "mail").glob("*.eml"), reverse=True):
        msg = message_from_bytes(eml.read_bytes())
        if msg["To"] == to:
            body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
            found = re.search(rf"https?://\S+{re.escape(path)}\S*", body)
            if found:
                return found.group(0)
    raise AssertionError(f"no message for {to} with a {path} link")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module that holds every browser test (its contexts are cheap)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A browser page with the checks every visited page gets: axe-core (0 serious or critical
    violations), no CSP violation, and a screenshot at mobile and desktop widths."""

    def __init__(self, page: Any, lang: str) -> None:
        self.page, self.lang, self.csp_errors = page, lang, []
        page.on("console", lambda m: self.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

    def check(self, name: str, *, shots: bool = True) -> None:
        page = self.page
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == self.lang
        assert page.locator("html").get_attribute("dir") == ("rtl" if self.lang == "ar" else "ltr")
        if page.evaluate("typeof axe") == "undefined":
            page.evaluate(AXE.read_text())
        result = page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
                .map(v => ({id: v.id, impact: v.impact,
                            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }""")
        assert result == [], f"axe on {name} ({self.lang}): {json.dumps(result, ensure_ascii=False, indent=1)}"
        assert self.csp_errors == [], f"CSP violations on {name}: {self.csp_errors}"
        if shots:
            folder = SHOTS / self.lang
            folder.mkdir(parents=True, exist_ok=True)
            size = page.viewport_size
            page.evaluate("window.scrollTo(0, 0)")
            for label, (w, h) in (("mobile", (390, 844)), ("desktop", (1280, 900))):
                page.set_viewport_size({"width": w, "height": h})
                page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True, timeout=90_000,
                                animations="disabled", caret="hide")
            page.set_viewport_size(size)
