//! Forwards a request to the Python service and streams its answer back, as transparently as
//! an HTTP/1.1 proxy can: hop-by-hop headers stripped, everything else passed through, bodies
//! streamed both ways (trailers included), WebSocket and other upgrades tunnelled, HTTP/2
//! WebSockets (RFC 8441) included.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State, connect_info::MockConnectInfo},
    handler::Handler,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version,
        header::{
            CONNECTION, CONTENT_LENGTH, FORWARDED, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
            TE, TRANSFER_ENCODING, UPGRADE,
        },
        uri::PathAndQuery,
    },
    response::{IntoResponse, Response},
};
use http_body_util::{LengthLimitError, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{sync::OwnedSemaphorePermit, time::Sleep};

use crate::{
    AppState,
    config::TrustedProxies,
    error::{ApiError, ErrorKind},
    metrics::Mode,
    request_id::{RequestId, X_REQUEST_ID},
    trace_context::TRACEPARENT,
};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

// The lists below are statics, not consts: a const is built (and dropped) again at every use.

/// Hop-by-hop headers (RFC 9110 section 7.6.1) besides those a `Connection` header names and
/// the `Proxy-*` family: they describe one connection, not the message. `Trailer` is not one
/// (RFC 9110 section 6.6.2): it announces the trailer fields, and hyper sends only trailers
/// that it announces, so it must pass for trailers to survive.
static HOP_BY_HOP: [HeaderName; 4] = [KEEP_ALIVE, TE, TRANSFER_ENCODING, UPGRADE];

/// What a client may claim about itself and the hops before: passed on from a trusted proxy
/// (see `TRUSTED_PROXIES`), dropped or replaced from anyone else.
static FORWARDING_CLAIMS: [HeaderName; 5] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    FORWARDED,
    X_REAL_IP,
];

/// A route's own forwarding settings from rspy.toml (`timeout_ms`, `upstream_path`). They
/// apply to every request the route forwards: a proxy route's handler is a [`Forward`] that
/// holds them, and a native route's requests carry them as an extension (set by the
/// generated router), for a handler that still passes requests through to Python.
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

/// Handler for the fallback and for `mode = "proxy"` routes without settings of their own:
/// sends the request to Python and returns its response with the body still streaming (or,
/// for an accepted upgrade, `101`, or `200` to an HTTP/2 client, with a tunnel behind it).
/// A [`RouteSettings`] extension, if the route sets one, applies.
pub async fn forward(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let settings = request
        .extensions()
        .get::<RouteSettings>()
        .copied()
        .unwrap_or_default();
    forward_with(&state, request, settings).await
}

/// A request body the proxy can send on: axum's `Body` from the router, or hyper's `Incoming`
/// from the gateway, which is spared boxing it.
pub trait ForwardBody:
    hyper::body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send + 'static
{
}

impl<B> ForwardBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<axum::BoxError>> + Send + 'static
{
}

/// Who sent a forwarded request: what `X-Forwarded-For` names and the request id that error
/// bodies carry. Both are `None` for a request served without them (in tests).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub peer: Option<SocketAddr>,
    pub request_id: Option<RequestId>,
}

impl Origin {
    /// As the router's request carries it: the peer from `ConnectInfo` (set by the server) or
    /// `MockConnectInfo` (tests), the id from the request middleware.
    fn of(request: &Request) -> Self {
        // Read from the extensions as `ConnectInfo`'s extractor does, without its copy of the
        // request's method and URI.
        let extensions = request.extensions();
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer)
            .or_else(|| {
                extensions
                    .get::<MockConnectInfo<SocketAddr>>()
                    .map(|MockConnectInfo(peer)| *peer)
            });
        Self {
            peer,
            request_id: extensions.get::<RequestId>().cloned(),
        }
    }
}

/// Handler for a `mode = "proxy"` route with settings (`timeout_ms`, `upstream_path`): as
/// [`forward`], with the settings its own rather than read from a request extension, which
/// saves the route a layer that every request would pass through.
#[derive(Debug, Clone, Copy)]
pub struct Forward(pub RouteSettings);

impl Handler<Forward, AppState> for Forward {
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, request: Request, state: AppState) -> Self::Future {
        Box::pin(async move { forward_with(&state, request, self.0).await.into_response() })
    }
}

async fn forward_with(
    state: &AppState,
    request: Request,
    settings: RouteSettings,
) -> Result<Response, ApiError> {
    let origin = Origin::of(&request);
    relay(state, request, settings, origin)
        .await
        .map(|mut response| {
            // Read by the request log and the metrics: Python answered this one.
            response.extensions_mut().insert(Mode::Proxy);
            response
        })
}

