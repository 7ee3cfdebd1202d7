//! Health: `/livez` (the api runs), `/readyz` (Python answers too) and the probe behind it.
//!
//! The probe asks Python for its health path (`/healthz` unless rspy.toml or
//! `UPSTREAM_HEALTH_PATH` say otherwise). Any answer below 500 means Python is up and serving:
//! a service adopted with `rspy init` may have no health route, and its 404 still proves it
//! runs. A 5xx (say, a 503 from a health route that checks the database) means not ready.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, sync::Arc, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{Request, StatusCode},
};
use serde_json::{Value, json};
use tokio::time::MissedTickBehavior;

use crate::{AppState, error::chain, upstream::Upstream};

/// The most of a health answer's body we read: enough for any status document.
const HEALTHZ_BODY_LIMIT: usize = 64 * 1024;

/// Where the api answers that it runs.
pub const LIVEZ: &str = "/livez";
/// Where the api answers whether Python is ready too.
pub const READYZ: &str = "/readyz";

pub async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Answers from the cached probe result, so load balancers polling it never reach Python.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.upstream.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        let body = json!({"status": "unavailable", "reason": "the Python service is not ready"});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

/// Probes Python's health path every `interval` (each probe bounded by it too), records
/// the result for `/readyz` and logs every change. Runs until the runtime shuts down.
pub async fn watch_upstream(upstream: Arc<Upstream>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        ticks.tick().await;
        let result = probe(&upstream, interval).await;
        upstream.set_ready(result.is_ok());
        if last != Some(result.is_ok()) {
            match &result {
                Ok(()) => {
                    tracing::info!("python upstream is ready");
                    if let Some(socket) = upstream.socket_path()
                        && let Some(exposure) = socket_exposure(socket)
                    {
                        tracing::warn!(
                            socket = %socket.display(),
                            "{exposure}: other local users may reach Python without the api; \
                             keep the socket in a folder only this user may enter (chmod 0700)"
                        );
                    }
                }
                Err(reason) => tracing::warn!(reason = %reason, "python upstream is not ready"),
            }
        }
        last = Some(result.is_ok());
    }
}

/// Who besides the api's user may connect to the Unix socket at `path`: connecting takes write
/// permission on the socket and search permission on its folder. uvicorn makes its socket
/// writable by all (0666), so the folder is what keeps others out. `None` when no one is let
/// in, or the files cannot be read.
fn socket_exposure(path: &Path) -> Option<&'static str> {
    let socket = fs::metadata(path).ok()?.permissions().mode();
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let folder = fs::metadata(folder).ok()?.permissions().mode();
    if socket & 0o002 != 0 && folder & 0o001 != 0 {
        Some("any user may connect to the socket")
    } else if socket & 0o020 != 0 && folder & 0o010 != 0 {
        Some("the socket's group may connect to it")
    } else {
        None
    }
}

/// One `GET` of the health path: `Ok` if Python answered below 500 within `timeout`.
pub async fn probe(upstream: &Upstream, timeout: Duration) -> Result<(), String> {
    let path = upstream.health_path();
    let uri = upstream.uri(path).map_err(|err| err.to_string())?;
    let request = Request::get(uri)
        .body(Body::empty())
        .map_err(|err| err.to_string())?;
    let exchange = async {
        let response = upstream.send(request).await.map_err(|err| chain(&err))?;
        let status = response.status();
        // Reading the body to its end returns the connection to the pool (unless the idle
        // timeout is 0: then it closes).
        axum::body::to_bytes(Body::new(response.into_body()), HEALTHZ_BODY_LIMIT)
            .await
            .map_err(|err| err.to_string())?;
        if status.is_server_error() {
            Err(format!("{path} answered {status}"))
        } else {
            Ok(())
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{path} gave no answer within {} ms", timeout.as_millis()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_in_an_open_folder_is_exposed() {
        let folder = std::env::temp_dir().join(format!("api-exposure-{}", std::process::id()));
        fs::create_dir_all(&folder).expect("a folder");
        let path = folder.join("py.sock");
        let _ = fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("a socket");
        let chmod = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        chmod(&path, 0o666);
        for (folder_mode, exposed) in [
            (0o755, Some("any user may connect to the socket")),
            (0o750, Some("the socket's group may connect to it")),
            (0o700, None),
        ] {
            chmod(&folder, folder_mode);
            assert_eq!(socket_exposure(&path), exposed, "{folder_mode:o}");
        }
        chmod(&folder, 0o755);
        chmod(&path, 0o600);
        assert_eq!(socket_exposure(&path), None, "the socket itself is closed");
        assert_eq!(socket_exposure(&folder.join("absent.sock")), None);
        let _ = fs::remove_dir_all(&folder);
    }
}
