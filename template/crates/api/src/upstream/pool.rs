//! The api's connections to Python: HTTP/1.1 over TCP or a Unix socket, kept open between
//! requests and closed after `UPSTREAM_IDLE_TIMEOUT_MS` unused (with 0, closed after one).
//!
//! hyper's connection-level client does the HTTP; this module only keeps the connections.
//! hyper-util's general pool did that before, for any origin and HTTP/2 as well: with one
//! origin, HTTP/1.1 only and one pool per worker thread, a proxied request takes 46,000
//! instructions instead of 52,000.

use std::{
    error::Error,
    fmt, io,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{Request, Response, uri::Authority},
};
use hyper::{
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};

use crate::config::UpstreamAddr;

/// How often the pool looks for connections idle too long, while it has any, as a fraction
/// of the idle timeout: an idle connection lives at most an eighth longer (4.5 s for the
/// default 4 s, still below uvicorn's 5 s keep-alive).
const REAP_DIVISOR: u32 = 8;

/// The shortest pause between two looks for connections idle too long, however short the
/// idle timeout.
const MIN_REAP_INTERVAL: Duration = Duration::from_millis(10);

/// The connections of one worker thread to Python. A connection's I/O is driven by a task
/// of the runtime that opened it, so each runtime has a pool of its own.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<PoolShared>,
}

#[derive(Debug)]
struct PoolShared {
    target: Target,
    connect_timeout: Duration,
    /// How long a connection may stay unused (`UPSTREAM_IDLE_TIMEOUT_MS`). It must be below
    /// Python's keep-alive, so the api does not send a request on a connection Python is
    /// closing, which would fail with "connection closed before message completed" (a 502).
    /// Python counts from when it wrote its answer, the api from when it has read all of it,
    /// so a body read slowly leaves less margin. Zero keeps none: for a Python server that
    /// closes each connection after its answer, a request sent on one would race its close.
    idle_timeout: Duration,
    idle: Mutex<Idle>,
}

#[derive(Debug, Default)]
struct Idle {
    /// Ready for a request; the most recently used last, so it is the first taken.
    connections: Vec<IdleConnection>,
    /// Whether a task is closing the connections idle too long (see [`Pool::put`]).
    reaping: bool,
}

#[derive(Debug)]
struct IdleConnection {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Where Python listens, as the connections dial it.
#[derive(Debug, Clone)]
enum Target {
    /// `host:port`, the port made explicit (80 when the URL gives none).
    Tcp(String),
    /// The socket path as configured, and from the root for messages.
    Unix { path: PathBuf, shown: String },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => f.write_str(address),
            Self::Unix { shown, .. } => f.write_str(shown),
        }
    }
}

/// Why a request got no response headers from Python.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened: Python is down, restarting, or not listening there.
    Connect { target: String, cause: io::Error },
    /// The exchange failed on an open connection: it closed before the response, the
    /// response was not HTTP, or the request body failed (see [`Error::source`]).
    Exchange(hyper::Error),
}

impl SendError {
    /// Whether no connection to Python could be opened, so nothing of the request was sent.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { target, .. } => write!(f, "cannot connect to {target}"),
            Self::Exchange(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl Error for SendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Connect { cause, .. } => Some(cause),
            Self::Exchange(err) => err.source(),
        }
    }
}

impl Pool {
    pub fn new(address: &UpstreamAddr, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let target = match address {
            UpstreamAddr::Tcp(authority) => Target::Tcp(with_port(authority)),
            UpstreamAddr::Unix(path) => Target::Unix {
                shown: std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string(),
                path: path.clone(),
            },
        };
        Self {
            shared: Arc::new(PoolShared {
                target,
                connect_timeout,
                idle_timeout,
                idle: Mutex::new(Idle::default()),
            }),
        }
    }

    /// An empty pool that dials the same target with the same timeouts, for another runtime.
    pub fn empty_copy(&self) -> Self {
        let shared = &self.shared;
        Self {
            shared: Arc::new(PoolShared {
                target: shared.target.clone(),
                connect_timeout: shared.connect_timeout,
                idle_timeout: shared.idle_timeout,
                idle: Mutex::new(Idle::default()),
            }),
        }
    }

