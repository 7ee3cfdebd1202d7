//! The `x-request-id` of every request: the client's if usable, otherwise a fresh random one.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderName, HeaderValue},
    response::Response,
};
use uuid::Uuid;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id we keep; anything longer is replaced rather than logged.
const MAX_LEN: usize = 128;

/// The request's id, from [`settle`]. Native handlers find it in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Keeps a client's id only if it is printable ASCII of sane length: it ends up in logs.
    fn from_client(value: &HeaderValue) -> Option<Self> {
        let usable = !value.is_empty() && value.len() <= MAX_LEN && value.to_str().is_ok();
        usable.then(|| Self(value.clone()))
    }

    /// 128 random bits as 32 lowercase hex digits.
    fn generate() -> Self {
        let mut hex = [0; 32];
        Uuid::new_v4().simple().encode_lower(&mut hex);
        // Owned by the `Bytes` itself: one allocation, shared by every copy of the value (on
        // the request, to Python, on the response), where a copied slice takes two.
        Self(
            HeaderValue::from_maybe_shared(Bytes::from_owner(hex))
                .expect("hex digits are a valid header value"),
        )
    }

    pub fn as_str(&self) -> &str {
        // Both constructors guarantee visible ASCII, so this never falls back.
        self.0.to_str().unwrap_or_default()
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// Sets the id on the response to its request.
    pub fn set_on(&self, response: &mut Response) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID, self.header_value());
    }
}

/// Settles the id of the request with these `headers`, sets it there and returns it, for
/// [`RequestId::set_on`] the response, whatever produces it: a native handler, the proxy or
/// an error. Called for every request by [`crate::telemetry::Observation::begin`].
pub fn settle(headers: &mut HeaderMap) -> RequestId {
    let id = headers
        .get(X_REQUEST_ID)
        .and_then(RequestId::from_client)
        .unwrap_or_else(RequestId::generate);
    headers.insert(X_REQUEST_ID, id.header_value());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept() {
        let id = RequestId::from_client(&HeaderValue::from_static("abc-123"));
        assert_eq!(id.as_ref().map(RequestId::as_str), Some("abc-123"));
    }

    #[test]
    fn empty_oversized_or_binary_client_ids_are_replaced() {
        let long = "x".repeat(MAX_LEN + 1);
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").expect("obs-text is allowed");
        for value in [
            HeaderValue::from_static(""),
            HeaderValue::from_str(&long).expect("ascii"),
            binary,
        ] {
            assert!(RequestId::from_client(&value).is_none(), "{value:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_hex_digits() {
        let id = RequestId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
