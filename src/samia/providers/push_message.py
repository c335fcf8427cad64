"""What every push channel (Web Push, FCM, APNs, the local sink) sends and answers: one message
in the recipient's language, one delivery result per attempt."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from samia.providers.delivery import Delivery

PushKind = Literal["webpush", "fcm", "apns"]


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    data: Mapping[str, str] = field(default_factory=dict)  # small app data: ids, a deep link; strings only
    critical: bool = False  # sirens, SEV1/2 pages, security: high urgency / priority
    ttl: int = 86_400       # seconds the push service keeps it for an offline device
    lang: Literal["en", "ar"] = "en"


class PushChannel(Protocol):
    name: str
    kind: PushKind

    async def send(self, address: str, message: PushMessage, *, key: uuid.UUID) -> Delivery: ...

    async def aclose(self) -> None: ...
