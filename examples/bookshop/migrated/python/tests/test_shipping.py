"""`GET /shipping/quote`: prices from the rate table, and each 400 with its exact message."""

import pytest
from conftest import assert_json


@pytest.mark.parametrize(
    ("weight", "country", "expected"),
    [
        ("1", "GB", ("GB", 1, "domestic", 295)),
        ("250", "GB", ("GB", 250, "domestic", 295)),
        ("251", "GB", ("GB", 251, "domestic", 450)),
        ("1000", "gb", ("GB", 1000, "domestic", 450)),
        ("2000", "GB", ("GB", 2000, "domestic", 695)),
        ("5000", "GB", ("GB", 5000, "domestic", 995)),
        ("10000", "GB", ("GB", 10000, "domestic", 1495)),
        ("10001", "GB", ("GB", 10001, "domestic", 1595)),
        ("30000", "GB", ("GB", 30000, "domestic", 3495)),
        ("100", "FR", ("FR", 100, "eu", 650)),
        ("1200", "DE", ("DE", 1200, "eu", 1450)),
        ("00250", "ie", ("IE", 250, "eu", 650)),
        ("4999", "Gr", ("GR", 4999, "eu", 2250)),
        ("12000", "DE", ("DE", 12000, "eu", 3950)),
        ("800", "US", ("US", 800, "world", 1550)),
        ("1500", "CH", ("CH", 1500, "world", 2450)),
        ("7000", "NO", ("NO", 7000, "world", 5950)),
        ("30000", "US", ("US", 30000, "world", 15950)),
        ("20500", "AQ", ("AQ", 20500, "world", 11450)),
    ],
)
def test_a_quote_comes_from_the_rate_table(client, weight, country, expected):
    code, grams, zone, price = expected

    response = client.get("/shipping/quote", params={"weight_grams": weight, "country": country})

    assert_json(
        response,
        200,
        {
            "country": code,
            "weight_grams": grams,
            "zone": zone,
            "price_cents": price,
            "currency": "GBP",
        },
    )


def test_a_repeated_key_counts_by_its_last_value_and_other_keys_are_ignored(client):
    response = client.get(
        "/shipping/quote?weight_grams=abc&country=ZZ&weight_grams=300&country=de&express=1"
    )
    assert_json(
        response,
        200,
        {"country": "DE", "weight_grams": 300, "zone": "eu", "price_cents": 950, "currency": "GBP"},
    )


REQUIRED = "weight_grams is required"
NOT_AN_INTEGER = "weight_grams must be an integer"
OUT_OF_RANGE = "weight_grams must be between 1 and 30000"
COUNTRY_REQUIRED = "country is required"
NOT_A_CODE = "country must be a two-letter ISO 3166-1 alpha-2 code"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("", REQUIRED),
        ("country=GB", REQUIRED),
        ("weight_grams=&country=GB", NOT_AN_INTEGER),
        ("weight_grams=abc&country=GB", NOT_AN_INTEGER),
        ("weight_grams=12.5&country=GB", NOT_AN_INTEGER),
        ("weight_grams=1e3&country=GB", NOT_AN_INTEGER),
        ("weight_grams=%2B5&country=GB", NOT_AN_INTEGER),  # "+5"
        ("weight_grams=+5&country=GB", NOT_AN_INTEGER),  # " 5": `+` is a space
        ("weight_grams=5%20&country=GB", NOT_AN_INTEGER),
        ("weight_grams=-&country=GB", NOT_AN_INTEGER),
        ("weight_grams=%D9%A5&country=GB", NOT_AN_INTEGER),  # an Arabic-Indic five
        ("weight_grams=abc", NOT_AN_INTEGER),  # the weight is checked before the country
        ("weight_grams=0&country=GB", OUT_OF_RANGE),
        ("weight_grams=-0&country=GB", OUT_OF_RANGE),
        ("weight_grams=-7&country=GB", OUT_OF_RANGE),
        ("weight_grams=30001&country=GB", OUT_OF_RANGE),
        ("weight_grams=99999999999999999999999&country=GB", OUT_OF_RANGE),
        ("weight_grams=0&country=ZZ", OUT_OF_RANGE),
        ("weight_grams=100", COUNTRY_REQUIRED),
        ("weight_grams=100&country=", NOT_A_CODE),
        ("weight_grams=100&country=G", NOT_A_CODE),
        ("weight_grams=100&country=GBR", NOT_A_CODE),
        ("weight_grams=100&country=G1", NOT_A_CODE),
        ("weight_grams=100&country=%C3%84T", NOT_A_CODE),  # "ÄT"
        ("weight_grams=100&country=zz", "unknown country code: ZZ"),
        ("weight_grams=100&country=EU", "unknown country code: EU"),
        ("weight_grams=100&country=UK", "unknown country code: UK"),
    ],
)
def test_an_unusable_query_answers_400_with_its_reason(client, query, detail):
    response = client.get(f"/shipping/quote?{query}")
    assert_json(response, 400, {"detail": detail})
