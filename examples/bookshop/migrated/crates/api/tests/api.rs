//! Drives the whole app in-process: health, native routes, and the proxy against small
//! upstreams each test starts on loopback (TCP port 0 or a Unix socket in the temp dir).

use std::{
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Extension, Json, Router,
    body::{Body, Bytes},
    extract::{Request, connect_info::MockConnectInfo},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UnixListener},
    sync::mpsc,
};
use tower::ServiceExt;

// One short line each: the crate name's length must not change how rustfmt lays them out.
use bookshop_api::config::Config;
use bookshop_api::gateway::Gateway;
use bookshop_api::manifest;
use bookshop_api::manifest::DEFAULT_IDLE_TIMEOUT_MS;
use bookshop_api::{AppState, app, edge};
use bookshop_api::{health, proxy, server};

/// The address the app believes each request came from.
const CLIENT_IP: [u8; 4] = [203, 0, 113, 7];

fn config(upstream_url: &str, extra: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| match name {
        "UPSTREAM_URL" => Some(upstream_url.to_owned()),
        _ => extra
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned()),
    })
    .expect("test settings are valid")
}

/// The app as `main` serves it, with a fixed client address in place of a real socket.
fn client_facing(state: AppState) -> Router {
    with_client_address(app(state))
}

fn with_client_address(router: Router) -> Router {
    router.layer(MockConnectInfo(SocketAddr::from((CLIENT_IP, 50_000))))
}

async fn send(router: Router, request: Request) -> (StatusCode, HeaderMap, Bytes) {
    let response = router
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the body arrives");
    (parts.status, parts.headers, body)
}

fn get_request(uri: &str) -> Request {
    Request::get(uri)
        .body(Body::empty())
        .expect("a valid request")
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// An address nothing listens on: bound once to get a free port, then released.
async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    format!("http://{}", listener.local_addr().expect("local address"))
}

/// A stand-in for the Python service: echoes what it received, sleeps, streams, or fails
/// its health check, depending on the path.
fn python_stand_in() -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .route("/stream", get(stream))
        .fallback(any(echo))
}

/// Answers 201 with what arrived, plus hop-by-hop headers the proxy must not pass back.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the request body arrives");
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|value| Value::from(value.to_str().unwrap_or("<binary>")))
            .collect();
        headers.insert(name.to_string(), Value::from(values));
    }
    let echoed = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let hop_by_hop = [
        ("x-upstream", "kept"),
        ("keep-alive", "timeout=5"),
        ("proxy-authenticate", "Basic"),
    ];
    (StatusCode::CREATED, hop_by_hop, Json(echoed)).into_response()
}

/// Sends one chunk, then holds the response open until the test has seen that chunk.
async fn stream(Extension(chunks): Extension<Chunks>) -> Response {
    let receiver = chunks
        .0
        .lock()
        .expect("not poisoned")
        .take()
        .expect("one streaming request");
    Response::new(Body::new(ChannelBody(receiver)))
}

#[derive(Clone)]
struct Chunks(Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>);

/// A response body fed by a channel, so a test controls when each chunk is produced.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

async fn spawn_tcp_upstream(upstream: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    format!("http://{address}")
}

