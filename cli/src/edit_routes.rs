//! `rspy add-route` and `rspy remove-route`: each builds a [`Plan`] of its edits to
//! `rspy.toml` (through `toml_edit`, so comments and order survive), the handler module and
//! `routes.rs`; the caller shows or applies it.

use toml_edit::{DocumentMut, Item, Table};

use crate::error::{Error, Result};
use crate::manifest::{FILE_NAME, FallbackMode, Manifest, Method, Mode, Project, Route};
use crate::plan::Plan;
use crate::route::{self, Segment};

/// Where native handler modules live, relative to the project root.
const ROUTES_DIR: &str = "crates/api/src/routes";
/// The file that declares them.
const ROUTES_RS: &str = "crates/api/src/routes.rs";

/// What `rspy add-route` was asked for.
#[derive(Debug)]
pub struct AddRoute {
    pub method: String,
    pub path: String,
    pub mode: Mode,
    /// `--name`: `function` or `module::function` (native only).
    pub name: Option<String>,
    /// `--timeout` in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `--upstream-path`: the path Python serves the route under.
    pub upstream_path: Option<String>,
    /// `--force`: change an existing route's mode or settings, write into a module rspy did
    /// not make.
    pub force: bool,
}

/// A planned command: its plan and what to tell the user.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// What changes, as the user reads it: `` `GET /users/{id}` `` or `the fallback`.
    pub route: String,
    /// How the route ends up, e.g. `native, handler users::get_users_by_id`.
    pub description: String,
    /// Extra lines for the user (files kept, what to do next).
    pub notes: Vec<String>,
    /// Whether an existing declaration is changed (rather than added or removed).
    pub changes_existing: bool,
}

/// Plans `rspy add-route`.
pub fn add(project: &Project, request: &AddRoute) -> Result<Planned> {
    let mut plan = Plan::new(&project.root);
    let mut draft = Draft::new(&plan, &project.manifest)?;
    let added = add_to(&mut plan, &mut draft, request)?;
    draft.finish(&mut plan)?;
    Ok(Planned {
        plan,
        route: added.route,
        description: added.description,
        notes: added.notes,
        changes_existing: added.changes_existing,
    })
}

/// What [`add_to`] planned for one route.
#[derive(Debug)]
pub struct Added {
    /// The route as the user reads it: `` `GET /users/{id}` ``.
    pub route: String,
    /// How the route ends up, e.g. `native, handler users::get_users_by_id`.
    pub description: String,
    /// Extra lines for the user (files kept, what to do next).
    pub notes: Vec<String>,
    /// Whether an existing declaration is changed (or kept, when it already is as asked).
    pub changes_existing: bool,
}

/// The manifest while routes are added to it, one [`add_to`] after another, before
/// [`Draft::finish`] puts it into the plan: each route is checked against the ones before.
#[derive(Debug)]
pub struct Draft {
    /// The text being edited, comments and order kept.
    document: DocumentMut,
    /// What the document declares.
    manifest: Manifest,
    /// Whether a `[[route]]` was appended.
    appended: bool,
}

impl Draft {
    /// The manifest as `plan` has it; `manifest` is what its text declares (the project's,
    /// read when the project was found).
    pub fn new(plan: &Plan, manifest: &Manifest) -> Result<Self> {
        let text = plan.read(FILE_NAME)?.unwrap_or_default();
        Ok(Self {
            document: parse_document(&text)?,
            manifest: manifest.clone(),
            appended: false,
        })
    }

    /// Puts the edited manifest into `plan`, once it is checked to read as one, and returns
    /// what it now declares.
    pub fn finish(self, plan: &mut Plan) -> Result<Manifest> {
        let mut edited = self.document.to_string();
        if self.appended && !edited.ends_with('\n') {
            edited.push('\n');
        }
        let declared = check_still_valid(&edited)?;
        plan.set(FILE_NAME, Some(edited))?;
        Ok(declared)
    }

    fn add(&mut self, route: &Route) -> Result<()> {
        let mut table = Table::new();
        set_route_keys(&mut table, route);
        // A blank line before each new [[route]], like the ones already there.
        table.decor_mut().set_prefix("\n");
        let routes = self
            .document
            .entry("route")
            .or_insert(Item::ArrayOfTables(toml_edit::ArrayOfTables::new()))
            .as_array_of_tables_mut()
            .ok_or_else(|| {
                Error::Refused(format!(
                    "`route` in {FILE_NAME} is not a list of [[route]] tables"
                ))
            })?;
        routes.push(table);
        self.manifest.routes.push(route.clone());
        self.appended = true;
        Ok(())
    }

