//! The Python upstream: pooled HTTP/1.1 connections over TCP or a Unix socket, and its
//! readiness.

mod pool;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{HeaderValue, Request, Response, Uri, header::HOST, uri::PathAndQuery},
};
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::pool::Pool;
pub use self::pool::SendError;
use crate::config::{Config, UpstreamAddr};

/// The Python service, as the proxy and the readiness probe see it.
#[derive(Debug)]
pub struct Upstream {
    /// The connection pool of one runtime: each worker thread has its own (see
    /// [`Upstream::with_own_pool`]), so a request and its upstream connection never cross
    /// threads.
    pool: Pool,
    /// What every worker's copy shares: settings, the concurrency limit and readiness.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    address: UpstreamAddr,
    /// The `Host` of a request that has none (see [`Upstream::send`]).
    host: HeaderValue,
    timeout: Duration,
    total_timeout: Duration,
    /// One permit per forwarded request in flight (`UPSTREAM_MAX_CONCURRENCY`), across
    /// all workers.
    permits: Arc<Semaphore>,
    ready: AtomicBool,
    /// What the readiness probe asks for (`UPSTREAM_HEALTH_PATH`).
    health_path: String,
}

impl Upstream {
    pub fn new(config: &Config) -> Self {
        // What a client connecting to Python itself would send: no port if it is 80.
        let host = match &config.upstream {
            UpstreamAddr::Tcp(authority) => HeaderValue::from_str(match authority.port_u16() {
                Some(80) => authority.host(),
                _ => authority.as_str(),
            })
            .expect("an authority is a valid header value"),
            UpstreamAddr::Unix(_) => HeaderValue::from_static("localhost"),
        };
        Self {
            pool: Pool::new(
                &config.upstream,
                config.connect_timeout,
                config.upstream_idle_timeout,
            ),
            shared: Arc::new(Shared {
                address: config.upstream.clone(),
                host,
                timeout: config.upstream_timeout,
                total_timeout: config.upstream_total_timeout,
                permits: Arc::new(Semaphore::new(config.upstream_max_concurrency)),
                ready: AtomicBool::new(false),
                health_path: config.health_path.clone(),
            }),
        }
    }

    /// The same upstream (settings, concurrency limit, readiness) with a connection pool of
    /// its own, for another runtime: a pooled connection is driven by a task of the runtime
    /// that opened it, and handing requests to another thread costs a wake-up each way.
    pub fn with_own_pool(&self) -> Self {
        Self {
            pool: self.pool.empty_copy(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// The upstream URI for a client request's path and query, both passed through verbatim:
    /// the request line Python sees. The `Host` it sees is the request's own, or the one
    /// [`Upstream::send`] sets.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        Ok(self.uri_with(PathAndQuery::try_from(path_and_query)?))
    }

    /// [`Upstream::uri`] for a path and query parsed already.
    pub fn uri_with(&self, path_and_query: PathAndQuery) -> Uri {
        Uri::from(path_and_query)
    }

    /// Sends `request` (whose URI came from [`Upstream::uri`]); resolves with the response
    /// headers, the body streaming behind them. Without a `Host` of its own, the request gets
    /// Python's address (`127.0.0.1:8000`), or `localhost` over a Unix socket: what a client
    /// connecting to Python itself would send.
    ///
    /// It goes out on an idle pooled connection, or a new one; it is sent a second time only
    /// if that idle connection turned out to be closed before any of it was written.
    ///
    /// Not an `async fn`: that would be one more future holding the request around the pool's.
    pub fn send(
        &self,
        mut request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Incoming>, SendError>> + Send + '_ {
        request
            .headers_mut()
            .entry(HOST)
            .or_insert_with(|| self.shared.host.clone());
        self.pool.send(request)
    }

    /// The Unix socket Python listens on, with the unix transport.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        match &self.shared.address {
            UpstreamAddr::Unix(path) => Some(path),
            UpstreamAddr::Tcp(_) => None,
        }
    }

    /// The path the readiness probe asks Python for.
    pub fn health_path(&self) -> &str {
        &self.shared.health_path
    }

    /// How long to wait for response headers unless a route sets its own `timeout_ms`.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// The longest a forwarded exchange may last, response body included.
    pub fn total_timeout(&self) -> Duration {
        self.shared.total_timeout
    }

    /// A slot for one more forwarded request, or `None` when `UPSTREAM_MAX_CONCURRENCY` are
    /// in flight already (the caller answers 503 rather than queueing).
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.shared.permits).try_acquire_owned().ok()
    }

    /// Whether Python answered the last readiness probe.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// Records whether Python is ready; read by `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::Relaxed);
    }
}
