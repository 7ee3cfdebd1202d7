//! `ApiError`: the one error type handlers return, rendered as a fixed JSON shape.

use std::{error::Error, fmt::Write as _};

use axum::{
    Json,
    extract::Request,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    metrics::{Mode, UpstreamError},
    request_id::RequestId,
};

/// What went wrong, as far as the client needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No route matches and the fallback is `none`.
    NotFound,
    /// A CONNECT that opens no WebSocket: the api is not a forward proxy.
    ConnectNotSupported,
    /// Python cannot be reached: connection refused, socket missing, connect timeout.
    UpstreamUnavailable,
    /// Python sent no response headers in time.
    UpstreamTimeout,
    /// Python's response was broken (or the exchange failed half-way).
    BadGateway,
    /// `UPSTREAM_MAX_CONCURRENCY` forwarded requests are already in flight.
    UpstreamOverloaded,
    /// The request body is over `MAX_BODY_BYTES` (declared, or found while streaming it).
    PayloadTooLarge,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ConnectNotSupported => StatusCode::NOT_IMPLEMENTED,
            Self::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::UpstreamOverloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The stable, machine-readable `error.code`.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::ConnectNotSupported => "connect_not_supported",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::BadGateway => "bad_gateway",
            Self::UpstreamOverloaded => "upstream_overloaded",
            Self::PayloadTooLarge => "payload_too_large",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::NotFound => "no route matches this request",
            Self::ConnectNotSupported => {
                "CONNECT only opens WebSockets over HTTP/2 here; this is not a forward proxy"
            }
            Self::UpstreamUnavailable => "the service is temporarily unavailable, retry shortly",
            Self::UpstreamTimeout => "the service did not answer in time",
            Self::BadGateway => "the service sent an invalid response",
            Self::UpstreamOverloaded => "the service is busy, retry shortly",
            Self::PayloadTooLarge => "the request body is larger than this service accepts",
        }
    }

    /// How the metrics count this failure of a forwarded request; `None` for Rust's own.
    pub fn upstream_error(self) -> Option<UpstreamError> {
        match self {
            Self::NotFound | Self::ConnectNotSupported => None,
            Self::UpstreamUnavailable => Some(UpstreamError::Unavailable),
            Self::UpstreamTimeout => Some(UpstreamError::Timeout),
            Self::BadGateway => Some(UpstreamError::BadGateway),
            Self::UpstreamOverloaded => Some(UpstreamError::Overloaded),
            Self::PayloadTooLarge => Some(UpstreamError::BodyTooLarge),
        }
    }
}

/// An error answer: `{"error": {"code", "message", "request_id"}}` with the kind's status.
/// The cause is logged for 5xx answers and never sent to the client.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    request_id: Option<RequestId>,
    cause: Option<Box<dyn Error + Send + Sync>>,
    /// Answered by the proxy in Python's place (see [`ApiError::forwarded`]).
    forwarded: bool,
}

impl ApiError {
    pub fn new(kind: ErrorKind, request_id: Option<RequestId>) -> Self {
        Self {
            kind,
            request_id,
            cause: None,
            forwarded: false,
        }
    }

    /// Marks the error as the answer to a request that was to be forwarded: the request log
    /// and the metrics count it as `proxy`, not `native`.
    pub fn forwarded(mut self) -> Self {
        self.forwarded = true;
        self
    }

    pub fn with_cause(mut self, cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status.is_server_error() {
            let cause = self.cause.as_deref().map(|cause| chain(cause));
            tracing::error!(
                code = self.kind.code(),
                cause,
                "request failed with {status}"
            );
        }
        let body = json!({
            "error": {
                "code": self.kind.code(),
                "message": self.kind.message(),
                "request_id": self.request_id.as_ref().map(RequestId::as_str),
            }
        });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Python is usually restarting (supervisord brings it back within a second or
            // two) or busy for a moment.
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.forwarded {
            // Read by the request log and the metrics: a forwarded request, answered here.
            response.extensions_mut().insert(Mode::Proxy);
        }
        response
    }
}

/// The fallback when rspy.toml says `[fallback] mode = "none"`.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        request.extensions().get::<RequestId>().cloned(),
    )
}

/// `outer: inner: innermost`, because hyper's errors keep the useful part in their sources.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let _ = write!(text, ": {inner}");
        source = inner.source();
    }
    text
}
