//! ISBN checks for `GET /isbn/{isbn}`: is a string a valid ISBN-10 or ISBN-13, and its ISBN-13.
//!
//! The rules, as the Python service applies them (`python/app/isbn.py`):
//!
//! 1. Remove every ASCII hyphen `-` and ASCII space ` `; no other character is removed.
//! 2. 10 characters left: an ISBN-10 when the first 9 are ASCII digits, the last is an ASCII
//!    digit or `X`/`x` (worth 10), and `sum(d[i] * (10 - i))` is a multiple of 11. Its
//!    ISBN-13 is `978`, the first 9 digits and the EAN-13 check digit.
//! 3. 13 characters left: an ISBN-13 when all are ASCII digits, it starts with `978` or
//!    `979`, and its EAN-13 check digit is right. Its ISBN-13 is those 13 digits.
//! 4. Anything else is not valid.

use bookshop_shared::IsbnCheck;

/// The answer to `GET /isbn/{isbn}` for the decoded path segment `isbn`.
pub fn check(isbn: &str) -> IsbnCheck {
    let isbn13 = to_isbn13(isbn);
    IsbnCheck {
        isbn: isbn.to_owned(),
        valid: isbn13.is_some(),
        isbn13,
    }
}

/// The ISBN-13 of a valid ISBN-10 or ISBN-13, or `None` when `isbn` is neither.
pub fn to_isbn13(isbn: &str) -> Option<String> {
    // Characters, not bytes: "10 characters" counts any character, ASCII or not.
    let compact: Vec<char> = isbn.chars().filter(|&c| c != '-' && c != ' ').collect();
    match compact.as_slice() {
        [body @ .., check] if body.len() == 9 => isbn10_to_isbn13(body, *check),
        all if all.len() == 13 => checked_isbn13(all),
        _ => None,
    }
}

/// `978` + the 9 body digits + the EAN-13 check digit, when the ISBN-10 checksum holds.
fn isbn10_to_isbn13(body: &[char], check: char) -> Option<String> {
    let body = digits(body)?;
    let check = match check {
        'X' | 'x' => 10,
        other => digit(other)?,
    };
    let weighted: u32 = (1..=10)
        .rev()
        .zip(body.iter().chain([&check]))
        .map(|(weight, value)| weight * value)
        .sum();
    if !weighted.is_multiple_of(11) {
        return None;
    }
    let mut isbn13 = vec![9, 7, 8];
    isbn13.extend(body);
    isbn13.push(ean13_check_digit(&isbn13));
    Some(isbn13.iter().map(|d| d.to_string()).collect())
}

/// The 13 digits themselves, when they carry a 978/979 prefix and a right check digit.
fn checked_isbn13(all: &[char]) -> Option<String> {
    let digits = digits(all)?;
    let prefix_ok = matches!(digits[..3], [9, 7, 8] | [9, 7, 9]);
    (prefix_ok && ean13_check_digit(&digits[..12]) == digits[12]).then(|| all.iter().collect())
}

/// The check digit that completes 12 digits into a valid EAN-13:
/// `(10 - sum(d[i] * (1 if i is even else 3)) % 10) % 10`.
pub fn ean13_check_digit(first12: &[u32]) -> u32 {
    let weighted: u32 = first12
        .iter()
        .zip([1, 3].into_iter().cycle())
        .map(|(digit, weight)| digit * weight)
        .sum();
    (10 - weighted % 10) % 10
}

/// The values of characters that are all ASCII digits, or `None`.
fn digits(chars: &[char]) -> Option<Vec<u32>> {
    chars.iter().map(|&c| digit(c)).collect()
}

/// The value of an ASCII digit `0`-`9`; other digits (Arabic-Indic, fullwidth...) are not.
fn digit(c: char) -> Option<u32> {
    c.to_digit(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(isbn: &str, isbn13: &str) {
        assert_eq!(to_isbn13(isbn).as_deref(), Some(isbn13), "{isbn:?}");
    }

    fn invalid(isbn: &str) {
        assert_eq!(to_isbn13(isbn), None, "{isbn:?}");
    }

    #[test]
    fn an_isbn13_with_978_is_itself() {
        valid("9780306406157", "9780306406157");
        valid("978-0-306-40615-7", "9780306406157");
    }

    #[test]
    fn an_isbn13_with_979_is_itself() {
        valid("979-10-90636-07-1", "9791090636071");
    }

    #[test]
    fn an_isbn10_becomes_its_isbn13() {
        valid("0306406152", "9780306406157");
        valid("0-306-40615-2", "9780306406157");
        valid("0 306 40615 2", "9780306406157");
    }

    #[test]
    fn an_isbn10_may_end_in_x_of_either_case() {
        valid("0-8044-2957-X", "9780804429573");
        valid("080442957x", "9780804429573");
    }

    #[test]
    fn the_ean13_check_digit_wraps_from_10_to_0() {
        // 9781000000030: the weighted sum of its first 12 digits is 50, and 10 - 50 % 10 is 10.
        valid("1000000036", "9781000000030");
        valid("100000029X", "9781000000290");
        valid("0000000000", "9780000000002");
    }

    #[test]
    fn hyphens_and_spaces_anywhere_are_ignored() {
        valid("--978 0306406157--", "9780306406157");
    }

    #[test]
    fn a_wrong_check_digit_is_not_valid() {
        invalid("0-306-40615-3");
        invalid("978-0-306-40615-8");
    }

    #[test]
    fn a_prefix_other_than_978_or_979_is_not_valid_even_with_a_right_check_digit() {
        assert_eq!(ean13_check_digit(&[9, 7, 7, 0, 3, 0, 6, 4, 0, 6, 1, 5]), 8);
        invalid("9770306406158");
        invalid("9800306406156");
    }

    #[test]
    fn x_counts_only_as_the_last_isbn10_character() {
        invalid("X306406152");
        invalid("978030640615X");
        invalid("97803064061X7");
    }

    #[test]
    fn other_lengths_are_not_valid() {
        invalid("");
        invalid("-");
        invalid("030640615");
        invalid("97803064061570");
        invalid("abc");
    }

    #[test]
    fn only_ascii_hyphens_spaces_and_digits_count() {
        invalid("0.306.40615.2");
        invalid("978\u{2013}0306406157"); // an en dash is not a hyphen
        invalid("0\u{a0}306406152"); // nor is a no-break space a space
        invalid("\u{0660}306406152"); // an Arabic-Indic digit is not a digit here
        invalid("\u{ff10}306406152"); // nor is a fullwidth one
    }

    #[test]
    fn the_ean13_check_digit_of_known_isbns() {
        assert_eq!(ean13_check_digit(&[9, 7, 8, 0, 3, 0, 6, 4, 0, 6, 1, 5]), 7);
        assert_eq!(ean13_check_digit(&[9, 7, 8, 0, 8, 0, 4, 4, 2, 9, 5, 7]), 3);
        assert_eq!(ean13_check_digit(&[9, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 2);
    }

    #[test]
    fn check_keeps_the_segment_as_given() {
        let answer = check("0-8044-2957-x");
        assert_eq!(answer.isbn, "0-8044-2957-x");
        assert!(answer.valid);
        assert_eq!(answer.isbn13.as_deref(), Some("9780804429573"));

        let answer = check(" é ");
        assert_eq!(answer.isbn, " é ");
        assert!(!answer.valid);
        assert_eq!(answer.isbn13, None);
    }
}
