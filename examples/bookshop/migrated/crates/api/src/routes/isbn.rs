//! Handlers under `/isbn`, made by `rspy add-route`; yours to edit. rspy only appends new ones.

use axum::{
    Json,
    extract::{Request, State},
    http::Method,
    response::{IntoResponse, Response},
};
use percent_encoding::percent_decode_str;

use crate::{AppState, error::ApiError, proxy};

/// `GET /isbn/{isbn}`: whether the path segment is a valid ISBN-10 or ISBN-13, and its
/// ISBN-13; always `200` (the rules are in `bookshop_core::isbn`).
///
/// Clients get what the Python service answered, down to how the segment is read. It is
/// decoded here rather than by `Path<String>`, which refuses invalid UTF-8 with a `400`
/// where uvicorn reads each invalid sequence as U+FFFD. Requests that Python reads in a way
/// of its own are passed through for it to answer, see `left_to_python`.
pub async fn check_isbn(state: State<AppState>, request: Request) -> Result<Response, ApiError> {
    let isbn = match decoded_last_segment(request.uri().path()) {
        Some(isbn) if !left_to_python(&request) => isbn,
        _ => return proxy::forward(state, request).await,
    };
    Ok(Json(bookshop_core::isbn::check(&isbn)).into_response())
}

/// Requests that Python answers other than with an ISBN check, so it answers them still:
/// - `HEAD`: FastAPI answers `405` for a `GET` route, where axum would run the handler;
/// - a request target with bytes that are not ASCII (unescaped UTF-8, as `curl` sends it):
///   uvicorn refuses it with `400`.
fn left_to_python(request: &Request) -> bool {
    request.method() == Method::HEAD
        || request
            .uri()
            .path_and_query()
            .is_some_and(|target| !target.as_str().is_ascii())
}

/// The last segment of a raw request path, percent-decoded as uvicorn decodes paths (UTF-8,
/// each invalid sequence replaced by U+FFFD), or `None` when it decodes to something with a
/// `/` in it: uvicorn decodes `%2F` before routing, so Python answers such a request for
/// another path (`/isbn/a%2Fb` is a `404`, `/isbn/a%2F` a redirect).
fn decoded_last_segment(path: &str) -> Option<String> {
    let segment = path.rsplit_once('/').map_or(path, |(_, last)| last);
    let decoded = percent_decode_str(segment).decode_utf8_lossy();
    (!decoded.contains('/')).then(|| decoded.into_owned())
}

#[cfg(test)]
mod check_isbn_tests {
    use super::decoded_last_segment;

    #[test]
    fn the_segment_is_percent_decoded_and_plus_stays_a_plus() {
        assert_eq!(
            decoded_last_segment("/isbn/0%20306%2040615%202").as_deref(),
            Some("0 306 40615 2")
        );
        assert_eq!(decoded_last_segment("/isbn/1+2").as_deref(), Some("1+2"));
        assert_eq!(
            decoded_last_segment("/isbn/%C3%A9%e2%80%93").as_deref(),
            Some("é\u{2013}")
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_as_in_python() {
        // Python: unquote("%FF%C3%28x") == "\ufffd\ufffd(x"; unquote("%E2%80") == "\ufffd".
        assert_eq!(
            decoded_last_segment("/isbn/%FF%C3%28x").as_deref(),
            Some("\u{fffd}\u{fffd}(x")
        );
        assert_eq!(
            decoded_last_segment("/isbn/%E2%80").as_deref(),
            Some("\u{fffd}")
        );
    }

    #[test]
    fn malformed_escapes_stay_as_they_are() {
        assert_eq!(
            decoded_last_segment("/isbn/%zz%4").as_deref(),
            Some("%zz%4")
        );
    }

    #[test]
    fn an_encoded_slash_is_left_to_python() {
        assert_eq!(decoded_last_segment("/isbn/a%2Fb"), None);
        assert_eq!(decoded_last_segment("/isbn/a%2f"), None);
    }
}
