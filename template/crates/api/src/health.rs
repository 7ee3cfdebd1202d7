//! Health: `/livez` (the api runs), `/readyz` (Python answers too) and the probe behind it.

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

/// The most of a `/healthz` body we read: enough for any status document.
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

/// Probes Python's `GET /healthz` every `interval` (each probe bounded by it too), records
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

/// One `GET /healthz`: `Ok` if Python answered 2xx within `timeout`.
pub async fn probe(upstream: &Upstream, timeout: Duration) -> Result<(), String> {
    let uri = upstream.uri("/healthz").map_err(|err| err.to_string())?;
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
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("/healthz answered {status}"))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("/healthz gave no answer within {} ms", timeout.as_millis()))?
}
