//! `rspy import-routes`: every operation of the Python service's OpenAPI document (JSON)
//! declared as a proxied route in `rspy.toml`, in one plan: all of them, or none.
//!
//! The document comes from a file, an `http://` URL, or `/openapi.json` of the running
//! Python service. Its paths are checked the way axum 0.8 reads them (and against each other
//! and the declared routes with matchit, as axum would) before anything is planned; routes
//! already declared are kept as they are.

use std::fmt::{self, Write as _};
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::cli::ImportRoutesArgs;
use crate::edit_routes::{self, AddRoute};
use crate::error::{Error, Result};
use crate::fetch::{self, FetchError, Target};
use crate::manifest::{FILE_NAME, Manifest, Method, Mode, Project};
use crate::plan::Plan;
use crate::route;
use crate::routes;

/// Where a Python service serves its OpenAPI document (FastAPI's default).
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The operations of a path item that rspy.toml can declare, in the order of the OpenAPI
/// specification's Path Item Object.
const METHODS: [(&str, Method); 7] = [
    ("get", Method::Get),
    ("put", Method::Put),
    ("post", Method::Post),
    ("delete", Method::Delete),
    ("options", Method::Options),
    ("head", Method::Head),
    ("patch", Method::Patch),
];

/// Operations of a path item that rspy.toml has no method for (`query` is OpenAPI 3.2's).
const UNDECLARABLE: [&str; 2] = ["trace", "query"];

/// How many `$ref`s in a row a path item may go through.
const MAX_REFS: usize = 8;

/// Runs `rspy import-routes`.
pub fn run(args: &ImportRoutesArgs) -> Result<()> {
    let project = crate::current_project()?;
    let source = Source::new(
        args.source.as_deref(),
        &project.manifest.upstream.url,
        &project.root,
    )?;
    let shown = source.to_string();
    let text = source.read()?;
    let operations = operations(&text, &shown).map_err(Error::Refused)?;
    check_routable(&operations, &project.manifest, &shown)?;
    let import = plan(&project, &operations, &shown)?;
    print!("{}", report(import, &shown, args.dry_run)?);
    Ok(())
}

/// Where the document comes from.
#[derive(Debug)]
enum Source {
    /// A file, as the user wrote its path.
    File(String),
    /// An `http://` URL, as the user wrote it.
    Url(String, Target),
    /// `/openapi.json` of the Python service at the manifest's upstream url.
    Upstream(String, Target),
}

impl Source {
    fn new(argument: Option<&str>, upstream: &str, root: &Path) -> Result<Self> {
        let Some(argument) = argument else {
            let target = Target::from_upstream(upstream, DOCUMENT_PATH, root).map_err(|reason| {
                Error::Refused(format!(
                    "cannot fetch the OpenAPI document from the Python service: {FILE_NAME}'s `[upstream] url` `{upstream}` is not usable ({reason}); \
                     fix it, or pass the document as a file: `rspy import-routes openapi.json`"
                ))
            })?;
            return Ok(Self::Upstream(upstream.to_owned(), target));
        };
        if argument.starts_with("https://") {
            return Err(Error::Refused(format!(
                "`{argument}`: rspy fetches over plain http only (it is meant for the Python service beside the api); \
                 download the document yourself, e.g. `curl -o openapi.json {argument}`, and pass the file"
            )));
        }
        if argument.starts_with("http://") {
            let target = Target::from_http_url(argument).map_err(|reason| {
                Error::Refused(format!(
                    "invalid URL `{argument}`: {reason}; write it as `http://host:port/openapi.json`"
                ))
            })?;
            return Ok(Self::Url(argument.to_owned(), target));
        }
        if let Some((scheme, _)) = argument.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        {
            return Err(Error::Refused(format!(
                "`{argument}`: rspy reads a file or an `http://` URL, not `{scheme}://`; download the document and pass the file"
            )));
        }
        Ok(Self::File(argument.to_owned()))
    }