/// Forwards `request` from `origin` to Python and returns its response, as [`forward`] does;
/// its upstream errors are counted in the metrics. For a request that never entered the
/// router, whose body is still hyper's, and whose mode is known: see
/// [`crate::gateway::Gateway`].
pub async fn relay<B: ForwardBody>(
    state: &AppState,
    request: axum::http::Request<B>,
    settings: RouteSettings,
    origin: Origin,
) -> Result<Response, ApiError> {
    let result = exchange(state, request, settings, origin).await;
    if let Err(err) = &result
        && let Some(kind) = err.kind().upstream_error()
    {
        state.metrics.record_upstream_error(kind);
    }
    result
}

async fn exchange<B: ForwardBody>(
    state: &AppState,
    mut request: axum::http::Request<B>,
    settings: RouteSettings,
    origin: Origin,
) -> Result<Response, ApiError> {
    let upstream = &state.upstream;
    let Origin { peer, request_id } = origin;
    let total = upstream.total_timeout();
    let deadline = tokio::time::Instant::now() + total;
    let timeout = settings.timeout.unwrap_or(upstream.timeout()).min(total);
    let fail = |kind| ApiError::new(kind, request_id.clone()).forwarded();
    // An upgrade (WebSocket) keeps its `Upgrade` header and `Connection: upgrade` upstream.
    let upgrade = requested_upgrade(&request);
    if request.method() == Method::CONNECT && upgrade.is_none() {
        // A tunnel to some host: nothing Python could answer (its path would be lost too).
        return Err(ApiError::new(ErrorKind::ConnectNotSupported, request_id));
    }

    let declared_length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > state.max_body_bytes as u64) {
        return Err(fail(ErrorKind::PayloadTooLarge));
    }
    let permit = upstream
        .try_acquire()
        .ok_or_else(|| fail(ErrorKind::UpstreamOverloaded))?;
    // Without a peer (the app driven by a test without connect info) there is none to name
    // in X-Forwarded-For, which is no reason to fail the request.
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));

    let forwarding = Forwarding {
        settings: &settings,
        peer,
        trusted_proxies: &state.trusted_proxies,
        request_id: request_id.as_ref(),
        upgrade: upgrade.as_ref(),
        max_body_bytes: state.max_body_bytes,
    };
    let request = upstream_request(request, upstream, &forwarding)
        .map_err(|err| fail(ErrorKind::BadGateway).with_cause(err))?;

    let response = match state.timer.timeout(timeout, upstream.send(request)).await {
        Some(Ok(response)) => response,
        Some(Err(err)) if err.is_connect() => {
            // Python is down or restarting: report not ready now rather than at the next probe.
            upstream.set_ready(false);
            return Err(fail(ErrorKind::UpstreamUnavailable).with_cause(err));
        }
        Some(Err(err)) if caused_by::<LengthLimitError>(&err) => {
            return Err(fail(ErrorKind::PayloadTooLarge).with_cause(err));
        }
        Some(Err(err)) => return Err(fail(ErrorKind::BadGateway).with_cause(err)),
        None => {
            return Err(fail(ErrorKind::UpstreamTimeout).with_cause(format!(
                "no response headers within {} ms",
                timeout.as_millis()
            )));
        }
    };
    match upgrade.zip(client_upgrade) {
        Some((upgrade, client)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            Ok(tunnel(response, client, upgrade.via))
        }
        // To an extended CONNECT, any other success would open a tunnel Python never agreed
        // to: the client would take the page for the first bytes of a WebSocket.
        Some((upgrade, _)) if upgrade.via == Via::Connect && response.status().is_success() => {
            Err(fail(ErrorKind::BadGateway).with_cause(format!(
                "the service answered an HTTP/2 upgrade ({}) with {}, not 101",
                upgrade.protocol.to_str().unwrap_or("?"),
                response.status()
            )))
        }
        _ => Ok(client_response(response, permit, deadline)),
    }
}

/// A client's request to switch protocols.
struct Upgrade {
    /// The protocol, as the `Upgrade` header names it to Python (`websocket`).
    protocol: HeaderValue,
    via: Via,
}

/// How the client asked for an [`Upgrade`], so its answer goes back the same way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// HTTP/1.1: `Upgrade` with `Connection: upgrade`, answered `101`.
    Upgrade,
    /// HTTP/2 extended CONNECT (RFC 8441): `:protocol` on a CONNECT, answered `200`. Python
    /// gets the HTTP/1.1 form of it.
    Connect,
}