#[tokio::test]
async fn livez_answers_ok_with_a_request_id() {
    let state = AppState::new(&config(&refused_url().await, &[]));
    let (status, headers, body) = send(client_facing(state), get_request("/livez")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_body(&body), json!({"status": "ok"}));
    let id = header(&headers, "x-request-id").expect("a generated request id");
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test]
async fn readyz_is_unavailable_while_python_is_down() {
    let state = AppState::new(&config(&refused_url().await, &[]));
    let (status, _, body) = send(client_facing(state), get_request("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(&body)["status"], "unavailable");
}

/// Polls `/readyz` until it answers `expected` (or two seconds pass); returns the last status.
async fn readyz_becomes(state: &AppState, expected: StatusCode) -> StatusCode {
    let mut status = StatusCode::IM_A_TEAPOT;
    for _ in 0..100 {
        (status, _, _) = send(client_facing(state.clone()), get_request("/readyz")).await;
        if status == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    status
}

#[tokio::test]
async fn readyz_follows_the_probe_of_python_both_ways() {
    // A Python whose /healthz can be switched between 200 and 503.
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&healthy);
    let python = Router::new().route(
        "/healthz",
        get(move || {
            let healthy = flag.load(Ordering::SeqCst);
            async move {
                if healthy {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let url = spawn_tcp_upstream(python).await;
    let state = AppState::new(&config(&url, &[("UPSTREAM_HEALTH_PATH", "/healthz")]));
    let probe = tokio::spawn(health::watch_upstream(
        Arc::clone(&state.upstream),
        Duration::from_millis(20),
    ));

    let up = readyz_becomes(&state, StatusCode::OK).await;
    healthy.store(false, Ordering::SeqCst);
    let down = readyz_becomes(&state, StatusCode::SERVICE_UNAVAILABLE).await;
    healthy.store(true, Ordering::SeqCst);
    let back = readyz_becomes(&state, StatusCode::OK).await;
    probe.abort();

    assert_eq!(up, StatusCode::OK);
    assert_eq!(down, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(back, StatusCode::OK);
}

#[tokio::test]
async fn readiness_takes_any_answer_below_500_from_the_health_path() {
    // An adopted service may have no health route: its 404 still proves that it serves.
    let python = Router::new().route(
        "/status",
        get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
    );
    let url = spawn_tcp_upstream(python).await;
    let no_route = AppState::new(&config(&url, &[("UPSTREAM_HEALTH_PATH", "/nothing/here")]));
    let failing = AppState::new(&config(&url, &[("UPSTREAM_HEALTH_PATH", "/status")]));
    let timeout = Duration::from_secs(2);
    assert_eq!(health::probe(&no_route.upstream, timeout).await, Ok(()));
    assert_eq!(
        health::probe(&failing.upstream, timeout).await,
        Err("/status answered 500 Internal Server Error".to_owned())
    );
}

#[tokio::test]
async fn proxy_works_without_connect_info() {
    // Served without `into_make_service_with_connect_info`, the app still proxies; there is
    // just no peer to add to X-Forwarded-For.
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let request = Request::get("/echo/plain")
        .body(Body::empty())
        .expect("a valid request");
    let (status, _, body) = send(app(state), request).await;
    assert!(status.is_success(), "{status}");
    let echoed = json_body(&body);
    assert!(echoed["headers"]["x-forwarded-for"].is_null(), "{echoed}");
}

#[tokio::test]
async fn proxy_passes_the_request_through_and_strips_hop_by_hop_headers() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let request = Request::post("/echo/a%20b?x=1&x=2&y=%2F")
        .header("host", "client.example")
        .header("connection", "keep-alive")
        .header("connection", "x-secret")
        .header("x-secret", "must not reach python")
        .header("keep-alive", "timeout=60")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("te", "trailers")
        .header("x-forwarded-for", "198.51.100.1")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .body(Body::from("hello python"))
        .expect("a valid request");

    let (status, headers, body) = send(client_facing(state), request).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(header(&headers, "x-upstream"), Some("kept"));
    assert_eq!(header(&headers, "keep-alive"), None);
    assert_eq!(header(&headers, "proxy-authenticate"), None);
    let echoed = json_body(&body);
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["uri"], "/echo/a%20b?x=1&x=2&y=%2F");
    assert_eq!(echoed["body"], "hello python");
    let seen = &echoed["headers"];
    for stripped in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-authorization",
    ] {
        assert!(seen.get(stripped).is_none(), "{stripped} reached python");
    }
    // The client takes trailers, so the api asks Python for them in its own name.
    assert_eq!(seen["te"], json!(["trailers"]));
    assert_eq!(seen["host"], json!(["client.example"]));
    assert_eq!(seen["x-multi"], json!(["one", "two"]));
    // The client is no trusted proxy: its X-Forwarded-For is replaced by its real address.
    assert_eq!(seen["x-forwarded-for"], json!(["203.0.113.7"]));
    assert_eq!(seen["x-forwarded-proto"], json!(["http"]));
    assert_eq!(seen["x-forwarded-host"], json!(["client.example"]));
    let id = header(&headers, "x-request-id").expect("a request id");
    assert_eq!(id.len(), 32);
    assert_eq!(seen["x-request-id"], json!([id]));
}

#[tokio::test]
async fn python_always_gets_one_host_the_request_id_and_the_trace_context() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    // A `Connection` line naming them makes them hop-by-hop for the client's hop only: the
    // api still sends its own on.
    let request = Request::get("/echo/x")
        .header("host", "client.example")
        .header("x-request-id", "client-id-1")
        .header("traceparent", TRACEPARENT)
        .header("connection", "host, x-request-id, traceparent")
        .body(Body::empty())
        .expect("a valid request");

    let (status, headers, body) = send(client_facing(state.clone()), request).await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(header(&headers, "x-request-id"), Some("client-id-1"));
    let seen = &json_body(&body)["headers"];
    assert_eq!(seen["host"], json!(["client.example"]));
    assert_eq!(seen["x-request-id"], json!(["client-id-1"]));
    let traceparent = seen["traceparent"][0].as_str().unwrap_or_default();
    assert!(
        traceparent.starts_with(&TRACEPARENT[..36]) && traceparent != TRACEPARENT,
        "the client's trace with the api as parent, got {seen}"
    );
    assert_eq!(seen["traceparent"].as_array().map(Vec::len), Some(1));

    // Two Host lines (which RFC 9112 forbids) reach Python as the first.
    let request = Request::get("/echo/x")
        .header("host", "first.example")
        .header("host", "second.example")
        .body(Body::empty())
        .expect("a valid request");
    let (_, _, body) = send(client_facing(state), request).await;
    let seen = &json_body(&body)["headers"];
    assert_eq!(seen["host"], json!(["first.example"]));
}

#[tokio::test]
async fn an_absolute_form_target_names_the_host() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    // RFC 9112 section 3.2.2: the target's authority wins over the Host header. HTTP/2's
    // `:authority` arrives the same way, as the URI's authority.
    let request = Request::get("http://shop.example:8080/echo/x?y=1")
        .header("host", "other.example")
        .body(Body::empty())
        .expect("a valid request");

    let (status, _, body) = send(client_facing(state), request).await;

    assert_eq!(status, StatusCode::CREATED);
    let echoed = json_body(&body);
    assert_eq!(echoed["uri"], "/echo/x?y=1", "origin-form upstream");
    assert_eq!(echoed["headers"]["host"], json!(["shop.example:8080"]));
    assert_eq!(
        echoed["headers"]["x-forwarded-host"],
        json!(["shop.example:8080"])
    );
}

#[tokio::test]
async fn without_a_host_python_gets_its_own_address() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let address = url.trim_start_matches("http://");

    // No Host header and no authority in the target, as from an HTTP/1.0 client.
    let (status, _, body) = send(client_facing(state), get_request("/echo/x")).await;

    assert_eq!(status, StatusCode::CREATED);
    let echoed = json_body(&body);
    assert_eq!(echoed["headers"]["host"], json!([address]), "{echoed}");
    assert!(
        echoed["headers"].get("x-forwarded-host").is_none(),
        "{echoed}"
    );
}

#[tokio::test]
async fn proxy_streams_the_response_as_python_produces_it() {
    let (sender, receiver) = mpsc::channel(1);
    let chunks = Chunks(Arc::new(Mutex::new(Some(receiver))));
    let url = spawn_tcp_upstream(python_stand_in().layer(Extension(chunks))).await;
    let state = AppState::new(&config(&url, &[]));
    let response = client_facing(state)
        .oneshot(get_request("/stream"))
        .await
        .expect("the router is infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();

    sender.send(Bytes::from("first")).await.expect("send");
    let first = next_chunk(&mut body).await;
    assert_eq!(first.as_deref(), Some(&b"first"[..]));
    drop(sender);
    assert_eq!(next_chunk(&mut body).await, None);
}

/// The next data chunk of `body`, failing the test if it takes more than a few seconds.
async fn next_chunk(body: &mut Body) -> Option<Bytes> {
    let frame = std::future::poll_fn(|cx| hyper::body::Body::poll_frame(Pin::new(&mut *body), cx));
    tokio::time::timeout(Duration::from_secs(5), frame)
        .await
        .expect("a chunk in time")
        .map(|frame| frame.expect("a frame").into_data().expect("a data frame"))
}

#[tokio::test]
async fn unreachable_python_is_503_with_retry_after_and_turns_readyz_off() {
    let state = AppState::new(&config(&refused_url().await, &[]));
    state.upstream.set_ready(true);
    let (status, headers, body) =
        send(client_facing(state.clone()), get_request("/any/path")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    let error = &json_body(&body)["error"];
    assert_eq!(error["code"], "upstream_unavailable");
    assert_eq!(
        error["request_id"].as_str(),
        header(&headers, "x-request-id")
    );
    assert!(!state.upstream.is_ready());
}

#[tokio::test]
async fn slow_python_is_504() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[("UPSTREAM_TIMEOUT_MS", "100")]));
    let (status, _, body) = send(client_facing(state), get_request("/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json_body(&body)["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn a_body_first_read_after_the_total_timeout_is_cut() {
    let python = Router::new().route("/page", get(|| async { "a short page" }));
    let url = spawn_tcp_upstream(python).await;
    let total = Duration::from_millis(300);
    let millis = total.as_millis().to_string();
    let state = AppState::new(&config(&url, &[("UPSTREAM_TOTAL_TIMEOUT_MS", &millis)]));
    let fetch = || async {
        let response = client_facing(state.clone())
            .oneshot(get_request("/page"))
            .await
            .expect("the router is infallible");
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body()
    };

    // Read at once, the body arrives whole.
    let body = axum::body::to_bytes(fetch().await, usize::MAX).await;
    assert_eq!(body.expect("the whole page"), "a short page");
    // Read for the first time after the deadline, the body is cut all the same, though it is
    // all there and never has to wait for Python (so no timer was ever armed for it).
    let body = fetch().await;
    tokio::time::sleep(total + Duration::from_millis(200)).await;
    let cut = axum::body::to_bytes(body, usize::MAX).await;
    let err = cut.expect_err("the body outlasted UPSTREAM_TOTAL_TIMEOUT_MS");
    assert!(
        format!("{err:?}").contains("UPSTREAM_TOTAL_TIMEOUT_MS"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_route_timeout_overrides_the_default() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let router = Router::new()
        .route(
            "/slow",
            get(proxy::forward).layer(Extension(proxy::RouteSettings::new().timeout_ms(100))),
        )
        .with_state(state);
    let started = std::time::Instant::now();
    let (status, _, _) = send(with_client_address(router), get_request("/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A proxy route with settings has them in its handler (as the generated router does), not
/// in an extension: `/late/slow` reaches Python's `/slow`, and its 100 ms timeout applies.
#[tokio::test]
async fn a_proxy_routes_handler_holds_its_settings() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let settings = proxy::RouteSettings::new()
        .timeout_ms(100)
        .upstream_path("/late/{*rest}", "/{*rest}");
    let router = Router::new()
        .route("/late/{*rest}", get(proxy::Forward(settings)))
        .with_state(state);
    let started = std::time::Instant::now();
    let (status, _, body) = send(with_client_address(router), get_request("/late/slow")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json_body(&body)["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_route_upstream_path_maps_the_path_and_keeps_the_query() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let settings =
        proxy::RouteSettings::new().upstream_path("/api/{id}/{*rest}", "/v1/{*rest}/{id}");
    let router = Router::new()
        .route(
            "/api/{id}/{*rest}",
            get(proxy::forward).layer(Extension(settings)),
        )
        .with_state(state);
    let request = get_request("/api/a%20b/c/d?x=1&x=2");
    let (status, _, body) = send(with_client_address(router), request).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json_body(&body)["uri"], "/v1/c/d/a%20b?x=1&x=2");
}

#[tokio::test]
async fn a_broken_python_response_is_502() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        socket.readable().await.expect("the request arrives");
        let _ = socket.try_read(&mut [0; 4096]);
        socket.writable().await.expect("writable");
        let _ = socket.try_write(b"this is not HTTP\r\n\r\n");
    });
    let state = AppState::new(&config(&url, &[]));
    let (status, _, body) = send(client_facing(state), get_request("/broken")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(&body)["error"]["code"], "bad_gateway");
}

#[tokio::test]
async fn python_on_a_unix_socket_is_reached_too() {
    let path = socket_path("unix-upstream");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the socket");
    tokio::spawn(async move { axum::serve(listener, python_stand_in()).await });
    let state = AppState::new(&config(&format!("unix:{}", path.display()), &[]));
    let request = Request::get("/echo?over=unix")
        .header("host", "client.example")
        .body(Body::empty())
        .expect("a valid request");

    let (status, _, body) = send(client_facing(state), request).await;

    let _ = std::fs::remove_file(&path);
    assert_eq!(status, StatusCode::CREATED);
    let echoed = json_body(&body);
    assert_eq!(echoed["uri"], "/echo?over=unix");
    assert_eq!(echoed["headers"]["host"], json!(["client.example"]));
}

#[tokio::test]
async fn a_missing_unix_socket_is_503() {
    let path = socket_path("missing");
    let state = AppState::new(&config(&format!("unix:{}", path.display()), &[]));
    let (status, headers, _) = send(client_facing(state), get_request("/anything")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&headers, "retry-after"), Some("1"));
}

/// What a [`spawn_counting_python`] saw: the connections the api opened, when the api
/// closed them, and the request paths, in order.
#[derive(Default)]
struct Seen {
    opened: usize,
    closed: Vec<Instant>,
    paths: Vec<String>,
}

/// When a [`spawn_counting_python`] closes a connection, without saying so beforehand.
#[derive(Clone, Copy)]
enum Close {
    /// Never: it waits for the api to.
    Never,
    /// This long after its first answer, as at the end of a keep-alive.
    AfterAnswer(Duration),
    /// As soon as a request's head has arrived, without answering.
    WithoutAnswer,
}

/// A Python that answers every request `ok` on HTTP/1.1 keep-alive connections, the body
/// chunked in two parts 20 ms apart (so the api has the headers before the body's end), and
/// closes connections as `close` says. It runs on a thread of its own, so a test can block
/// the api's runtime while Python goes on. Returns its URL and what it saw.
fn spawn_counting_python(close: Close) -> (String, Arc<Mutex<Seen>>) {
    let python = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    python.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}", python.local_addr().expect("local address"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let python = TcpListener::from_std(python).expect("a tokio listener");
            loop {
                let (socket, _) = python.accept().await.expect("accept");
                record.lock().expect("not poisoned").opened += 1;
                tokio::spawn(answer_counting(socket, close, Arc::clone(&record)));
            }
        });
    });
    (url, seen)
}

