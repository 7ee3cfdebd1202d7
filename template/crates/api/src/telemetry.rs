//! Logging: human-readable text or JSON lines (`LOG_FORMAT`), filtered by `RUST_LOG`.

use std::{
    convert::Infallible,
    env,
    future::Future,
    io::{self, IsTerminal},
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{Method, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service};
use tracing::Level;
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::{
    AppState,
    config::ConfigError,
    error::{ApiError, ErrorKind},
    health,
    metrics::{Metrics, Mode},
    request_id::{self, RequestId},
    trace_context::{self, TraceContext},
};

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

/// Whether a 413 is axum's refusal of a body over the limit: plain text, and not from the
/// proxy, which marks its answers (Python's own 413 among them) with a `Mode`. A native
/// handler's own 413 in plain text looks the same, and gets the JSON error body too.
fn is_body_limit_rejection(response: &Response) -> bool {
    response.extensions().get::<Mode>().is_none()
        && response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"))
}

/// Paths probed every few seconds by orchestrators: logged at DEBUG so they do not drown the
/// requests that matter (they are still counted in the metrics).
const QUIET_PATHS: [&str; 2] = [health::LIVEZ, health::READYZ];

/// The route of requests that no route of the router matched, in logs and metrics.
pub const FALLBACK_ROUTE: &str = "fallback";

/// One request, observed from its arrival to its response headers: its request id and trace
/// context (see [`request_id`] and [`trace_context`]), and what its log line and metrics need.
/// [`ObserveLayer`] takes one for every request the router serves, and
/// [`crate::gateway::Gateway`] for those it forwards without the router.
pub struct Observation {
    started: Instant,
    request_id: RequestId,
    trace: TraceContext,
    method: Method,
    quiet: bool,
    /// The path, copied only for a line the filter lets through (`RUST_LOG`).
    path: Option<String>,
}

impl Observation {
    /// Starts the clock and settles the request's id and trace context, which it sets on the
    /// request's headers (for Python, or a native handler).
    pub fn begin<B>(request: &mut Request<B>) -> Self {
        let started = Instant::now();
        let headers = request.headers_mut();
        let request_id = request_id::settle(headers);
        let trace = trace_context::settle(headers);
        let path = request.uri().path();
        let quiet = QUIET_PATHS.contains(&path);
        let logged = if quiet {
            tracing::enabled!(Level::DEBUG)
        } else {
            tracing::enabled!(Level::INFO)
        };
        Self {
            started,
            request_id,
            trace,
            method: request.method().clone(),
            quiet,
            path: logged.then(|| path.to_owned()),
        }
    }

    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }

    /// Puts the request id on the `response` to the request, records its metrics under
    /// `route` and `mode`, and writes its log line.
    pub fn finish(self, metrics: &Metrics, route: &str, mode: Mode, response: &mut Response) {
        self.request_id.set_on(response);
        let latency = self.started.elapsed();
        let status = response.status().as_u16();
        metrics.record_request(route, mode, status, latency);
        let Some(path) = self.path else {
            return;
        };
        let method = self.method;
        let request_id = self.request_id.as_str();
        let trace_id = self.trace.trace_id();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        macro_rules! log {
            ($level:ident) => {
                tracing::$level!(
                    %method,
                    route,
                    path,
                    mode = mode.as_str(),
                    status,
                    latency_ms,
                    request_id,
                    trace_id,
                    "request"
                )
            };
        }
        if self.quiet {
            log!(debug);
        } else {
            log!(info);
        }
    }
}

/// The one layer on every route and the fallback: takes an [`Observation`] of each request,
/// puts its [`RequestId`] in the request's extensions (for handlers and the proxy), sets the
/// body limit of native handlers' extractors, and finishes the observation with the response.
/// One layer rather than four: each layer costs allocations per request.
///
/// The route is the template (`/users/{id}`), not the raw path, so logs and metrics group by
/// endpoint; unmatched requests show as `fallback`. Latency runs to the response headers: a
/// streamed body may go on after it.
#[derive(Clone)]
pub struct ObserveLayer(pub AppState);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            state: self.0.clone(),
        }
    }
}

/// A route with [`ObserveLayer`] around it.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let observation = Observation::begin(&mut request);
        request
            .extensions_mut()
            .insert(observation.request_id().clone());
        let route = request.extensions().get::<MatchedPath>().cloned();
        // Extractors of native handlers (`Json`, `Bytes`...) refuse larger bodies with 413,
        // made the proxy's JSON error below. The proxy has its own limit, of the same size.
        DefaultBodyLimit::max(self.state.max_body_bytes).apply(&mut request);
        let responding = self.inner.call(request);
        let state = self.state.clone();
        Box::pin(async move {
            let Ok(mut response) = responding.await;
            if response.status() == StatusCode::PAYLOAD_TOO_LARGE
                && is_body_limit_rejection(&response)
            {
                // A native route's extractor refused a body over MAX_BODY_BYTES with axum's
                // plain text: the client gets the same JSON error as from the proxy, still
                // counted as answered by Rust.
                let request_id = Some(observation.request_id().clone());
                response = ApiError::new(ErrorKind::PayloadTooLarge, request_id).into_response();
            }
            let route = route.as_ref().map_or(FALLBACK_ROUTE, MatchedPath::as_str);
            observation.finish(&state.metrics, route, Mode::of(&response), &mut response);
            Ok(response)
        })
    }
}
