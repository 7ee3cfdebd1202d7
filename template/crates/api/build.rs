//! Turns rspy.toml into Rust: validates the manifest and writes `manifest.rs` into OUT_DIR.

use std::{env, fs, path::PathBuf, process::ExitCode};

use serde::Deserialize;

#[path = "src/upstream_addr.rs"]
mod upstream_addr;

/// The manifest, relative to this crate; `src/manifest.rs` includes what we generate from it.
const MANIFEST: &str = "../../rspy.toml";
const SCHEMA: u32 = 1;
/// Paths the api serves itself, outside the manifest.
const RESERVED_PATHS: [&str; 2] = ["/livez", "/readyz"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    schema: u32,
    upstream: Upstream,
    fallback: Fallback,
    #[serde(default, rename = "route")]
    routes: Vec<Route>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upstream {
    url: String,
    #[serde(default = "default_health_path")]
    health_path: String,
    #[serde(default = "default_idle_timeout_ms")]
    idle_timeout_ms: u64,
}

fn default_health_path() -> String {
    "/healthz".to_owned()
}

/// Below uvicorn's 5 s keep-alive.
fn default_idle_timeout_ms() -> u64 {
    4_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fallback {
    mode: FallbackMode,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum FallbackMode {
    Proxy,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    method: Method,
    path: String,
    mode: Mode,
    handler: Option<String>,
    timeout_ms: Option<u64>,
    upstream_path: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

impl Method {
    /// The `axum::routing` function that registers a handler for this method.
    fn routing_fn(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Head => "head",
            Method::Options => "options",
            Method::Any => "any",
        }
    }

    fn overlaps(self, other: Method) -> bool {
        self == other || self == Method::Any || other == Method::Any
    }
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Native,
    Proxy,
}

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed={MANIFEST}");
    println!("cargo::rerun-if-changed=src/upstream_addr.rs");
    match generate() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            for line in format!("rspy.toml: {message}").lines() {
                println!("cargo::error={line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn generate() -> Result<(), String> {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let path = crate_dir.join(MANIFEST);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| e.to_string())?;
    validate(&manifest)?;
    let code = render(&manifest);
    let out = out_dir.join("manifest.rs");
    fs::write(&out, code).map_err(|e| format!("cannot write `{}`: {e}", out.display()))
}

fn validate(manifest: &Manifest) -> Result<(), String> {
    if manifest.schema != SCHEMA {
        return Err(format!(
            "unsupported `schema = {}`: this project understands schema {SCHEMA}; \
             set `schema = {SCHEMA}` or update the project with rspy",
            manifest.schema
        ));
    }
    validate_upstream_url(&manifest.upstream.url)?;
    validate_health_path(&manifest.upstream.health_path)?;
    // Every distinct path goes into one router, as axum does (methods share a path's entry).
    let mut paths = matchit::Router::new();
    for reserved in RESERVED_PATHS {
        paths.insert(reserved, ()).map_err(|e| e.to_string())?;
    }
    for (index, route) in manifest.routes.iter().enumerate() {
        let name = format!("[[route]] #{} (`{}`)", index + 1, route.path);
        validate_route(route).map_err(|problem| format!("{name}: {problem}"))?;
        let clash = manifest.routes[..index]
            .iter()
            .find(|earlier| earlier.path == route.path && earlier.method.overlaps(route.method));
        if clash.is_some() {
            return Err(format!(
                "{name}: method `{}` is already declared for this path; \
                 remove the duplicate [[route]] or change its method",
                route.method.routing_fn().to_uppercase()
            ));
        }
        let seen = manifest.routes[..index]
            .iter()
            .any(|earlier| earlier.path == route.path);
        if !seen && let Err(conflict) = paths.insert(route.path.as_str(), ()) {
            return Err(format!(
                "{name}: axum would refuse to start: {conflict}; \
                 change the path so it no longer overlaps"
            ));
        }
    }
    Ok(())
}

/// The api's own parser of UPSTREAM_URL, so a default it would refuse never gets built in.
fn validate_upstream_url(url: &str) -> Result<(), String> {
    url.parse::<upstream_addr::UpstreamAddr>()
        .map(drop)
        .map_err(|problem| {
            format!(
                "[upstream] url `{url}`: {problem}; \
                 use `http://127.0.0.1:PORT` or `unix:run/python.sock`"
            )
        })
}

/// Whether `path` starts with `/` and holds no whitespace, query or fragment.
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/') && !path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
}

/// The readiness probe's path: a plain path, no query.
fn validate_health_path(path: &str) -> Result<(), String> {
    if !is_plain_path(path) {
        return Err(format!(
            "[upstream] health_path `{path}` must start with `/` and hold no spaces, `?` or `#`"
        ));
    }
    Ok(())
}

fn validate_route(route: &Route) -> Result<(), String> {
    let path = &route.path;
    if !is_plain_path(path) {
        return Err(format!(
            "path `{path}` must start with `/` and hold no spaces, `?` or `#`"
        ));
    }
    if path
        .split('/')
        .any(|segment| segment.starts_with([':', '*']))
    {
        return Err(format!(
            "path `{path}` uses the old `:param`/`*rest` syntax; axum 0.8 wants `{}` and `{}`",
            "{param}", "{*rest}"
        ));
    }
    if RESERVED_PATHS.contains(&path.as_str()) {
        return Err(format!(
            "path `{path}` is served by the api itself; pick another path"
        ));
    }
    match route.mode {
        Mode::Native => {
            let handler = route.handler.as_deref().ok_or(
                "a native route needs `handler = \"module::function\"`, \
                 naming a function in crates/api/src/routes/",
            )?;
            if !is_rust_path(handler) {
                return Err(format!(
                    "handler `{handler}` is not a Rust path like `module::function`"
                ));
            }
        }
        Mode::Proxy => {
            if route.handler.is_some() {
                return Err(
                    "a proxy route has no `handler`; remove it or set `mode = \"native\"`"
                        .to_owned(),
                );
            }
        }
    }
    if route.timeout_ms == Some(0) {
        return Err("`timeout_ms = 0` would fail every request; \
                    use a positive number of milliseconds"
            .to_owned());
    }
    if let Some(target) = &route.upstream_path {
        validate_upstream_path(path, target)?;
    }
    Ok(())
}

/// `upstream_path` is a path whose parameters, if any, are the route's own.
fn validate_upstream_path(path: &str, target: &str) -> Result<(), String> {
    if !is_plain_path(target) {
        return Err(format!(
            "upstream_path `{target}` must start with `/` and hold no spaces, `?` or `#`"
        ));
    }
    let captures: Vec<&str> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    let mut rest = target;
    while let Some(open) = rest.find(['{', '}']) {
        let close = rest[open..].find('}').map(|at| open + at);
        let (token, inner) = match close {
            Some(close) if rest[open..].starts_with('{') => {
                (&rest[open..=close], &rest[open + 1..close])
            }
            _ => return Err(format!("upstream_path `{target}` has unbalanced braces")),
        };
        if !captures.contains(&inner) {
            return Err(format!(
                "upstream_path `{target}` uses `{token}`, which path `{path}` does not capture; \
                 use the route's parameters only"
            ));
        }
        rest = &rest[open + token.len()..];
        if inner.starts_with('*') && !rest.is_empty() {
            return Err(format!(
                "upstream_path `{target}`: the wildcard `{token}` must come last"
            ));
        }
    }
    Ok(())
}

fn is_rust_path(handler: &str) -> bool {
    handler.split("::").all(|segment| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && segment != "_"
    })
}

/// The generated module: the default upstream and one function adding every route and the
/// fallback to the router.
fn render(manifest: &Manifest) -> String {
    let routes: String = manifest.routes.iter().map(route_line).collect();
    // With the proxy fallback, a method no route declares for a path goes to Python too (as
    // if no route matched), so declaring `GET /items/{id}` leaves `DELETE /items/{id}` where
    // it was. With `none`, axum answers 405 with the path's `Allow`.
    let fallback = match manifest.fallback.mode {
        FallbackMode::Proxy => {
            "        .fallback(crate::proxy::forward)\n        \
             .method_not_allowed_fallback(crate::proxy::forward)\n"
        }
        FallbackMode::None => "        .fallback(crate::error::not_found)\n",
    };
    // Literal braces stay out of format strings: their doubled-brace escapes would be eaten
    // by the template engine that renders this file.
    [
        "// @generated from rspy.toml by crates/api/build.rs: edit rspy.toml, not this file.\n\n",
        "/// `[upstream] url`: where Python listens unless `UPSTREAM_URL` says otherwise.\n",
        &format!("pub const DEFAULT_UPSTREAM_URL: &str = {:?};\n\n", manifest.upstream.url),
        "/// `[upstream] health_path`: what the readiness probe asks Python for.\n",
        &format!(
            "pub const DEFAULT_HEALTH_PATH: &str = {:?};\n\n",
            manifest.upstream.health_path
        ),
        "/// `[upstream] idle_timeout_ms`: how long an unused connection to Python stays open\n",
        "/// unless `UPSTREAM_IDLE_TIMEOUT_MS` says otherwise.\n",
        &format!(
            "pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = {};\n\n",
            manifest.upstream.idle_timeout_ms
        ),
        "/// The path of every `[[route]]`, once each, with the method and settings of its route if\n",
        "/// that is its only one and forwards (`mode = \"proxy\"`): the gateway forwards those\n",
        "/// requests itself. Requests on any other path go to the fallback.\n",
        "pub const ROUTE_PATHS: &[(&str, Option<crate::gateway::Proxied>)] = &[\n",
        &route_paths(manifest),
        "];\n\n",
        "/// `[fallback] mode = \"proxy\"`: requests that no route matches go to Python.\n",
        &format!(
            "pub const FALLBACK_PROXIES: bool = {};\n\n",
            matches!(manifest.fallback.mode, FallbackMode::Proxy)
        ),
        "/// Registers every `[[route]]` of rspy.toml and its `[fallback]` on `router`.\n",
        "pub fn routes(router: ::axum::Router<crate::AppState>) -> ::axum::Router<crate::AppState> {\n",
        "    router\n",
        &routes,
        fallback,
        "}\n",
    ]
    .concat()
}

/// The entries of `ROUTE_PATHS`: each path once, in the order rspy.toml lists them.
fn route_paths(manifest: &Manifest) -> String {
    let mut lines = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for route in &manifest.routes {
        if seen.contains(&route.path.as_str()) {
            continue;
        }
        seen.push(&route.path);
        let mut routes = manifest.routes.iter().filter(|r| r.path == route.path);
        let only = routes.next().filter(|_| routes.next().is_none());
        let proxied = match only {
            Some(only) if only.mode == Mode::Proxy && only.handler.is_none() => {
                let method = match only.method {
                    Method::Any => "None".to_owned(),
                    method => format!(
                        "Some(::axum::http::Method::{})",
                        method.routing_fn().to_uppercase()
                    ),
                };
                // Pieces, not one `format!`: its escaped braces would read as template tags
                // to rspy's template engine.
                [
                    "Some(crate::gateway::Proxied ",
                    "{",
                    &format!(" method: {method}, settings: {} ", route_settings(only)),
                    "})",
                ]
                .concat()
            }
            _ => "None".to_owned(),
        };
        lines.push_str(&format!("    ({:?}, {proxied}),\n", route.path));
    }
    lines
}

/// A route's `crate::proxy::RouteSettings`, as a constant expression.
fn route_settings(route: &Route) -> String {
    let mut settings = "crate::proxy::RouteSettings::new()".to_owned();
    if let Some(ms) = route.timeout_ms {
        settings.push_str(&format!(".timeout_ms({ms})"));
    }
    if let Some(target) = &route.upstream_path {
        settings.push_str(&format!(".upstream_path({:?}, {target:?})", route.path));
    }
    settings
}

fn route_line(route: &Route) -> String {
    let method = route.method.routing_fn();
    let settings = (route.timeout_ms.is_some() || route.upstream_path.is_some())
        .then(|| route_settings(route));
    // A proxy route's handler holds its settings; a native handler's requests carry them, in
    // an extension that a layer sets.
    let (handler, layer) = match (&route.handler, settings) {
        (Some(handler), None) => (format!("crate::routes::{handler}"), String::new()),
        (Some(handler), Some(settings)) => (
            format!("crate::routes::{handler}"),
            format!("\n            .layer(::axum::Extension({settings}))"),
        ),
        (None, None) => ("crate::proxy::forward".to_owned(), String::new()),
        (None, Some(settings)) => (format!("crate::proxy::Forward({settings})"), String::new()),
    };
    // An HTTP/2 client opens a WebSocket with CONNECT where HTTP/1.1 uses GET (RFC 8441), so
    // a forwarded GET route takes both, whatever the fallback.
    let also = if route.mode == Mode::Proxy && route.method == Method::Get {
        format!("\n            .connect({handler})")
    } else {
        String::new()
    };
    format!(
        "        .route({:?}, ::axum::routing::{method}({handler}){also}{layer})\n",
        route.path
    )
}
