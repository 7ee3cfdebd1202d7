//! Starts the api: logging, settings from the environment, the readiness probe and the server.
//!
//! Requests are served by `WORKERS` threads, each running a single-threaded runtime of its
//! own that accepts from the one listening socket and keeps its own pool of connections to
//! Python, as nginx's worker processes do: a request, its upstream connection and their tasks
//! stay on one thread, so handing work between tasks never wakes another thread. The main
//! thread's runtime watches signals and Python's readiness, and serves the metrics.

use std::{
    error::Error,
    future::Future,
    io,
    net::{SocketAddr, TcpListener as StdListener},
    process::ExitCode,
    sync::Arc,
    thread,
};

use tokio::{
    net::TcpListener,
    runtime::{Builder, Runtime},
    signal::unix::{SignalKind, signal},
    sync::watch,
};

// One short line each: the crate name's length must not change how rustfmt lays them out.
use {{crate_name}}_api::AppState;
use {{crate_name}}_api::config::Config;
use {{crate_name}}_api::gateway::Gateway;
use {{crate_name}}_api::metrics_app;
use {{crate_name}}_api::telemetry;
use {{crate_name}}_api::{health, server};

/// Allocation is a fifth of the work of a proxied request; mimalloc does it with fewer
/// instructions than the system allocator (see the workspace's Cargo.toml). Remove these two
/// lines and the dependency to go back to the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Err(err) = telemetry::init() {
        // Logging itself is what failed, so this one message goes straight to stderr.
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("cannot start: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let runtime = single_threaded()?;
    let state = AppState::new(&config);
    let address = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = StdListener::bind(address)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|err| format!("cannot listen on {address} (PORT): {err}"))?;
    let shutdown = runtime.block_on(start_background(&config, &state))?;
    // Dropping the sender is the stop signal: every worker's receiver then resolves.
    let (stop, stopped) = watch::channel(());
    let mut workers = Vec::with_capacity(config.workers);
    for number in 0..config.workers {
        let listener = listener.try_clone()?;
        let worker = Worker {
            state: state.for_worker(number),
            config: config.clone(),
            stopped: stopped.clone(),
        };
        workers.push(
            thread::Builder::new()
                .name(format!("worker-{number}"))
                .spawn(move || worker.serve(listener))?,
        );
    }
    tracing::info!(%address, upstream = %config.upstream, workers = config.workers, "listening");
    runtime.block_on(shutdown);
    drop(stop);
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => return Err("a worker thread panicked".into()),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn single_threaded() -> io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// On the main thread's runtime: the metrics endpoint and the readiness probe, spawned; the
/// returned future resolves on a stop signal.
async fn start_background(
    config: &Config,
    state: &AppState,
) -> Result<impl Future<Output = ()> + use<>, Box<dyn Error>> {
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
    Ok(shutdown)
}

/// One worker thread: what it serves with, and the stop signal it waits for.
struct Worker {
    state: AppState,
    config: Config,
    stopped: watch::Receiver<()>,
}

impl Worker {
    /// Accepts from `listener` (a handle on the one shared socket) and serves until stopped.
    fn serve(mut self, listener: StdListener) -> io::Result<()> {
        let runtime = single_threaded()?;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            let stopped = async move {
                // Err once the sender is dropped: that is the signal.
                let _ = self.stopped.changed().await;
            };
            let gateway = Gateway::new(self.state);
            server::serve(listener, gateway, self.config.header_read_timeout, stopped).await
        })
    }
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