    fn replace(&mut self, index: usize, route: &Route) -> Result<()> {
        let table = self
            .document
            .get_mut("route")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|routes| routes.get_mut(index))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "[[route]] #{} is missing from {FILE_NAME}",
                    index + 1
                ))
            })?;
        set_route_keys(table, route);
        self.manifest.routes[index] = route.clone();
        Ok(())
    }
}

/// Adds the edits of one `add-route` to `plan` and `draft`, checked against the routes
/// declared so far, so several routes can make up one plan. When the route is already
/// declared as asked, both are left as they were.
pub fn add_to(plan: &mut Plan, draft: &mut Draft, request: &AddRoute) -> Result<Added> {
    let method = route::parse_method(&request.method)?;
    let segments = route::parse_path(&request.path)?;
    let path = request.path.as_str();
    let shown = format!("`{} {path}`", route::method_name(method));
    if request.mode == Mode::Proxy && request.name.is_some() {
        return Err(Error::Refused(
            "`--name` names a Rust handler, and a proxied route has none; drop `--name` or use `--native`".to_owned(),
        ));
    }
    if let Some(target) = &request.upstream_path {
        route::parse_upstream_path(target, &segments)?;
    }
    let manifest = &draft.manifest;
    let existing = manifest
        .routes
        .iter()
        .position(|r| r.method == method && r.path == path);
    let current = existing.map(|index| &manifest.routes[index]);
    if let Some(other) = manifest.routes.iter().find(|r| {
        r.path == path && r.method != method && (r.method == Method::Any || method == Method::Any)
    }) {
        return Err(Error::Refused(format!(
            "{shown} overlaps `{} {path}`, already declared (ANY covers every method); remove that one first",
            route::method_name(other.method)
        )));
    }
    check_conflicts(manifest, path, &shown)?;

    let mut wanted = Route {
        method,
        path: path.to_owned(),
        mode: request.mode,
        handler: None,
        timeout_ms: request.timeout_ms,
        upstream_path: request.upstream_path.clone(),
    };
    let untouched = plan.clone();
    let mut notes = Vec::new();
    // `--native` without forwarding settings keeps the route's: a new handler passes requests
    // through to Python with them, so deploying it changes nothing.
    if let Some(current) = current
        && wanted.mode == Mode::Native
        && (wanted.timeout_ms, &wanted.upstream_path) == (None, &None)
        && (current.timeout_ms, &current.upstream_path) != (None, &None)
    {
        wanted.timeout_ms = current.timeout_ms;
        wanted.upstream_path.clone_from(&current.upstream_path);
        if current.mode == Mode::Proxy {
            let kept = forwarding(current);
            notes.push(format!(
                "Kept the route's {}: the pass-through handler forwards with {} until you replace it.",
                kept.join(" and "),
                if kept.len() == 1 { "it" } else { "them" }
            ));
        }
    }
    if request.mode == Mode::Native {
        let (module, function) = handler_names(request, current, method, &segments)?;
        wanted.handler = Some(format!("{module}::{function}"));
        plan_handler(
            plan,
            &module,
            &function,
            method,
            path,
            &segments,
            request.force,
        )?;
    }
    if let Some(current) = current {
        if same_route(current, &wanted) {
            *plan = untouched;
            return Ok(Added {
                route: shown,
                description: describe(current),
                notes,
                changes_existing: true,
            });
        }
        if !request.force {
            return Err(Error::Refused(format!(
                "{shown} is already declared ({}); pass `--force` to change it to {}",
                describe(current),
                describe(&wanted)
            )));
        }
        if let (Mode::Proxy, Some(handler)) = (wanted.mode, &current.handler) {
            notes.push(format!(
                "The handler `{handler}` stays in {ROUTES_DIR}/ (yours); nothing routes to it now."
            ));
        }
    }
    let description = describe(&wanted);
    match existing {
        Some(index) => draft.replace(index, &wanted)?,
        None => draft.add(&wanted)?,
    }
    Ok(Added {
        route: shown,
        description,
        notes,
        changes_existing: existing.is_some(),
    })
}