    /// The document's text.
    fn read(&self) -> Result<String> {
        let bytes = match self {
            Self::File(path) => std::fs::read(path).map_err(|e| {
                Error::Refused(format!(
                    "cannot read `{path}`: {}; pass an OpenAPI document in JSON (a file or an `http://` URL), \
                     or nothing to fetch `{DOCUMENT_PATH}` from the running Python service",
                    fetch::plain(&e)
                ))
            })?,
            Self::Url(_, target) | Self::Upstream(_, target) => self.fetch(target)?,
        };
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Error::Refused(format!(
                "{self} is not UTF-8 text, so not a JSON document; pass the service's OpenAPI document in JSON"
            ))
        })
    }

    fn fetch(&self, target: &Target) -> Result<Vec<u8>> {
        let shown = self.to_string();
        let running = match self {
            Self::Upstream(..) => {
                "is the Python service running? Start it (`supervisord -c deploy/supervisord.conf` starts both processes), \
                 or pass its OpenAPI document as a file: `rspy import-routes openapi.json`"
            }
            _ => "is the service running? Start it, or pass its OpenAPI document as a file",
        };
        let response = fetch::get(target).map_err(|error| match error {
            FetchError::NotListening(reason) => {
                Error::Fetch(format!("cannot fetch {shown}: {reason}; {running}"))
            }
            FetchError::Failed(reason) => Error::Fetch(format!(
                "cannot fetch {shown}: {reason}; check that the service answers there, or pass its OpenAPI document as a file"
            )),
        })?;
        if (200..300).contains(&response.status) {
            return Ok(response.body);
        }
        let status = format!("{} {}", response.status, response.reason);
        let status = status.trim_end();
        let redirect = response
            .header("location")
            .map(|to| format!(" (to `{to}`)"))
            .unwrap_or_default();
        let what = match self {
            Self::Upstream(..) => format!(
                "the Python service does not serve its OpenAPI document at `{DOCUMENT_PATH}`; pass its URL \
                 (`rspy import-routes http://…/openapi.json`) or the document as a file"
            ),
            _ => {
                "pass the URL of the OpenAPI document in JSON, or the document as a file".to_owned()
            }
        };
        Err(Error::Fetch(format!(
            "cannot fetch {shown}: it answered `{status}`{redirect}; {what}"
        )))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "`{path}`"),
            Self::Url(url, _) => write!(f, "`{url}`"),
            Self::Upstream(url, _) => {
                write!(f, "`{DOCUMENT_PATH}` of the Python service at `{url}`")
            }
        }
    }
}

/// The operations of an OpenAPI document, in document order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Operations {
    /// The method and path of each operation rspy.toml can declare.
    pub routes: Vec<(Method, String)>,
    /// One sentence per operation left out (`TRACE /debug`) and per thing worth knowing.
    pub notes: Vec<String>,
}

