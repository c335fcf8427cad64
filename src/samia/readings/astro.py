"""Natal chart from the JPL DE421 ephemeris (skyfield + skyfield-data, offline).

Positions are geocentric, apparent, on the true ecliptic and equinox of date (tropical
zodiac). The ascendant and midheaven come from the local apparent sidereal time and the
true obliquity; houses are whole-sign houses from the ascendant (stated in the result).
Without a birth time the chart is cast for local noon and says so: no ascendant, no
houses, and the Moon's sign is flagged when it changes sign that day.
"""

from __future__ import annotations

import atexit
import datetime as dt
import math
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from skyfield.api import Loader, Timescale
from skyfield.framelib import ecliptic_frame
from skyfield.nutationlib import iau2000b_radians, mean_obliquity
from skyfield_data import get_skyfield_data_path

SIGNS = ("Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo",
         "Libra", "Scorpio", "Sagittarius", "Capricorn", "Aquarius", "Pisces")
BODIES = {"sun": "sun", "moon": "moon", "mercury": "mercury", "venus": "venus", "mars": "mars",
          "jupiter": "jupiter barycenter", "saturn": "saturn barycenter", "uranus": "uranus barycenter",
          "neptune": "neptune barycenter", "pluto": "pluto barycenter"}
# major aspects: angle and orb in degrees
ASPECTS = {"conjunction": (0, 8.0), "sextile": (60, 6.0), "square": (90, 7.0), "trine": (120, 8.0),
           "opposition": (180, 8.0)}
HOUSE_SYSTEM = "whole_sign"


@dataclass(frozen=True)
class Birth:
    date: dt.date
    time: dt.time | None = None
    lat: float | None = None
    lon: float | None = None
    tz: str | None = None


@cache
def _sky() -> tuple[Timescale, Any]:
    with warnings.catch_warnings():  # it warns that its Earth-orientation table aged; the builtin one is used
        warnings.simplefilter("ignore", RuntimeWarning)
        path = get_skyfield_data_path()
    load = Loader(path, expire=False)
    eph = load("de421.bsp")
    atexit.register(eph.close)
    return load.timescale(builtin=True), eph


def sign_of(longitude: float) -> tuple[str, float]:
    lon = float(longitude) % 360.0
    return SIGNS[int(lon // 30)], round(lon % 30, 2)


def _longitudes(t: Any) -> dict[str, float]:
    _, eph = _sky()
    earth = eph["earth"]
    out = {}
    for name, target in BODIES.items():
        _, lon, _ = earth.at(t).observe(eph[target]).apparent().frame_latlon(ecliptic_frame)
        out[name] = float(lon.degrees)
    return out


def _angles(t: Any, lat: float, lon: float) -> tuple[float, float]:
    """(ascendant, midheaven) ecliptic longitudes in degrees."""
    ramc = math.radians((t.gast * 15.0 + lon) % 360.0)
    _dpsi, deps = iau2000b_radians(t)
    eps = math.radians(mean_obliquity(t.tdb) / 3600.0) + deps
    phi = math.radians(lat)
    asc = math.degrees(math.atan2(math.cos(ramc), -(math.sin(ramc) * math.cos(eps) + math.tan(phi) * math.sin(eps))))
    mc = math.degrees(math.atan2(math.sin(ramc), math.cos(ramc) * math.cos(eps)))
    return asc % 360.0, mc % 360.0


def _aspects(lons: dict[str, float]) -> list[dict[str, Any]]:
    names = list(lons)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            sep = abs(lons[a] - lons[b]) % 360.0
            sep = 360.0 - sep if sep > 180.0 else sep
            for aspect, (angle, orb) in ASPECTS.items():
                if abs(sep - angle) <= orb:
                    found.append({"a": a, "b": b, "aspect": aspect, "orb": round(float(abs(sep - angle)), 2)})
    return found


def chart(birth: Birth) -> dict[str, Any]:
    ts, _ = _sky()
    clock = birth.time if birth.tz is not None else None  # a wall-clock time means nothing without its zone
    known_time = clock is not None
    zone = ZoneInfo(birth.tz) if birth.tz else dt.UTC
    local = dt.datetime.combine(birth.date, clock if clock is not None else dt.time(12, 0), tzinfo=zone)
    t = ts.from_datetime(local.astimezone(dt.UTC))
    lons = _longitudes(t)
    planets: dict[str, dict[str, Any]] = {
        name: dict(zip(("sign", "degree"), sign_of(lon), strict=True)) | {"longitude": round(lon, 3)}
        for name, lon in lons.items()}
    result: dict[str, Any] = {
        "ephemeris": "JPL DE421", "zodiac": "tropical", "birth_time_known": known_time,
        "cast_for_utc": local.astimezone(dt.UTC).isoformat(), "planets": planets, "aspects": _aspects(lons),
    }
    if not known_time:
        # the Moon moves ~13° a day: say when the sign is not certain without a time
        day_start = ts.from_datetime(dt.datetime.combine(birth.date, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC))
        day_end = ts.from_datetime(dt.datetime.combine(birth.date, dt.time(23, 59), tzinfo=zone).astimezone(dt.UTC))
        first, last = (sign_of(_moon(x))[0] for x in (day_start, day_end))
        result["moon_sign_certain"] = first == last
        result["note"] = "no birth time: cast for local noon, without ascendant or houses"
        return result
    result["moon_sign_certain"] = True
    if birth.lat is None or birth.lon is None:
        result["note"] = "no birth place: without ascendant or houses"
        return result
    asc, mc = _angles(t, birth.lat, birth.lon)
    first_house = int(asc // 30)
    result.update({
        "house_system": HOUSE_SYSTEM,
        "ascendant": dict(zip(("sign", "degree"), sign_of(asc), strict=True)) | {"longitude": round(asc, 3)},
        "midheaven": dict(zip(("sign", "degree"), sign_of(mc), strict=True)) | {"longitude": round(mc, 3)},
        "houses": [{"house": i + 1, "sign": SIGNS[(first_house + i) % 12]} for i in range(12)],
    })
    for body in planets.values():
        body["house"] = (int(body["longitude"] // 30) - first_house) % 12 + 1
    return result


def _moon(t: Any) -> float:
    _, eph = _sky()
    _, lon, _ = eph["earth"].at(t).observe(eph["moon"]).apparent().frame_latlon(ecliptic_frame)
    return float(lon.degrees)


def summary(c: dict[str, Any]) -> str:
    """One line for the reader's queue."""
    p = c["planets"]
    parts = [f"Sun {p['sun']['sign']}", f"Moon {p['moon']['sign']}" + ("" if c["moon_sign_certain"] else "?")]
    if "ascendant" in c:
        parts.append(f"Asc {c['ascendant']['sign']}")
    return ", ".join(parts)
