"""ISBN checks for `GET /isbn/{isbn}`: is a string a valid ISBN-10 or ISBN-13, and its ISBN-13.

The endpoint always answers `200` with `content-type: application/json` and the body

    {"isbn": <the path segment as given>, "valid": <bool>, "isbn13": <13 digits or null>}

in that key order. `isbn` is the path segment after percent-decoding, unchanged (hyphens,
spaces and case kept). The rules, applied to that string:

1. Remove every ASCII hyphen `-` and ASCII space ` `; no other character is removed.
2. If 10 characters remain, it is an ISBN-10 when the first 9 are ASCII digits `0`-`9`, the
   last is an ASCII digit or `X`/`x` (worth 10), and sum(d[i] * (10 - i) for i in 0..=9) is
   a multiple of 11. Its ISBN-13 is `978` + the first 9 digits + the EAN-13 check digit.
3. If 13 characters remain, it is an ISBN-13 when all 13 are ASCII digits, it starts with
   `978` or `979`, and sum(d[i] * (1 if i is even else 3) for i in 0..=12) is a multiple of 10.
   Its ISBN-13 is those 13 digits.
4. Anything else is not valid: `"valid": false, "isbn13": null`.

The EAN-13 check digit of 12 digits is (10 - sum(d[i] * (1 if i is even else 3)) % 10) % 10.

Examples: `978-0-306-40615-7` and `0-306-40615-2` are both valid with ISBN-13
`9780306406157`; `0-8044-2957-X` is valid with ISBN-13 `9780804429573`; `0-306-40615-3`
(wrong check digit) and `9770306406158` (right check digit, prefix 977) are not valid.
"""

DIGITS = "0123456789"


def ean13_check_digit(first12: str) -> str:
    """The check digit that completes 12 ASCII digits into a valid EAN-13."""
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def to_isbn13(isbn: str) -> str | None:
    """The ISBN-13 of a valid ISBN-10 or ISBN-13, or None when `isbn` is neither."""
    compact = isbn.replace("-", "").replace(" ", "")
    if len(compact) == 10:
        body, check = compact[:9], compact[9]
        if not all(c in DIGITS for c in body) or check not in DIGITS + "Xx":
            return None
        values = [int(c) for c in body] + [10 if check in "Xx" else int(check)]
        if sum(v * (10 - i) for i, v in enumerate(values)) % 11 != 0:
            return None
        return "978" + body + ean13_check_digit("978" + body)
    if len(compact) == 13:
        if not all(c in DIGITS for c in compact) or compact[:3] not in ("978", "979"):
            return None
        if ean13_check_digit(compact[:12]) != compact[12]:
            return None
        return compact
    return None
