"""A real SMTP server on loopback (aiosmtpd) that requires STARTTLS and AUTH, like a relay.

Recipients steer its answers: gone-* → 550 5.1.1 (no such mailbox), busy-* → 451 4.3.0,
spam-* → 550 5.7.1 (a policy refusal: the address may be fine). Accepted messages are kept
with the envelope and whether the session was encrypted and authenticated."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .tls import ServerCert

USER, PASSWORD = "relay-user", "relay-password-123"

# aiosmtpd logs every command it receives (RCPT TO:<address>) at INFO: that is the fake
# relay's log, not ours, and would drown the test that our own logs carry no address.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated: bool


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        local = address.partition("@")[0]
        if local.startswith("gone-"):
            return "550 5.1.1 Recipient address rejected: User unknown"
        if local.startswith("busy-"):
            return "451 4.3.0 Mailbox temporarily unavailable"
        if local.startswith("spam-"):
            return "550 5.7.1 Message refused by policy"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                      session.ssl is not None, bool(session.authenticated)))
        return "250 2.0.0 Ok: queued as 4XyZ9Q1"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 235 or 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cert: ServerCert) -> tuple[Controller, Handler]:
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), server_hostname="localhost",
                            tls_context=cert.server_context(), require_starttls=True,
                            authenticator=_authenticate, auth_required=True, auth_require_tls=True)
    controller.start()
    return controller, handler
