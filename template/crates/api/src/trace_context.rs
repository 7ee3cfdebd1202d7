//! W3C Trace Context: every request carries a `traceparent` on to Python, so both sides' logs
//! (and any tracing backend) can join up the same request.
//!
//! A valid incoming `traceparent` keeps its trace id and flags, with the api as the new parent
//! (a fresh span id); without one, or with a malformed one, the api starts a new trace.
//! `tracestate` is passed on untouched, as the specification asks of a participant that does
//! not add its own entry.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderName, HeaderValue},
};
use uuid::Uuid;

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The request's trace context, as [`settle`] returns it: the `traceparent` sent on,
/// `00-<trace id: 32 hex>-<span id: 16 hex, the api's>-<flags: 2 hex>`.
#[derive(Debug, Clone)]
pub struct TraceContext(HeaderValue);

impl TraceContext {
    /// The api's context for a request that came with `incoming` (if any). A new trace is
    /// not sampled (`00`): the api records no spans, it only correlates logs.
    fn continue_or_start(incoming: Option<&HeaderValue>) -> Self {
        // Filled in place: no string is built or formatted on the way to the header.
        let mut value = *b"00-00000000000000000000000000000000-0000000000000000-00";
        match incoming.and_then(parse) {
            Some((trace_id, flags)) => {
                value[3..35].copy_from_slice(trace_id.as_bytes());
                value[53..55].copy_from_slice(flags.as_bytes());
            }
            None => random_hex(&mut value[3..35]),
        }
        random_hex(&mut value[36..52]);
        // One allocation, shared by the request's header and this copy (see `RequestId`).
        Self(
            HeaderValue::from_maybe_shared(Bytes::from_owner(value))
                .expect("hex digits and dashes are a valid header value"),
        )
    }

    pub fn trace_id(&self) -> &str {
        // Both halves of `continue_or_start` write visible ASCII in this layout.
        self.0.to_str().map_or("", |value| &value[3..35])
    }

    /// The `traceparent` sent to Python.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// The trace id and flags of a well-formed `traceparent` (version 00, or a later version read
/// as 00 does, as the specification requires); `None` if it is not one.
fn parse(value: &HeaderValue) -> Option<(&str, &str)> {
    let text = value.to_str().ok()?;
    let mut fields = text.split('-');
    let (version, trace_id, parent_id, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let hex = |field: &str, len: usize| {
        field.len() == len
            && field
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || fields.next().is_none())
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then_some((trace_id, flags))
}

/// Fills `out` (at most 32 bytes) with random lowercase hex digits, never all zeros.
fn random_hex(out: &mut [u8]) {
    let mut hex = [0; 32];
    loop {
        let hex = Uuid::new_v4().simple().encode_lower(&mut hex).as_bytes();
        // A v4 uuid fixes a few bits near its middle: a short id takes the end, which is all
        // random.
        let digits = &hex[32 - out.len()..];
        if digits.iter().any(|&b| b != b'0') {
            out.copy_from_slice(digits);
            return;
        }
    }
}

/// Settles the trace context of the request with these `headers`, sets its `traceparent`
/// there (the proxy passes it on to Python), and returns it. Called for every request by
/// [`crate::telemetry::Observation::begin`].
pub fn settle(headers: &mut HeaderMap) -> TraceContext {
    let context = TraceContext::continue_or_start(headers.get(TRACEPARENT));
    headers.insert(TRACEPARENT, context.header_value());
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_keeps_its_trace_and_gets_the_api_as_parent() {
        let context = TraceContext::continue_or_start(Some(&HeaderValue::from_static(INCOMING)));
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let sent = context.header_value();
        let sent = sent.to_str().expect("ascii");
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(sent.ends_with("-01"), "{sent}");
        assert_ne!(sent, INCOMING, "the api is a new parent");
        assert!(parse(&HeaderValue::from_str(sent).expect("valid")).is_some());
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let context = TraceContext::continue_or_start(Some(&HeaderValue::from_static(bad)));
            assert_ne!(
                context.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            // Not kept in any other form either (the all-zero trace id, say).
            assert!(!bad.contains(context.trace_id()), "{bad}");
            assert_eq!(context.trace_id().len(), 32);
        }
        let started = TraceContext::continue_or_start(None).header_value();
        assert!(parse(&started).is_some(), "{started:?}");
    }

    #[test]
    fn later_versions_are_read_as_version_00() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let context = TraceContext::continue_or_start(Some(&HeaderValue::from_static(future)));
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
