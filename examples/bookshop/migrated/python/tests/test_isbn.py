"""`GET /isbn/{isbn}`: ISBN-10 and ISBN-13 checks; always 200, the verdict in the body."""

from urllib.parse import quote

import pytest
from conftest import assert_json


@pytest.mark.parametrize(
    ("isbn", "isbn13"),
    [
        ("9780306406157", "9780306406157"),
        ("978-0-306-40615-7", "9780306406157"),
        ("0306406152", "9780306406157"),
        ("0-306-40615-2", "9780306406157"),
        ("0 306 40615 2", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("979-10-90636-07-1", "9791090636071"),
        ("--978 0306406157--", "9780306406157"),
    ],
)
def test_a_valid_isbn_gives_its_isbn13(client, isbn, isbn13):
    response = client.get(f"/isbn/{quote(isbn)}")
    assert_json(response, 200, {"isbn": isbn, "valid": True, "isbn13": isbn13})


@pytest.mark.parametrize(
    "isbn",
    [
        "0-306-40615-3",  # wrong ISBN-10 check digit
        "978-0-306-40615-8",  # wrong ISBN-13 check digit
        "9770306406158",  # right check digit, but not a 978/979 prefix
        "X306406152",  # X only as the last ISBN-10 character
        "978030640615X",  # no X in an ISBN-13
        "030640615",  # 9 characters
        "97803064061570",  # 14 characters
        "0.306.40615.2",  # only hyphens and spaces are ignored
        "abc",
        "-",
        "978\u20130306406157",  # an en dash is not a hyphen
        "\u0660306406152",  # an Arabic-Indic digit is not a digit here
    ],
)
def test_an_invalid_isbn_is_not_valid(client, isbn):
    response = client.get(f"/isbn/{quote(isbn)}")
    assert_json(response, 200, {"isbn": isbn, "valid": False, "isbn13": None})
