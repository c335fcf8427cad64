"""PII redaction for call transcripts, before anything is stored: IBANs (ISO 13616 mod-97),
card numbers (Luhn), email addresses, and phone numbers (libphonenumber's matcher). Only
the redacted text and the count of each kind ever leave this function."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import phonenumbers

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
REGIONS = ("LB", "US", "GB", "AE", "SA", "EG", "FR")  # numbers written without a country code


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def redact(text: str) -> tuple[str, dict[str, int]]:
    counts: Counter[str] = Counter()

    def sub(pattern: re.Pattern[str], label: str, check: Callable[[str], bool] | None = None) -> None:
        nonlocal text

        def one(m: re.Match[str]) -> str:
            raw = m.group(0)
            if check is not None and not check(raw):
                return raw
            counts[label] += 1
            return f"[{label}]"
        text = pattern.sub(one, text)

    sub(IBAN, "IBAN", iban_valid)
    sub(EMAIL, "EMAIL")
    sub(CARD, "CARD", lambda raw: luhn(re.sub(r"\D", "", raw)))
    for region in REGIONS:
        found = list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))
        for match in reversed(found):
            text = text[:match.start] + "[PHONE]" + text[match.end:]
            counts["PHONE"] += 1
    return text, dict(counts)
