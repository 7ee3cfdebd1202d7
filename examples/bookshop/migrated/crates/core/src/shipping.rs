//! Shipping quotes for `GET /shipping/quote`: the price of sending a parcel, from a rate table.
//!
//! The rules, as the Python service applies them (`python/app/shipping.py`): the raw query
//! values are checked in a fixed order, and the first check that fails is the answer, as a
//! [`QuoteError`] whose message is the response's `detail`:
//!
//! 1. `weight_grams` absent.
//! 2. `weight_grams` not an optional `-` followed by one or more ASCII digits.
//! 3. That integer below 1 or above 30000 (leading zeros allowed, any number of digits).
//! 4. `country` absent.
//! 5. `country` not exactly two ASCII letters.
//! 6. The upper-cased code not one of the 249 ISO 3166-1 alpha-2 codes.
//!
//! Then the zone (`GB` domestic, the 27 EU member states `eu`, any other code `world`)
//! and the weight band give the price in pence; above 10 kg, the 5001-10000 g price plus a
//! surcharge per started 1000 g over 10000 g.

use std::fmt;

use bookshop_shared::{Currency, ShippingQuote, Zone};

pub const MIN_WEIGHT_GRAMS: u32 = 1;
pub const MAX_WEIGHT_GRAMS: u32 = 30_000;

/// The 249 officially assigned ISO 3166-1 alpha-2 codes (as in tzdata's `iso3166.tab`),
/// sorted, so a binary search finds them.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The one domestic country.
pub const DOMESTIC: &str = "GB";

/// The 27 member states of the European Union, sorted.
pub const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// The price of each zone in one weight band, in pence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub domestic: u32,
    pub eu: u32,
    pub world: u32,
}

impl Prices {
    pub const fn of(&self, zone: Zone) -> u32 {
        match zone {
            Zone::Domestic => self.domestic,
            Zone::Eu => self.eu,
            Zone::World => self.world,
        }
    }
}

/// The upper bound (inclusive, in grams) of each weight band, then its prices; each band
/// starts one gram above the previous one's bound.
pub const BANDS: [(u32, Prices); 5] = [
    // upper bound, domestic, eu, world
    band(250, 295, 650, 950),
    band(1000, 450, 950, 1550),
    band(2000, 695, 1450, 2450),
    band(5000, 995, 2250, 3950),
    band(10_000, 1495, 3450, 5950),
];

const fn band(upper: u32, domestic: u32, eu: u32, world: u32) -> (u32, Prices) {
    (
        upper,
        Prices {
            domestic,
            eu,
            world,
        },
    )
}

/// Above the last band: its price plus this much per started 1000 g over its bound.
pub const HEAVY_SURCHARGE_PER_KG: Prices = Prices {
    domestic: 100,
    eu: 250,
    world: 500,
};

/// A request the rate table cannot answer. Its `Display` is the response's `detail`, and
/// never shows anything but a checked, upper-cased two-letter code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteError {
    WeightRequired,
    WeightNotAnInteger,
    WeightOutOfRange,
    CountryRequired,
    CountryNotACode,
    /// Two ASCII letters, upper-cased, that name no country.
    UnknownCountry(String),
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WeightRequired => f.write_str("weight_grams is required"),
            Self::WeightNotAnInteger => f.write_str("weight_grams must be an integer"),
            Self::WeightOutOfRange => write!(
                f,
                "weight_grams must be between {MIN_WEIGHT_GRAMS} and {MAX_WEIGHT_GRAMS}"
            ),
            Self::CountryRequired => f.write_str("country is required"),
            Self::CountryNotACode => {
                f.write_str("country must be a two-letter ISO 3166-1 alpha-2 code")
            }
            Self::UnknownCountry(code) => write!(f, "unknown country code: {code}"),
        }
    }
}

impl std::error::Error for QuoteError {}

/// A quote from the raw (decoded) query values, or the first check that fails.
pub fn quote(
    weight_grams: Option<&str>,
    country: Option<&str>,
) -> Result<ShippingQuote, QuoteError> {
    let weight_grams = parse_weight(weight_grams)?;
    let country = parse_country(country)?;
    let zone = zone_of(&country);
    Ok(ShippingQuote {
        country,
        weight_grams,
        zone,
        price_cents: price_cents(zone, weight_grams),
        currency: Currency::Gbp,
    })
}

