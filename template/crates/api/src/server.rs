//! The HTTP server: HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with upgrades and
//! extended CONNECT (the proxy's WebSocket tunnels), a header read timeout for slow clients,
//! and a graceful stop.
//!
//! `axum::serve` offers none of the timeouts, so this is hyper-util's server driven by hand.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulConnection},
};
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};

use crate::gateway::Gateway;

/// How long in-flight requests may take to finish after a stop signal: below supervisord's
/// `stopwaitsecs` (10 s), after which it kills the process.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// Serves `gateway` on `listener` until `shutdown` resolves, then stops accepting and lets
/// open connections finish their requests (for at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(gateway.state().timer.clone())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // WebSockets over HTTP/2 (RFC 8441), which the proxy tunnels like HTTP/1.1 upgrades.
        .enable_connect_protocol();
    let stop = Arc::new(Stop::default());
    // One receiver per open connection; `closed` resolves once all are gone.
    let (open, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let service =
            service_fn(move |request: hyper::Request<Incoming>| gateway.call(request, peer));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = Stoppable::new(connection, &stop, open.subscribe());
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stop.stopping.store(true, Ordering::SeqCst);
    stop.signal.notify_waiters();
    if tokio::time::timeout(DRAIN_TIMEOUT, open.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}

/// Tells the open connections that the server stops: each finishes the request it serves, if
/// any, and closes. hyper-util's `GracefulShutdown` does the same by polling a channel (a lock)
/// at every turn of every connection, about 1 % of the instructions of a proxied request (see
/// rspy's docs/benchmarks.md); here a connection reads a flag, and polls the signal again only
/// when it is polled with another waker than before (never, once spawned).
#[derive(Default)]
struct Stop {
    stopping: AtomicBool,
    /// Wakes the connections once `stopping` is set.
    signal: Notify,
}

/// A connection that stops gracefully when its [`Stop`] says so.
struct Stoppable<C> {
    connection: Pin<Box<C>>,
    stop: Arc<Stop>,
    /// Resolves when the stop is signalled; `None` once the connection has seen the stop.
    signal: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// The waker `signal` was last polled with.
    waker: Option<Waker>,
    /// Dropped with the connection, so the server knows when all are done.
    _open: watch::Receiver<()>,
}

impl<C: GracefulConnection> Stoppable<C> {
    fn new(connection: C, stop: &Arc<Stop>, open: watch::Receiver<()>) -> Self {
        let signalled = Arc::clone(stop);
        Self {
            connection: Box::pin(connection),
            stop: Arc::clone(stop),
            signal: Some(Box::pin(async move { signalled.signal.notified().await })),
            waker: None,
            _open: open,
        }
    }
}

impl<C: GracefulConnection> Future for Stoppable<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        let mut signalled = false;
        if let Some(signal) = &mut this.signal {
            // Polled once per waker, so the signal wakes whichever task polls the connection.
            if this
                .waker
                .as_ref()
                .is_none_or(|waker| !waker.will_wake(cx.waker()))
            {
                this.waker = Some(cx.waker().clone());
                signalled = signal.as_mut().poll(cx).is_ready();
            }
            // Read at every turn: the signal wakes the connection but is not polled again with
            // the same waker, and a stop signalled before the first poll wakes nobody.
            if signalled || this.stop.stopping.load(Ordering::SeqCst) {
                this.signal = None;
                this.connection.as_mut().graceful_shutdown();
            }
        }
        this.connection.as_mut().poll(cx)
    }
}
