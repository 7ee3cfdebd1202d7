//! What `rspy init` learns from an existing Python project before adopting it: whether it is
//! one, how it is started, how its dependencies are installed, whether it has tests, and which
//! path the api's readiness probe should ask for.
//!
//! Everything here reads files only; nothing is imported or run.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, Result};

/// Files that make a folder a Python project even before any `.py` file is found.
const PROJECT_FILES: &[&str] = &[
    "pyproject.toml",
    "requirements.txt",
    "setup.py",
    "setup.cfg",
    "Pipfile",
];
/// Folders never searched for the app: tests, build output, caches, other ecosystems.
const SKIPPED_DIRS: &[&str] = &[
    "tests",
    "test",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "__pycache__",
    "target",
];
/// Where test dependencies are usually listed, beside `requirements.txt`.
const TEST_REQUIREMENTS: &[&str] = &[
    "requirements-dev.txt",
    "requirements-test.txt",
    "dev-requirements.txt",
    "test-requirements.txt",
];
/// pyproject.toml extras that usually hold test dependencies.
const TEST_EXTRAS: &[&str] = &["test", "tests", "dev"];
/// A module name's component.
static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));
/// A top-level assignment from a call: `name[: type] = callee(`.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][\w.\[\], ]*)?=\s*([A-Za-z_][\w.]*)\(",
    )
    .expect("valid regex")
});
/// How deep below the project root modules are searched.
const MAX_DEPTH: usize = 6;
/// Paths a health route is usually served under, most specific first.
const HEALTH_PATHS: &[&str] = &["/healthz", "/health", "/livez", "/ping", "/status"];

/// How the service is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// An ASGI app (FastAPI, Starlette, ...), served by uvicorn.
    Asgi,
    /// A WSGI app (Flask, Django, ...), served by gunicorn.
    Wsgi,
}

impl Interface {
    /// The server rspy starts it with, as a pip requirement and a module to run.
    pub fn server(self) -> &'static str {
        match self {
            Self::Asgi => "uvicorn",
            Self::Wsgi => "gunicorn",
        }
    }
}

/// An app object found in the sources: `module:attribute` and how it was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub interface: Interface,
    /// Dotted module path, relative to `app_dir`.
    pub module: String,
    pub attribute: String,
    /// The file it is assigned in, relative to the project root.
    pub file: String,
    /// What it is, for people: `FastAPI()`, `create_app()` (Flask), ...
    pub made_by: String,
    /// `src` for a src layout (the module is importable from there), else empty.
    pub app_dir: String,
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.interface {
            Interface::Asgi => "ASGI",
            Interface::Wsgi => "WSGI",
        };
        write!(
            f,
            "{kind} app `{}:{}` ({} in {})",
            self.module, self.attribute, self.made_by, self.file
        )
    }
}

/// The dependency list found at the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependencies {
    /// `requirements.txt`: installed with `pip install -r`.
    Requirements(String),
    /// `pyproject.toml` or `setup.py`: the project itself is installed.
    Project(String),
    /// None: the standard library is enough.
    None,
}

impl Dependencies {
    /// The requirements the list declares, lowercased, one per line: what `pip install`
    /// would install, not the file's comments or descriptions.
    pub fn names(&self) -> String {
        match self {
            Self::Requirements(text) => text
                .lines()
                .map(|line| line.split('#').next().unwrap_or("").trim().to_lowercase())
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
            Self::Project(text) => project_requirements(text).join("\n").to_lowercase(),
            Self::None => String::new(),
        }
    }
}

/// `[project] dependencies` and Poetry's `[tool.poetry.dependencies]` of a pyproject.toml;
/// for a `setup.py` (not TOML), its whole text.
fn project_requirements(text: &str) -> Vec<String> {
    let Ok(document) = text.parse::<toml::Table>() else {
        return vec![text.to_owned()];
    };
    let mut names = Vec::new();
    if let Some(list) = document
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
    {
        names.extend(list.iter().filter_map(|d| d.as_str()).map(str::to_owned));
    }
    if let Some(table) = document
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_table())
    {
        names.extend(table.keys().cloned());
    }
    names
}

/// Everything `rspy init` needs to know about the project.
#[derive(Debug, Clone)]
pub struct Findings {
    pub dependencies: Dependencies,
    /// The app found, if any (a `--python-cmd` makes it unnecessary).
    pub apps: Vec<App>,
    pub has_tests: bool,
    /// What installs the tests' dependencies: a requirements file of the project's (`-r
    /// python/requirements-dev.txt`) or an extra (`./python[dev]`), and its text.
    pub test_dependencies: Option<(String, String)>,
    /// The readiness probe's path: a health route found in the sources, else `/`.
    pub health_path: String,
    /// Whether `health_path` was found in the sources (rather than the `/` fallback).
    pub health_route_found: bool,
}