/// The weight in grams from the raw query value, checked against the allowed range.
pub fn parse_weight(raw: Option<&str>) -> Result<u32, QuoteError> {
    let raw = raw.ok_or(QuoteError::WeightRequired)?;
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, raw),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuoteError::WeightNotAnInteger);
    }
    // Every negative number (and -0) is out of range. Leading zeros do not count, and more
    // significant digits than the maximum has are out of range whatever they say, so a
    // string of thousands of digits is never parsed.
    let significant = digits.trim_start_matches('0');
    let max_digits = MAX_WEIGHT_GRAMS.to_string().len();
    if negative || significant.len() > max_digits {
        return Err(QuoteError::WeightOutOfRange);
    }
    // At most 5 ASCII digits (or none, which is 0): always a u32.
    let grams = significant.parse().unwrap_or(0);
    if (MIN_WEIGHT_GRAMS..=MAX_WEIGHT_GRAMS).contains(&grams) {
        Ok(grams)
    } else {
        Err(QuoteError::WeightOutOfRange)
    }
}

/// The upper-cased ISO 3166-1 alpha-2 code from the raw query value.
pub fn parse_country(raw: Option<&str>) -> Result<String, QuoteError> {
    let raw = raw.ok_or(QuoteError::CountryRequired)?;
    // Two ASCII letters are two bytes; anything else of two bytes is not two letters.
    if raw.len() != 2 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(QuoteError::CountryNotACode);
    }
    let code = raw.to_ascii_uppercase();
    if ISO_3166_ALPHA2.binary_search(&code.as_str()).is_err() {
        return Err(QuoteError::UnknownCountry(code));
    }
    Ok(code)
}

/// The zone of a known, upper-cased country code.
pub fn zone_of(country: &str) -> Zone {
    if country == DOMESTIC {
        Zone::Domestic
    } else if EU.binary_search(&country).is_ok() {
        Zone::Eu
    } else {
        Zone::World
    }
}