/// What the upstream request is built from, besides the client's request.
struct Forwarding<'a> {
    settings: &'a RouteSettings,
    peer: Option<SocketAddr>,
    trusted_proxies: &'a TrustedProxies,
    request_id: Option<&'a RequestId>,
    /// The protocol the client asked to switch to, if it did.
    upgrade: Option<&'a Upgrade>,
    max_body_bytes: usize,
}

/// Rewrites the client's request for Python: upstream URI with the path (unless the route maps
/// it to another) and query unchanged, HTTP/1.1, hop-by-hop headers stripped, then the
/// forwarding headers and request id added, and the body capped at `MAX_BODY_BYTES`.
fn upstream_request<B: ForwardBody>(
    request: axum::http::Request<B>,
    upstream: &crate::upstream::Upstream,
    forwarding: &Forwarding<'_>,
) -> Result<Request, axum::http::Error> {
    let (mut parts, body) = request.into_parts();
    // The target's authority comes first: an HTTP/2 client sends `:authority` and often no
    // Host, and for an absolute-form HTTP/1.1 target (`GET http://shop/x`) RFC 9112 section
    // 3.2.2 has the server ignore Host. Otherwise it is the client's Host, unchanged.
    let authority = parts
        .uri
        .authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
    let from_authority = authority.is_some();
    let host = authority.or_else(|| parts.headers.get(HOST).cloned());
    let uri = &parts.uri;
    parts.uri = match forwarding.settings.upstream_path {
        Some((route, target)) => {
            let mut path_and_query = rewrite_path(route, target, uri.path());
            if let Some(query) = uri.query() {
                path_and_query.push('?');
                path_and_query.push_str(query);
            }
            upstream.uri(&path_and_query)?
        }
        // The path and query as parsed already, not copied and parsed again.
        None => upstream.uri_with(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        ),
    };
    parts.version = Version::HTTP_11;

    let headers = &mut parts.headers;
    let accepts_trailers = has_token(headers, &TE, "trailers");
    // The api's own `traceparent` (set by the request's observation) goes on even if the
    // client's `Connection` line named the one it sent: that line is about the client's hop.
    let traceparent = headers
        .contains_key(CONNECTION)
        .then(|| headers.get(TRACEPARENT).cloned())
        .flatten();
    strip_hop_by_hop(headers);
    if let Some(traceparent) = traceparent {
        headers.insert(TRACEPARENT, traceparent);
    }
    if accepts_trailers {
        // The client takes trailers, and so does the api: Python may send them.
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    if let Some(upgrade) = forwarding.upgrade {
        set_upgrade(headers, upgrade.protocol.clone());
        if upgrade.via == Via::Connect {
            // RFC 8441 section 5: the HTTP/1.1 form of an extended CONNECT is a GET, and
            // an HTTP/2 client sends no key, so the api, Python's client here, makes one.
            parts.method = Method::GET;
            if upgrade
                .protocol
                .as_bytes()
                .eq_ignore_ascii_case(b"websocket")
            {
                headers.insert(SEC_WEBSOCKET_KEY, websocket_key());
            }
        }
    }
    // Set unless it is there already as the one line the client sent (not named by its
    // `Connection` line): several lines become the first. Without one from the client
    // (HTTP/1.0), `Upstream::send` sets Python's address.
    if let Some(host) = &host
        && (from_authority || headers.get_all(HOST).iter().count() != 1)
    {
        headers.insert(HOST, host.clone());
    }
    set_forwarded_headers(headers, forwarding, host);
    // The request middleware set it already; again here if a client's `Connection` line
    // named it (stripped above) or a native handler changed it.
    if let Some(id) = forwarding.request_id
        && headers.get(X_REQUEST_ID).map(HeaderValue::as_bytes) != Some(id.as_str().as_bytes())
    {
        headers.insert(X_REQUEST_ID, id.header_value());
    }
    let body = Body::new(Limited::new(body, forwarding.max_body_bytes));
    Ok(Request::from_parts(parts, body))
}

/// `X-Forwarded-For`, `-Proto` and `-Host`. From a trusted proxy, the client's chain is kept
/// with the peer appended, and its `-Proto`, `-Host`, `Forwarded` and `X-Real-IP` pass; from
/// anyone else they are replaced by what the api saw itself (or dropped: `Forwarded`,
/// `X-Real-IP`), so Python can trust them.
fn set_forwarded_headers(
    headers: &mut HeaderMap,
    forwarding: &Forwarding<'_>,
    host: Option<HeaderValue>,
) {
    let peer = forwarding.peer.map(|peer| peer.ip().to_canonical());
    let trusted = peer.is_some_and(|peer| forwarding.trusted_proxies.contains(peer));
    let peer = peer.map(ip_text);
    let chain = if trusted {
        let chain = forwarded_for(headers, peer.as_deref());
        headers.remove(X_FORWARDED_FOR);
        chain
    } else {
        // One pass over the names finds the client's own claims (most requests make none);
        // removing each name blindly would be a lookup each.
        let claims: Vec<HeaderName> = headers
            .keys()
            .filter(|name| FORWARDING_CLAIMS.contains(name))
            .cloned()
            .collect();
        for name in &claims {
            headers.remove(name);
        }
        peer.unwrap_or_default()
    };
    // Visible ASCII joined with an IP address is always a valid value; if not, it is dropped.
    // The text becomes the value as it is, not copied.
    if !chain.is_empty()
        && let Ok(chain) = HeaderValue::from_maybe_shared(Bytes::from(chain))
    {
        headers.insert(X_FORWARDED_FOR, chain);
    }
    // From an untrusted peer, none is left to keep.
    if !(trusted && headers.contains_key(X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Some(host) = host
        && !(trusted && headers.contains_key(X_FORWARDED_HOST))
    {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// An IP address as text: `Display`'s, with IPv4 (nearly every peer) written without the
/// formatting machinery.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(ip) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (at, octet) in ip.octets().into_iter().enumerate() {
        if at > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The protocol a client asks to switch to: `Upgrade: websocket` with `Connection: upgrade`
/// (HTTP/1.1), or a CONNECT with `:protocol = websocket` (HTTP/2, RFC 8441).
fn requested_upgrade<B>(request: &axum::http::Request<B>) -> Option<Upgrade> {
    if request.method() == Method::CONNECT {
        let protocol = request.extensions().get::<hyper::ext::Protocol>()?;
        return Some(Upgrade {
            protocol: HeaderValue::from_str(protocol.as_str()).ok()?,
            via: Via::Connect,
        });
    }
    let headers = request.headers();
    let protocol = has_token(headers, &CONNECTION, "upgrade")
        .then(|| headers.get(UPGRADE).cloned())
        .flatten()?;
    Some(Upgrade {
        protocol,
        via: Via::Upgrade,
    })
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes in base64 (RFC 6455 section 4.1), those of a random
/// (v4) UUID, whose 122 random bits are plenty for a nonce that only Python checks.
fn websocket_key() -> HeaderValue {
    websocket_key_of(uuid::Uuid::new_v4().into_bytes())
}

/// `bytes` in base64, as a `Sec-WebSocket-Key`.
fn websocket_key_of(bytes: [u8; 16]) -> HeaderValue {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut key = [b'='; 24];
    for (chunk, out) in bytes.chunks(3).zip(key.chunks_mut(4)) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (at, byte)| {
            group | (u32::from(*byte) << (16 - 8 * at))
        });
        // A last chunk of one byte fills two characters; its padding stays `=`.
        for (at, slot) in out.iter_mut().take(chunk.len() + 1).enumerate() {
            *slot = ALPHABET[(group >> (18 - 6 * at)) as usize & 63];
        }
    }
    HeaderValue::from_bytes(&key).expect("base64 is a valid header value")
}

/// `Connection: upgrade` with `Upgrade: <protocol>`: the HTTP/1.1 pair that asks for a
/// switch of protocols, or agrees to one.
fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Whether any `name` line lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Python accepted an upgrade: answer the client (`101`, or `200` to an HTTP/2 extended
/// CONNECT) with Python's headers and copy bytes both ways once both connections are handed
/// over, until either side closes. Frames, subprotocols, extensions and close codes are
/// Python's and the client's business.
fn tunnel(
    mut response: Response<Incoming>,
    client: hyper::upgrade::OnUpgrade,
    via: Via,
) -> Response {
    let python = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        match tokio::try_join!(client, python) {
            Ok((client, python)) => {
                let (mut client, mut python) = (TokioIo::new(client), TokioIo::new(python));
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut python).await {
                    tracing::debug!(error = %err, "upgraded connection ended with an error");
                }
            }
            Err(err) => tracing::warn!(error = %err, "the upgrade did not complete"),
        }
    });
    let (mut parts, _) = response.into_parts();
    let protocol = parts.headers.get(UPGRADE).cloned();
    parts.version = Version::default();
    strip_hop_by_hop(&mut parts.headers);
    match via {
        Via::Upgrade => {
            if let Some(protocol) = protocol {
                set_upgrade(&mut parts.headers, protocol);
            }
        }
        // RFC 8441 section 5: `200` instead of `101`, and no accept value, which answers
        // the key the api made up.
        Via::Connect => {
            parts.status = StatusCode::OK;
            parts.headers.remove(SEC_WEBSOCKET_ACCEPT);
        }
    }
    Response::from_parts(parts, Body::empty())
}

/// Python's response for the client: hop-by-hop headers stripped, body streamed as it comes
/// (trailers too) until `deadline`, holding its concurrency permit until the end.
fn client_response(
    response: Response<Incoming>,
    permit: OwnedSemaphorePermit,
    deadline: tokio::time::Instant,
) -> Response {
    let (mut parts, body) = response.into_parts();
    // The client's connection has its own version, negotiated by the server: an HTTP/1.0
    // upstream must not leak into the status line.
    parts.version = Version::default();
    strip_hop_by_hop(&mut parts.headers);
    let body = UpstreamBody {
        body,
        deadline,
        timer: None,
        _permit: permit,
    };
    Response::from_parts(parts, Body::new(body))
}

/// A response body from Python, cut with an error at `UPSTREAM_TOTAL_TIMEOUT_MS`.
struct UpstreamBody {
    body: Incoming,
    deadline: tokio::time::Instant,
    /// Set the first time the body has to wait for Python, to wake it at the deadline. Most
    /// bodies are there at once and never need one: the clock is read instead.
    timer: Option<Pin<Box<Sleep>>>,
    /// Released when the body is done (or dropped): the request is no longer in flight.
    _permit: OwnedSemaphorePermit,
}

impl hyper::body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let expired = match &mut this.timer {
            Some(timer) => timer.as_mut().poll(cx).is_ready(),
            None => tokio::time::Instant::now() >= this.deadline,
        };
        if expired {
            return outlasted();
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if frame.is_pending() && this.timer.is_none() {
            // Polled once, so it wakes this body at the deadline.
            let timer = this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(this.deadline)));
            if timer.as_mut().poll(cx).is_ready() {
                return outlasted();
            }
        }
        frame.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The error that cuts a response body at the deadline.
fn outlasted<T>() -> Poll<Option<Result<T, Box<dyn std::error::Error + Send + Sync>>>> {
    Poll::Ready(Some(Err(
        "the response outlasted UPSTREAM_TOTAL_TIMEOUT_MS".into(),
    )))
}

/// Whether `err`, or any error behind it, is an `E`.
fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |err| err.source()).any(|err| err.is::<E>())
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
fn forwarded_for(headers: &HeaderMap, peer: Option<&str>) -> String {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .chain(peer)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Removes `Connection`, every header named by any `Connection` line, the fixed hop-by-hop
/// set and all `Proxy-*` headers. One pass over the names finds them: most messages have none,
/// and each removal is a lookup of its own.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut doomed = Vec::new();
    for name in headers.keys() {
        if *name == CONNECTION || HOP_BY_HOP.contains(name) || name.as_str().starts_with("proxy-") {
            doomed.push(name.clone());
        }
    }
    if doomed.contains(&CONNECTION) {
        let named = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok());
        doomed.extend(named);
    }
    for name in &doomed {
        headers.remove(name);
    }
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
            "transfer-encoding",
            "upgrade",
            "proxy-connection",
            "proxy-authorization",
            "x-kept",
            "trailer",
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
        }

        strip_hop_by_hop(&mut headers);

        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["trailer", "x-kept"]);
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
    fn websocket_keys_are_fresh_base64() {
        // The nonce and key of RFC 6455's example handshake (section 1.3), and all bits set.
        assert_eq!(
            websocket_key_of(*b"the sample nonce"),
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(websocket_key_of([0xFF; 16]), "/////////////////////w==");
        assert_ne!(websocket_key(), websocket_key());
    }

    #[test]
    fn ip_text_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.0.100.9",
            "192.168.1.20",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = ip.parse().expect("an IP address");
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_every_incoming_line() {
        let mut headers = HeaderMap::new();
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.1"));
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("192.0.2.2"));
        assert_eq!(
            forwarded_for(&headers, Some("127.0.0.1")),
            "192.0.2.1, 192.0.2.2, 127.0.0.1"
        );
        assert_eq!(forwarded_for(&headers, None), "192.0.2.1, 192.0.2.2");
    }
}
