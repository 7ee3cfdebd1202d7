//! The HTTP server: HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with upgrades and
//! extended CONNECT (the proxy's WebSocket tunnels), a header read timeout for slow clients,
//! and a graceful stop.
//!
//! `axum::serve` offers none of the timeouts, so this is hyper-util's server driven by hand.

use std::{future::Future, io, time::Duration};

use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use tokio::net::TcpListener;

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
    let graceful = GracefulShutdown::new();
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
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}
