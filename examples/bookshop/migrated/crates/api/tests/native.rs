//! The native routes, `GET /isbn/{isbn}` and `GET /shipping/quote`, driven in-process: each
//! answer must be the Python service's, byte for byte (status, content type, compact JSON in
//! the same key order), without Python running; the few requests Python has to answer
//! itself are shown to reach it.

use std::net::SocketAddr;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, connect_info::MockConnectInfo},
    http::{HeaderMap, Method, StatusCode, header::CONTENT_TYPE},
    response::IntoResponse,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::net::TcpListener;
use tower::ServiceExt;

use bookshop_api::config::Config;
use bookshop_api::{AppState, app};

/// The address the app believes each request came from.
const CLIENT: ([u8; 4], u16) = ([203, 0, 113, 7], 50_000);

fn state(upstream_url: &str) -> AppState {
    let config =
        Config::from_lookup(|name| (name == "UPSTREAM_URL").then(|| upstream_url.to_owned()))
            .expect("test settings are valid");
    AppState::new(&config)
}

/// The app with Python down: a port nothing listens on. Native answers do not need it.
async fn without_python() -> AppState {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    drop(listener);
    state(&url)
}

/// A stand-in for Python that answers every request `418` with the method and the raw
/// path and query it received, so a test can tell that (and how) a request reached it.
async fn with_python_stand_in() -> AppState {
    let stand_in = Router::new().fallback(|request: Request| async move {
        let seen = format!("{} {}", request.method(), request.uri());
        (
            StatusCode::IM_A_TEAPOT,
            [("x-python-saw", seen)],
            "from Python",
        )
            .into_response()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, stand_in).await });
    state(&format!("http://{address}"))
}

async fn send(state: AppState, method: Method, uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    let router = app(state).layer(MockConnectInfo(SocketAddr::from(CLIENT)));
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("a valid request");
    let response = router
        .oneshot(request)
        .await
        .expect("the app is infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the body arrives");
    (parts.status, parts.headers, body)
}

async fn get(uri: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(without_python().await, Method::GET, uri).await
}

/// The response is `status`, `content-type: application/json` exactly, and `body` exactly.
#[track_caller]
fn assert_json(response: &(StatusCode, HeaderMap, Bytes), status: StatusCode, body: &str) {
    let (actual_status, headers, actual_body) = response;
    let text = String::from_utf8_lossy(actual_body);
    assert_eq!(*actual_status, status, "body: {text}");
    assert_eq!(
        headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(text, body);
    let length = headers.get("content-length").and_then(|v| v.to_str().ok());
    assert_eq!(length, Some(body.len().to_string().as_str()));
}

/// As Python's tests build the URL: `f"/isbn/{quote(isbn)}"`.
fn isbn_uri(isbn: &str) -> String {
    format!("/isbn/{}", utf8_percent_encode(isbn, NON_ALPHANUMERIC))
}

fn isbn_body(isbn: &str, isbn13: Option<&str>) -> String {
    let isbn = serde_json::to_string(isbn).expect("a string serializes");
    match isbn13 {
        Some(isbn13) => format!(r#"{{"isbn":{isbn},"valid":true,"isbn13":"{isbn13}"}}"#),
        None => format!(r#"{{"isbn":{isbn},"valid":false,"isbn13":null}}"#),
    }
}

#[tokio::test]
async fn a_valid_isbn_gives_its_isbn13() {
    for (isbn, isbn13) in [
        ("9780306406157", "9780306406157"),
        ("978-0-306-40615-7", "9780306406157"),
        ("0306406152", "9780306406157"),
        ("0-306-40615-2", "9780306406157"),
        ("0 306 40615 2", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("979-10-90636-07-1", "9791090636071"),
        ("--978 0306406157--", "9780306406157"),
    ] {
        let response = get(&isbn_uri(isbn)).await;
        assert_json(&response, StatusCode::OK, &isbn_body(isbn, Some(isbn13)));
    }
}

#[tokio::test]
async fn an_invalid_isbn_is_not_valid() {
    for isbn in [
        "0-306-40615-3",
        "978-0-306-40615-8",
        "9770306406158",
        "X306406152",
        "978030640615X",
        "030640615",
        "97803064061570",
        "0.306.40615.2",
        "abc",
        "-",
        "978\u{2013}0306406157",
        "\u{0660}306406152",
    ] {
        let response = get(&isbn_uri(isbn)).await;
        assert_json(&response, StatusCode::OK, &isbn_body(isbn, None));
    }
}

#[tokio::test]
async fn the_isbn_example_of_the_readme_is_exact() {
    let response = get("/isbn/0-306-40615-2").await;
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"isbn":"0-306-40615-2","valid":true,"isbn13":"9780306406157"}"#,
    );
}

#[tokio::test]
async fn the_segment_is_echoed_with_pythons_json_escapes_and_raw_non_ascii() {
    // Python: {"isbn":"a\u0000\u001f\"\\<DEL>","valid":false,"isbn13":null}
    let response = get("/isbn/a%00%1f%22%5C%7F").await;
    assert_json(
        &response,
        StatusCode::OK,
        "{\"isbn\":\"a\\u0000\\u001f\\\"\\\\\u{7f}\",\"valid\":false,\"isbn13\":null}",
    );
    let response = get("/isbn/%C3%A9%09%0A").await;
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"isbn":"é\t\n","valid":false,"isbn13":null}"#,
    );
}