    /// Sends `request` on an idle connection, or a new one, and resolves with the response
    /// headers, the body streaming behind them. The connection goes back to the pool once
    /// the response body has been read to its end.
    ///
    /// A request is sent again only when the idle connection it was given turned out to be
    /// closed before any of it was written (Python closed it meanwhile): so even a `POST` is
    /// never sent twice.
    pub async fn send(&self, mut request: Request<Body>) -> Result<Response<Incoming>, SendError> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                // Boxed: a connect is rare, and its future would otherwise make the
                // future of every forwarded request larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.give_back(sender);
                    return Ok(response);
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Exchange(err.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and not too old.
    fn take(&self) -> Option<SendRequest<Body>> {
        let mut idle = lock(&self.shared);
        while let Some(connection) = idle.connections.pop() {
            if connection.sender.is_ready() && connection.since.elapsed() < self.shared.idle_timeout
            {
                return Some(connection.sender);
            }
            // Closed by Python, or about to be: dropping the sender closes it on our side.
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let shared = &self.shared;
        let failed = |cause| SendError::Connect {
            target: shared.target.to_string(),
            cause,
        };
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        match &shared.target {
            Target::Tcp(address) => {
                let stream = tokio::time::timeout(
                    shared.connect_timeout,
                    TcpStream::connect(address.as_str()),
                )
                .await
                .map_err(|_| failed(timed_out()))?
                .map_err(failed)?;
                stream.set_nodelay(true).map_err(failed)?;
                handshake(stream).await
            }
            Target::Unix { path, .. } => {
                let stream =
                    tokio::time::timeout(shared.connect_timeout, UnixStream::connect(path))
                        .await
                        .map_err(|_| failed(timed_out()))?
                        .map_err(failed)?;
                handshake(stream).await
            }
        }
    }

    /// Returns a connection that has carried a request: to the pool if it can take the next
    /// one already (the whole response was in its buffer), else once it can, which is when
    /// the response body has been read to its end. One that is closed or upgraded is dropped,
    /// and so is every one when the idle timeout is zero: hyper then closes it once its
    /// response has been read.
    fn give_back(&self, mut sender: SendRequest<Body>) {
        if self.shared.idle_timeout.is_zero() {
            return;
        }
        if sender.is_ready() {
            put(&self.shared, sender);
        } else if !sender.is_closed() {
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(async move {
                if sender.ready().await.is_ok()
                    && let Some(shared) = shared.upgrade()
                {
                    put(&shared, sender);
                }
            });
        }
    }
}

fn lock(shared: &PoolShared) -> MutexGuard<'_, Idle> {
    // A panic while holding the lock leaves a list of connections, still valid.
    shared
        .idle
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Adds an idle connection, and starts the task that closes idle ones unless it runs.
fn put(shared: &Arc<PoolShared>, sender: SendRequest<Body>) {
    let start_reaping = {
        let mut idle = lock(shared);
        idle.connections.push(IdleConnection {
            sender,
            since: Instant::now(),
        });
        !std::mem::replace(&mut idle.reaping, true)
    };
    if start_reaping {
        // The guard is made before the spawn, outside the lock that its drop takes: it then
        // covers a spawn that fails and a task that never runs (its runtime shutting down).
        let shared = Arc::downgrade(shared);
        let reaping = Reaping(Some(shared.clone()));
        tokio::spawn(reap(shared, reaping));
    }
}

/// Closes connections idle longer than the idle timeout, or closed by Python, every eighth
/// of it; ends when none is left (the next [`put`] starts it again) or the pool is gone.
async fn reap(shared: Weak<PoolShared>, mut running: Reaping) {
    // Should the task end otherwise (its runtime shutting down), `running` lets the next
    // `put` start another.
    let interval = match shared.upgrade() {
        Some(shared) => reap_interval(shared.idle_timeout),
        None => return,
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut idle = lock(&shared);
        let idle_timeout = shared.idle_timeout;
        idle.connections.retain(|connection| {
            !connection.sender.is_closed() && connection.since.elapsed() < idle_timeout
        });
        if idle.connections.is_empty() {
            idle.reaping = false;
            running.0 = None;
            return;
        }
    }
}

fn reap_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / REAP_DIVISOR).max(MIN_REAP_INTERVAL)
}

/// Clears [`Idle::reaping`] when dropped while still holding the pool.
struct Reaping(Option<Weak<PoolShared>>);

impl Drop for Reaping {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take().and_then(|shared| shared.upgrade()) {
            lock(&shared).reaping = false;
        }
    }
}

