"""Email delivery. The local default writes RFC 5322 messages to a mailbox directory
(development) or keeps them in memory (tests); a real SMTP/HTTP adapter slots in here."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path


class MemoryMailer:
    name = "memory"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, to: str, subject: str, text: str) -> str:
        msg = _message(to, subject, text)
        self.sent.append(msg)
        return f"mem-{len(self.sent)}"


class MailboxMailer:
    name = "mailbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, to: str, subject: str, text: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = f"{time.time_ns()}"
        (self.directory / f"{ref}.eml").write_bytes(bytes(_message(to, subject, text)))
        return ref


def _message(to: str, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Samia Tarot <no-reply@samia-tarot.invalid>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(text)
    return msg
