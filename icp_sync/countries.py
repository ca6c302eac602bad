"""Country names, their common spellings and codes, and the sales region each belongs to.

Regions follow the usual B2B territory split: North America, EMEA, APAC, LATAM.
"""

from __future__ import annotations

from typing import Final

__all__ = ["COUNTRY_ALIASES", "REGION_ALIASES", "REGION_OF"]

NORTH_AMERICA: Final = "North America"
EMEA: Final = "EMEA"
APAC: Final = "APAC"
LATAM: Final = "LATAM"

_COUNTRIES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    # name: (region, aliases: ISO 3166 alpha-2 and alpha-3 codes and frequent variants)
    "United States": (
        NORTH_AMERICA,
        ("us", "usa", "u.s.", "u.s.a.", "united states of america", "america"),
    ),
    "Canada": (NORTH_AMERICA, ("ca", "can")),
    "Mexico": (LATAM, ("mx", "mex", "méxico")),
    "Brazil": (LATAM, ("br", "bra", "brasil")),
    "Argentina": (LATAM, ("ar", "arg")),
    "Chile": (LATAM, ("cl", "chl")),
    "Colombia": (LATAM, ("co", "col")),
    "Peru": (LATAM, ("pe", "per", "perú")),
    "Panama": (LATAM, ("pa", "pan", "panamá")),
    "Costa Rica": (LATAM, ("cr", "cri")),
    "Uruguay": (LATAM, ("uy", "ury")),
    "United Kingdom": (EMEA, ("uk", "gb", "gbr", "great britain", "britain", "england", "u.k.")),
    "Ireland": (EMEA, ("ie", "irl")),
    "Germany": (EMEA, ("de", "deu", "deutschland")),
    "France": (EMEA, ("fr", "fra")),
    "Netherlands": (EMEA, ("nl", "nld", "the netherlands", "holland")),
    "Belgium": (EMEA, ("be", "bel")),
    "Luxembourg": (EMEA, ("lu", "lux")),
    "Switzerland": (EMEA, ("ch", "che", "schweiz")),
    "Austria": (EMEA, ("at", "aut", "österreich")),
    "Spain": (EMEA, ("es", "esp", "españa")),
    "Portugal": (EMEA, ("pt", "prt")),
    "Italy": (EMEA, ("it", "ita", "italia")),
    "Sweden": (EMEA, ("se", "swe", "sverige")),
    "Norway": (EMEA, ("no", "nor", "norge")),
    "Denmark": (EMEA, ("dk", "dnk", "danmark")),
    "Finland": (EMEA, ("fi", "fin", "suomi")),
    "Iceland": (EMEA, ("is", "isl")),
    "Poland": (EMEA, ("pl", "pol", "polska")),
    "Czechia": (EMEA, ("cz", "cze", "czech republic")),
    "Romania": (EMEA, ("ro", "rou")),
    "Hungary": (EMEA, ("hu", "hun")),
    "Greece": (EMEA, ("gr", "grc")),
    "Turkey": (EMEA, ("tr", "tur", "türkiye", "turkiye")),
    "Israel": (EMEA, ("il", "isr")),
    "United Arab Emirates": (EMEA, ("ae", "are", "uae")),
    "Saudi Arabia": (EMEA, ("sa", "sau", "ksa")),
    "Jordan": (EMEA, ("jo", "jor")),
    "Egypt": (EMEA, ("eg", "egy")),
    "South Africa": (EMEA, ("za", "zaf", "rsa")),
    "Nigeria": (EMEA, ("ng", "nga")),
    "Kenya": (EMEA, ("ke", "ken")),
    "Morocco": (EMEA, ("ma", "mar")),
    "Ukraine": (EMEA, ("ua", "ukr")),
    "Estonia": (EMEA, ("ee", "est")),
    "India": (APAC, ("in", "ind")),
    "China": (APAC, ("cn", "chn", "prc", "people's republic of china")),
    "Japan": (APAC, ("jp", "jpn")),
    "South Korea": (APAC, ("kr", "kor", "korea", "republic of korea")),
    "Singapore": (APAC, ("sg", "sgp")),
    "Australia": (APAC, ("au", "aus")),
    "New Zealand": (APAC, ("nz", "nzl")),
    "Indonesia": (APAC, ("id", "idn")),
    "Malaysia": (APAC, ("my", "mys")),
    "Philippines": (APAC, ("ph", "phl", "philipines", "phillipines")),
    "Thailand": (APAC, ("th", "tha")),
    "Vietnam": (APAC, ("vn", "vnm", "viet nam")),
    "Taiwan": (APAC, ("tw", "twn")),
    "Hong Kong": (APAC, ("hk", "hkg")),
    "Pakistan": (APAC, ("pk", "pak")),
    "Bangladesh": (APAC, ("bd", "bgd")),
}

REGION_OF: Final[dict[str, str]] = {name: region for name, (region, _) in _COUNTRIES.items()}
"""Country name -> sales region."""

COUNTRY_ALIASES: Final[dict[str, str]] = {
    alias: name for name, (_, aliases) in _COUNTRIES.items() for alias in (*aliases, name.lower())
}
"""Lower-cased spelling or code -> country name."""

REGION_ALIASES: Final[dict[str, str]] = {
    "na": NORTH_AMERICA,
    "noram": NORTH_AMERICA,
    "north america": NORTH_AMERICA,
    "amer": NORTH_AMERICA,
    "americas": NORTH_AMERICA,
    "emea": EMEA,
    "europe": EMEA,
    "eu": EMEA,
    "apac": APAC,
    "asia": APAC,
    "asia pacific": APAC,
    "asia-pacific": APAC,
    "latam": LATAM,
    "latin america": LATAM,
    "south america": LATAM,
}
"""Lower-cased spelling -> sales region."""