/// Reads the project at `root`; `moved` are the root entries that go into `python/` (the
/// others, like `.git` or a virtual environment, are not part of the service).
pub fn inspect(root: &Path, moved: &[String]) -> Result<Findings> {
    let mut python_files = Vec::new();
    for entry in moved {
        collect_python_files(root, Path::new(entry), 0, &mut python_files)?;
    }
    let has_project_file = PROJECT_FILES.iter().any(|f| moved.iter().any(|m| m == f));
    if !has_project_file && python_files.is_empty() {
        return Err(Error::Refused(format!(
            "`{}` is not a Python project: it has no {} and no `.py` file; \
             run `rspy init` in the folder of the Python service (or pass that folder), \
             or use `rspy new` to start a service from scratch",
            root.display(),
            PROJECT_FILES
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let read = |name: &str| -> Result<Option<String>> {
        if !moved.iter().any(|m| m == name) {
            return Ok(None);
        }
        let path = root.join(name);
        fs::read_to_string(&path)
            .map(Some)
            .map_err(Error::io("reading", path))
    };
    let dependencies = if let Some(text) = read("requirements.txt")? {
        Dependencies::Requirements(text)
    } else if let Some(text) = read("pyproject.toml")? {
        Dependencies::Project(text)
    } else if let Some(text) = read("setup.py")? {
        Dependencies::Project(text)
    } else {
        Dependencies::None
    };
    let dependency_text = dependencies.names();

    let mut apps = Vec::new();
    let mut sources = String::new();
    let has_src_package =
        moved.iter().any(|m| m == "src") && !root.join("src/__init__.py").exists();
    for relative in &python_files {
        let path = root.join(relative);
        let Ok(text) = fs::read_to_string(&path) else {
            // Not UTF-8: not a module we could name anyway.
            continue;
        };
        if let Some((module, app_dir)) = module_name(relative, has_src_package) {
            let file = slash_path(relative);
            apps.extend(find_apps(&text, &dependency_text).into_iter().map(
                |(interface, attribute, made_by)| App {
                    interface,
                    module: module.clone(),
                    attribute,
                    file: file.clone(),
                    made_by,
                    app_dir: app_dir.clone(),
                },
            ));
        }
        sources.push_str(&text);
        sources.push('\n');
    }
    // Django has both; gunicorn serves the WSGI one.
    if apps
        .iter()
        .any(|a| a.made_by.starts_with("get_wsgi_application"))
    {
        apps.retain(|a| !a.made_by.starts_with("get_asgi_application"));
    }
    let found_health = HEALTH_PATHS.iter().find(|path| {
        sources.contains(&format!("\"{path}\"")) || sources.contains(&format!("'{path}'"))
    });
    let has_tests = ["tests", "test"]
        .iter()
        .any(|dir| moved.iter().any(|m| m == dir) && root.join(dir).is_dir())
        || python_files.iter().any(|file| {
            file.components().count() == 1
                && file
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_"))
        });
    let mut test_dependencies = None;
    for file in TEST_REQUIREMENTS {
        if let Some(text) = read(file)? {
            test_dependencies = Some((format!("-r python/{file}"), text));
            break;
        }
    }
    if test_dependencies.is_none()
        && let Dependencies::Project(text) = &dependencies
        && let Ok(document) = text.parse::<toml::Table>()
        && let Some(extras) = document
            .get("project")
            .and_then(|p| p.get("optional-dependencies"))
            .and_then(|o| o.as_table())
        && let Some((extra, list)) = TEST_EXTRAS
            .iter()
            .find_map(|name| extras.get(*name).map(|list| (*name, list)))
    {
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        test_dependencies = Some((format!("./python[{extra}]"), names.join("\n")));
    }
    Ok(Findings {
        dependencies,
        apps,
        has_tests,
        test_dependencies,
        health_path: found_health.map_or("/", |p| p).to_owned(),
        health_route_found: found_health.is_some(),
    })
}

/// Whether `dir` is a virtual environment (which belongs to one machine and one path: it
/// stays where it is).
pub fn is_virtualenv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

/// Adds every `.py` file at or below `relative` (relative to `root`) to `out`.
fn collect_python_files(
    root: &Path,
    relative: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = root.join(relative);
    let Ok(meta) = fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if meta.is_file() {
        if relative.extension().is_some_and(|e| e == "py") {
            out.push(relative.to_path_buf());
        }
        return Ok(());
    }
    if !meta.is_dir() || depth >= MAX_DEPTH || is_virtualenv(&path) {
        return Ok(());
    }
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with('.') || SKIPPED_DIRS.contains(&name.as_str()) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(&path)
        .map_err(Error::io("reading", &path))?
        .filter_map(|entry| entry.ok())
        .map(|entry| relative.join(entry.file_name()))
        .collect();
    entries.sort();
    for entry in entries {
        collect_python_files(root, &entry, depth + 1, out)?;
    }
    Ok(())
}

/// The dotted module name of a file, and the folder it is imported from (`src` in a src
/// layout); `None` when a component is not an identifier (so it cannot be imported).
fn module_name(relative: &Path, src_layout: bool) -> Option<(String, String)> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut app_dir = String::new();
    if src_layout && parts.first().is_some_and(|p| p == "src") && parts.len() > 1 {
        parts.remove(0);
        app_dir = "src".to_owned();
    }
    if parts.last().is_some_and(|p| p == "__init__") {
        parts.pop();
    }
    (!parts.is_empty() && parts.iter().all(|p| IDENTIFIER.is_match(p)))
        .then(|| (parts.join("."), app_dir))
}

/// Top-level assignments of an app object in one module's source: `(interface, attribute,
/// what made it)`. `dependencies` (lowercased) tells which framework a factory belongs to.
fn find_apps(source: &str, dependencies: &str) -> Vec<(Interface, String, String)> {
    let mut found = Vec::new();
    for captures in ASSIGNMENT.captures_iter(source) {
        let attribute = captures[1].to_owned();
        let callee = &captures[2];
        let last = callee.rsplit('.').next().unwrap_or(callee);
        let interface = match last {
            "FastAPI" | "Starlette" | "Quart" | "Litestar" | "get_asgi_application" => {
                Interface::Asgi
            }
            "Flask" | "Bottle" | "get_wsgi_application" => Interface::Wsgi,
            "create_app" | "make_app" | "build_app" => match factory_framework(dependencies) {
                Some(interface) => interface,
                None => continue,
            },
            _ => continue,
        };
        let made_by = format!("{last}()");
        found.push((interface, attribute, made_by));
    }
    found
}

/// Which kind of app a factory like `create_app()` makes, from the dependency list.
fn factory_framework(dependencies: &str) -> Option<Interface> {
    let asgi = ["fastapi", "starlette", "quart", "litestar"]
        .iter()
        .any(|name| mentions(dependencies, name));
    let wsgi = ["flask", "django", "bottle"]
        .iter()
        .any(|name| mentions(dependencies, name));
    match (asgi, wsgi) {
        (true, false) => Some(Interface::Asgi),
        (false, true) => Some(Interface::Wsgi),
        _ => None,
    }
}

/// Whether a (lowercased) dependency list names `package` as a requirement.
pub fn mentions(dependencies: &str, package: &str) -> bool {
    let pattern = format!(
        r#"(?m)(^|["'\s,\[])\s*{}\s*($|[\[<>=!~;,"'\s])"#,
        regex::escape(package)
    );
    Regex::new(&pattern)
        .expect("valid regex")
        .is_match(dependencies)
}

/// `path` with `/` between its components, as file lists show it.
pub(crate) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_asgi_and_wsgi_apps_at_the_top_level_only() {
        let source = "from fastapi import FastAPI\napp = FastAPI(title=\"x\")\n\ndef f():\n    inner = FastAPI()\n";
        assert_eq!(
            find_apps(source, ""),
            [(Interface::Asgi, "app".to_owned(), "FastAPI()".to_owned())]
        );
        let flask = "import flask\napplication: flask.Flask = flask.Flask(__name__)\n";
        assert_eq!(find_apps(flask, "")[0].1, "application");
        assert_eq!(find_apps(flask, "")[0].0, Interface::Wsgi);
        assert!(find_apps("router = APIRouter()\nx = 1\n", "").is_empty());
    }

    #[test]
    fn a_factory_takes_its_kind_from_the_dependencies() {
        let source = "from legacy import create_app\napp = create_app()\n";
        assert_eq!(find_apps(source, "flask>=3\n")[0].0, Interface::Wsgi);
        assert_eq!(find_apps(source, "fastapi==0.110\n")[0].0, Interface::Asgi);
        assert!(find_apps(source, "requests\n").is_empty());
        assert!(find_apps(source, "flask\nfastapi\n").is_empty());
    }

    #[test]
    fn only_declared_dependencies_count() {
        let pyproject = Dependencies::Project(
            "[project]\ndescription = \"served by gunicorn\"\ndependencies = [\"Flask>=3\"]\n"
                .to_owned(),
        );
        assert_eq!(pyproject.names(), "flask>=3");
        let poetry = Dependencies::Project(
            "[tool.poetry.dependencies]\npython = \"^3.11\"\nfastapi = \"*\"\n".to_owned(),
        );
        assert!(mentions(&poetry.names(), "fastapi"));
        let requirements =
            Dependencies::Requirements("# uvicorn later\nflask==3.0  # web\n".to_owned());
        assert_eq!(requirements.names(), "flask==3.0");
    }

    #[test]
    fn dependency_names_match_whole_requirements_only() {
        assert!(mentions("fastapi>=0.100\nuvicorn[standard]\n", "uvicorn"));
        assert!(mentions(
            "dependencies = [\"flask>=3\", \"gunicorn\"]",
            "gunicorn"
        ));
        assert!(!mentions("flask-cors\n", "flask"));
        assert!(!mentions("uvicorn-worker\n", "uvicorn"));
    }

    #[test]
    fn module_names_follow_the_layout() {
        let name = |p: &str, src| module_name(Path::new(p), src);
        assert_eq!(
            name("app/main.py", false),
            Some(("app.main".into(), String::new()))
        );
        assert_eq!(
            name("pkg/__init__.py", false),
            Some(("pkg".into(), String::new()))
        );
        assert_eq!(
            name("src/pkg/web.py", true),
            Some(("pkg.web".into(), "src".into()))
        );
        assert_eq!(name("my-scripts/run.py", false), None);
    }
}
