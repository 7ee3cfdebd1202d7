//! Routes as `rspy add-route` and `remove-route` take them: method and path checked the way
//! axum 0.8 reads them, the handler's Rust names, and the Rust code of a new handler.

use crate::error::{Error, Result};
use crate::manifest::Method;

/// Paths the generated api serves itself.
pub const RESERVED_PATHS: [&str; 2] = ["/livez", "/readyz"];

/// A router like the api's before any route is added: holding the paths it serves itself.
/// Conflict checks insert paths into it, as axum would.
pub fn router_with_reserved_paths() -> matchit::Router<()> {
    let mut router = matchit::Router::new();
    for reserved in RESERVED_PATHS {
        router
            .insert(reserved, ())
            .expect("the reserved paths do not conflict");
    }
    router
}

/// Rust's strict and reserved keywords (2024 edition).
pub const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

const METHODS: [(&str, Method); 8] = [
    ("GET", Method::Get),
    ("POST", Method::Post),
    ("PUT", Method::Put),
    ("PATCH", Method::Patch),
    ("DELETE", Method::Delete),
    ("HEAD", Method::Head),
    ("OPTIONS", Method::Options),
    ("ANY", Method::Any),
];

/// A method as typed (any case).
pub fn parse_method(text: &str) -> Result<Method> {
    METHODS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, method)| *method)
        .ok_or_else(|| Error::InvalidRoute {
            what: "method",
            value: text.to_owned(),
            reason: "unknown method; use GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY"
                .to_owned(),
        })
}

/// The method's name as rspy.toml spells it.
pub fn method_name(method: Method) -> &'static str {
    METHODS
        .iter()
        .find(|(_, m)| *m == method)
        .map_or("GET", |(name, _)| name)
}

/// One segment of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    /// `{name}`
    Param(String),
    /// `{*name}`, last only
    Wildcard(String),
}

