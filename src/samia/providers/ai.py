"""The readers' assistant: drafts for internal use only (never delivered to a client).

Local default: a deterministic template drafter built from the order's own data (cards,
chart, question). Real: any OpenAI-compatible chat-completions endpoint over httpx."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from samia.config import Settings
from samia.core.problems import AppError

LABEL = "Assistant Draft \u2013 Not for Client Delivery"  # the en dash is part of the label


class Drafter(Protocol):
    name: str

    async def draft(self, brief: dict[str, Any]) -> str: ...


class LocalDrafter:
    name = "local"

    async def draft(self, brief: dict[str, Any]) -> str:
        lines = [f"[{LABEL}]", f"Service: {brief['service']}."]
        if brief.get("question"):
            lines.append("The client asks about: " + brief["question"][:300])
        for card in brief.get("cards", []):
            side = "reversed" if card["is_reversed"] else "upright"
            meaning = card["reversed_en"] if card["is_reversed"] else card["upright_en"]
            lines.append(f"Position {card['card_position']} ({card['position_en']}): {card['name_en']}, {side} — "
                         f"{meaning}.")
        chart = brief.get("chart")
        if chart:
            p = chart["planets"]
            lines.append(f"Sun in {p['sun']['sign']}, Moon in {p['moon']['sign']}"
                         + (f", ascendant {chart['ascendant']['sign']}." if "ascendant" in chart else "."))
            lines.extend(f"{a['a'].capitalize()} {a['aspect']} {a['b'].capitalize()} (orb {a['orb']}°)."
                         for a in chart.get("aspects", [])[:5])
        lines.append("Suggested arc: acknowledge the question, walk through the reading, close with one concrete step.")
        return "\n".join(lines)


class OpenAICompatible:
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        if settings.ai_api_key is None:
            raise AppError(503, "provider_not_configured", "AI_API_KEY is not set", extra={"setting": "AI_API_KEY"})
        self.url = settings.ai_base_url.rstrip("/") + "/chat/completions"
        self.model = settings.ai_model
        self.headers = {"Authorization": f"Bearer {settings.ai_api_key.get_secret_value()}"}

    async def draft(self, brief: dict[str, Any]) -> str:
        local = await LocalDrafter().draft(brief)
        body = {"model": self.model, "temperature": 0.4, "messages": [
            {"role": "system", "content": "You help a professional reader prepare a spoken reading. Write notes for "
                                          "the reader, not for the client."},
            {"role": "user", "content": local}]}
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(self.url, json=body, headers=self.headers)
        if resp.status_code != 200:
            raise AppError(503, "provider_unavailable", f"the AI provider answered {resp.status_code}")
        text = resp.json()["choices"][0]["message"]["content"]
        return f"[{LABEL}]\n{text}"


def make_drafter(settings: Settings) -> Drafter:
    return OpenAICompatible(settings) if settings.ai_provider == "openai" else LocalDrafter()
