//! `rspy.toml`, the route manifest of a generated project: finding it and reading it.
//!
//! The same rules as the generated api's `build.rs`: unknown keys are an error, and only
//! schema 1 is understood.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest's file name, at the root of a generated project.
pub const FILE_NAME: &str = "rspy.toml";
/// The manifest format this rspy reads and writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub upstream: Upstream,
    pub fallback: Fallback,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
}

/// Where the Python service listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub url: String,
    /// What the api's readiness probe asks Python for (the api's default: `/healthz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// How long the api keeps an unused connection to Python (the api's default: 4000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

/// What happens to a request no route matches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub mode: FallbackMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FallbackMode {
    /// Forwarded to Python.
    Proxy,
    /// 404 from Rust.
    None,
}

/// One declared endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: Method,
    /// axum 0.8 syntax: `/users/{id}`, `/files/{*rest}`.
    pub path: String,
    pub mode: Mode,
    /// Native routes: `module::function` in the api crate's `src/routes/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// How long to wait for Python's response headers (proxy routes, and native handlers
    /// that still pass requests through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The path Python serves the route under, with the route's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Served by Rust.
    Native,
    /// Forwarded to Python.
    Proxy,
}

/// A generated project, found by its manifest.
#[derive(Debug)]
pub struct Project {
    /// The folder that holds `rspy.toml`.
    pub root: PathBuf,
    pub manifest: Manifest,
}

impl Project {
    /// The project that `dir` is in: the nearest folder, `dir` or above, with an `rspy.toml`.
    pub fn find(dir: &Path) -> Result<Self> {
        let dir = std::path::absolute(dir).map_err(Error::io("resolving", dir))?;
        let root = dir
            .ancestors()
            .find(|candidate| candidate.join(FILE_NAME).is_file())
            .ok_or_else(|| Error::NotAProject { dir: dir.clone() })?
            .to_path_buf();
        let manifest = Manifest::read(&root.join(FILE_NAME))?;
        Ok(Self { root, manifest })
    }
}

impl Manifest {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(Error::io("reading", path))?;
        Self::parse(&text).map_err(|reason| Error::InvalidManifest {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses a manifest's text; the error says what is wrong, and where.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        // The schema first, so a newer file gets "upgrade rspy", not a complaint about keys
        // this rspy does not know.
        #[derive(Deserialize)]
        struct Versioned {
            schema: Option<toml::Value>,
        }
        let fix = "; fix the file (or restore it from version control)";
        let invalid = |e: toml::de::Error| format!("{}{fix}", one_line(&e.to_string()));
        let versioned: Versioned = toml::from_str(text).map_err(invalid)?;
        match versioned.schema {
            Some(toml::Value::Integer(n)) if n == i64::from(SCHEMA) => {}
            Some(other) => {
                return Err(format!(
                    "it has `schema = {other}`, and this rspy understands schema {SCHEMA} only; \
                     use an rspy that knows schema {other}"
                ));
            }
            None => {
                return Err(format!(
                    "it has no `schema`; add `schema = {SCHEMA}` at the top"
                ));
            }
        }
        toml::from_str(text).map_err(invalid)
    }
}

/// toml's messages quote the offending line over several lines; keep the first line and the
/// explanation, which together name the place and the problem.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if first != last => format!("{first}: {last}"),
        (Some(first), _) => (*first).to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
schema = 1
[upstream]
url = "http://127.0.0.1:8000"
[fallback]
mode = "proxy"
[[route]]
method = "GET"
path = "/hello/rust"
mode = "native"
handler = "hello::hello_rust"
[[route]]
method = "ANY"
path = "/files/{*rest}"
mode = "proxy"
timeout_ms = 5000
"#;

    #[test]
    fn reads_routes_and_settings() {
        let manifest = Manifest::parse(SAMPLE).unwrap();
        assert_eq!(manifest.fallback.mode, FallbackMode::Proxy);
        assert_eq!(manifest.routes.len(), 2);
        assert_eq!(
            manifest.routes[0].handler.as_deref(),
            Some("hello::hello_rust")
        );
        assert_eq!(manifest.routes[1].method, Method::Any);
        assert_eq!(manifest.routes[1].timeout_ms, Some(5000));
    }

    #[test]
    fn refuses_unknown_keys_schemas_and_values() {
        let cases = [
            (
                SAMPLE.replace("schema = 1", "schema = 2"),
                "understands schema 1 only",
            ),
            (SAMPLE.replace("schema = 1", ""), "add `schema = 1`"),
            (
                SAMPLE.replace("mode = \"proxy\"\n[[", "mode = \"proxy\"\ncolour = 1\n[["),
                "colour",
            ),
            (SAMPLE.replace("\"GET\"", "\"FETCH\""), "FETCH"),
            (SAMPLE.replace("[fallback]", "[fallback"), "line"),
        ];
        for (text, needle) in cases {
            let error = Manifest::parse(&text).unwrap_err();
            assert!(error.contains(needle), "`{needle}` not in {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}