/// Plans `rspy remove-route`.
pub fn remove(project: &Project, method: &str, path: &str, force: bool) -> Result<Planned> {
    let method = route::parse_method(method)?;
    let segments = route::parse_path(path)?;
    let shown = format!("`{} {path}`", route::method_name(method));
    let manifest = &project.manifest;
    let mut plan = Plan::new(&project.root);
    let Some(index) = manifest
        .routes
        .iter()
        .position(|r| r.method == method && r.path == path)
    else {
        return Ok(Planned {
            plan,
            route: shown,
            description: "not declared".to_owned(),
            notes: Vec::new(),
            changes_existing: false,
        });
    };
    let removed = &manifest.routes[index];
    let mut notes = Vec::new();
    if let Some(handler) = &removed.handler {
        let (module, function) = handler.rsplit_once("::").unwrap_or(("", handler));
        let module_path = format!("{ROUTES_DIR}/{module}.rs");
        let shared = manifest.routes.iter().enumerate().any(|(i, r)| {
            i != index
                && r.handler
                    .as_deref()
                    .and_then(|h| h.rsplit_once("::"))
                    .is_some_and(|(m, _)| m == module)
        });
        let pristine = format!(
            "{}{}",
            route::module_header(&module_prefix(&segments)),
            route::handler_code(method, path, &segments, function)
        );
        match plan.read(&module_path)? {
            Some(_) if shared => notes.push(format!(
                "Kept {module_path}: other routes use its handlers. Delete `{function}` there yourself if you no longer need it."
            )),
            Some(text) if text == pristine || force => {
                plan.set(&module_path, None)?;
                let routes_rs = plan.read(ROUTES_RS)?.unwrap_or_default();
                plan.set(ROUTES_RS, Some(route::without_module_declared(&routes_rs, module)))?;
            }
            Some(_) => notes.push(format!(
                "Kept {module_path}: it holds more than rspy made for this route (your edits, or other handlers). \
                 Delete `{function}` yourself, or pass `--force` to delete the file."
            )),
            None => {}
        }
    }
    let text = plan.read(FILE_NAME)?.unwrap_or_default();
    let edited = with_route_removed(&text, index)?;
    check_still_valid(&edited)?;
    plan.set(FILE_NAME, Some(edited))?;
    Ok(Planned {
        plan,
        route: shown,
        description: describe(removed),
        notes,
        changes_existing: false,
    })
}

/// Plans `rspy set-fallback`.
pub fn set_fallback(project: &Project, mode: FallbackMode) -> Result<Planned> {
    let name = if mode == FallbackMode::Proxy {
        "proxy"
    } else {
        "none"
    };
    let description = if mode == FallbackMode::Proxy {
        "`proxy`: requests no route matches go to Python".to_owned()
    } else {
        "`none`: requests no route matches get 404 from Rust".to_owned()
    };
    let mut plan = Plan::new(&project.root);
    let text = plan.read(FILE_NAME)?.unwrap_or_default();
    let mut document = parse_document(&text)?;
    let fallback = document
        .get_mut("fallback")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| {
            Error::Refused(format!(
                "{FILE_NAME} has no [fallback] table; add one with `mode = \"proxy\"`"
            ))
        })?;
    if project.manifest.fallback.mode != mode {
        set_value(fallback, "mode", name);
    }
    let edited = document.to_string();
    check_still_valid(&edited)?;
    plan.set(FILE_NAME, Some(edited))?;
    Ok(Planned {
        plan,
        route: "the fallback".to_owned(),
        description,
        notes: Vec::new(),
        changes_existing: true,
    })
}

/// The module and function of a native route: `--name`, else the route's current handler,
/// else named after the path.
fn handler_names(
    request: &AddRoute,
    current: Option<&Route>,
    method: Method,
    segments: &[Segment],
) -> Result<(String, String)> {
    if let Some(name) = &request.name {
        let (module, function) = route::parse_handler_name(name)?;
        return Ok((
            module.unwrap_or_else(|| route::default_module(segments)),
            function,
        ));
    }
    if let Some((module, function)) = current
        .and_then(|r| r.handler.as_deref())
        .and_then(|h| h.rsplit_once("::"))
    {
        return Ok((module.to_owned(), function.to_owned()));
    }
    Ok((
        route::default_module(segments),
        route::default_handler(method, segments),
    ))
}

/// Adds the handler's module (or appends to it) and declares it in `routes.rs`.
fn plan_handler(
    plan: &mut Plan,
    module: &str,
    function: &str,
    method: Method,
    path: &str,
    segments: &[Segment],
    force: bool,
) -> Result<()> {
    let module_path = format!("{ROUTES_DIR}/{module}.rs");
    let code = route::handler_code(method, path, segments, function);
    let defines = |text: &str| text.contains(&format!("pub async fn {function}("));
    let new_text = match plan.read(&module_path)? {
        None => format!("{}{code}", route::module_header(&module_prefix(segments))),
        // Written already (by rspy or by hand): the route only needs declaring.
        Some(text) if defines(&text) => text,
        Some(text) if route::is_rspy_module(&text) || force => format!("{text}{code}"),
        Some(_) => {
            return Err(Error::Refused(format!(
                "{module_path} exists and was not made by `rspy add-route`, so rspy does not write into it; \
                 add `pub async fn {function}(...)` there yourself, or pick another module with `--name <module>::<function>`, \
                 or pass `--force` to append the handler"
            )));
        }
    };
    plan.set(&module_path, Some(new_text))?;
    let routes_rs = plan.read(ROUTES_RS)?.ok_or_else(|| {
        Error::Refused(format!(
            "{ROUTES_RS} is missing; restore it (it declares the handler modules)"
        ))
    })?;
    plan.set(
        ROUTES_RS,
        Some(route::with_module_declared(&routes_rs, module)),
    )
}

