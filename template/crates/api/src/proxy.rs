//! Forwards a request to the Python service and streams its answer back, as transparently as
//! an HTTP/1.1 proxy can: hop-by-hop headers stripped, everything else passed through.

use std::{net::SocketAddr, time::Duration};

use axum::{
    RequestExt,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, Version,
        header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE},
    },
    response::Response,
};

use crate::{
    AppState,
    error::{ApiError, ErrorKind},
    request_id::{RequestId, X_REQUEST_ID},
    upstream::Upstream,
};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// Hop-by-hop headers (RFC 9110 section 7.6.1) besides those a `Connection` header names and
/// the `Proxy-*` family: they describe one connection, not the message.
const HOP_BY_HOP: [HeaderName; 5] = [KEEP_ALIVE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE];

/// A proxy route's own wait for response headers (`timeout_ms` in rspy.toml), set as a
/// request extension by the generated router; overrides `UPSTREAM_TIMEOUT_MS`.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimeout(Duration);

impl RouteTimeout {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
}

/// Handler for `mode = "proxy"` routes and the fallback: sends the request to Python and
/// returns its response with the body still streaming.
pub async fn forward(
    State(state): State<AppState>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let upstream = &state.upstream;
    let request_id = request.extensions().get::<RequestId>().cloned();
    let timeout = request
        .extensions()
        .get::<RouteTimeout>()
        .map_or(upstream.timeout(), |route| route.0);
    let fail = |kind| ApiError::new(kind, request_id.clone());

    // Absent when the app is served without connect info (e.g. driven by a test): then there
    // is no peer to add to X-Forwarded-For, which is no reason to fail the request.
    let peer = request
        .extract_parts::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(peer)| peer);
    let request = upstream_request(request, upstream, peer, request_id.as_ref())
        .map_err(|err| fail(ErrorKind::BadGateway).with_cause(err))?;

    match tokio::time::timeout(timeout, upstream.send(request)).await {
        Ok(Ok(response)) => Ok(client_response(response)),
        Ok(Err(err)) if err.is_connect() => {
            // Python is down or restarting: report not ready now rather than at the next probe.
            upstream.set_ready(false);
            Err(fail(ErrorKind::UpstreamUnavailable).with_cause(err))
        }
        Ok(Err(err)) => Err(fail(ErrorKind::BadGateway).with_cause(err)),
        Err(elapsed) => Err(fail(ErrorKind::UpstreamTimeout).with_cause(format!(
            "no response headers within {} ms: {elapsed}",
            timeout.as_millis()
        ))),
    }
}

/// Rewrites the client's request for Python: upstream URI with the path and query unchanged,
/// HTTP/1.1, hop-by-hop headers stripped, then the forwarding headers and request id added.
fn upstream_request(
    mut request: Request,
    upstream: &Upstream,
    peer: Option<SocketAddr>,
    request_id: Option<&RequestId>,
) -> Result<Request, axum::http::Error> {
    // HTTP/2 clients send no Host header, only the URI's authority.
    let host = request.headers().get(HOST).cloned().or_else(|| {
        let authority = request.uri().authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    *request.uri_mut() = upstream.uri(path_and_query)?;
    *request.version_mut() = Version::HTTP_11;

    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    if let Some(host) = host {
        headers.insert(HOST, host.clone());
        headers.insert(X_FORWARDED_HOST, host);
    }
    // The client's chain is passed on as it came, with the real peer last: Python must trust
    // only the rightmost entry (trusted-proxy settings are not there yet). Visible ASCII
    // joined with an IP address is always a valid value; if not, the chain is dropped.
    let chain = forwarded_for(headers, peer);
    headers.remove(X_FORWARDED_FOR);
    if let Ok(chain) = HeaderValue::from_str(&chain)
        && !chain.is_empty()
    {
        headers.insert(X_FORWARDED_FOR, chain);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID, id.header_value());
    }
    Ok(request)
}

/// The incoming `X-Forwarded-For` chain (all its lines, joined) with the peer appended, as
/// one header line: some frameworks read only the first or only the last line.
fn forwarded_for(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let peer = peer.map(|peer| peer.ip().to_string());
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .chain(peer.as_deref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Python's response for the client: hop-by-hop headers stripped, body streamed as it comes.
fn client_response(response: Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = response.into_parts();
    // The client's connection has its own version, negotiated by the server: an HTTP/1.0
    // upstream (or a future HTTP/2 client) must not leak into the status line.
    parts.version = Version::default();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// Removes `Connection`, every header named by any `Connection` line, the fixed hop-by-hop
/// set and all `Proxy-*` headers.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in named.iter().chain(&proxy).chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    headers.remove(CONNECTION);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_header_that_any_connection_line_names() {
        let mut headers = HeaderMap::new();
        headers.append(CONNECTION, HeaderValue::from_static("keep-alive, X-One"));
        headers.append(CONNECTION, HeaderValue::from_static("x-two"));
        for name in [
            "x-one",
            "x-two",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-connection",
            "proxy-authorization",
            "x-kept",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
        }

        strip_hop_by_hop(&mut headers);

        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_every_incoming_line() {
        let mut headers = HeaderMap::new();
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.2"));
        let peer = SocketAddr::from(([127, 0, 0, 1], 4000));
        assert_eq!(
            forwarded_for(&headers, Some(peer)),
            "192.0.2.1, 192.0.2.2, 127.0.0.1"
        );
        assert_eq!(forwarded_for(&headers, None), "192.0.2.1, 192.0.2.2");
    }
}
