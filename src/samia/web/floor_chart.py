"""The natal chart's wheel as drawing instructions for an SVG (the template draws it): twelve
sign sectors, the ascendant on the left as charts are read, and each body at its ecliptic
longitude. Pure geometry over the chart the order already carries; no astrology here."""

from __future__ import annotations

import math
from typing import Any

SIGN_GLYPHS = "♈♉♊♋♌♍♎♏♐♑♒♓"
SIGNS = ("Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo",
         "Libra", "Scorpio", "Sagittarius", "Capricorn", "Aquarius", "Pisces")
BODY_GLYPHS = {"sun": "☉", "moon": "☽", "mercury": "☿", "venus": "♀", "mars": "♂", "jupiter": "♃",
               "saturn": "♄", "uranus": "♅", "neptune": "♆", "pluto": "♇"}
SIZE, CENTRE = 320, 160
OUTER, SIGN_RING, INNER = 150, 122, 70


def _point(longitude: float, start: float, radius: float) -> tuple[float, float]:
    """Ecliptic longitude → SVG point: `start` (the ascendant, else 0° Aries) on the left,
    longitudes increasing counter-clockwise."""
    angle = math.radians(180.0 + (longitude - start))
    return round(CENTRE + radius * math.cos(angle), 1), round(CENTRE - radius * math.sin(angle), 1)


def wheel(chart: dict[str, Any]) -> dict[str, Any]:
    start = float(chart["ascendant"]["longitude"]) if chart.get("ascendant") else 0.0
    spokes, signs = [], []
    for i in range(12):
        outer = _point(i * 30.0, start, OUTER)
        inner = _point(i * 30.0, start, INNER)
        spokes.append({"x1": inner[0], "y1": inner[1], "x2": outer[0], "y2": outer[1]})
        x, y = _point(i * 30.0 + 15.0, start, (OUTER + SIGN_RING) / 2)
        signs.append({"x": x, "y": y, "glyph": SIGN_GLYPHS[i], "name": SIGNS[i]})
    bodies = []
    placed: list[float] = []
    planets = chart.get("planets") or {}
    for name in sorted(planets, key=lambda n: list(BODY_GLYPHS).index(n) if n in BODY_GLYPHS else 99):
        lon = float(planets[name]["longitude"])
        # bodies within 8° of one drawn already step inwards, so that glyphs do not overlap
        crowd = sum(1 for p in placed if min(abs(p - lon), 360 - abs(p - lon)) < 8)
        placed.append(lon)
        x, y = _point(lon, start, SIGN_RING - 16 - crowd * 15)
        tx, ty = _point(lon, start, SIGN_RING)
        bodies.append({"name": name, "glyph": BODY_GLYPHS.get(name, "•"), "x": x, "y": y, "tx": tx, "ty": ty})
    asc = _point(start, start, INNER - 6) if chart.get("ascendant") else None
    return {"glyph_of": BODY_GLYPHS, "size": SIZE, "c": CENTRE, "outer": OUTER, "ring": SIGN_RING, "inner": INNER,
            "spokes": spokes, "signs": signs, "bodies": bodies, "asc": asc}
