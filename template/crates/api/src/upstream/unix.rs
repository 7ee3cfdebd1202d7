//! A connector that dials the Python service's Unix domain socket for hyper's pooled client.

use std::{
    future::Future,
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Connects every request to one socket path, whatever the URI says, so the rest of the
/// client (pool, timeouts, HTTP/1.1) works exactly as over TCP.
#[derive(Debug, Clone)]
pub struct UnixConnector {
    /// As configured: a relative path is dialled relative, so it stays short.
    path: Arc<Path>,
    /// The same path from the root, for messages: "No such file or directory" alone does not
    /// say which file, and a relative path does not say where it was looked for.
    shown: Arc<str>,
    connect_timeout: Duration,
}

impl UnixConnector {
    pub fn new(path: PathBuf, connect_timeout: Duration) -> Self {
        let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        Self {
            shown: shown.display().to_string().into(),
            path: path.into(),
            connect_timeout,
        }
    }
}

impl tower::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let path = Arc::clone(&self.path);
        let shown = Arc::clone(&self.shown);
        let connect_timeout = self.connect_timeout;
        Box::pin(async move {
            let connect = tokio::time::timeout(connect_timeout, UnixStream::connect(&*path));
            match connect.await {
                Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
                Ok(Err(err)) => Err(io::Error::new(err.kind(), format!("{shown}: {err}"))),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{shown}: connect timed out"),
                )),
            }
        })
    }
}