/// Reads the operations of an OpenAPI 3.x or Swagger 2.0 document in JSON. The error is the
/// whole message, about `shown` (how the document is named to the user).
pub fn operations(text: &str, shown: &str) -> Result<Operations, String> {
    let document: Value = serde_json::from_str(text).map_err(|e| {
        if looks_like_yaml(shown, text) {
            format!(
                "{shown} looks like YAML, and rspy reads OpenAPI documents in JSON only; convert it to JSON \
                 (`python3 -c 'import json,sys,yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' < openapi.yaml > openapi.json`) \
                 or point rspy at the service's `{DOCUMENT_PATH}`"
            )
        } else {
            format!(
                "{shown} is not JSON ({e}); pass the service's OpenAPI document in JSON (FastAPI serves it at `{DOCUMENT_PATH}`)"
            )
        }
    })?;
    let not_openapi = |why: &str| {
        format!(
            "{shown} is not an OpenAPI document ({why}); pass the service's OpenAPI document in JSON, \
             like FastAPI's `{DOCUMENT_PATH}` (it starts with `\"openapi\": \"3.1.0\"`)"
        )
    };
    let Some(root) = document.as_object() else {
        return Err(not_openapi("it is not a JSON object"));
    };
    let swagger = match (root.get("openapi"), root.get("swagger")) {
        (Some(Value::String(version)), _) if version.starts_with("3.") => false,
        (None, Some(Value::String(version))) if version == "2.0" => true,
        (Some(Value::String(version)), _) | (None, Some(Value::String(version))) => {
            return Err(format!(
                "{shown} is OpenAPI `{version}`, and rspy reads OpenAPI 3.x and Swagger 2.0; \
                 export the document as OpenAPI 3 (FastAPI's `{DOCUMENT_PATH}` is)"
            ));
        }
        (Some(_), _) | (None, Some(_)) => {
            return Err(not_openapi("its `openapi` version is not a string"));
        }
        (None, None) => return Err(not_openapi("it has no `openapi` version")),
    };
    let paths = match root.get("paths") {
        Some(Value::Object(paths)) if !paths.is_empty() => paths,
        Some(Value::Object(_)) | Some(Value::Null) | None => {
            return Err(format!(
                "{shown} has no `paths`, so it declares no operation to import; \
                 pass the document of the Python service itself, which lists its routes under `paths`"
            ));
        }
        Some(_) => {
            return Err(format!(
                "`paths` in {shown} is not an object of paths; fix the document or export it again"
            ));
        }
    };
    let mut found = Operations::default();
    // Swagger 2.0's paths are relative to `basePath`; OpenAPI 3's `servers` are where
    // clients reach the service, which is the api here, so they are not added.
    let prefix = match root.get("basePath").and_then(Value::as_str) {
        Some(base) if swagger && base.starts_with('/') => base.trim_end_matches('/').to_owned(),
        _ => String::new(),
    };
    if let Some(url) = root
        .get("servers")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("url"))
        .and_then(Value::as_str)
        && !swagger
    {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest.find('/').map_or("", |at| &rest[at..]));
        if !path.trim_end_matches('/').is_empty() {
            found.notes.push(format!(
                "Note: the document's server URL `{url}` has a path; the routes are declared as written under `paths`, without it."
            ));
        }
    }
    let mut seen = Vec::new();
    for key in keys_in_order(text, paths) {
        if key.starts_with("x-") || seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        let item = path_item(&document, &paths[&key], &key, shown)?;
        let path = format!("{prefix}{key}");
        for (name, method) in METHODS {
            if item.contains_key(name) {
                found.routes.push((method, path.clone()));
            }
        }
        let extra = item
            .get("additionalOperations")
            .and_then(Value::as_object)
            .map(|more| more.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let undeclarable = UNDECLARABLE
            .iter()
            .filter(|name| item.contains_key(**name))
            .map(|name| (*name).to_owned())
            .chain(extra);
        for name in undeclarable {
            let method = name.to_ascii_uppercase();
            found.notes.push(format!(
                "Skipped `{method} {path}`: rspy.toml has no {method} method, so such requests are left to the fallback."
            ));
        }
    }
    Ok(found)
}

/// The path item under `key`, through its `$ref`s (inside the document only).
fn path_item<'a>(
    document: &'a Value,
    item: &'a Value,
    key: &str,
    shown: &str,
) -> Result<&'a Map<String, Value>, String> {
    let mut item = item;
    for _ in 0..MAX_REFS {
        let Some(object) = item.as_object() else {
            return Err(format!(
                "`{key}` under `paths` in {shown} is not a path item (an object of operations); fix the document or export it again"
            ));
        };
        // Operations beside a `$ref` are not allowed by OpenAPI 3.0; read them if there are.
        let Some(reference) = object.get("$ref").and_then(Value::as_str) else {
            return Ok(object);
        };
        if METHODS.iter().any(|(name, _)| object.contains_key(*name)) {
            return Ok(object);
        }
        item = reference
            .strip_prefix('#')
            .and_then(|pointer| document.pointer(pointer))
            .ok_or_else(|| {
                format!(
                    "`{key}` under `paths` in {shown} refers to `{reference}`, which is not in the document; \
                     bundle the document into one file (references inside it are followed)"
                )
            })?;
    }
    Err(format!(
        "`{key}` under `paths` in {shown} goes through more than {MAX_REFS} `$ref`s; point it at its path item directly"
    ))
}

/// The keys of `paths` in the order the document writes them (serde_json's maps sort them).
fn keys_in_order(text: &str, paths: &Map<String, Value>) -> Vec<String> {
    #[derive(Deserialize)]
    struct Document {
        paths: KeyOrder,
    }
    struct KeyOrder(Vec<String>);
    impl<'de> Deserialize<'de> for KeyOrder {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> Visitor<'de> for Keys {
                type Value = KeyOrder;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                        keys.push(key);
                    }
                    Ok(KeyOrder(keys))
                }
            }
            deserializer.deserialize_map(Keys)
        }
    }
    serde_json::from_str::<Document>(text)
        .map(|document| document.paths.0)
        .unwrap_or_else(|_| paths.keys().cloned().collect())
}

