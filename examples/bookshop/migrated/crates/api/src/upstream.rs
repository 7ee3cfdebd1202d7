//! The Python upstream: a pooled HTTP/1.1 client over TCP or a Unix socket, and its readiness.

mod unix;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, Uri, uri::Authority},
};
use hyper_util::{
    client::legacy::{Client, ResponseFuture, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, UpstreamAddr};

/// Idle pooled connections are dropped after this long: below uvicorn's 5 s keep-alive, so
/// the api never reuses a connection Python is about to close ("connection closed before
/// message completed").
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The Python service, as the proxy and the readiness probe see it.
#[derive(Debug)]
pub struct Upstream {
    client: Transport,
    /// Authority of upstream request URIs. The client's `Host` header travels unchanged;
    /// this only tells hyper where to connect (and is a placeholder for a Unix socket).
    authority: Authority,
    timeout: Duration,
    total_timeout: Duration,
    /// One permit per forwarded request in flight (`UPSTREAM_MAX_CONCURRENCY`).
    permits: Arc<Semaphore>,
    ready: AtomicBool,
    /// What the readiness probe asks for (`UPSTREAM_HEALTH_PATH`).
    health_path: String,
    /// The socket's path with the unix transport, for the readiness probe's permission check.
    socket: Option<std::path::PathBuf>,
}

/// One pooled client per transport; both hand out the same `ResponseFuture`.
#[derive(Debug)]
enum Transport {
    Tcp(Client<HttpConnector, Body>),
    Unix(Client<unix::UnixConnector, Body>),
}

impl Upstream {
    pub fn new(config: &Config) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        // Without a timer the pool's idle timeout is silently never enforced.
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // Resends a request only when a pooled connection closed before any of it was
            // written, so even a POST is never sent twice. No other retries.
            .retry_canceled_requests(true);
        let (client, authority) = match &config.upstream {
            UpstreamAddr::Tcp(authority) => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(config.connect_timeout));
                connector.set_nodelay(true);
                (Transport::Tcp(builder.build(connector)), authority.clone())
            }
            UpstreamAddr::Unix(path) => {
                let connector = unix::UnixConnector::new(path.clone(), config.connect_timeout);
                let authority = Authority::from_static("localhost");
                (Transport::Unix(builder.build(connector)), authority)
            }
        };
        Self {
            client,
            authority,
            timeout: config.upstream_timeout,
            total_timeout: config.upstream_total_timeout,
            permits: Arc::new(Semaphore::new(config.upstream_max_concurrency)),
            ready: AtomicBool::new(false),
            health_path: config.health_path.clone(),
            socket: match &config.upstream {
                UpstreamAddr::Unix(path) => Some(path.clone()),
                UpstreamAddr::Tcp(_) => None,
            },
        }
    }

    /// The upstream URI for a client request's path and query, both passed through verbatim.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// Sends `request` (whose URI came from [`Upstream::uri`]); resolves with the response
    /// headers, the body streaming behind them.
    pub fn send(&self, request: Request<Body>) -> ResponseFuture {
        match &self.client {
            Transport::Tcp(client) => client.request(request),
            Transport::Unix(client) => client.request(request),
        }
    }

    /// The Unix socket Python listens on, with the unix transport.
    pub fn socket_path(&self) -> Option<&std::path::Path> {
        self.socket.as_deref()
    }

    /// The path the readiness probe asks Python for.
    pub fn health_path(&self) -> &str {
        &self.health_path
    }

    /// How long to wait for response headers unless a route sets its own `timeout_ms`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest a forwarded exchange may last, response body included.
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// A slot for one more forwarded request, or `None` when `UPSTREAM_MAX_CONCURRENCY` are
    /// in flight already (the caller answers 503 rather than queueing).
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// Whether Python answered the last readiness probe.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records whether Python is ready; read by `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}
