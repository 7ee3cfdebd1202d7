//! Health: `/livez` (the api runs), `/readyz` (Python answers too) and the probe behind it.
//!
//! The probe asks Python for its health path (`/healthz` unless rspy.toml or
//! `UPSTREAM_HEALTH_PATH` say otherwise). Any answer below 500 means Python is up and serving:
//! a service adopted with `rspy init` may have no health route, and its 404 still proves it
//! runs. A 5xx (say, a 503 from a health route that checks the database) means not ready.

use std::{sync::Arc, time::Duration};

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
                Ok(()) => tracing::info!("python upstream is ready"),
                Err(reason) => tracing::warn!(reason = %reason, "python upstream is not ready"),
            }
        }
        last = Some(result.is_ok());
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
        // Reading the body to its end returns the connection to the pool.
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