/// The path prefix a module is named after: `/users`, or `/` for the root module.
fn module_prefix(segments: &[Segment]) -> String {
    match segments.first() {
        Some(Segment::Static(text)) if !text.is_empty() => format!("/{text}"),
        _ => "/".to_owned(),
    }
}

/// Refuses a path that axum would refuse next to the declared ones (matchit 0.8.4).
fn check_conflicts(manifest: &Manifest, path: &str, shown: &str) -> Result<()> {
    let mut router = route::router_with_reserved_paths();
    for declared in &manifest.routes {
        if declared.path != path {
            // Conflicts among declared routes are the build's to report.
            let _ = router.insert(declared.path.as_str(), ());
        }
    }
    router.insert(path, ()).map_err(|conflict| {
        Error::Refused(format!(
            "{shown} conflicts with a declared route (axum would refuse to start): {conflict}; use the same parameter names or another path"
        ))
    })
}

fn same_route(a: &Route, b: &Route) -> bool {
    a.method == b.method
        && a.path == b.path
        && a.mode == b.mode
        && a.handler == b.handler
        && a.timeout_ms == b.timeout_ms
        && a.upstream_path == b.upstream_path
}

/// A route's mode and settings, as `native, handler users::get_user` or
/// `proxy, timeout 500 ms, to Python at /users/{id}`.
pub fn describe(route: &Route) -> String {
    let mut parts = vec![match route.mode {
        Mode::Native => "native".to_owned(),
        Mode::Proxy => "proxy".to_owned(),
    }];
    if let Some(handler) = &route.handler {
        parts.push(format!("handler `{handler}`"));
    }
    parts.extend(forwarding(route));
    parts.join(", ")
}

/// How a route forwards to Python, as `timeout 500 ms` and `to Python at /users/{id}`.
fn forwarding(route: &Route) -> Vec<String> {
    let timeout = route.timeout_ms.map(|ms| format!("timeout {ms} ms"));
    let upstream = route
        .upstream_path
        .as_ref()
        .map(|target| format!("to Python at `{target}`"));
    timeout.into_iter().chain(upstream).collect()
}

fn parse_document(text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>()
        .map_err(|e| Error::Refused(format!("{FILE_NAME} does not parse: {e}")))
}

fn set_route_keys(table: &mut Table, route: &Route) {
    set_value(table, "method", route::method_name(route.method));
    set_value(table, "path", route.path.as_str());
    set_value(
        table,
        "mode",
        if route.mode == Mode::Native {
            "native"
        } else {
            "proxy"
        },
    );
    match &route.handler {
        Some(handler) => set_value(table, "handler", handler.as_str()),
        None => drop(table.remove("handler")),
    }
    match route.timeout_ms {
        Some(ms) => set_value(table, "timeout_ms", i64::try_from(ms).unwrap_or(i64::MAX)),
        None => drop(table.remove("timeout_ms")),
    }
    match &route.upstream_path {
        Some(target) => set_value(table, "upstream_path", target.as_str()),
        None => drop(table.remove("upstream_path")),
    }
}

/// Sets `key` to `new`, keeping the comments and spacing around an existing key and value
/// (replacing the entry would drop them).
fn set_value(table: &mut Table, key: &str, new: impl Into<toml_edit::Value>) {
    let mut new = new.into();
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

fn with_route_removed(text: &str, index: usize) -> Result<String> {
    let mut document = parse_document(text)?;
    let routes = document
        .get_mut("route")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| Error::Refused(format!("{FILE_NAME} has no [[route]] #{}", index + 1)))?;
    routes.remove(index);
    Ok(document.to_string())
}

/// The edited manifest must still read as one.
fn check_still_valid(text: &str) -> Result<Manifest> {
    Manifest::parse(text).map_err(|e| {
        Error::Refused(format!(
            "the edited {FILE_NAME} would not be valid ({e}); this is a bug in rspy"
        ))
    })
}
