"""Email delivery. The local default writes RFC 5322 messages to a mailbox directory
(development) or keeps them in memory (tests); the real adapter speaks SMTP with required
STARTTLS (aiosmtplib) to any relay (Amazon SES's SMTP endpoint, Postfix …).

Two interfaces: `send_message(msg) -> Delivery` (the delivery engine's: never raises for what
the server answered) and the older `send(to, subject, text) -> ref`, which raises when a
message does not go (the outbox of today).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol

import aiosmtplib

from samia.config import Settings
from samia.core.problems import AppError
from samia.providers.delivery import Delivery, DeliveryError, report, require

DEFAULT_SENDER = "Samia Tarot <no-reply@samia-tarot.invalid>"
Lang = Literal["en", "ar"]


class EmailChannel(Protocol):
    name: str
    sender: str  # build messages with it (SMTP relays accept only their verified senders)

    async def send_message(self, msg: EmailMessage) -> Delivery:
        """One attempt; the recipient is the message's To (exactly one address)."""


def build_message(*, to: str, subject: str, text: str, key: uuid.UUID, sender: str = DEFAULT_SENDER,
                  lang: Lang = "en", html: str | None = None, unsubscribe_url: str | None = None,
                  unsubscribe_mailto: str | None = None) -> EmailMessage:
    """A UTF-8 message in English or Arabic. The Message-ID comes from the idempotency key,
    so a retried send carries the same id (receivers de-duplicate on it). Marketing passes
    `unsubscribe_url` (an https link that unsubscribes on POST: RFC 8058 one-click) and/or
    `unsubscribe_mailto`; transactional mail passes neither."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(key, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    targets = [f"<{u}>" for u in (unsubscribe_url, f"mailto:{unsubscribe_mailto}" if unsubscribe_mailto else None) if u]
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
        if unsubscribe_url and unsubscribe_url.startswith("https://"):
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, charset="utf-8")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    msg["Content-Language"] = lang  # after the body: set_content() drops Content-* headers
    return msg


def message_id(key: uuid.UUID, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "samia-tarot.invalid"
    return f"<{key}@{domain}>"


def recipient(msg: EmailMessage) -> str:
    to = msg.get_all("To") or []
    if len(to) != 1 or "," in str(to[0]):
        raise ValueError("a message goes to exactly one recipient")
    return str(to[0])


class MemoryMailer:
    """Tests. Addresses in `gone` answer like a mailbox that does not exist (SMTP 550)."""
    name = "memory"
    sender = DEFAULT_SENDER

    def __init__(self, gone: set[str] | None = None) -> None:
        self.sent: list[EmailMessage] = []
        self.gone = gone if gone is not None else set()

    async def send_message(self, msg: EmailMessage) -> Delivery:
        if parseaddr(recipient(msg))[1] in self.gone:
            return Delivery.gone("smtp_550")
        self.sent.append(msg)
        return Delivery.sent(f"mem-{len(self.sent)}")

    async def send(self, to: str, subject: str, text: str) -> str:
        return _legacy(await self.send_message(build_message(to=to, subject=subject, text=text, key=uuid.uuid4())))


class MailboxMailer:
    """Development: one .eml file per message under the data dir."""
    name = "mailbox"
    sender = DEFAULT_SENDER

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send_message(self, msg: EmailMessage) -> Delivery:
        recipient(msg)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = f"{time.time_ns()}"
        (self.directory / f"{ref}.eml").write_bytes(bytes(msg))
        return Delivery.sent(ref)

    async def send(self, to: str, subject: str, text: str) -> str:
        return _legacy(await self.send_message(build_message(to=to, subject=subject, text=text, key=uuid.uuid4())))


class SmtpMailer:
    """One connection per message (TLS required when SMTP_STARTTLS is on, the default)."""
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        require("email over SMTP", [("SMTP_HOST", settings.smtp_host), ("SMTP_FROM", settings.smtp_from),
                                    ("SMTP_PASSWORD", settings.smtp_password or not settings.smtp_username)])
        self.host, self.port, self.sender = settings.smtp_host or "", settings.smtp_port, settings.smtp_from or ""
        self.username = settings.smtp_username or None  # no AUTH without a username (a relay on the host)
        self.password = (settings.smtp_password.get_secret_value() or None) if settings.smtp_password else None
        self.starttls, self.timeout = settings.smtp_starttls, settings.smtp_timeout
        self.tls = ssl.create_default_context()
        if settings.smtp_ca_file is not None:
            self.tls.load_verify_locations(cafile=str(settings.smtp_ca_file))

    async def send_message(self, msg: EmailMessage) -> Delivery:
        recipient(msg)
        if msg["From"] != self.sender:  # the relay sends only as its verified sender
            del msg["From"]
            msg["From"] = self.sender
        ids = {"key": str(msg["Message-ID"] or "").strip("<>").partition("@")[0]}  # the idempotency key
        try:
            reply = await self._transmit(msg)
        except aiosmtplib.SMTPRecipientsRefused as e:
            refused = e.recipients[0]
            return report("email", self.name, classify_recipient(refused.code, refused.message), **ids)
        except aiosmtplib.SMTPResponseException as e:  # sender, data, auth, helo: not the address's fault
            d = Delivery.retry(f"smtp_{e.code}") if 400 <= e.code < 500 else Delivery.failed(f"smtp_{e.code}")
            return report("email", self.name, d, **ids)
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected,
                OSError) as e:
            return report("email", self.name, Delivery.retry(type(e).__name__), **ids)
        except aiosmtplib.SMTPException as e:  # STARTTLS not offered, AUTH not supported …
            return report("email", self.name, Delivery.failed(type(e).__name__), **ids)
        return report("email", self.name, Delivery.sent(server_ref(reply) or msg["Message-ID"]), **ids)

    async def _transmit(self, msg: EmailMessage) -> str:
        client = aiosmtplib.SMTP(hostname=self.host, port=self.port, start_tls=self.starttls, use_tls=False,
                                 tls_context=self.tls if self.starttls else None, timeout=self.timeout)
        sock = None
        try:
            async with client:  # connects (and STARTTLS); QUIT and close on the way out
                sock = client.get_transport_info("socket")
                if self.username and self.password:
                    await client.login(self.username, self.password)
                _errors, reply = await client.send_message(msg)
                return reply
        finally:
            await _closed(sock)

    async def send(self, to: str, subject: str, text: str) -> str:
        msg = build_message(to=to, subject=subject, text=text, key=uuid.uuid4(), sender=self.sender)
        return _legacy(await self.send_message(msg))


# "5.1.1", "5.2.1": the mailbox does not exist or is disabled. 5.7.x is a policy refusal
# (spam, content, our reputation): the address may be fine.
ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
GONE_BASIC = {550, 551, 553}


def classify_recipient(code: int, text: str) -> Delivery:
    """An SMTP answer to RCPT TO for one recipient."""
    if 400 <= code < 500:
        return Delivery.retry(f"smtp_{code}")
    m = ENHANCED.match(text or "")
    if m:
        subject, detail = m.group(2), m.group(3)
        gone = subject == "1" or (subject == "2" and detail == "1")
        return Delivery.gone(f"smtp_{code}") if gone else Delivery.failed(f"smtp_{code}")
    return Delivery.gone(f"smtp_{code}") if code in GONE_BASIC else Delivery.failed(f"smtp_{code}")


_QUEUED = re.compile(r"(?:queued as\s+|^Ok\s+)([\w.@<>-]{6,200})\s*$", re.I)


def server_ref(reply: str) -> str | None:
    """The relay's own id for the message, when it says one ("Ok <id>" from Amazon SES, whose
    bounce notifications carry that id; Postfix's "queued as ABC")."""
    m = _QUEUED.search(reply.strip())
    return m.group(1) if m else None


async def _closed(sock: Any, limit: float = 2.0) -> None:
    """A TLS connection closes in the background (close_notify both ways); wait for the socket
    itself, briefly, so that a send leaves no half-closed connection behind (and no unclosed
    socket when a short-lived event loop, a job run or a test, ends right after it)."""
    deadline = time.monotonic() + limit
    while sock is not None and sock.fileno() != -1 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


def _legacy(d: Delivery) -> str:
    if d.status != "sent" or d.provider_ref is None:
        raise DeliveryError(d)
    return d.provider_ref


def make_mailer(settings: Settings) -> SmtpMailer | MailboxMailer:
    if settings.email_provider == "smtp":
        return SmtpMailer(settings)
    if settings.env == "prod":
        raise AppError(503, "provider_not_configured", "email needs EMAIL_PROVIDER=smtp in production",
                       extra={"setting": "EMAIL_PROVIDER"})
    return MailboxMailer(settings.data_dir / "mail")