/// Whether a document that is not JSON is YAML, by its name or its first lines.
fn looks_like_yaml(shown: &str, text: &str) -> bool {
    let name = shown.trim_end_matches('`').to_ascii_lowercase();
    name.ends_with(".yaml")
        || name.ends_with(".yml")
        || text.lines().take(20).any(|line| {
            ["openapi:", "swagger:", "---", "%YAML"]
                .iter()
                .any(|start| line.starts_with(start))
        })
}

/// Refuses the import unless axum can route every path: each one valid in axum 0.8's syntax,
/// and none conflicting with another or with a declared route (matchit 0.8.4, as axum).
fn check_routable(operations: &Operations, manifest: &Manifest, shown: &str) -> Result<()> {
    let mut router = route::router_with_reserved_paths();
    let mut origin = std::collections::HashMap::new();
    for declared in &manifest.routes {
        // Conflicts among declared routes are the build's (and `rspy check`'s) to report.
        if router.insert(declared.path.as_str(), ()).is_ok() {
            origin.insert(declared.path.clone(), format!("declared in {FILE_NAME}"));
        }
    }
    let leave_out = "or import a copy of the document without it (requests to an undeclared path go to the fallback)";
    for (method, path) in &operations.routes {
        if let Err(error) = route::parse_path(path) {
            let why = match error {
                Error::InvalidRoute { reason, .. } => reason,
                other => other.to_string(),
            };
            return Err(Error::Refused(format!(
                "`{} {path}` in {shown} cannot be a route: axum cannot route the path as written ({why}); \
                 change the path in the Python service, {leave_out}",
                route::method_name(*method)
            )));
        }
        if origin.contains_key(path) {
            continue;
        }
        match router.insert(path.as_str(), ()) {
            Ok(()) => {
                origin.insert(path.clone(), "earlier in the same document".to_owned());
            }
            Err(matchit::InsertError::Conflict { with }) => {
                let other = match origin.get(&with) {
                    Some(from) => format!("`{with}` ({from})"),
                    None => format!("`{with}`"),
                };
                return Err(Error::Refused(format!(
                    "`{} {path}` in {shown} conflicts with {other}: axum cannot route both (a parameter at the same place needs the same name); \
                     rename the parameter in the Python service or in {FILE_NAME} so they match, {leave_out}",
                    route::method_name(*method)
                )));
            }
            Err(other) => {
                return Err(Error::Refused(format!(
                    "`{} {path}` in {shown} cannot be a route: {other}; change the path in the Python service, {leave_out}",
                    route::method_name(*method)
                )));
            }
        }
    }
    Ok(())
}

/// A planned import.
#[derive(Debug)]
struct Import {
    plan: Plan,
    /// What rspy.toml declares once the plan is applied.
    after: Manifest,
    /// The routes added, in document order.
    added: Vec<(Method, String)>,
    /// The operations already declared, kept as they are, with how they are declared.
    kept: Vec<(Method, String, String)>,
    notes: Vec<String>,
}

/// Plans one `add-route --proxy` per operation not declared yet, all in one plan.
fn plan(project: &Project, operations: &Operations, shown: &str) -> Result<Import> {
    let mut plan = Plan::new(&project.root);
    let mut draft = edit_routes::Draft::new(&plan, &project.manifest)?;
    let mut added = Vec::new();
    let mut kept = Vec::new();
    for (method, path) in &operations.routes {
        let declared = project
            .manifest
            .routes
            .iter()
            .find(|r| r.path == *path && (r.method == *method || r.method == Method::Any));
        if let Some(declared) = declared {
            let mut description = edit_routes::describe(declared);
            if declared.method != *method {
                description = format!("covered by `ANY {path}`: {description}");
            }
            if !kept.iter().any(|(m, p, _)| m == method && p == path) {
                kept.push((*method, path.clone(), description));
            }
            continue;
        }
        if added.contains(&(*method, path.clone())) {
            continue;
        }
        let request = AddRoute {
            method: route::method_name(*method).to_owned(),
            path: path.clone(),
            mode: Mode::Proxy,
            name: None,
            timeout_ms: None,
            upstream_path: None,
            force: false,
        };
        edit_routes::add_to(&mut plan, &mut draft, &request).map_err(|error| match error {
            Error::Refused(_) | Error::InvalidRoute { .. } => Error::Refused(format!(
                "cannot import `{} {path}` from {shown}: {error}",
                route::method_name(*method)
            )),
            other => other,
        })?;
        added.push((*method, path.clone()));
    }
    let after = draft.finish(&mut plan)?;
    Ok(Import {
        plan,
        after,
        added,
        kept,
        notes: operations.notes.clone(),
    })
}

