"""Refunds at the provider that took the money."""

from __future__ import annotations

from typing import TYPE_CHECKING

from samia.core.problems import AppError

if TYPE_CHECKING:
    from samia.app import Platform


async def refund_at_provider(platform: Platform, provider: str, charge_ref: str, amount_minor: int,
                             idempotency_key: str) -> str:
    """Refund through the processor that made the charge; the key makes a retry safe."""
    processor = platform.square() if provider == "square" else platform.card()
    if processor.name != provider:
        raise AppError(503, "provider_not_configured",
                       f"this charge was made through {provider}, which is not the configured card processor",
                       extra={"setting": "CARD_PROVIDER"})
    return await processor.refund(charge_ref=charge_ref, amount_minor=amount_minor, idempotency_key=idempotency_key)
