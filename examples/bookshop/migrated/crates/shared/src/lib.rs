//! Serde types shared by the api and core crates: the shapes that cross the HTTP boundary.
//!
//! Field order is wire order: serde writes fields as declared, and clients of the Python
//! service saw them in this order.

use serde::{Deserialize, Serialize};

/// The body of `GET /isbn/{isbn}`: `{"isbn":...,"valid":...,"isbn13":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsbnCheck {
    /// The path segment as the client sent it, after percent-decoding.
    pub isbn: String,
    pub valid: bool,
    /// The 13 digits of the ISBN-13, or `null` when `isbn` is not a valid ISBN.
    pub isbn13: Option<String>,
}

/// The body of a successful `GET /shipping/quote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingQuote {
    /// The ISO 3166-1 alpha-2 code, upper-cased.
    pub country: String,
    pub weight_grams: u32,
    pub zone: Zone,
    /// The price in the currency's minor unit (pence).
    pub price_cents: u32,
    pub currency: Currency,
}

/// Where a parcel goes, as far as the rate table cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// Great Britain itself.
    Domestic,
    /// A member state of the European Union.
    Eu,
    /// Any other country.
    World,
}

/// The currency of every quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "GBP")]
    Gbp,
}

/// The body of the service's own error answers, FastAPI's shape: `{"detail":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(value: &impl Serialize) -> String {
        serde_json::to_string(value).expect("the type serializes")
    }

    #[test]
    fn an_isbn_check_serializes_in_wire_order_with_null_for_no_isbn13() {
        let valid = IsbnCheck {
            isbn: "0-306-40615-2".to_owned(),
            valid: true,
            isbn13: Some("9780306406157".to_owned()),
        };
        let invalid = IsbnCheck {
            isbn: "abc".to_owned(),
            valid: false,
            isbn13: None,
        };
        assert_eq!(
            compact(&valid),
            r#"{"isbn":"0-306-40615-2","valid":true,"isbn13":"9780306406157"}"#
        );
        assert_eq!(
            compact(&invalid),
            r#"{"isbn":"abc","valid":false,"isbn13":null}"#
        );
    }

    #[test]
    fn a_quote_serializes_in_wire_order_with_lowercase_zone_and_gbp() {
        let quote = ShippingQuote {
            country: "DE".to_owned(),
            weight_grams: 1200,
            zone: Zone::Eu,
            price_cents: 1450,
            currency: Currency::Gbp,
        };
        assert_eq!(
            compact(&quote),
            r#"{"country":"DE","weight_grams":1200,"zone":"eu","price_cents":1450,"currency":"GBP"}"#
        );
    }

    #[test]
    fn every_zone_has_its_wire_name() {
        let names = [Zone::Domestic, Zone::Eu, Zone::World].map(|zone| compact(&zone));
        assert_eq!(names, [r#""domestic""#, r#""eu""#, r#""world""#]);
    }

    #[test]
    fn an_error_detail_is_fastapis_shape() {
        let error = ErrorDetail {
            detail: "country is required".to_owned(),
        };
        assert_eq!(compact(&error), r#"{"detail":"country is required"}"#);
    }

    #[test]
    fn a_quote_from_python_deserializes() {
        let json = r#"{"country":"US","weight_grams":30000,"zone":"world","price_cents":15950,"currency":"GBP"}"#;
        let quote: ShippingQuote = serde_json::from_str(json).expect("Python's shape parses");
        assert_eq!(quote.zone, Zone::World);
        assert_eq!(quote.price_cents, 15950);
    }
}