/// What the import does (`--dry-run`: would do), applying it unless `dry_run`.
fn report(import: Import, shown: &str, dry_run: bool) -> Result<String> {
    let Import {
        plan,
        after,
        added,
        kept,
        notes,
    } = import;
    let mut out = String::new();
    let row = |method: &Method, path: &str| format!("  {:<7} {path}", route::method_name(*method));
    if plan.is_empty() {
        let count = kept.len();
        match count {
            0 => writeln!(out, "Unchanged: {shown} has no operation {FILE_NAME} can declare."),
            1 => writeln!(out, "Unchanged: the one route of {shown} is declared already, and kept as it is."),
            _ => writeln!(out, "Unchanged: the {count} routes of {shown} are all declared already, and kept as they are."),
        }
        .expect("writing to a String");
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
        out.push_str(&routes::progress(&after));
        return Ok(out);
    }
    let (add, keep) = if dry_run {
        ("Would add", "Would keep")
    } else {
        ("Added", "Kept")
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    writeln!(
        out,
        "{add} {} proxied route{} from {shown}:",
        added.len(),
        plural(added.len())
    )
    .expect("writing to a String");
    for (method, path) in &added {
        out.push_str(&row(method, path));
        out.push('\n');
    }
    if !kept.is_empty() {
        writeln!(
            out,
            "{keep} {} route{} already declared, as {}:",
            kept.len(),
            plural(kept.len()),
            if kept.len() == 1 { "it is" } else { "they are" }
        )
        .expect("writing to a String");
        let width = kept
            .iter()
            .map(|(_, path, _)| path.len())
            .max()
            .unwrap_or(0);
        for (method, path, description) in &kept {
            writeln!(
                out,
                "{}  ({description})",
                row(method, &format!("{path:width$}"))
            )
            .expect("writing to a String");
        }
    }
    for note in notes {
        out.push_str(&note);
        out.push('\n');
    }
    if dry_run {
        write!(out, "\n{}\nNothing was written (--dry-run).\n", plan.diff())
            .expect("writing to a String");
        return Ok(out);
    }
    let summary = plan.summary();
    plan.apply()?;
    out.push_str(&summary);
    out.push_str("Rebuild the api (`cargo build`) to serve the change.\n");
    out.push_str(&routes::progress(&after));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes_of(text: &str) -> Vec<(Method, String)> {
        operations(text, "`doc.json`").unwrap().routes
    }

    fn refusal(text: &str) -> String {
        operations(text, "`doc.json`").unwrap_err()
    }

    #[test]
    fn lists_operations_in_document_order_and_methods_in_spec_order() {
        // Not alphabetical: the document's own order, which serde_json alone would lose.
        let text = r#"{
            "openapi": "3.1.0",
            "paths": {
                "/zebra": {"patch": {}, "get": {}, "parameters": [], "summary": "z"},
                "/apple/{id}": {"head": {}, "options": {}, "delete": {}, "post": {}, "put": {}, "get": {}, "patch": {}},
                "x-internal": {"get": {}},
                "/middle": {"description": "no operations"}
            }
        }"#;
        let methods = |path: &str| -> Vec<Method> {
            routes_of(text)
                .into_iter()
                .filter(|(_, p)| p == path)
                .map(|(m, _)| m)
                .collect()
        };
        let paths: Vec<String> = routes_of(text).into_iter().map(|(_, p)| p).collect();
        assert_eq!(paths.first().map(String::as_str), Some("/zebra"));
        assert_eq!(paths.last().map(String::as_str), Some("/apple/{id}"));
        assert_eq!(methods("/zebra"), [Method::Get, Method::Patch]);
        use Method::*;
        assert_eq!(
            methods("/apple/{id}"),
            [Get, Put, Post, Delete, Options, Head, Patch]
        );
        assert!(methods("/middle").is_empty());
        assert_eq!(routes_of(text).len(), 9, "x- extensions are no paths");
    }

    #[test]
    fn skips_trace_and_other_methods_with_a_note() {
        let found = operations(
            r#"{"openapi": "3.2.0", "paths": {"/debug": {"trace": {}, "options": {}, "query": {},
                "additionalOperations": {"LINK": {}}}}}"#,
            "`doc.json`",
        )
        .unwrap();
        assert_eq!(found.routes, [(Method::Options, "/debug".to_owned())]);
        assert_eq!(found.notes.len(), 3, "{:?}", found.notes);
        assert!(
            found.notes[0].starts_with("Skipped `TRACE /debug`: rspy.toml has no TRACE method")
        );
        assert!(found.notes[1].starts_with("Skipped `QUERY /debug`"));
        assert!(found.notes[2].starts_with("Skipped `LINK /debug`"));
    }

    #[test]
    fn reads_swagger_2_under_its_base_path() {
        let text =
            r#"{"swagger": "2.0", "basePath": "/api/", "paths": {"/users/{id}": {"get": {}}}}"#;
        assert_eq!(
            routes_of(text),
            [(Method::Get, "/api/users/{id}".to_owned())]
        );
        let root = r#"{"swagger": "2.0", "basePath": "/", "paths": {"/users": {"post": {}}}}"#;
        assert_eq!(routes_of(root), [(Method::Post, "/users".to_owned())]);
    }

    #[test]
    fn openapi_servers_are_not_prefixed_but_noted() {
        let found = operations(
            r#"{"openapi": "3.0.3", "servers": [{"url": "http://example.com/api/v1"}],
                "paths": {"/users": {"get": {}}}}"#,
            "`doc.json`",
        )
        .unwrap();
        assert_eq!(found.routes, [(Method::Get, "/users".to_owned())]);
        assert!(found.notes[0].contains("server URL `http://example.com/api/v1` has a path"));
        let root_server = operations(
            r#"{"openapi": "3.0.3", "servers": [{"url": "/"}], "paths": {"/users": {"get": {}}}}"#,
            "`doc.json`",
        )
        .unwrap();
        assert!(root_server.notes.is_empty(), "{:?}", root_server.notes);
    }

    #[test]
    fn follows_references_to_path_items_inside_the_document() {
        let text = r##"{"openapi": "3.1.0",
            "paths": {"/a": {"$ref": "#/components/pathItems/A"}, "/b": {"$ref": "#/components/pathItems/B"}},
            "components": {"pathItems": {"A": {"get": {}, "delete": {}}, "B": {"$ref": "#/components/pathItems/A"}}}}"##;
        assert_eq!(
            routes_of(text),
            [
                (Method::Get, "/a".to_owned()),
                (Method::Delete, "/a".to_owned()),
                (Method::Get, "/b".to_owned()),
                (Method::Delete, "/b".to_owned()),
            ]
        );
        let outside =
            refusal(r#"{"openapi": "3.1.0", "paths": {"/a": {"$ref": "other.json#/A"}}}"#);
        assert!(
            outside.contains("refers to `other.json#/A`, which is not in the document"),
            "{outside}"
        );
        let circular = refusal(
            r##"{"openapi": "3.1.0", "paths": {"/a": {"$ref": "#/x"}}, "x": {"$ref": "#/x"}}"##,
        );
        assert!(circular.contains("more than 8 `$ref`s"), "{circular}");
    }

    #[test]
    fn refuses_what_is_not_an_openapi_document_in_json() {
        for (text, needle) in [
            ("", "`doc.json` is not JSON (EOF while parsing"),
            ("{\"openapi\": ", "`doc.json` is not JSON"),
            (
                "openapi: 3.1.0\npaths: {}\n",
                "looks like YAML, and rspy reads OpenAPI documents in JSON only",
            ),
            (
                "[1, 2]",
                "not an OpenAPI document (it is not a JSON object)",
            ),
            (
                "{\"name\": \"my-package\"}",
                "not an OpenAPI document (it has no `openapi` version)",
            ),
            (
                "{\"openapi\": 3.1, \"paths\": {}}",
                "`openapi` version is not a string",
            ),
            (
                "{\"openapi\": \"2.0\", \"paths\": {}}",
                "is OpenAPI `2.0`, and rspy reads OpenAPI 3.x and Swagger 2.0",
            ),
            ("{\"swagger\": \"1.2\", \"apis\": []}", "is OpenAPI `1.2`"),
            (
                "{\"openapi\": \"3.1.0\", \"info\": {}}",
                "has no `paths`, so it declares no operation",
            ),
            ("{\"openapi\": \"3.1.0\", \"paths\": {}}", "has no `paths`"),
            (
                "{\"openapi\": \"3.1.0\", \"paths\": []}",
                "`paths` in `doc.json` is not an object",
            ),
            (
                "{\"openapi\": \"3.1.0\", \"paths\": {\"/a\": 1}}",
                "`/a` under `paths` in `doc.json` is not a path item",
            ),
        ] {
            let error = refusal(text);
            assert!(
                error.contains(needle),
                "{text:?}: `{needle}` not in {error}"
            );
            assert_eq!(error.lines().count(), 1, "{error}");
        }
        let yaml_by_name = operations("not: [json", "`api.yml`").unwrap_err();
        assert!(yaml_by_name.contains("looks like YAML"), "{yaml_by_name}");
    }

    fn manifest(routes: &str) -> Manifest {
        Manifest::parse(&format!(
            "schema = 1\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n[fallback]\nmode = \"proxy\"\n{routes}"
        ))
        .unwrap()
    }

    fn check(paths: &[&str], declared: &str) -> Result<()> {
        let operations = Operations {
            routes: paths
                .iter()
                .map(|p| (Method::Get, (*p).to_owned()))
                .collect(),
            notes: Vec::new(),
        };
        check_routable(&operations, &manifest(declared), "`doc.json`")
    }

    #[test]
    fn accepts_paths_axum_can_route_side_by_side() {
        let declared = "[[route]]\nmethod = \"GET\"\npath = \"/items/{id}\"\nmode = \"native\"\nhandler = \"items::get\"\n";
        check(
            &[
                "/items",
                "/items/{id}",
                "/items/{id}/tags",
                "/items/",
                "/users/{id}",
            ],
            declared,
        )
        .unwrap();
    }

    #[test]
    fn refuses_paths_axum_cannot_route_naming_them() {
        for (paths, needle) in [
            (
                vec!["/files/{name}.json"],
                "`GET /files/{name}.json` in `doc.json` cannot be a route: axum cannot route the path as written (`{name}.json`: a parameter takes a whole segment",
            ),
            (vec!["/a/{x}{y}"], "one parameter per segment"),
            (vec!["/a/{id}/b/{id}"], "parameter `id` appears twice"),
            (
                vec!["/users/{user-id}"],
                "parameter `user-id` is not a name",
            ),
            (vec!["/readyz"], "the api serves this path itself"),
            (vec!["items"], "a path starts with `/`"),
            (
                vec!["/items/{id}", "/items/{item_id}"],
                "`GET /items/{item_id}` in `doc.json` conflicts with `/items/{id}` (earlier in the same document): axum cannot route both",
            ),
        ] {
            let error = check(&paths, "").unwrap_err();
            assert_eq!(error.exit_code(), 2);
            let error = error.to_string();
            assert!(
                error.contains(needle),
                "{paths:?}: `{needle}` not in {error}"
            );
            assert!(
                error.contains("import a copy of the document without it"),
                "{error}"
            );
        }
        let declared =
            "[[route]]\nmethod = \"POST\"\npath = \"/items/{item_id}\"\nmode = \"proxy\"\n";
        let error = check(&["/items/{id}"], declared).unwrap_err().to_string();
        assert!(
            error.contains("conflicts with `/items/{item_id}` (declared in rspy.toml)"),
            "{error}"
        );
    }
}
