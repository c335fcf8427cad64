"""The project's own tarot card faces: one SVG drawn from a `deck_cards` row (numeral, name,
suit emblem; the major arcana's numeral in Roman figures), and the back. The shapes live in
templates/partials/card.html; this module lays out what goes where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROMAN = ("0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI",
         "XVII", "XVIII", "XIX", "XX", "XXI")
RANKS = {"ace": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
         "ten": 10, "page": 11, "knight": 12, "queen": 13, "king": 14}
COURT = {"page": ("P", "غلام"), "knight": ("Kn", "فارس"), "queen": ("Q", "ملكة"), "king": ("K", "ملك")}
# pip positions (x, y) on the 120 x 200 face for one to ten emblems
PIPS: dict[int, list[tuple[int, int]]] = {
    1: [(60, 96)],
    2: [(60, 66), (60, 126)],
    3: [(60, 56), (60, 96), (60, 136)],
    4: [(40, 66), (80, 66), (40, 126), (80, 126)],
    5: [(40, 62), (80, 62), (60, 96), (40, 130), (80, 130)],
    6: [(40, 56), (80, 56), (40, 96), (80, 96), (40, 136), (80, 136)],
    7: [(40, 52), (80, 52), (60, 74), (40, 96), (80, 96), (40, 140), (80, 140)],
    8: [(40, 50), (80, 50), (40, 80), (80, 80), (40, 112), (80, 112), (40, 142), (80, 142)],
    9: [(40, 50), (80, 50), (40, 80), (80, 80), (60, 96), (40, 112), (80, 112), (40, 142), (80, 142)],
    10: [(40, 48), (80, 48), (60, 64), (40, 80), (80, 80), (40, 112), (80, 112), (60, 128), (40, 144), (80, 144)],
}


# the emblem in the middle of each major arcanum (symbols in templates/partials/card.html)
MAJOR_EMBLEM = ("star", "infinity", "moon", "crown", "crown", "eye", "heart", "wheel", "infinity", "star", "wheel",
                "scales", "eye", "moon", "scales", "eye", "lightning", "star", "moon", "sun", "sun", "wheel")


@dataclass(frozen=True)
class Face:
    numeral: str
    name: str
    suit: str | None           # wands, cups, swords, pentacles; None for the major arcana
    pips: list[tuple[int, int]]
    court: str | None          # the court card's letter
    major: bool
    number: int | None
    emblem: str = "star"


def face(card: dict[str, Any], lang: str) -> Face:
    name = card["name_ar"] if lang == "ar" else card["name_en"]
    if card.get("arcana") == "major":
        n = int(card["code"].rsplit("_", 1)[1])
        return Face(ROMAN[n], name, None, [], None, True, n, MAJOR_EMBLEM[n])
    rank = card["code"].split("_", 1)[1]
    value = RANKS.get(rank, 1)
    if rank in COURT:
        letter = COURT[rank][1 if lang == "ar" else 0]
        return Face(letter, name, card["suit"], [(60, 100)], letter, False, value)
    return Face(str(value), name, card["suit"], PIPS[value], None, False, value)
