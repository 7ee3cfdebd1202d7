//! The least work a reverse proxy built on hyper does for a request: hyper's HTTP/1.1 server,
//! hyper's client connections to the upstream kept per worker thread, and nothing else (no
//! routing, no header rewriting, no ids, no logging, no metrics, no timeouts). Two worker
//! threads with a single-threaded runtime each, accepting from one socket, and mimalloc, as
//! in the generated api. `scripts/bench-instructions.sh` counts its instructions per request
//! next to the api's and nginx's.
//!
//! Settings: `FLOOR_LISTEN` (address to serve), `FLOOR_UPSTREAM` (the upstream's address),
//! `FLOOR_HEADER_TIMEOUT=1` to add hyper's header read timeout (30 s), as the api sets it.

use std::{
    cell::RefCell,
    env,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    thread,
    time::Duration,
};

use http_body::{Body, Frame, SizeHint};
use hyper::{
    Request, Response,
    body::{Bytes, Incoming},
    client::conn::http1::SendRequest,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

thread_local! {
    /// This worker's idle connections to the upstream.
    static POOL: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

fn main() {
    let address = |name: &str| -> SocketAddr {
        let value = env::var(name).unwrap_or_else(|_| panic!("set {name} (an address)"));
        value
            .parse()
            .unwrap_or_else(|err| panic!("{name}={value}: {err}"))
    };
    let listen = address("FLOOR_LISTEN");
    let upstream = address("FLOOR_UPSTREAM");
    let header_timeout = env::var("FLOOR_HEADER_TIMEOUT").is_ok_and(|value| value == "1");
    let listener = std::net::TcpListener::bind(listen).expect("cannot listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let listener = listener.try_clone().expect("socket handle");
            thread::spawn(move || worker(listener, upstream, header_timeout))
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker panicked");
    }
}

fn worker(listener: std::net::TcpListener, upstream: SocketAddr, header_timeout: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = service_fn(move |request: Request<Incoming>| async move {
                let mut sender = take(upstream).await?;
                let (parts, body) = sender.send_request(request).await?.into_parts();
                // hyper never polls a body that is empty from the start (204, HEAD...).
                let sender = if body.is_end_stream() {
                    POOL.with_borrow_mut(|pool| pool.push(sender));
                    None
                } else {
                    Some(sender)
                };
                let body = Returning {
                    inner: body,
                    sender,
                };
                Ok::<_, hyper::Error>(Response::from_parts(parts, body))
            });
            let mut builder = http1::Builder::new();
            if header_timeout {
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30));
            }
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::task::spawn_local(connection);
        }
    });
}

/// An idle connection from the pool, or a new one.
async fn take(upstream: SocketAddr) -> Result<SendRequest<Incoming>, hyper::Error> {
    while let Some(mut sender) = POOL.with_borrow_mut(Vec::pop) {
        if sender.is_ready() || (!sender.is_closed() && sender.ready().await.is_ok()) {
            return Ok(sender);
        }
    }
    let stream = TcpStream::connect(upstream)
        .await
        .expect("cannot connect upstream");
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn_local(connection);
    Ok(sender)
}

/// The upstream's response body, which puts its connection back in the pool once read.
struct Returning {
    inner: Incoming,
    sender: Option<SendRequest<Incoming>>,
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        // hyper stops polling a body that says it has ended, so check that too.
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            if let Some(sender) = this.sender.take() {
                POOL.with_borrow_mut(|pool| pool.push(sender));
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
