//! A connector that dials the Python service's TCP address for hyper's pooled client.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::http::Uri;
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects every request to one address, whatever the URI says (upstream URIs carry a short
/// placeholder authority, see `Upstream::uri`), with hyper-util's `HttpConnector` doing the
/// work: name resolution, connect timeout, `TCP_NODELAY`.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    inner: HttpConnector,
    /// `http://host:port` of the Python service.
    target: Uri,
}

impl TcpConnector {
    pub fn new(inner: HttpConnector, target: Uri) -> Self {
        Self { inner, target }
    }
}

impl tower::Service<Uri> for TcpConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower::Service::<Uri>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let connecting = tower::Service::call(&mut self.inner, self.target.clone());
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}