/// Checks `path` against axum 0.8's syntax and returns its segments.
pub fn parse_path(path: &str) -> Result<Vec<Segment>> {
    let invalid = |reason: String| Error::InvalidRoute {
        what: "path",
        value: path.to_owned(),
        reason,
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid(format!(
            "a path starts with `/`; did you mean `/{path}`?"
        )));
    };
    if path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#' || c == '%') {
        return Err(invalid(
            "a path holds no spaces, `?`, `#` or `%` (percent-encoding and queries are not part of a route)".to_owned(),
        ));
    }
    if RESERVED_PATHS.contains(&path) {
        return Err(invalid(
            "the api serves this path itself; choose another".to_owned(),
        ));
    }
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, text) in raw.iter().enumerate() {
        let last = index + 1 == raw.len();
        if text.is_empty() && !last {
            return Err(invalid(
                "empty segment (`//`); remove the extra `/`".to_owned(),
            ));
        }
        if text.starts_with(':') || text.starts_with('*') {
            let name = text.trim_start_matches([':', '*']);
            let new = if text.starts_with('*') {
                format!("{{*{name}}}")
            } else {
                format!("{{{name}}}")
            };
            return Err(invalid(format!(
                "`{text}` is the old syntax; axum 0.8 writes it `{new}`"
            )));
        }
        let opens = text.matches('{').count();
        let closes = text.matches('}').count();
        if opens == 0 && closes == 0 {
            segments.push(Segment::Static((*text).to_owned()));
            continue;
        }
        if opens != closes {
            return Err(invalid(format!(
                "unbalanced braces in `{text}`; write a parameter as `{{name}}`"
            )));
        }
        let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
            return Err(invalid(format!(
                "`{text}`: a parameter takes a whole segment, like `/{{id}}`"
            )));
        };
        if inner.contains(['{', '}']) {
            return Err(invalid(format!(
                "`{text}`: one parameter per segment, like `/{{id}}`"
            )));
        }
        let (name, wildcard) = match inner.strip_prefix('*') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if !is_identifier(name) {
            return Err(invalid(format!(
                "parameter `{name}` is not a name; use letters, digits and `_`, like `{{user_id}}`"
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(invalid(format!(
                "parameter `{name}` appears twice; give each its own name"
            )));
        }
        if wildcard && !last {
            return Err(invalid(format!(
                "`{{*{name}}}` takes the rest of the path, so it must come last"
            )));
        }
        names.push(name.to_owned());
        segments.push(if wildcard {
            Segment::Wildcard(name.to_owned())
        } else {
            Segment::Param(name.to_owned())
        });
    }
    Ok(segments)
}

/// Checks an `--upstream-path` for a route with `segments`: a path like the route's, whose
/// parameters (`{id}`, a wildcard last as `{*rest}`) are all the route's own.
pub fn parse_upstream_path(target: &str, segments: &[Segment]) -> Result<()> {
    let invalid = |reason: String| Error::InvalidRoute {
        what: "upstream path",
        value: target.to_owned(),
        reason,
    };
    if !target.starts_with('/') {
        return Err(invalid(format!(
            "a path starts with `/`; did you mean `/{target}`?"
        )));
    }
    if target.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        return Err(invalid(
            "a path holds no spaces, `?` or `#` (the query string is passed on as it came)"
                .to_owned(),
        ));
    }
    let captures: Vec<String> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(name) => Some(format!("{{{name}}}")),
            Segment::Wildcard(name) => Some(format!("{{*{name}}}")),
            Segment::Static(_) => None,
        })
        .collect();
    let mut rest = target;
    while let Some(open) = rest.find(['{', '}']) {
        let token = match rest[open..].find('}') {
            Some(close) if rest[open..].starts_with('{') => &rest[open..=open + close],
            _ => {
                return Err(invalid(
                    "unbalanced braces; write a parameter as `{name}`".to_owned(),
                ));
            }
        };
        if !captures.iter().any(|c| c == token) {
            let known = if captures.is_empty() {
                "the route has none".to_owned()
            } else {
                format!("use one of the route's: {}", captures.join(", "))
            };
            return Err(invalid(format!(
                "`{token}` is not a parameter of the route; {known}"
            )));
        }
        rest = &rest[open + token.len()..];
        if token.starts_with("{*") && !rest.is_empty() {
            return Err(invalid(format!(
                "`{token}` takes the rest of the path, so it must come last"
            )));
        }
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` as a snake_case Rust name: lowercase, runs of other characters as one `_`.
fn snake(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// The module a path's handlers go to: its first static segment (`/users/{id}`: `users`),
/// or `root`.
pub fn default_module(segments: &[Segment]) -> String {
    let first = match segments.first() {
        Some(Segment::Static(text)) => snake(text),
        _ => String::new(),
    };
    match first {
        name if name.is_empty() => "root".to_owned(),
        name if name.starts_with(|c: char| c.is_ascii_digit()) => format!("r{name}"),
        name if RUST_KEYWORDS.contains(&name.as_str()) => format!("{name}_routes"),
        name => name,
    }
}

/// The default handler name: the method and the path (`GET /users/{id}`: `get_users_by_id`).
pub fn default_handler(method: Method, segments: &[Segment]) -> String {
    let mut name = method_name(method).to_ascii_lowercase();
    for segment in segments {
        let part = match segment {
            Segment::Static(text) => snake(text),
            Segment::Param(p) | Segment::Wildcard(p) => format!("by_{}", snake(p)),
        };
        if !part.is_empty() {
            name.push('_');
            name.push_str(&part);
        }
    }
    if name.len() == method_name(method).len() {
        name.push_str("_root");
    }
    name
}

/// Checks a `--name`: `function` or `module::function`, both snake_case and no keyword.
pub fn parse_handler_name(text: &str) -> Result<(Option<String>, String)> {
    let invalid = |reason: &str| Error::InvalidRoute {
        what: "handler name",
        value: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (module, function) = match text.split_once("::") {
        Some((module, function)) => (Some(module), function),
        None => (None, text),
    };
    for part in module.into_iter().chain([function]) {
        let snake_case = part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !snake_case {
            return Err(invalid(
                "a handler is `function` or `module::function`, each a snake_case Rust name like `get_user`",
            ));
        }
        if RUST_KEYWORDS.contains(&part) {
            return Err(invalid(
                "a Rust keyword cannot name a handler or module; add a word, like `get_type`",
            ));
        }
    }
    Ok((module.map(str::to_owned), function.to_owned()))
}

/// The first line of every module `rspy add-route` makes: how rspy knows it may append.
pub fn module_header(path_prefix: &str) -> String {
    format!(
        "//! Handlers under `{path_prefix}`, made by `rspy add-route`; yours to edit. rspy only appends new ones.\n"
    )
}

/// Whether a module file was made by `rspy add-route` (so rspy may append to it).
pub fn is_rspy_module(text: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|line| line.starts_with("//! ") && line.contains("made by `rspy add-route`"))
}

/// The handler (a pass-through to Python) and its test, as they are appended to a module.
pub fn handler_code(method: Method, path: &str, segments: &[Segment], function: &str) -> String {
    let params: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(p) | Segment::Wildcard(p) => Some(p.as_str()),
            Segment::Static(_) => None,
        })
        .collect();
    let path_arg = match params.as_slice() {
        [] => String::new(),
        [one] => format!("    axum::extract::Path(_{one}): axum::extract::Path<String>,\n"),
        many => format!(
            "    axum::extract::Path(({})): axum::extract::Path<({})>,\n",
            many.iter()
                .map(|p| format!("_{p}"))
                .collect::<Vec<_>>()
                .join(", "),
            vec!["String"; many.len()].join(", "),
        ),
    };
    let sample: String = segments
        .iter()
        .map(|s| match s {
            Segment::Static(text) => format!("/{text}"),
            Segment::Param(_) => "/1".to_owned(),
            Segment::Wildcard(_) => "/a/b".to_owned(),
        })
        .collect();
    let sample = if sample.is_empty() {
        "/".to_owned()
    } else {
        sample
    };
    let request_method = match method {
        Method::Any => "GET",
        other => method_name(other),
    };
    let method = method_name(method);
    format!(
        r#"
/// `{method} {path}`: still answered by Python, through the proxy.
///
/// `rspy add-route --native` made this pass-through, so declaring the route native changed
/// nothing for clients. To serve it from Rust, replace the body (keep business rules in the
/// core crate) and the test in `{function}_tests` below.
pub async fn {function}(
{path_arg}    state: axum::extract::State<crate::AppState>,
    request: axum::extract::Request,
) -> Result<axum::response::Response, crate::error::ApiError> {{
    crate::proxy::forward(state, request).await
}}

#[cfg(test)]
mod {function}_tests {{
    use axum::body::Body;
    use axum::http::{{Request, StatusCode}};
    use tower::ServiceExt;

    /// Python does not run in unit tests, so the pass-through answers 503 for it.
    #[tokio::test]
    async fn passes_the_request_through_to_python() {{
        let unreachable =
            |name: &str| (name == "UPSTREAM_URL").then(|| "http://127.0.0.1:1".to_owned());
        let config = crate::config::Config::from_lookup(unreachable).expect("valid settings");
        let app = crate::app(crate::AppState::new(&config));
        let request = Request::builder()
            .method("{request_method}")
            .uri("{sample}")
            .body(Body::empty())
            .expect("a valid request");
        let response = app.oneshot(request).await.expect("the app is infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }}
}}
"#
    )
}

/// `routes.rs` with `pub mod <module>;` added where rustfmt keeps it (sorted among the
/// other `pub mod` lines); unchanged if it is there already.
pub fn with_module_declared(routes_rs: &str, module: &str) -> String {
    let line = format!("pub mod {module};");
    let mut lines: Vec<&str> = routes_rs.lines().collect();
    if lines.contains(&line.as_str()) {
        return routes_rs.to_owned();
    }
    let is_mod = |l: &str| l.starts_with("pub mod ") && l.ends_with(';');
    let position = match lines.iter().position(|l| is_mod(l)) {
        Some(first) => {
            let run = lines[first..].iter().take_while(|l| is_mod(l)).count();
            first
                + lines[first..first + run]
                    .iter()
                    .take_while(|l| **l < line.as_str())
                    .count()
        }
        None => {
            // The first declaration: a blank line after the module's doc comment.
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push("");
            }
            lines.len()
        }
    };
    lines.insert(position, &line);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `routes.rs` without `pub mod <module>;`.
pub fn without_module_declared(routes_rs: &str, module: &str) -> String {
    let line = format!("pub mod {module};");
    let mut out: String = routes_rs
        .lines()
        .filter(|l| *l != line)
        .collect::<Vec<_>>()
        .join("\n");
    // Without its last declaration, the file ends at the doc comment (as rustfmt wants it).
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_declarations_keep_routes_rs_rustfmt_clean() {
        let empty = "//! Native handlers.\n";
        let one = with_module_declared(empty, "items");
        assert_eq!(one, "//! Native handlers.\n\npub mod items;\n");
        assert_eq!(
            with_module_declared(&one, "books"),
            "//! Native handlers.\n\npub mod books;\npub mod items;\n"
        );
        assert_eq!(without_module_declared(&one, "items"), empty);
    }

    #[test]
    fn accepts_axum_paths() {
        assert_eq!(
            parse_path("/users/{id}/files/{*rest}").unwrap(),
            [
                Segment::Static("users".into()),
                Segment::Param("id".into()),
                Segment::Static("files".into()),
                Segment::Wildcard("rest".into()),
            ]
        );
        assert!(parse_path("/").is_ok());
        assert!(parse_path("/users/").is_ok());
    }

    #[test]
    fn refuses_malformed_paths_with_the_fix() {
        for (path, needle) in [
            ("users", "did you mean `/users`"),
            ("/users/{id", "unbalanced braces"),
            ("/users/id}", "unbalanced braces"),
            ("/files/{*rest}/more", "must come last"),
            ("/a/{id}/b/{id}", "appears twice"),
            ("/users/:id", "axum 0.8 writes it `{id}`"),
            ("/files/*rest", "axum 0.8 writes it `{*rest}`"),
            ("/a//b", "empty segment"),
            ("/a b", "no spaces"),
            ("/x?y=1", "no spaces, `?`"),
            ("/user-{id}", "takes a whole segment"),
            ("/{1x}", "is not a name"),
            ("/livez", "serves this path itself"),
        ] {
            let error = parse_path(path).unwrap_err().to_string();
            assert!(error.contains(needle), "{path}: `{needle}` not in {error}");
        }
    }

    #[test]
    fn upstream_paths_use_the_route_parameters_only() {
        let segments = parse_path("/api/{id}/files/{*rest}").unwrap();
        for good in ["/v1/{id}/{*rest}", "/legacy-{id}", "/static", "/{*rest}"] {
            assert!(parse_upstream_path(good, &segments).is_ok(), "{good}");
        }
        for (bad, needle) in [
            ("v1/{id}", "did you mean `/v1/{id}`"),
            (
                "/v1/{user}",
                "`{user}` is not a parameter of the route; use one of the route's: {id}, {*rest}",
            ),
            ("/v1/{rest}", "`{rest}` is not a parameter"),
            ("/v1/{*rest}/x", "must come last"),
            ("/v1/{id", "unbalanced braces"),
            ("/v1/id}", "unbalanced braces"),
            ("/v1?x=1", "no spaces, `?`"),
        ] {
            let error = parse_upstream_path(bad, &segments).unwrap_err().to_string();
            assert!(error.contains(needle), "{bad}: `{needle}` not in {error}");
        }
        let error = parse_upstream_path("/{id}", &[]).unwrap_err().to_string();
        assert!(error.contains("the route has none"), "{error}");
    }

    #[test]
    fn names_handlers_and_modules_after_the_route() {
        let segments = parse_path("/users/{id}").unwrap();
        assert_eq!(default_handler(Method::Get, &segments), "get_users_by_id");
        assert_eq!(default_module(&segments), "users");
        let segments = parse_path("/").unwrap();
        assert_eq!(default_handler(Method::Post, &segments), "post_root");
        assert_eq!(default_module(&segments), "root");
        let segments = parse_path("/type/{*rest}").unwrap();
        assert_eq!(default_module(&segments), "type_routes");
        assert_eq!(default_handler(Method::Any, &segments), "any_type_by_rest");
        assert_eq!(
            default_module(&parse_path("/Big-Files").unwrap()),
            "big_files"
        );
    }

    #[test]
    fn handler_names_are_snake_case_and_not_keywords() {
        assert_eq!(
            parse_handler_name("get_user").unwrap(),
            (None, "get_user".to_owned())
        );
        assert_eq!(
            parse_handler_name("users::get").unwrap(),
            (Some("users".to_owned()), "get".to_owned())
        );
        for bad in ["GetUser", "fn", "mod::get", "get-user", "a::b::c", "", "9x"] {
            assert!(parse_handler_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn declares_modules_in_sorted_place_once() {
        let routes = "//! Native handlers.\n\npub mod hello;\npub mod zebra;\n";
        let with = with_module_declared(routes, "users");
        assert_eq!(
            with,
            "//! Native handlers.\n\npub mod hello;\npub mod users;\npub mod zebra;\n"
        );
        assert_eq!(with_module_declared(&with, "users"), with);
        assert_eq!(without_module_declared(&with, "users"), routes);
        assert_eq!(
            with_module_declared("//! Doc.\n", "a"),
            "//! Doc.\n\npub mod a;\n"
        );
    }
}