/// Opens HTTP/1.1 on `stream` and spawns the task that drives it, upgrades (WebSocket)
/// included.
async fn handshake<S>(stream: S) -> Result<SendRequest<Body>, SendError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Exchange)?;
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!(error = %err, "connection to Python ended with an error");
        }
    });
    Ok(sender)
}

/// `host:port` for `authority`, with port 80 when it names none.
fn with_port(authority: &Authority) -> String {
    match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = free.local_addr().expect("local address").to_string();
        drop(free);
        let upstream = UpstreamAddr::Tcp(address.parse().expect("an authority"));
        let pool = Pool::new(&upstream, Duration::from_secs(2), Duration::from_secs(4));
        let err = pool
            .send(Request::new(Body::empty()))
            .await
            .expect_err("nothing listens there");
        assert!(err.is_connect());
        assert_eq!(err.to_string(), format!("cannot connect to {address}"));
        let cause = err
            .source()
            .and_then(|cause| cause.downcast_ref::<io::Error>());
        assert_eq!(
            cause.map(io::Error::kind),
            Some(io::ErrorKind::ConnectionRefused)
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_named_from_the_root() {
        let relative = PathBuf::from(format!("run/absent-{}.sock", std::process::id()));
        let pool = Pool::new(
            &UpstreamAddr::Unix(relative.clone()),
            Duration::from_secs(2),
            Duration::from_secs(4),
        );
        let err = pool
            .send(Request::new(Body::empty()))
            .await
            .expect_err("no such socket");
        assert!(err.is_connect());
        let absolute = std::env::current_dir()
            .expect("a working directory")
            .join(relative);
        assert_eq!(
            err.to_string(),
            format!("cannot connect to {}", absolute.display())
        );
    }

    /// A Python that answers every request on a connection with a whole `ok` response (so
    /// the connection can take the next request at once), and counts its connections.
    async fn spawn_answering_python() -> (UpstreamAddr, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let python = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = python.local_addr().expect("local address").to_string();
        let opened = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&opened);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = python.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buffer = [0; 4096];
                    // One request head per read is enough for these requests.
                    while socket.read(&mut buffer).await.is_ok_and(|read| read > 0) {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (
            UpstreamAddr::Tcp(address.parse().expect("an authority")),
            opened,
        )
    }

    /// Sends `count` requests in turn through a pool with `idle_timeout`, each answer read to
    /// its end; returns how many connections Python saw and how many the pool then keeps.
    async fn connections_after(idle_timeout: Duration, count: usize) -> (usize, usize) {
        let (python, opened) = spawn_answering_python().await;
        let pool = Pool::new(&python, Duration::from_secs(2), idle_timeout);
        for _ in 0..count {
            let request = Request::get("/").body(Body::empty()).expect("a request");
            let response = pool.send(request).await.expect("an answer");
            let body = axum::body::to_bytes(Body::new(response.into_body()), 100)
                .await
                .expect("the body");
            assert_eq!(&body[..], b"ok");
        }
        let kept = lock(&pool.shared).connections.len();
        (opened.load(Ordering::Relaxed), kept)
    }

    #[tokio::test]
    async fn a_connection_is_kept_and_used_again() {
        assert_eq!(connections_after(Duration::from_secs(4), 3).await, (1, 1));
    }

    #[tokio::test]
    async fn an_idle_timeout_of_zero_keeps_no_connection() {
        assert_eq!(connections_after(Duration::ZERO, 3).await, (3, 0));
    }

    #[test]
    fn idle_connections_are_looked_at_every_eighth_of_the_idle_timeout() {
        for (idle_timeout, interval) in [(4_000, 500), (1_000, 125), (40, 10), (1, 10)] {
            assert_eq!(
                reap_interval(Duration::from_millis(idle_timeout)),
                Duration::from_millis(interval),
                "idle timeout {idle_timeout} ms"
            );
        }
    }

    #[test]
    fn a_url_without_a_port_is_dialled_on_80() {
        for (authority, dialled) in [
            ("localhost", "localhost:80"),
            ("[::1]", "[::1]:80"),
            ("127.0.0.1:8000", "127.0.0.1:8000"),
        ] {
            let authority = authority.parse().expect("an authority");
            assert_eq!(with_port(&authority), dialled);
        }
    }
}
