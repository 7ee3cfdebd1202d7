"""Shipping quotes for `GET /shipping/quote`: the price of sending a parcel, from a rate table.

Request: `GET /shipping/quote?weight_grams=<int>&country=<code>`. The query string is read
raw: `+` is a space, percent-escapes are decoded, a key given twice counts by its last value,
other keys are ignored. The checks run in this order, and the first that fails answers `400`
with `content-type: application/json` and the body `{"detail":"<message>"}`:

1. `weight_grams` absent: `weight_grams is required`.
2. The decoded `weight_grams` is not an optional `-` followed by one or more ASCII digits (so
   the empty string, `+5` (sent as `%2B5`), ` 5` (sent as `+5`), `5.0`, `1e3` and non-ASCII
   digits fail here): `weight_grams must be an integer`.
3. That integer is below 1 or above 30000 (leading zeros allowed, any number of digits, so
   `-0`, `0`, `-7` and `99999999999999999999` fail here, `00250` passes as 250):
   `weight_grams must be between 1 and 30000`.
4. `country` absent: `country is required`.
5. `country` is not exactly two ASCII letters (`A`-`Z`, `a`-`z`; the empty string fails here):
   `country must be a two-letter ISO 3166-1 alpha-2 code`.
6. The upper-cased code is not in `ISO_3166_ALPHA2`: `unknown country code: <CODE>`, with the
   code upper-cased (`?country=zz` gives `unknown country code: ZZ`).

Messages never echo anything but a checked, upper-cased two-letter code.

Otherwise `200` with `content-type: application/json` and, in this key order,

    {"country":"<CODE>","weight_grams":<int>,"zone":"<zone>","price_cents":<int>,"currency":"GBP"}

where `country` is upper-cased and `weight_grams` is the parsed integer (`0100` gives 100).
Bodies are compact JSON as written above (separators `,` and `:`, no spaces).

Zones: `domestic` is `GB`; `eu` is the 27 codes of `EU`; `world` is every other code of
`ISO_3166_ALPHA2` (the 249 officially assigned ISO 3166-1 alpha-2 codes, as in tzdata's
`iso3166.tab`).

Prices in pence (`price_cents`; currency always `GBP`) by weight band, bounds inclusive:

    weight_grams    domestic    eu      world
    1-250           295         650     950
    251-1000        450         950     1550
    1001-2000       695         1450    2450
    2001-5000       995         2250    3950
    5001-10000      1495        3450    5950
    10001-30000     the 5001-10000 price, plus per started 1000 g above 10000 g:
                    100         250     500

So 10001 g to `GB` costs 1495 + 1 * 100 = 1595; 12000 g to `DE` costs 3450 + 2 * 250 = 3950;
30000 g to `US` costs 5950 + 20 * 500 = 15950.
"""

from dataclasses import dataclass

MIN_WEIGHT_GRAMS = 1
MAX_WEIGHT_GRAMS = 30000
CURRENCY = "GBP"

# The 249 officially assigned ISO 3166-1 alpha-2 codes, space-separated.
_ISO_3166_ALPHA2_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL
    GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
    MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD
    SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
# The 27 member states of the European Union.
_EU_CODES = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"

ISO_3166_ALPHA2 = frozenset(_ISO_3166_ALPHA2_CODES.split())
DOMESTIC = "GB"
EU = frozenset(_EU_CODES.split())

# Upper bound (inclusive) of each band, then its price per zone.
BANDS: list[tuple[int, dict[str, int]]] = [
    (250, {"domestic": 295, "eu": 650, "world": 950}),
    (1000, {"domestic": 450, "eu": 950, "world": 1550}),
    (2000, {"domestic": 695, "eu": 1450, "world": 2450}),
    (5000, {"domestic": 995, "eu": 2250, "world": 3950}),
    (10000, {"domestic": 1495, "eu": 3450, "world": 5950}),
]
# Above the last band: its price plus this much per started 1000 g over 10000 g.
HEAVY_SURCHARGE_PER_KG = {"domestic": 100, "eu": 250, "world": 500}


class QuoteError(ValueError):
    """A request the rate table cannot answer; its message is the response's `detail`."""


@dataclass(frozen=True)
class Quote:
    country: str
    weight_grams: int
    zone: str
    price_cents: int
    currency: str = CURRENCY

    def as_json(self) -> dict[str, object]:
        return {
            "country": self.country,
            "weight_grams": self.weight_grams,
            "zone": self.zone,
            "price_cents": self.price_cents,
            "currency": self.currency,
        }


def parse_weight(raw: str | None) -> int:
    """The weight in grams from the raw query value, checked against the allowed range."""
    if raw is None:
        raise QuoteError("weight_grams is required")
    negative = raw.startswith("-")
    digits = raw[1:] if negative else raw
    if not digits or not all(c in "0123456789" for c in digits):
        raise QuoteError("weight_grams must be an integer")
    # Every negative number (and -0) is out of range. The length check comes before int(),
    # which refuses strings of thousands of digits.
    significant = digits.lstrip("0") or "0"
    if (
        negative
        or len(significant) > len(str(MAX_WEIGHT_GRAMS))
        or not MIN_WEIGHT_GRAMS <= int(significant) <= MAX_WEIGHT_GRAMS
    ):
        raise QuoteError(f"weight_grams must be between {MIN_WEIGHT_GRAMS} and {MAX_WEIGHT_GRAMS}")
    return int(significant)


def parse_country(raw: str | None) -> str:
    """The upper-cased ISO 3166-1 alpha-2 code from the raw query value."""
    if raw is None:
        raise QuoteError("country is required")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    if len(raw) != 2 or not all(c in letters for c in raw):
        raise QuoteError("country must be a two-letter ISO 3166-1 alpha-2 code")
    code = raw.upper()
    if code not in ISO_3166_ALPHA2:
        raise QuoteError(f"unknown country code: {code}")
    return code


def zone_of(country: str) -> str:
    if country == DOMESTIC:
        return "domestic"
    if country in EU:
        return "eu"
    return "world"


def price_cents(zone: str, weight_grams: int) -> int:
    for upper, prices in BANDS:
        if weight_grams <= upper:
            return prices[zone]
    last_upper, last_prices = BANDS[-1]
    started_kg = (weight_grams - last_upper + 999) // 1000
    return last_prices[zone] + started_kg * HEAVY_SURCHARGE_PER_KG[zone]


def quote(weight_grams: str | None, country: str | None) -> Quote:
    """A quote from the raw query values; raises `QuoteError` on the first failed check."""
    weight = parse_weight(weight_grams)
    code = parse_country(country)
    zone = zone_of(code)
    return Quote(
        country=code, weight_grams=weight, zone=zone, price_cents=price_cents(zone, weight)
    )
