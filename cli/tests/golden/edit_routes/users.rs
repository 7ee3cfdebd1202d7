//! Handlers under `/users`, made by `rspy add-route`; yours to edit. rspy only appends new ones.

/// `GET /users/{id}`: still answered by Python, through the proxy.
///
/// `rspy add-route --native` made this pass-through, so declaring the route native changed
/// nothing for clients. To serve it from Rust, replace the body (keep business rules in the
/// core crate) and the test in `get_users_by_id_tests` below.
pub async fn get_users_by_id(
    axum::extract::Path(_id): axum::extract::Path<String>,
    state: axum::extract::State<crate::AppState>,
    request: axum::extract::Request,
) -> Result<axum::response::Response, crate::error::ApiError> {
    crate::proxy::forward(state, request).await
}

#[cfg(test)]
mod get_users_by_id_tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// Python does not run in unit tests, so the pass-through answers 503 for it.
    #[tokio::test]
    async fn passes_the_request_through_to_python() {
        let unreachable =
            |name: &str| (name == "UPSTREAM_URL").then(|| "http://127.0.0.1:1".to_owned());
        let config = crate::config::Config::from_lookup(unreachable).expect("valid settings");
        let app = crate::app(crate::AppState::new(&config));
        let request = Request::builder()
            .method("GET")
            .uri("/users/1")
            .body(Body::empty())
            .expect("a valid request");
        let response = app.oneshot(request).await.expect("the app is infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
