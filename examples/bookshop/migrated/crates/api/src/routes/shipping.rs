//! Handlers under `/shipping`, made by `rspy add-route`; yours to edit. rspy only appends new ones.

use axum::{
    Json,
    extract::{Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use bookshop_shared::ErrorDetail;

use crate::{AppState, error::ApiError, proxy};

/// `GET /shipping/quote?weight_grams=<int>&country=<code>`: the price of sending a parcel,
/// or `400 {"detail":"<why>"}` for the first check the query fails (the rules and messages
/// are in `bookshop_core::shipping`).
///
/// The query is read raw, not with `Query<T>` (which refuses a repeated key): see
/// `quote_params`. Requests that Python reads in a way of its own are passed through for
/// it to answer, see `left_to_python`.
pub async fn quote(state: State<AppState>, request: Request) -> Result<Response, ApiError> {
    if left_to_python(&request) {
        return proxy::forward(state, request).await;
    }
    let (weight_grams, country) = quote_params(request.uri().query().unwrap_or_default());
    Ok(
        match bookshop_core::shipping::quote(weight_grams.as_deref(), country.as_deref()) {
            Ok(quote) => Json(quote).into_response(),
            Err(error) => {
                let detail = ErrorDetail {
                    detail: error.to_string(),
                };
                (StatusCode::BAD_REQUEST, Json(detail)).into_response()
            }
        },
    )
}

/// Requests that Python answers other than with a quote, so it answers them still:
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

/// `weight_grams` and `country` from the raw query string, read as Starlette reads it: pairs
/// split on `&` (never `;`), a key without `=` has the empty value, `+` is a space, escapes
/// are percent-decoded (invalid UTF-8 to U+FFFD), the last of a repeated key wins and other
/// keys are ignored.
fn quote_params(query: &str) -> (Option<String>, Option<String>) {
    let (mut weight_grams, mut country) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "weight_grams" => weight_grams = Some(value.into_owned()),
            "country" => country = Some(value.into_owned()),
            _ => {}
        }
    }
    (weight_grams, country)
}

#[cfg(test)]
mod quote_tests {
    use super::quote_params;

    fn params(query: &str) -> (Option<String>, Option<String>) {
        quote_params(query)
    }

    fn found(
        weight_grams: Option<&str>,
        country: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        (weight_grams.map(str::to_owned), country.map(str::to_owned))
    }

    #[test]
    fn both_keys_are_read_and_others_ignored() {
        assert_eq!(
            params("express=1&weight_grams=250&country=GB"),
            found(Some("250"), Some("GB"))
        );
        assert_eq!(params(""), found(None, None));
        assert_eq!(params("country=GB"), found(None, Some("GB")));
    }

    #[test]
    fn a_repeated_key_counts_by_its_last_value() {
        assert_eq!(
            params("weight_grams=abc&country=ZZ&weight_grams=300&country=de"),
            found(Some("300"), Some("de"))
        );
    }

    #[test]
    fn plus_is_a_space_and_escapes_are_decoded() {
        assert_eq!(params("weight_grams=+5"), found(Some(" 5"), None));
        assert_eq!(params("weight_grams=%2B5"), found(Some("+5"), None));
        assert_eq!(
            params("weight%5Fgrams=5&%63ountry=%C3%84T"),
            found(Some("5"), Some("ÄT"))
        );
        assert_eq!(params("country=%FF"), found(None, Some("\u{fffd}")));
    }

    #[test]
    fn a_key_without_a_value_is_the_empty_string() {
        assert_eq!(params("weight_grams&country="), found(Some(""), Some("")));
    }

    #[test]
    fn pairs_are_split_on_ampersands_only() {
        assert_eq!(
            params("weight_grams=100;country=de"),
            found(Some("100;country=de"), None)
        );
        assert_eq!(params("&&weight_grams=1&&"), found(Some("1"), None));
    }
}