#[tokio::test]
async fn invalid_utf8_in_the_segment_reads_as_replacement_characters_like_uvicorn() {
    let response = get("/isbn/%FF%C3%28x").await;
    assert_json(
        &response,
        StatusCode::OK,
        r#"{"isbn":"��(x","valid":false,"isbn13":null}"#,
    );
}

#[tokio::test]
async fn an_encoded_slash_in_the_segment_is_left_to_python() {
    for uri in ["/isbn/a%2Fb", "/isbn/978%2f0306406157"] {
        let (status, headers, body) = send(with_python_stand_in().await, Method::GET, uri).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(headers["x-python-saw"], format!("GET {uri}").as_str());
        assert_eq!(body, "from Python");
    }
}

#[tokio::test]
async fn head_requests_are_left_to_python_which_answers_them_405() {
    for uri in [
        "/isbn/0306406152",
        "/shipping/quote?weight_grams=1&country=GB",
    ] {
        let (status, headers, _) = send(with_python_stand_in().await, Method::HEAD, uri).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(headers["x-python-saw"], format!("HEAD {uri}").as_str());
    }
}

#[tokio::test]
async fn a_request_target_that_is_not_ascii_is_left_to_python_which_refuses_it() {
    // What `curl 'http://host/isbn/é'` sends: the UTF-8 bytes, unescaped.
    for uri in [
        "/isbn/\u{e9}",
        "/shipping/quote?weight_grams=1&country=\u{c4}T",
    ] {
        let (status, headers, _) = send(with_python_stand_in().await, Method::GET, uri).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT, "{uri}");
        assert_eq!(
            headers["x-python-saw"].as_bytes(),
            format!("GET {uri}").as_bytes()
        );
    }
}

fn quote_body(country: &str, grams: u32, zone: &str, price_cents: u32) -> String {
    format!(
        r#"{{"country":"{country}","weight_grams":{grams},"zone":"{zone}","price_cents":{price_cents},"currency":"GBP"}}"#
    )
}

#[tokio::test]
async fn a_quote_comes_from_the_rate_table() {
    for (weight, country, (code, grams, zone, price)) in [
        ("1", "GB", ("GB", 1, "domestic", 295)),
        ("250", "GB", ("GB", 250, "domestic", 295)),
        ("251", "GB", ("GB", 251, "domestic", 450)),
        ("1000", "gb", ("GB", 1000, "domestic", 450)),
        ("2000", "GB", ("GB", 2000, "domestic", 695)),
        ("5000", "GB", ("GB", 5000, "domestic", 995)),
        ("10000", "GB", ("GB", 10000, "domestic", 1495)),
        ("10001", "GB", ("GB", 10001, "domestic", 1595)),
        ("30000", "GB", ("GB", 30000, "domestic", 3495)),
        ("100", "FR", ("FR", 100, "eu", 650)),
        ("1200", "DE", ("DE", 1200, "eu", 1450)),
        ("00250", "ie", ("IE", 250, "eu", 650)),
        ("4999", "Gr", ("GR", 4999, "eu", 2250)),
        ("12000", "DE", ("DE", 12000, "eu", 3950)),
        ("800", "US", ("US", 800, "world", 1550)),
        ("1500", "CH", ("CH", 1500, "world", 2450)),
        ("7000", "NO", ("NO", 7000, "world", 5950)),
        ("30000", "US", ("US", 30000, "world", 15950)),
        ("20500", "AQ", ("AQ", 20500, "world", 11450)),
    ] {
        let uri = format!("/shipping/quote?weight_grams={weight}&country={country}");
        let response = get(&uri).await;
        assert_json(
            &response,
            StatusCode::OK,
            &quote_body(code, grams, zone, price),
        );
    }
}

