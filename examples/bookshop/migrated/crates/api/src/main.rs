//! Starts the api: logging, settings from the environment, the readiness probe and the server.

use std::{error::Error, future::Future, io, net::SocketAddr, process::ExitCode, sync::Arc};

use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

// One short line each: the crate name's length must not change how rustfmt lays them out.
use bookshop_api::config::Config;
use bookshop_api::metrics_app;
use bookshop_api::telemetry;
use bookshop_api::{AppState, app};
use bookshop_api::{health, server};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(err) = telemetry::init() {
        // Logging itself is what failed, so this one message goes straight to stderr.
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("cannot start: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let state = AppState::new(&config);
    let address = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = TcpListener::bind(address)
        .await
        .map_err(|err| format!("cannot listen on {address} (PORT): {err}"))?;
    if let Some(metrics_addr) = config.metrics_addr {
        let metrics = TcpListener::bind(metrics_addr).await.map_err(|err| {
            format!("cannot listen on {metrics_addr} (METRICS_ADDR): {err}; set another address, or `off`")
        })?;
        tracing::info!(address = %metrics_addr, "metrics at /metrics");
        let metrics_app = metrics_app(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics, metrics_app).await {
                tracing::error!(error = %err, "the metrics endpoint stopped");
            }
        });
    }
    let shutdown = shutdown_signal().map_err(|err| format!("cannot watch signals: {err}"))?;
    tokio::spawn(health::watch_upstream(
        Arc::clone(&state.upstream),
        config.readiness_interval,
    ));
    tracing::info!(%address, upstream = %config.upstream, "listening");
    server::serve(listener, app(state), config.header_read_timeout, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM (supervisord, `docker stop`) or SIGINT (ctrl-c); in-flight requests
/// then finish while no new connection is accepted. Both handlers are installed up front,
/// so failing to install one is a start-up error rather than a shutdown that never comes.
fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let received = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = received, "shutting down");
    })
}
