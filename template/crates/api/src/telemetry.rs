//! Logging: human-readable text or JSON lines (`LOG_FORMAT`), filtered by `RUST_LOG`.

use std::{
    env,
    io::{self, IsTerminal},
};

use axum::{body::Body, extract::MatchedPath, http::Request};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::{config::ConfigError, request_id::RequestId};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init() -> Result<(), ConfigError> {
    let filter = match env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|err| ConfigError::new("RUST_LOG", &directives, err))?,
        _ => EnvFilter::new("info"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    match env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("text") => registry
            .with(fmt::layer().with_ansi(io::stdout().is_terminal()))
            .init(),
        Ok("json") => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_span_list(false),
            )
            .init(),
        Ok(other) => {
            return Err(ConfigError::new(
                "LOG_FORMAT",
                other,
                "expected `text` or `json`",
            ));
        }
    }
    Ok(())
}

/// The span around each request: named by the route template (`/users/{id}`), not the raw
/// URL, so logs group by endpoint; unmatched requests show as `fallback`.
pub fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("fallback", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", RequestId::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = request.uri().path(),
        request_id,
    )
}
