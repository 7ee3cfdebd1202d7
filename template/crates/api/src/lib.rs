//! The public HTTP edge of the service: native Rust routes, everything else forwarded to Python.

pub mod config;
pub mod error;
pub mod health;
pub mod manifest;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod telemetry;
pub mod upstream;
pub mod upstream_addr;

use std::sync::Arc;

use axum::{Router, middleware, routing::get};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::{config::Config, upstream::Upstream};

/// What every handler can reach: the Python upstream (client, timeouts, readiness).
#[derive(Clone)]
pub struct AppState {
    pub upstream: Arc<Upstream>,
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self {
            upstream: Arc::new(Upstream::new(config)),
        }
    }
}

/// The whole application: health checks, the routes and fallback of rspy.toml, and the
/// request-id and tracing layers around all of them. `main` serves it; tests drive it directly.
pub fn app(state: AppState) -> Router {
    let health = Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz));
    manifest::routes(health)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // 5xx answers are logged once, with their cause, by `ApiError`.
                .on_failure(()),
        )
        // Outermost, so the id is known to the trace span and set on every response.
        .layer(middleware::from_fn(request_id::propagate))
        .with_state(state)
}