async fn answer_counting(mut socket: TcpStream, close: Close, record: Arc<Mutex<Seen>>) {
    let mut head = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = socket.read(&mut buffer).await.unwrap_or(0);
        if read == 0 {
            record
                .lock()
                .expect("not poisoned")
                .closed
                .push(Instant::now());
            return;
        }
        head.extend_from_slice(&buffer[..read]);
        let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let text = String::from_utf8_lossy(&head[..end]).into_owned();
        let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
        record.lock().expect("not poisoned").paths.push(path);
        head.drain(..end + 4);
        if let Close::WithoutAnswer = close {
            return;
        }
        let first = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\no\r\n";
        socket.write_all(first).await.expect("write");
        tokio::time::sleep(Duration::from_millis(20)).await;
        socket
            .write_all(b"1\r\nk\r\n0\r\n\r\n")
            .await
            .expect("write");
        if let Close::AfterAnswer(delay) = close {
            tokio::time::sleep(delay).await;
            return;
        }
    }
}

/// `GET uri` through the api, which must answer Python's `ok`.
async fn get_ok(state: &AppState, uri: &str) {
    let (status, _, body) = send(client_facing(state.clone()), get_request(uri)).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!((status, &*body), (StatusCode::OK, "ok"), "{uri}");
}

/// Sends three requests through an api with `settings`, which must share one connection to
/// Python, and returns how long that connection then stayed idle before the api closed it.
async fn idle_time_before_closing(settings: &[(&str, &str)]) -> Duration {
    let (url, python) = spawn_counting_python(Close::Never);
    let state = AppState::new(&config(&url, settings));
    for number in 0..3 {
        get_ok(&state, &format!("/reused/{number}")).await;
    }
    let last_answer = Instant::now();
    assert_eq!(
        python.lock().expect("not poisoned").opened,
        1,
        "one connection for all three, each taken again once its body was read"
    );
    let closed = loop {
        if let Some(&closed) = python.lock().expect("not poisoned").closed.first() {
            break closed;
        }
        assert!(
            last_answer.elapsed() < Duration::from_secs(10),
            "never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    closed - last_answer
}

#[tokio::test]
async fn connections_to_python_are_reused_then_closed_before_its_keep_alive_ends() {
    // Python closes a connection idle for its keep-alive (uvicorn: 5 s): the api closes it
    // before, after rspy.toml's idle timeout (4 s unless set) and at most an eighth later, so
    // that it does not send a request on one Python is closing.
    let idle_timeout = Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS);
    let idle = idle_time_before_closing(&[]).await;
    assert!(
        idle >= idle_timeout * 7 / 8 && idle < idle_timeout * 9 / 8 + Duration::from_millis(400),
        "closed after {idle:?} idle; the idle timeout is {idle_timeout:?}"
    );
}

#[tokio::test]
async fn the_idle_timeout_follows_its_setting() {
    // For a Python server with a shorter keep-alive, e.g. gunicorn's threaded workers (2 s).
    let idle = idle_time_before_closing(&[("UPSTREAM_IDLE_TIMEOUT_MS", "1000")]).await;
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_millis(2_000),
        "closed after {idle:?} idle; UPSTREAM_IDLE_TIMEOUT_MS is 1000"
    );
}