#[tokio::test]
async fn a_repeated_key_counts_by_its_last_value_and_other_keys_are_ignored() {
    let response =
        get("/shipping/quote?weight_grams=abc&country=ZZ&weight_grams=300&country=de&express=1")
            .await;
    assert_json(&response, StatusCode::OK, &quote_body("DE", 300, "eu", 950));
}

#[tokio::test]
async fn an_unusable_query_answers_400_with_its_reason() {
    const REQUIRED: &str = "weight_grams is required";
    const NOT_AN_INTEGER: &str = "weight_grams must be an integer";
    const OUT_OF_RANGE: &str = "weight_grams must be between 1 and 30000";
    const COUNTRY_REQUIRED: &str = "country is required";
    const NOT_A_CODE: &str = "country must be a two-letter ISO 3166-1 alpha-2 code";
    for (query, detail) in [
        ("", REQUIRED),
        ("country=GB", REQUIRED),
        ("weight_grams=&country=GB", NOT_AN_INTEGER),
        ("weight_grams&country=GB", NOT_AN_INTEGER),
        ("weight_grams=abc&country=GB", NOT_AN_INTEGER),
        ("weight_grams=12.5&country=GB", NOT_AN_INTEGER),
        ("weight_grams=1e3&country=GB", NOT_AN_INTEGER),
        ("weight_grams=%2B5&country=GB", NOT_AN_INTEGER),
        ("weight_grams=+5&country=GB", NOT_AN_INTEGER),
        ("weight_grams=5%20&country=GB", NOT_AN_INTEGER),
        ("weight_grams=-&country=GB", NOT_AN_INTEGER),
        ("weight_grams=%D9%A5&country=GB", NOT_AN_INTEGER),
        ("weight_grams=100;country=GB", NOT_AN_INTEGER),
        ("weight_grams=abc", NOT_AN_INTEGER),
        ("weight_grams=0&country=GB", OUT_OF_RANGE),
        ("weight_grams=-0&country=GB", OUT_OF_RANGE),
        ("weight_grams=-7&country=GB", OUT_OF_RANGE),
        ("weight_grams=30001&country=GB", OUT_OF_RANGE),
        (
            "weight_grams=99999999999999999999999&country=GB",
            OUT_OF_RANGE,
        ),
        ("weight_grams=0&country=ZZ", OUT_OF_RANGE),
        ("weight_grams=100", COUNTRY_REQUIRED),
        ("weight_grams=100&country=", NOT_A_CODE),
        ("weight_grams=100&country=G", NOT_A_CODE),
        ("weight_grams=100&country=GBR", NOT_A_CODE),
        ("weight_grams=100&country=G1", NOT_A_CODE),
        ("weight_grams=100&country=%C3%84T", NOT_A_CODE),
        ("weight_grams=100&country=zz", "unknown country code: ZZ"),
        ("weight_grams=100&country=EU", "unknown country code: EU"),
        ("weight_grams=100&country=UK", "unknown country code: UK"),
    ] {
        let response = get(&format!("/shipping/quote?{query}")).await;
        let body = format!(r#"{{"detail":"{detail}"}}"#);
        assert_json(&response, StatusCode::BAD_REQUEST, &body);
    }
    // No query string at all is the same as an empty one.
    let response = get("/shipping/quote").await;
    assert_json(
        &response,
        StatusCode::BAD_REQUEST,
        r#"{"detail":"weight_grams is required"}"#,
    );
}

#[tokio::test]
async fn native_answers_count_as_native_in_the_metrics() {
    let state = without_python().await;
    send(state.clone(), Method::GET, "/isbn/0306406152").await;
    send(
        state.clone(),
        Method::GET,
        "/shipping/quote?weight_grams=1&country=GB",
    )
    .await;
    send(state.clone(), Method::GET, "/shipping/quote").await;
    let metrics = state.metrics.render(false);
    for line in [
        "api_requests_total{route=\"/isbn/{isbn}\",mode=\"native\",status=\"2xx\"} 1",
        "api_requests_total{route=\"/shipping/quote\",mode=\"native\",status=\"2xx\"} 1",
        "api_requests_total{route=\"/shipping/quote\",mode=\"native\",status=\"4xx\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(!metrics.contains("mode=\"proxy\""), "{metrics}");
}
