//! `rspy check`: is the project consistent? Every problem found, not only the first.
//!
//! The generated api's own build is the authority (its build.rs refuses a bad manifest and a
//! missing handler does not compile); `rspy check` says the same things in seconds, without
//! a build, and all at once.

use std::fs;

use crate::manifest::{Method, Mode, Project};
use crate::route;

/// The problems in `project`, one sentence each; empty when it is consistent.
pub fn problems(project: &Project) -> Vec<String> {
    let mut problems = Vec::new();
    let routes = &project.manifest.routes;
    let routes_rs =
        fs::read_to_string(project.root.join("crates/api/src/routes.rs")).unwrap_or_default();
    let mut router = route::router_with_reserved_paths();
    for (index, declared) in routes.iter().enumerate() {
        let shown = format!(
            "`{} {}`",
            route::method_name(declared.method),
            declared.path
        );
        let segments = match route::parse_path(&declared.path) {
            Ok(segments) => segments,
            Err(error) => {
                problems.push(format!("{shown}: {error}"));
                continue;
            }
        };
        if let Some(target) = &declared.upstream_path
            && let Err(error) = route::parse_upstream_path(target, &segments)
        {
            problems.push(format!("{shown}: {error}"));
        }
        if declared.timeout_ms == Some(0) {
            problems.push(format!(
                "{shown}: `timeout_ms = 0` would fail every request; use a positive number"
            ));
        }
        let earlier = &routes[..index];
        if earlier
            .iter()
            .any(|r| r.path == declared.path && r.method == declared.method)
        {
            problems.push(format!("{shown} is declared twice; remove one of them"));
        } else if earlier.iter().any(|r| {
            r.path == declared.path && (r.method == Method::Any || declared.method == Method::Any)
        }) {
            problems.push(format!(
                "{shown} overlaps another method on the same path (ANY covers all); remove one"
            ));
        }
        if !earlier.iter().any(|r| r.path == declared.path)
            && let Err(conflict) = router.insert(declared.path.as_str(), ())
        {
            problems.push(format!("{shown}: axum would refuse to start: {conflict}"));
        }
        match (declared.mode, &declared.handler) {
            (Mode::Native, None) => {
                problems.push(format!(
                    "{shown} is native but names no handler; add `handler = \"module::function\"`"
                ));
            }
            (Mode::Native, Some(handler)) => {
                if let Some(problem) = handler_problem(project, &routes_rs, handler) {
                    problems.push(format!("{shown}: {problem}"));
                }
            }
            (Mode::Proxy, Some(_)) => {
                problems.push(format!(
                    "{shown} is proxied but names a handler; remove `handler` or make it native"
                ));
            }
            (Mode::Proxy, None) => {}
        }
    }
    problems
}

/// Why `handler` (`module::function`) cannot be found, if it cannot.
fn handler_problem(project: &Project, routes_rs: &str, handler: &str) -> Option<String> {
    let Some((module, function)) = handler.rsplit_once("::") else {
        return Some(format!("handler `{handler}` is not `module::function`"));
    };
    let file = format!("crates/api/src/routes/{module}.rs");
    let Ok(code) = fs::read_to_string(project.root.join(&file)) else {
        return Some(format!(
            "handler `{handler}`: {file} is missing; create it or run `rspy add-route … --native --force`"
        ));
    };
    if !routes_rs
        .lines()
        .any(|line| line.trim() == format!("pub mod {module};"))
    {
        return Some(format!(
            "handler `{handler}`: crates/api/src/routes.rs does not declare `pub mod {module};`"
        ));
    }
    let defined = [
        format!("pub async fn {function}("),
        format!("pub async fn {function}<"),
    ]
    .iter()
    .any(|start| code.contains(start.as_str()));
    (!defined).then(|| format!("handler `{handler}`: no `pub async fn {function}` in {file}"))
}