#[tokio::test]
async fn an_idle_timeout_of_zero_gives_each_request_its_own_connection() {
    // For a Python server without keep-alive (uvicorn's `--timeout-keep-alive 0`), which
    // closes a connection as soon as it has answered: the api keeps none, and closes each
    // once the answer has been read (Python here never closes one itself).
    let (url, python) = spawn_counting_python(Close::Never);
    let state = AppState::new(&config(&url, &[("UPSTREAM_IDLE_TIMEOUT_MS", "0")]));
    let mut expected = Vec::new();
    for number in 0..3 {
        let uri = format!("/unpooled/{number}");
        get_ok(&state, &uri).await;
        expected.push(uri);
    }
    let answered = Instant::now();
    loop {
        let closed = {
            let seen = python.lock().expect("not poisoned");
            assert_eq!(seen.paths, expected, "each request reached Python once");
            assert_eq!(seen.opened, 3, "one connection per request");
            seen.closed.len()
        };
        if closed == 3 {
            break;
        }
        assert!(
            answered.elapsed() < Duration::from_secs(2),
            "{closed} of 3 connections closed 2 s after the last answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_python_closed_while_idle_are_not_used_again() {
    let (url, python) = spawn_counting_python(Close::AfterAnswer(Duration::from_millis(20)));
    let state = AppState::new(&config(&url, &[]));
    let mut expected = Vec::new();
    for number in 0..5 {
        let uri = format!("/closed/{number}");
        get_ok(&state, &uri).await;
        expected.push(uri);
        // Python closes the connection meanwhile, as at the end of its keep-alive.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = python.lock().expect("not poisoned");
    assert_eq!(seen.paths, expected, "each request reached Python once");
    assert_eq!(seen.opened, 5);
}

#[tokio::test]
async fn a_request_python_received_is_not_sent_again() {
    let (url, python) = spawn_counting_python(Close::WithoutAnswer);
    let state = AppState::new(&config(&url, &[]));
    let (status, _, body) = send(client_facing(state), get_request("/once")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(&body)["error"]["code"], "bad_gateway");
    let seen = python.lock().expect("not poisoned");
    assert_eq!(seen.paths, ["/once"], "sent once, though it got no answer");
}

/// A socket path unique to this test process, short enough for the 108-byte limit.
fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("api-test-{}-{name}.sock", std::process::id()))
}

#[tokio::test]
async fn forwarding_headers_pass_only_from_trusted_proxies() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let forwarded = |trusted: &str| {
        Request::get("/echo/forwarded")
            .header("host", "internal.example")
            .header("x-forwarded-for", "198.51.100.1")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "public.example")
            .header("forwarded", "for=198.51.100.1;proto=https")
            .header("x-case", trusted)
            .body(Body::empty())
            .expect("a valid request")
    };
    let trusted = AppState::new(&config(&url, &[("TRUSTED_PROXIES", "203.0.113.0/24")]));
    let (_, _, body) = send(client_facing(trusted), forwarded("trusted")).await;
    let seen = &json_body(&body)["headers"];
    assert_eq!(
        seen["x-forwarded-for"],
        json!(["198.51.100.1, 203.0.113.7"])
    );
    assert_eq!(seen["x-forwarded-proto"], json!(["https"]));
    assert_eq!(seen["x-forwarded-host"], json!(["public.example"]));
    assert_eq!(seen["forwarded"], json!(["for=198.51.100.1;proto=https"]));

    let untrusted = AppState::new(&config(&url, &[("TRUSTED_PROXIES", "10.0.0.0/8")]));
    let (_, _, body) = send(client_facing(untrusted), forwarded("untrusted")).await;
    let seen = &json_body(&body)["headers"];
    assert_eq!(seen["x-forwarded-for"], json!(["203.0.113.7"]));
    assert_eq!(seen["x-forwarded-proto"], json!(["http"]));
    assert_eq!(seen["x-forwarded-host"], json!(["internal.example"]));
    assert!(seen.get("forwarded").is_none(), "{seen}");
}

