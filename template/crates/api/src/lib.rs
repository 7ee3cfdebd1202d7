//! The public HTTP edge of the service: native Rust routes, everything else forwarded to Python.

pub mod config;
pub mod error;
pub mod gateway;
pub mod health;
pub mod manifest;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod timer;
pub mod trace_context;
pub mod upstream;
pub mod upstream_addr;

use std::sync::Arc;

use axum::{
    Router, extract::State, http::header::CONTENT_TYPE, response::IntoResponse, routing::get,
};

use crate::{
    config::{Config, TrustedProxies},
    metrics::Metrics,
    timer::Timer,
    upstream::Upstream,
};

/// What every handler can reach: the Python upstream (client, timeouts, readiness), the
/// metrics, and the limits of the edge. A handle: cloning it (axum does, for every handler
/// and middleware that takes `State`) copies one pointer, and each worker thread has its own
/// (see [`AppState::for_worker`]), so the reference count never bounces between cores.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

/// The fields of [`AppState`], reached through it (`state.upstream`).
pub struct AppStateInner {
    pub upstream: Arc<Upstream>,
    pub metrics: Metrics,
    /// `TRUSTED_PROXIES`: whose `X-Forwarded-*` headers the proxy passes on.
    pub trusted_proxies: Arc<TrustedProxies>,
    /// `MAX_BODY_BYTES`: the largest request body, for native routes and the proxy alike.
    pub max_body_bytes: usize,
    /// The deadlines of the worker's requests: header reads and upstream answers.
    pub timer: Timer,
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(config: &Config) -> Self {
        Self(Arc::new(AppStateInner {
            upstream: Arc::new(Upstream::new(config)),
            metrics: Metrics::with_shards(config.workers),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            max_body_bytes: config.max_body_bytes,
            timer: Timer::new(),
        }))
    }

    /// The state for worker thread `number`: settings, limits and readiness shared, but an
    /// upstream connection pool (see [`Upstream::with_own_pool`]), a metrics shard (see
    /// [`Metrics::for_worker`]) and a [`Timer`] of its own.
    pub fn for_worker(&self, number: usize) -> Self {
        Self(Arc::new(AppStateInner {
            upstream: Arc::new(self.upstream.with_own_pool()),
            metrics: self.metrics.for_worker(number),
            trusted_proxies: Arc::clone(&self.trusted_proxies),
            max_body_bytes: self.max_body_bytes,
            timer: Timer::new(),
        }))
    }
}

/// The whole application: health checks, the routes and fallback of rspy.toml, and the
/// request-id, trace-context and request-log layer around all of them. Tests drive it
/// directly; `main` serves it through a [`gateway::Gateway`], which forwards the requests the
/// router would only forward (undeclared paths, proxy routes) without it.
///
/// Routes come from rspy.toml (`rspy add-route`), not from code added here: the gateway knows
/// the routed paths from there, and a route or layer added here does not see the requests it
/// forwards.
pub fn app(state: AppState) -> Router {
    let health = Router::new()
        .route(health::LIVEZ, get(health::livez))
        .route(health::READYZ, get(health::readyz));
    edge(manifest::routes(health), state)
}

/// What every request passes through around `routes`: request id, trace context, request
/// log, metrics and the body limit of native routes' extractors, all in one layer.
pub fn edge(routes: Router<AppState>, state: AppState) -> Router {
    routes
        // Around everything else, so the id is known to every handler and set on every
        // response.
        .layer(telemetry::ObserveLayer(state.clone()))
        .with_state(state)
}

/// The internal metrics endpoint, `GET /metrics` in the Prometheus text format. Served on its
/// own address (`METRICS_ADDR`), never on the public port, and never forwarded to Python.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render(state.upstream.is_ready());
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}
