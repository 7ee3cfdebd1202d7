//! What every connection serves: the router of [`crate::app`], or, for a request that the
//! router would only hand to the proxy, the proxy straight away.
//!
//! Such a request is one on a path that no route declares (nor `/livez`, `/readyz`) when
//! `[fallback] mode = "proxy"`, or one with the method of a `mode = "proxy"` route that is
//! its path's only route. The gateway forwards it as the router would: same request id, trace
//! context, log line, metrics (route `fallback` or the route's pattern, mode `proxy`), route
//! settings, headers and errors. It skips what the router costs a request (route lookup,
//! boxed services and futures, request extensions), the larger part of what the api adds to
//! a forwarded one. Every other request goes to the router: native routes, paths with more
//! than one route, and other methods (`HEAD` or an HTTP/2 `CONNECT` on a `GET` route, or a
//! method that the router's `method_not_allowed_fallback` forwards).
//!
//! Two consequences. A route or a layer (auth, CORS...) added to the router by hand in
//! `lib.rs` never sees the requests the gateway forwards: declare routes in rspy.toml, and
//! put what must see every request here as well. And a `HEAD` answer from Python without a
//! `Content-Length` passes as it is, where the router adds `content-length: 0`.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Router,
    extract::ConnectInfo,
    http::Method,
    response::{IntoResponse, Response},
    routing::future::RouteFuture,
};
use hyper::body::Incoming;
use tower::Service;

use crate::{
    AppState, health, manifest,
    metrics::Mode,
    proxy::{self, Origin, RouteSettings},
    telemetry::{FALLBACK_ROUTE, Observation},
};

/// A path whose only route in rspy.toml forwards (`mode = "proxy"`): its method (`None` for
/// `ANY`) and settings. Requests with that method the gateway forwards itself; any other
/// method goes to the router.
#[derive(Debug, Clone)]
pub struct Proxied {
    pub method: Option<Method>,
    pub settings: RouteSettings,
}

/// The paths the router serves besides rspy.toml's.
const HEALTH_PATHS: &[(&str, Option<Proxied>)] = &[(health::LIVEZ, None), (health::READYZ, None)];

/// The router and the paths it routes. Cheap to clone: one per connection.
#[derive(Clone)]
pub struct Gateway {
    router: Router,
    state: AppState,
    /// The paths the router has routes for, each with its route pattern and, if the gateway
    /// forwards its requests itself, the route's method and settings.
    routed: Arc<matchit::Router<(&'static str, Option<&'static Proxied>)>>,
}

impl Gateway {
    pub fn new(state: AppState) -> Self {
        let mut routed = matchit::Router::new();
        for (path, proxied) in HEALTH_PATHS.iter().chain(manifest::ROUTE_PATHS) {
            // build.rs checked that the paths are distinct and that none conflicts with
            // another, with this same version of matchit, which axum uses too.
            routed
                .insert(*path, (*path, proxied.as_ref()))
                .expect("rspy.toml's route paths were checked by build.rs");
        }
        Self {
            router: crate::app(state.clone()),
            state,
            routed: Arc::new(routed),
        }
    }

    /// The worker's state the gateway serves with (the server takes its timer).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The route (its pattern, or `fallback`) and settings a request with `method` on `path`
    /// is forwarded under, if the router would only forward it; `None` if it goes to the
    /// router.
    pub fn forwards(&self, method: &Method, path: &str) -> Option<(&'static str, RouteSettings)> {
        match self.routed.at(path) {
            // No route: the fallback's.
            Err(_) => manifest::FALLBACK_PROXIES.then(|| (FALLBACK_ROUTE, RouteSettings::new())),
            Ok(found) => match found.value {
                (route, Some(proxied))
                    if proxied.method.as_ref().is_none_or(|only| only == method) =>
                {
                    Some((*route, proxied.settings))
                }
                _ => None,
            },
        }
    }

    /// Serves `request`, which came from `peer`.
    pub fn call(&self, mut request: hyper::Request<Incoming>, peer: SocketAddr) -> Responding {
        if let Some((route, settings)) = self.forwards(request.method(), request.uri().path()) {
            let state = self.state.clone();
            return Responding::Forwarded(Box::pin(forward(state, request, peer, route, settings)));
        }
        // Read by `ConnectInfo<SocketAddr>` extractors and the proxy.
        request.extensions_mut().insert(ConnectInfo(peer));
        // The router is always ready, so calling it without `poll_ready` is fine.
        Responding::Routed(self.router.clone().call(request))
    }
}

/// What the router does with a request for a forwarding `route` (or its fallback), less the
/// router: observed as [`crate::telemetry::ObserveLayer`] observes it, forwarded by
/// [`proxy::relay`] with the route's `settings`.
async fn forward(
    state: AppState,
    mut request: hyper::Request<Incoming>,
    peer: SocketAddr,
    route: &'static str,
    settings: RouteSettings,
) -> Response {
    let observation = Observation::begin(&mut request);
    let origin = Origin {
        peer: Some(peer),
        request_id: Some(observation.request_id().clone()),
    };
    let (mut response, mode) = match proxy::relay(&state, request, settings, origin).await {
        Ok(response) => (response, Mode::Proxy),
        // An error marks itself `Mode::Proxy` if Python was asked (not for a refused
        // CONNECT, say), as it does for the router's request log.
        Err(err) => {
            let response = err.into_response();
            let mode = Mode::of(&response);
            (response, mode)
        }
    };
    observation.finish(&state.metrics, route, mode, &mut response);
    response
}

/// The response to a request, on its way: from the router, or forwarded.
#[expect(
    clippy::large_enum_variant,
    reason = "boxing the router's future would cost every routed request an allocation"
)]
pub enum Responding {
    Routed(RouteFuture<Infallible>),
    Forwarded(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl Future for Responding {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Responding::Routed(routed) => Pin::new(routed).poll(cx),
            Responding::Forwarded(forwarded) => forwarded.as_mut().poll(cx).map(Ok),
        }
    }
}
