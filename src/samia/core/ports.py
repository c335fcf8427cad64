"""The outside services the Platform holds, as the interfaces features call them through.

Each has a local default and a real adapter (DESIGN §4): mail and phone in providers/,
storage in providers/storage.py, card processors in payments/. app.create_app picks them
from the settings; tests pass fakes. Core owns only the shapes, never an adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Mailer(Protocol):
    name: str

    async def send(self, to: str, subject: str, text: str) -> str:
        """Deliver and return a provider reference."""


class SmsSink(Protocol):
    def deliver(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class Started:
    provider: str
    ref: str | None
    code_hash: str | None  # local provider only


class PhoneVerifier(Protocol):
    name: str

    async def start(self, phone: str) -> Started: ...

    async def check(self, phone: str, code: str) -> tuple[str | None, bool | None]:
        """(code_hash to compare in the database, or the provider's own verdict)."""

    def close(self) -> None: ...


class Storage(Protocol):
    name: str

    async def put(self, data: bytes, *, prefix: str, content_type: str, name: str | None = None) -> str: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> list[str]: ...


@dataclass(frozen=True)
class ChargeResult:
    ok: bool | None          # None: waiting on the customer (3-D Secure); the webhook settles it
    ref: str | None
    reason: str = ""
    client_secret: str | None = None


class CardProcessor(Protocol):
    name: str

    async def charge(self, *, amount_minor: int, currency: str, token: str, idempotency_key: str) -> ChargeResult: ...

    async def refund(self, *, charge_ref: str, amount_minor: int, idempotency_key: str) -> str:
        """Refund (part of) a charge; returns the provider's refund reference."""