#[tokio::test]
async fn a_native_routes_body_limit_answers_with_the_json_error() {
    let state = AppState::new(&config(&refused_url().await, &[("MAX_BODY_BYTES", "10")]));
    let routes = Router::new()
        .route(
            "/native/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/native/own-413",
            post(|| async { (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({"mine": true}))) }),
        );
    let router = with_client_address(edge(routes, state.clone()));
    let upload = |body: &'static str| {
        Request::post("/native/upload")
            .body(Body::from(body))
            .expect("a valid request")
    };

    let (status, headers, body) = send(router.clone(), upload("eleven byte")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body = json_body(&body);
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let id = header(&headers, "x-request-id").expect("a request id");
    assert_eq!(body["error"]["request_id"], id);

    let (status, _, body) = send(router.clone(), upload("ten bytes!")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"10"[..]));

    // A handler's own 413 in JSON is passed on as it wrote it.
    let own = Request::post("/native/own-413")
        .body(Body::empty())
        .expect("a valid request");
    let (status, _, body) = send(router, own).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_body(&body), json!({"mine": true}));

    // Answered by Rust: counted as native, not as a failed forward.
    let metrics = state.metrics.render(false);
    let native = r#"api_requests_total{route="/native/upload",mode="native",status="4xx"} 1"#;
    assert!(metrics.contains(native), "{metrics}");
    assert!(
        metrics.contains(r#"api_upstream_errors_total{kind="body_too_large"} 0"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[("MAX_BODY_BYTES", "10")]));
    let declared = Request::post("/echo/upload")
        .body(Body::from("eleven byte"))
        .expect("a valid request");
    let (status, headers, body) = send(client_facing(state.clone()), declared).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_body(&body)["error"]["code"], "payload_too_large");
    assert!(header(&headers, "x-request-id").is_some());

    // No Content-Length: the limit is found while the body streams to Python.
    let (sender, receiver) = mpsc::channel(4);
    for chunk in ["0123456789", "0123456789"] {
        sender.send(Bytes::from(chunk)).await.expect("queued");
    }
    drop(sender);
    let streamed = Request::post("/echo/upload")
        .body(Body::new(ChannelBody(receiver)))
        .expect("a valid request");
    let (status, _, body) = send(client_facing(state.clone()), streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_body(&body)["error"]["code"], "payload_too_large");

    let small = Request::post("/echo/upload")
        .body(Body::from("ten bytes!"))
        .expect("a valid request");
    let (status, _, body) = send(client_facing(state.clone()), small).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(json_body(&body)["body"], "ten bytes!");
    let metrics = state.metrics.render(false);
    assert!(
        metrics.contains("api_upstream_errors_total{kind=\"body_too_large\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_upstream_answers_503_instead_of_queueing() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[("UPSTREAM_MAX_CONCURRENCY", "1")]));
    let busy = tokio::spawn(send(client_facing(state.clone()), get_request("/slow")));
    // Until the slow request holds the only slot, a probe could take it instead.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !busy.is_finished(),
        "the slow request is still waiting for Python"
    );
    let mut answer = None;
    for _ in 0..100 {
        let (status, headers, body) = send(client_facing(state.clone()), get_request("/x")).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            answer = Some((headers, body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (headers, body) = answer.expect("a second request finds the only slot taken");
    assert_eq!(json_body(&body)["error"]["code"], "upstream_overloaded");
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    busy.abort();
}

#[tokio::test]
async fn traceparent_reaches_python_with_the_api_as_parent() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = Request::get("/echo/traced")
        .header("traceparent", incoming)
        .header("tracestate", "vendor=1")
        .body(Body::empty())
        .expect("a valid request");
    let (_, _, body) = send(client_facing(state.clone()), request).await;
    let seen = &json_body(&body)["headers"];
    let sent = seen["traceparent"][0].as_str().expect("a traceparent");
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert!(sent.ends_with("-01") && sent != incoming, "{sent}");
    assert_eq!(seen["tracestate"], json!(["vendor=1"]));

    let (_, _, body) = send(client_facing(state), get_request("/echo/untraced")).await;
    let started = json_body(&body)["headers"]["traceparent"][0]
        .as_str()
        .expect("a traceparent for every request")
        .to_owned();
    assert_eq!(started.len(), 55, "{started}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_mode() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    send(client_facing(state.clone()), get_request("/no/route")).await;
    let metrics = state.metrics.render(false);
    for line in [
        "api_requests_total{route=\"fallback\",mode=\"proxy\",status=\"2xx\"} 1",
        "api_request_duration_seconds_count{route=\"fallback\",mode=\"proxy\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

/// Requests that the router would only forward, the gateway forwards itself: Python and the
/// client see what they see through the router, and the metrics count them under the same
/// route and mode.
#[tokio::test]
async fn the_gateway_forwards_what_the_router_would() {
    let url = spawn_tcp_upstream(python_stand_in()).await;
    let state = AppState::new(&config(&url, &[]));
    let api = spawn_api(state.clone()).await;
    let stream = TcpStream::connect(api).await.expect("connect");
    let (mut client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 handshake");
    tokio::spawn(connection);
    let request = |path: &str| {
        Request::get(path)
            .header("host", "shop.test")
            .header("x-forwarded-for", "198.51.100.1")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("x-end", "kept")
    };
    // What differs by design: the ids, the peer, and the lengths they make.
    let same = |headers: &Value| {
        let mut headers = headers.as_object().expect("headers").clone();
        for name in [
            "x-request-id",
            "traceparent",
            "x-forwarded-for",
            "content-length",
        ] {
            headers.remove(name);
        }
        headers
    };
    // A path no route declares.
    let paths = ["/echo/a%20b?x=1&x=2"];

    for path in paths {
        let routed = request(path).body(Body::empty()).expect("a valid request");
        let (status, headers, body) = send(client_facing(state.clone()), routed).await;
        let gatewayed = request(path)
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let response = client.send_request(gatewayed).await.expect("an answer");
        assert_eq!(response.status(), status, "{path}");
        let response_headers = response.headers().clone();
        let gateway_body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let (routed, gatewayed) = (json_body(&body), json_body(&gateway_body));
        assert_eq!(gatewayed["method"], routed["method"], "{path}");
        assert_eq!(gatewayed["uri"], json!(path));
        assert_eq!(
            same(&gatewayed["headers"]),
            same(&routed["headers"]),
            "{path}"
        );
        assert_eq!(
            gatewayed["headers"]["x-forwarded-for"],
            json!(["127.0.0.1"])
        );
        assert_eq!(gatewayed["headers"]["x-hop"], Value::Null, "{path}");
        let id = header(&response_headers, "x-request-id").expect("a request id");
        assert_eq!(gatewayed["headers"]["x-request-id"], json!([id]));
        let traceparent = gatewayed["headers"]["traceparent"][0].as_str();
        assert_eq!(traceparent.map(str::len), Some(55), "{path}");
        let names = |headers: &HeaderMap| {
            let mut names: Vec<String> = headers
                .keys()
                .map(|name| name.to_string())
                .filter(|name| name != "date")
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&response_headers), names(&headers), "{path}");
    }
    let metrics = state.metrics.render(true);
    for line in [
        "api_requests_total{route=\"fallback\",mode=\"proxy\",status=\"2xx\"} 2",
        "api_request_duration_seconds_count{route=\"fallback\",mode=\"proxy\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

/// The gateway forwards a request itself only where the router would only forward it: on an
/// undeclared path with the proxy fallback, or with the method of a path's only proxy route.
#[tokio::test]
async fn the_gateway_leaves_everything_else_to_the_router() {
    let gateway = Gateway::new(AppState::new(&config("http://127.0.0.1:9", &[])));
    let route = |method: Method, path: &str| gateway.forwards(&method, path).map(|(r, _)| r);
    let fallback = manifest::FALLBACK_PROXIES.then_some("fallback");
    assert_eq!(route(Method::GET, "/no/route/declares/this"), fallback);
    assert_eq!(route(Method::DELETE, "/no/route/declares/this"), fallback);
    assert_eq!(route(Method::GET, health::LIVEZ), None);
    assert_eq!(route(Method::GET, health::READYZ), None);
    // A pattern matches itself: `{id}` is a segment like any other.
    for (path, proxied) in manifest::ROUTE_PATHS {
        match proxied.as_ref().map(|proxied| proxied.method.clone()) {
            Some(Some(method)) => {
                assert_eq!(route(method.clone(), path), Some(*path));
                for other in [Method::HEAD, Method::CONNECT, Method::PATCH] {
                    if other != method {
                        assert_eq!(route(other, path), None, "{path}");
                    }
                }
            }
            Some(None) => assert_eq!(route(Method::PATCH, path), Some(*path)),
            None => {
                for method in [Method::GET, Method::POST, Method::HEAD] {
                    assert_eq!(route(method, path), None, "{path}");
                }
            }
        }
    }
}

/// Serves the app the way `main` does, on a loopback port; returns its address.
async fn spawn_api(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let forever = std::future::pending::<()>();
    tokio::spawn(server::serve(
        listener,
        Gateway::new(state),
        Duration::from_secs(5),
        forever,
    ));
    address
}

/// Reads from `stream` until the other end closes it, within `limit`; returns everything read.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut seen))
        .await
        .expect("closed in time")
        .expect("a readable connection");
    seen
}

/// A stop (SIGTERM in `main`) lets the request in flight finish, closes the connections that
/// wait for their next request, and ends the server once every connection is done.
#[tokio::test]
async fn a_stop_finishes_the_request_in_flight_and_closes_idle_connections() {
    let (arrived, has_arrived) = tokio::sync::oneshot::channel::<()>();
    let arrived = Arc::new(Mutex::new(Some(arrived)));
    let python = Router::new().route(
        "/moment",
        get(move || async move {
            if let Some(arrived) = arrived.lock().expect("not poisoned").take() {
                let _ = arrived.send(());
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            "finished"
        }),
    );
    let url = spawn_tcp_upstream(python).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        Gateway::new(AppState::new(&config(&url, &[]))),
        // Far beyond the test: it is the stop that closes the idle connection, not hyper.
        Duration::from_secs(60),
        async {
            let _ = stopped.await;
        },
    ));
    let mut idle = TcpStream::connect(api).await.expect("connect");
    idle.write_all(b"GET /livez HTTP/1.1\r\nhost: api\r\n\r\n")
        .await
        .expect("write");
    let served = read_until(&mut idle, b"\r\n\r\n").await;
    assert!(served.starts_with(b"HTTP/1.1 200"), "{served:?}");
    let mut busy = TcpStream::connect(api).await.expect("connect");
    busy.write_all(b"GET /moment HTTP/1.1\r\nhost: api\r\n\r\n")
        .await
        .expect("write");
    // Python has the request and takes 3 s to answer it: longer than the idle connection may
    // take to close.
    has_arrived.await.expect("the request reaches Python");
    stop.send(()).expect("the server waits for its stop");
    // The idle connection closes at once, with nothing more sent (the rest of /livez's body
    // at most), and the server waits for the request in flight.
    let after = read_to_close(&mut idle, Duration::from_secs(2)).await;
    let after = String::from_utf8_lossy(&after).into_owned();
    assert!(!after.contains("HTTP/1.1"), "{after}");
    assert!(!server.is_finished(), "ended with a request in flight");

    let answer = read_to_close(&mut busy, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server ends once its connections are done")
        .expect("the server does not panic")
        .expect("the server ends without an error");
    assert!(TcpStream::connect(api).await.is_err(), "still accepting");
}

/// Reads from `stream` until `needle` has arrived; returns everything read.
async fn read_until(stream: &mut (impl AsyncRead + Unpin), needle: &[u8]) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buffer = [0; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("more bytes in time")
            .expect("a readable connection");
        assert!(
            read > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..read]);
    }
    seen
}

/// A Python that answers the first connection's request head with `answer` (a `101` to
/// accept an upgrade), then echoes bytes. Returns its URL and the head it was sent.
async fn spawn_upgrading_python(answer: &'static [u8]) -> (String, Arc<Mutex<String>>) {
    let python = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", python.local_addr().expect("local address"));
    let asked = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&asked);
    tokio::spawn(async move {
        let (mut socket, _) = python.accept().await.expect("accept");
        let head = read_until(&mut socket, b"\r\n\r\n").await;
        *seen.lock().expect("not poisoned") = String::from_utf8_lossy(&head).to_lowercase();
        socket.write_all(answer).await.expect("write");
        let mut buffer = [0; 1024];
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => socket.write_all(&buffer[..read]).await.expect("echo"),
            }
        }
    });
    (url, asked)
}

#[tokio::test]
async fn upgrades_are_tunnelled_both_ways() {
    tunnel_both_ways(&[]).await;
}

#[tokio::test]
async fn upgrades_are_tunnelled_when_no_connection_is_kept() {
    // With an idle timeout of 0 the pool lets go of each connection at once: an upgraded one
    // must still carry its tunnel.
    tunnel_both_ways(&[("UPSTREAM_IDLE_TIMEOUT_MS", "0")]).await;
}

/// An upgrade through an api with `settings`: both heads, then bytes echoed both ways.
async fn tunnel_both_ways(settings: &[(&str, &str)]) {
    let (url, asked) = spawn_upgrading_python(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\nsec-websocket-protocol: chat\r\n\r\n",
    )
    .await;
    let api = spawn_api(AppState::new(&config(&url, settings))).await;
    let mut client = TcpStream::connect(api).await.expect("connect");
    client
        .write_all(b"GET /tunnel HTTP/1.1\r\nhost: api\r\nconnection: keep-alive, Upgrade\r\nupgrade: echo\r\nsec-websocket-protocol: chat, other\r\n\r\n")
        .await
        .expect("write");
    let head = String::from_utf8_lossy(&read_until(&mut client, b"\r\n\r\n").await).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("upgrade: echo") && head.contains("sec-websocket-protocol: chat"),
        "{head}"
    );
    let asked = asked.lock().expect("not poisoned").clone();
    assert!(
        asked.contains("upgrade: echo") && asked.contains("connection: upgrade"),
        "{asked}"
    );
    assert!(
        asked.contains("sec-websocket-protocol: chat, other"),
        "{asked}"
    );
    for message in [&b"ping"[..], &[0, 159, 255, 1][..]] {
        client.write_all(message).await.expect("write");
        assert_eq!(read_until(&mut client, message).await, message);
    }
}

/// An HTTP/2 connection (h2c, prior knowledge) to the api, once its settings have arrived:
/// a client may only ask for a WebSocket after the server has offered extended CONNECT.
async fn http2_client(api: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(api).await.expect("connect");
    let (mut client, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    let livez = hyper::Request::get(format!("http://{api}/livez"))
        .body(Empty::new())
        .expect("a valid request");
    let answer = client.send_request(livez).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK);
    client
}

/// The key of RFC 6455's example handshake, which an HTTP/2 client has no business sending.
const STALE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An HTTP/2 WebSocket request (RFC 8441): CONNECT with `:protocol = websocket`.
fn websocket_over_http2(api: SocketAddr) -> hyper::Request<Empty<Bytes>> {
    let mut request = hyper::Request::connect(format!("http://{api}/ws/chat"))
        .header("sec-websocket-version", "13")
        // Not part of RFC 8441: the api must not pass it on as Python's key.
        .header("sec-websocket-key", STALE_KEY)
        .header("sec-websocket-protocol", "chat, other")
        .body(Empty::new())
        .expect("a valid request");
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    request
}

#[tokio::test]
async fn http2_websockets_reach_python_as_http1_upgrades() {
    let (url, asked) = spawn_upgrading_python(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: chat\r\n\r\n",
    )
    .await;
    let api = spawn_api(AppState::new(&config(&url, &[]))).await;
    let mut client = http2_client(api).await;

    let response = client
        .send_request(websocket_over_http2(api))
        .await
        .expect("an answer");
    let headers = response.headers();
    assert_eq!(response.status(), StatusCode::OK, "{headers:?}");
    assert_eq!(header(headers, "sec-websocket-protocol"), Some("chat"));
    // Python's accept value answers the api's key, which the client never saw.
    assert!(!headers.contains_key("sec-websocket-accept"), "{headers:?}");
    // Python was asked the HTTP/1.1 way, with a key the api made up.
    let asked = asked.lock().expect("not poisoned").clone();
    assert!(asked.starts_with("get /ws/chat http/1.1\r\n"), "{asked}");
    for line in [
        "upgrade: websocket",
        "connection: upgrade",
        "sec-websocket-version: 13",
        "sec-websocket-protocol: chat, other",
    ] {
        assert!(asked.contains(line), "{line} missing from {asked}");
    }
    let key = asked
        .lines()
        .find_map(|line| line.strip_prefix("sec-websocket-key: "))
        .unwrap_or_default();
    assert!(
        key.len() == 24 && key != STALE_KEY.to_lowercase(),
        "a fresh key: {asked}"
    );

    let mut tunnel = TokioIo::new(hyper::upgrade::on(response).await.expect("a tunnel"));
    for message in [&b"ping"[..], &[0, 159, 255, 1][..]] {
        tunnel.write_all(message).await.expect("write");
        assert_eq!(read_until(&mut tunnel, message).await, message);
    }
}

#[tokio::test]
async fn a_connect_that_opens_no_websocket_is_501_without_asking_python() {
    // Were Python asked, its refused port would make this a 503.
    let api = spawn_api(AppState::new(&config(&refused_url().await, &[]))).await;
    let mut client = TcpStream::connect(api).await.expect("connect");
    client
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8_lossy(&read_until(&mut client, b"}}").await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 501 "), "{answer}");
    assert!(
        answer.contains(r#""code":"connect_not_supported""#),
        "{answer}"
    );
}

#[tokio::test]
async fn an_http2_websocket_python_does_not_accept_is_502() {
    let (url, _) =
        spawn_upgrading_python(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
    let api = spawn_api(AppState::new(&config(&url, &[]))).await;
    let mut client = http2_client(api).await;

    let response = client
        .send_request(websocket_over_http2(api))
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(json_body(&body.to_bytes())["error"]["code"], "bad_gateway");
}

/// A body of one chunk and then trailers.
struct WithTrailers(Option<Frame<Bytes>>, Option<HeaderMap>);

impl hyper::body::Body for WithTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match self.0.take() {
            Some(data) => Some(data),
            None => self.1.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }
}

#[tokio::test]
async fn trailers_reach_a_client_that_takes_them() {
    let python = Router::new().route(
        "/trailers",
        get(|| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", "abc123".parse().expect("a header value"));
            let body = WithTrailers(Some(Frame::data(Bytes::from("data"))), Some(trailers));
            ([("trailer", "x-checksum")], Body::new(body))
        }),
    );
    let url = spawn_tcp_upstream(python).await;
    let api = spawn_api(AppState::new(&config(&url, &[]))).await;
    let mut client = TcpStream::connect(api).await.expect("connect");
    client
        .write_all(b"GET /trailers HTTP/1.1\r\nhost: api\r\nte: trailers\r\n\r\n")
        .await
        .expect("write");
    // Times out (and fails) unless the trailer arrives after the last chunk.
    let response = read_until(&mut client, b"\r\n0\r\nx-checksum: abc123\r\n").await;
    let response = String::from_utf8_lossy(&response).to_lowercase();
    assert!(response.contains("trailer: x-checksum"), "{response}");
}