/// The price in pence of a parcel of `weight_grams` (1 to 30000) to `zone`.
pub fn price_cents(zone: Zone, weight_grams: u32) -> u32 {
    if let Some((_, prices)) = BANDS.iter().find(|(upper, _)| weight_grams <= *upper) {
        return prices.of(zone);
    }
    let (last_upper, last_prices) = BANDS[BANDS.len() - 1];
    let started_kg = (weight_grams - last_upper).div_ceil(1000);
    last_prices.of(zone) + started_kg * HEAVY_SURCHARGE_PER_KG.of(zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(weight: Option<&str>, country: Option<&str>) -> String {
        quote(weight, country)
            .expect_err("the query is not usable")
            .to_string()
    }

    const REQUIRED: &str = "weight_grams is required";
    const NOT_AN_INTEGER: &str = "weight_grams must be an integer";
    const OUT_OF_RANGE: &str = "weight_grams must be between 1 and 30000";
    const COUNTRY_REQUIRED: &str = "country is required";
    const NOT_A_CODE: &str = "country must be a two-letter ISO 3166-1 alpha-2 code";

    #[test]
    fn the_country_list_holds_the_249_codes_sorted_and_unique() {
        assert_eq!(ISO_3166_ALPHA2.len(), 249);
        assert!(ISO_3166_ALPHA2.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            ISO_3166_ALPHA2
                .iter()
                .all(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn the_eu_holds_27_known_codes_sorted_without_gb() {
        assert_eq!(EU.len(), 27);
        assert!(EU.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(EU.iter().all(|code| ISO_3166_ALPHA2.contains(code)));
        assert!(!EU.contains(&DOMESTIC));
        assert!(ISO_3166_ALPHA2.contains(&DOMESTIC));
    }

    #[test]
    fn zones_are_gb_then_the_eu_then_every_other_code() {
        assert_eq!(zone_of("GB"), Zone::Domestic);
        for code in EU {
            assert_eq!(zone_of(code), Zone::Eu, "{code}");
        }
        for code in ["US", "CH", "NO", "AQ", "IE", "GG", "JE", "IM"] {
            let expected = if code == "IE" { Zone::Eu } else { Zone::World };
            assert_eq!(zone_of(code), expected, "{code}");
        }
        let world = ISO_3166_ALPHA2
            .iter()
            .filter(|code| zone_of(code) == Zone::World)
            .count();
        assert_eq!(world, 249 - 27 - 1);
    }

    #[test]
    fn every_band_edge_has_its_price_in_every_zone() {
        let table = [
            // grams, domestic, eu, world
            (1, 295, 650, 950),
            (250, 295, 650, 950),
            (251, 450, 950, 1550),
            (1000, 450, 950, 1550),
            (1001, 695, 1450, 2450),
            (2000, 695, 1450, 2450),
            (2001, 995, 2250, 3950),
            (5000, 995, 2250, 3950),
            (5001, 1495, 3450, 5950),
            (10_000, 1495, 3450, 5950),
        ];
        for (grams, domestic, eu, world) in table {
            assert_eq!(
                price_cents(Zone::Domestic, grams),
                domestic,
                "{grams} g domestic"
            );
            assert_eq!(price_cents(Zone::Eu, grams), eu, "{grams} g eu");
            assert_eq!(price_cents(Zone::World, grams), world, "{grams} g world");
        }
    }

    #[test]
    fn above_10_kg_each_started_kg_adds_the_zones_surcharge() {
        let table = [
            // grams, started kg over 10000 g
            (10_001, 1),
            (11_000, 1),
            (11_001, 2),
            (12_000, 2),
            (20_500, 11),
            (29_001, 20),
            (30_000, 20),
        ];
        for (grams, started_kg) in table {
            assert_eq!(price_cents(Zone::Domestic, grams), 1495 + started_kg * 100);
            assert_eq!(price_cents(Zone::Eu, grams), 3450 + started_kg * 250);
            assert_eq!(price_cents(Zone::World, grams), 5950 + started_kg * 500);
        }
    }

    #[test]
    fn the_worked_examples_of_the_rate_table() {
        assert_eq!(price_cents(Zone::Domestic, 10_001), 1595);
        assert_eq!(price_cents(Zone::Eu, 12_000), 3950);
        assert_eq!(price_cents(Zone::World, 30_000), 15950);
        assert_eq!(price_cents(Zone::Domestic, 30_000), 3495);
        assert_eq!(price_cents(Zone::World, 20_500), 11450);
    }

    #[test]
    fn a_quote_upper_cases_the_country_and_drops_leading_zeros() {
        let quote = quote(Some("00250"), Some("ie")).expect("a usable query");
        assert_eq!(
            quote,
            ShippingQuote {
                country: "IE".to_owned(),
                weight_grams: 250,
                zone: Zone::Eu,
                price_cents: 650,
                currency: Currency::Gbp,
            }
        );
        let quote = super::quote(Some("4999"), Some("Gr")).expect("a usable query");
        assert_eq!((quote.country.as_str(), quote.price_cents), ("GR", 2250));
    }

    #[test]
    fn a_missing_weight_is_required_before_anything_else() {
        assert_eq!(error_of(None, None), REQUIRED);
        assert_eq!(error_of(None, Some("GB")), REQUIRED);
        assert_eq!(error_of(None, Some("ZZ")), REQUIRED);
    }

    #[test]
    fn a_weight_that_is_not_an_optional_minus_and_ascii_digits_is_not_an_integer() {
        for raw in [
            "", "abc", "12.5", "1e3", "+5", " 5", "5 ", "-", "--5", "\u{665}", "５",
        ] {
            assert_eq!(error_of(Some(raw), Some("GB")), NOT_AN_INTEGER, "{raw:?}");
        }
        // Checked before the country, which is absent here.
        assert_eq!(error_of(Some("abc"), None), NOT_AN_INTEGER);
    }

    #[test]
    fn an_integer_outside_1_to_30000_is_out_of_range() {
        let huge = "9".repeat(5000);
        for raw in [
            "0",
            "-0",
            "-7",
            "-00250",
            "30001",
            "000030001",
            "100000",
            &huge,
        ] {
            assert_eq!(error_of(Some(raw), Some("GB")), OUT_OF_RANGE, "{raw:?}");
        }
        // Checked before the country, which is unknown here.
        assert_eq!(error_of(Some("0"), Some("ZZ")), OUT_OF_RANGE);
    }

    #[test]
    fn the_weight_range_is_inclusive_and_leading_zeros_are_allowed() {
        assert_eq!(parse_weight(Some("1")), Ok(1));
        assert_eq!(parse_weight(Some("30000")), Ok(30_000));
        assert_eq!(parse_weight(Some("0100")), Ok(100));
        assert_eq!(
            parse_weight(Some(&format!("{}30000", "0".repeat(100)))),
            Ok(30_000)
        );
    }

    #[test]
    fn a_missing_country_is_required_once_the_weight_is_right() {
        assert_eq!(error_of(Some("100"), None), COUNTRY_REQUIRED);
    }

    #[test]
    fn a_country_that_is_not_two_ascii_letters_is_not_a_code() {
        for raw in ["", "G", "GBR", "G1", "12", "\u{c4}T", "é", "G ", " G"] {
            assert_eq!(error_of(Some("100"), Some(raw)), NOT_A_CODE, "{raw:?}");
        }
    }

    #[test]
    fn two_letters_that_name_no_country_are_unknown_and_shown_upper_cased() {
        assert_eq!(
            error_of(Some("100"), Some("zz")),
            "unknown country code: ZZ"
        );
        assert_eq!(
            error_of(Some("100"), Some("EU")),
            "unknown country code: EU"
        );
        assert_eq!(
            error_of(Some("100"), Some("uk")),
            "unknown country code: UK"
        );
    }

    #[test]
    fn every_code_of_the_list_is_known_in_either_case() {
        for code in ISO_3166_ALPHA2 {
            assert_eq!(parse_country(Some(code)).as_deref(), Ok(code));
            let lower = code.to_ascii_lowercase();
            assert_eq!(parse_country(Some(&lower)).as_deref(), Ok(code));
        }
    }
}
