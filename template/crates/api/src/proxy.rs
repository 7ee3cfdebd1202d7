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

/// A route's own forwarding settings from rspy.toml (`timeout_ms`, `upstream_path`), set as a
/// request extension by the generated router. They apply to every request the route forwards:
/// by the proxy, or by a native handler that still passes requests through to Python.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteSettings {
    /// How long to wait for response headers; overrides `UPSTREAM_TIMEOUT_MS`.
    timeout: Option<Duration>,
    /// The route's path pattern and the path pattern Python serves it under.
    upstream_path: Option<(&'static str, &'static str)>,
}

impl RouteSettings {
    pub const fn new() -> Self {
        Self {
            timeout: None,
            upstream_path: None,
        }
    }

    /// `timeout_ms`: this route's wait for Python's response headers.
    pub const fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout = Some(Duration::from_millis(ms));
        self
    }

    /// `upstream_path`: requests matching `route` (e.g. `/api/users/{id}`) reach Python at
    /// `upstream` (e.g. `/users/{id}`), each parameter carried over as the client sent it.
    pub const fn upstream_path(mut self, route: &'static str, upstream: &'static str) -> Self {
        self.upstream_path = Some((route, upstream));
        self
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
    let settings = request
        .extensions()
        .get::<RouteSettings>()
        .copied()
        .unwrap_or_default();
    let timeout = settings.timeout.unwrap_or(upstream.timeout());
    let fail = |kind| ApiError::new(kind, request_id.clone());

    // Absent when the app is served without connect info (e.g. driven by a test): then there
    // is no peer to add to X-Forwarded-For, which is no reason to fail the request.
    let peer = request
        .extract_parts::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(peer)| peer);
    let request = upstream_request(request, upstream, &settings, peer, request_id.as_ref())
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

/// Rewrites the client's request for Python: upstream URI with the path (unless the route maps
/// it to another) and query unchanged, HTTP/1.1, hop-by-hop headers stripped, then the
/// forwarding headers and request id added.
fn upstream_request(
    mut request: Request,
    upstream: &Upstream,
    settings: &RouteSettings,
    peer: Option<SocketAddr>,
    request_id: Option<&RequestId>,
) -> Result<Request, axum::http::Error> {
    // HTTP/2 clients send no Host header, only the URI's authority.
    let host = request.headers().get(HOST).cloned().or_else(|| {
        let authority = request.uri().authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    let uri = request.uri();
    *request.uri_mut() = match settings.upstream_path {
        Some((route, target)) => {
            let mut path_and_query = rewrite_path(route, target, uri.path());
            if let Some(query) = uri.query() {
                path_and_query.push('?');
                path_and_query.push_str(query);
            }
            upstream.uri(&path_and_query)?
        }
        None => upstream.uri(uri.path_and_query().map_or("/", |pq| pq.as_str()))?,
    };
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

/// The path Python sees for `path` (as the client sent it, still percent-encoded): `target`
/// with each `{name}` or `{*name}` replaced by what that parameter of `route` matched.
fn rewrite_path(route: &str, target: &str, path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let matched = |name: &str| -> String {
        route
            .split('/')
            .enumerate()
            .find_map(|(index, pattern)| {
                let inner = pattern.strip_prefix('{')?.strip_suffix('}')?;
                match inner.strip_prefix('*') {
                    Some(wildcard) if wildcard == name => Some(segments.get(index..)?.join("/")),
                    None if inner == name => segments.get(index).map(|s| (*s).to_owned()),
                    _ => None,
                }
            })
            .unwrap_or_default()
    };
    let mut out = String::with_capacity(target.len() + path.len());
    let mut rest = target;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |at| open + at);
        out.push_str(&matched(rest[open + 1..close].trim_start_matches('*')));
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    out
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
    fn rewrites_paths_with_parameters_as_the_client_sent_them() {
        let cases = [
            (
                "/api/users/{id}",
                "/users/{id}",
                "/api/users/a%2Fb",
                "/users/a%2Fb",
            ),
            (
                "/t/{tenant}/u/{id}",
                "/u/{id}/of/{tenant}",
                "/t/x/u/7",
                "/u/7/of/x",
            ),
            (
                "/files/{*rest}",
                "/static/{*rest}",
                "/files/a/b/",
                "/static/a/b/",
            ),
            ("/v2/health", "/healthz", "/v2/health", "/healthz"),
            ("/p/{id}", "/legacy-{id}.json", "/p/9", "/legacy-9.json"),
        ];
        for (route, target, path, expected) in cases {
            assert_eq!(
                rewrite_path(route, target, path),
                expected,
                "{route} -> {target}"
            );
        }
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
