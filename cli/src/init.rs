//! `rspy init`: adopt an existing Python service. Its files move into `python/` (contents
//! untouched), and the Rust workspace, manifest, supervisord config, Dockerfile and CI of the
//! template are added around it, with the template rendered for this service: no sample app,
//! no routes (every request goes to Python), and the start and install commands rspy found.
//!
//! Nothing is lost or silently overwritten: only `.git`, `.github` and virtual environments
//! stay at the root, and a file of the user's where rspy adds one of its own (today only
//! `.github/workflows/ci.yml`) is renamed to `<stem>.pre-rspy.<ext>` beside it. `--dry-run`
//! lists every move and new file and writes nothing; a failure or an interrupt moves
//! everything back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::cli::{InitArgs, Transport};
use crate::detect::{self, Dependencies, Findings, Interface};
use crate::error::{Error, Result};
use crate::keep_alive::{self, DEFAULT_IDLE_TIMEOUT_MS, KeepAlive};
use crate::new::{check_python_port, create_staging};
use crate::undo::{Transaction, check_interrupted};
use crate::{name, render, template};

/// Where the service's files go.
const SERVICE_DIR: &str = "python";
/// Root entries that only work at the root of a repository: they stay there.
const KEPT_AT_ROOT: &[&str] = &[".git", ".github"];
/// The Python port unless `--python-port` says otherwise.
const DEFAULT_PYTHON_PORT: u16 = 8000;
/// With the unix transport, where the service listens, from python/ (its working directory):
/// run/python.sock at the project root, the template's `[upstream] url`.
const SOCKET: &str = "../run/python.sock";

/// What `rspy init` does to a project, worked out before anything is written.
struct Adoption {
    root: PathBuf,
    name: String,
    findings: Findings,
    /// How the service starts, for people (the supervisord line escapes `%`).
    command: String,
    /// Where the command came from.
    command_source: String,
    /// How long the service keeps an idle connection, when its server is known.
    keep_alive: Option<KeepAlive>,
    /// `pip install` arguments, from the project root (may be empty).
    install: String,
    /// `pip install` arguments for the tests (empty: no tests found).
    tests: String,
    /// Root entries that move into `python/`.
    moved: Vec<String>,
    /// Root entries that stay, with why.
    kept: Kept,
    /// Files of the user's renamed out of the way: (from, to), relative to the root.
    renamed: Vec<(String, String)>,
    /// Every file the template adds, relative to the root.
    created: Vec<String>,
    /// Whether `.github/workflows` holds workflows of the user's that still expect the old
    /// layout.
    has_own_workflows: bool,
}

/// Runs `rspy init`; returns what to print.
pub fn run(args: &InitArgs, exe: &Path) -> Result<String> {
    let given = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = std::path::absolute(&given).map_err(Error::io("resolving", &given))?;
    match fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(Error::NotADirectory { path: given }),
        Err(_) => {
            return Err(Error::Refused(format!(
                "`{}` does not exist; pass the folder of the Python service to adopt",
                given.display()
            )));
        }
    }
    if root.join("rspy.toml").exists() {
        return Ok(format!(
            "Unchanged: `{}` is already an rspy workspace (it has rspy.toml). \
             Declare routes with `rspy import-routes` or `rspy add-route`.\n",
            given.display()
        ));
    }

    let (moved, kept) = sort_entries(&root)?;
    let findings = detect::inspect(&root, &moved)?;
    let name = project_name(args, &root)?;
    let port = python_port(args)?;
    let transport = args.transport.unwrap_or(Transport::Tcp);
    let (command, command_source, server) = start_command(args, &findings, transport, port)?;
    let install = install_arguments(&findings.dependencies, server);
    // The command runs in `python/`, which gets the project's files as they are now; a path
    // outside them (absolute, or up with `..`) is not one rspy can read for it.
    let keep_alive = keep_alive::of_command(&command, |path| {
        let path = Path::new(path);
        let inside = path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        inside.then(|| fs::read_to_string(root.join(path)).ok())?
    });

    let mut values = BTreeMap::new();
    values.insert("transport".to_owned(), transport.as_str().to_owned());
    values.insert("python_port".to_owned(), port.to_string());
    values.insert("python_service".to_owned(), "existing".to_owned());
    // supervisord expands `%(name)s` in its values: a literal `%` is written `%%`.
    values.insert("python_command".to_owned(), command.replace('%', "%%"));
    values.insert("python_install".to_owned(), install.clone());
    let tests = test_arguments(&findings);
    values.insert("python_tests".to_owned(), tests.clone());
    values.insert("health_path".to_owned(), findings.health_path.clone());
    // rspy.toml names an idle timeout only when the api's default does not fit.
    let idle_timeout = keep_alive
        .as_ref()
        .map(KeepAlive::idle_timeout_ms)
        .filter(|&ms| ms != DEFAULT_IDLE_TIMEOUT_MS);
    values.insert(
        "idle_timeout_ms".to_owned(),
        idle_timeout.map(|ms| ms.to_string()).unwrap_or_default(),
    );
    let placeholders = template::placeholders();
    for (key, value) in &values {
        if let Some(placeholder) = placeholders.get(key) {
            placeholder.check(key, value)?;
        }
    }

    // The template is rendered into a hidden folder inside the project (same file system, so
    // its files are renamed into place), which is removed again in every case.
    let transaction = Transaction::begin();
    let staging = create_staging(&transaction, &root, ".rspy-init-")?;
    render::render(exe, &staging, &name, &values)?;
    let rendered = staging.join(&name);

    let mut created = Vec::new();
    list_files(&rendered, Path::new(""), &mut created)?;
    let moved_set: BTreeSet<&str> = moved.iter().map(String::as_str).collect();
    let mut renamed = Vec::new();
    for file in &created {
        let top = file.split('/').next().unwrap_or(file);
        if moved_set.contains(top) {
            continue;
        }
        let existing = root.join(file);
        match fs::symlink_metadata(&existing) {
            Err(_) => {}
            Ok(meta) if meta.is_file() => {
                let aside = set_aside_name(file);
                if fs::symlink_metadata(root.join(&aside)).is_ok() {
                    return Err(Error::Refused(format!(
                        "rspy adds `{file}`, which you have, and `{aside}`, where it would keep \
                         yours, is taken too; move one of them and run `rspy init` again"
                    )));
                }
                renamed.push((file.clone(), aside));
            }
            Ok(_) => {
                return Err(Error::Refused(format!(
                    "rspy adds the file `{file}`, but `{file}` is a folder of yours; \
                     rename it and run `rspy init` again"
                )));
            }
        }
    }
    let has_own_workflows = workflows_of_the_user(&root, &renamed);
    let adoption = Adoption {
        root: root.clone(),
        name,
        findings,
        command,
        command_source,
        keep_alive,
        install,
        tests,
        moved,
        kept,
        renamed,
        created,
        has_own_workflows,
    };

    if args.dry_run {
        fs::remove_dir_all(&staging).map_err(Error::io("removing", &staging))?;
        // Nothing was written: the transaction has nothing left to undo.
        transaction.commit();
        return Ok(format!(
            "Would adopt `{}` as the rspy workspace `{}`:\n\n{}\nNothing was written (--dry-run).\n",
            given.display(),
            adoption.name,
            report(&adoption, "Would move", "Would rename", "Would create")
        ));
    }

    apply(&transaction, &adoption, &rendered)?;
    fs::remove_dir_all(&staging).map_err(Error::io("removing", &staging))?;
    check_interrupted()?;
    transaction.commit();
    Ok(format!(
        "Adopted `{}` as the rspy workspace `{}`:\n\n{}\n{}",
        given.display(),
        adoption.name,
        report(&adoption, "Moved", "Renamed", "Created"),
        next_steps(&adoption, &given)
    ))
}

/// Root entries that stay where they are, each with the reason.
type Kept = Vec<(String, &'static str)>;

/// Splits the root's entries into those that move into `python/` and those that stay.
fn sort_entries(root: &Path) -> Result<(Vec<String>, Kept)> {
    let mut names = Vec::new();
    for entry in fs::read_dir(root).map_err(Error::io("reading", root))? {
        let entry = entry.map_err(Error::io("reading", root))?;
        let name = entry.file_name().into_string().map_err(|name| {
            Error::Refused(format!(
                "`{}` has a name that is not UTF-8; rename it and run `rspy init` again",
                root.join(name).display()
            ))
        })?;
        names.push(name);
    }
    names.sort();
    if names.iter().any(|n| n == SERVICE_DIR) {
        return Err(Error::Refused(format!(
            "`{}` already has a `{SERVICE_DIR}/` folder, and rspy init moves the service into \
             `{SERVICE_DIR}/`; rename yours first (e.g. `git mv {SERVICE_DIR} {SERVICE_DIR}_src`, \
             and its imports), then run `rspy init` again",
            root.display()
        )));
    }
    let mut moved = Vec::new();
    let mut kept = Vec::new();
    for name in names {
        if name.starts_with(".rspy-") {
            // Our own staging folder, left by a killed run: never part of the service.
            kept.push((name, "left by an interrupted rspy; delete it"));
        } else if KEPT_AT_ROOT.contains(&name.as_str()) {
            kept.push((name, "it only works at the root of a repository"));
        } else if detect::is_virtualenv(&root.join(&name)) {
            kept.push((name, "a virtual environment only works where it was made"));
        } else {
            moved.push(name);
        }
    }
    Ok((moved, kept))
}

fn project_name(args: &InitArgs, root: &Path) -> Result<String> {
    if let Some(name) = &args.name {
        name::validate(name)?;
        return Ok(name.clone());
    }
    let last = root
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidName {
            name: root.display().to_string(),
            reason: "the folder has no name to take".to_owned(),
            hint: "pass `--name <NAME>`".to_owned(),
        })?;
    name::validate(last).map_err(|err| match err {
        Error::InvalidName { name, reason, hint } => Error::InvalidName {
            name,
            reason,
            hint: format!("{hint} with `--name`"),
        },
        other => other,
    })?;
    Ok(last.to_owned())
}

fn python_port(args: &InitArgs) -> Result<u16> {
    let port = args.python_port.unwrap_or(DEFAULT_PYTHON_PORT);
    check_python_port(
        args.transport == Some(Transport::Unix),
        &port.to_string(),
        args.python_port.is_some().then_some("--python-port"),
    )?;
    Ok(port)
}

/// The command supervisord starts the service with, where it came from, and the server
/// package it needs (none for a command of the user's).
fn start_command(
    args: &InitArgs,
    findings: &Findings,
    transport: Transport,
    port: u16,
) -> Result<(String, String, Option<&'static str>)> {
    let address = match transport {
        Transport::Tcp => format!("127.0.0.1:{port}"),
        Transport::Unix => format!("the Unix socket {SOCKET} (seen from python/, where it starts)"),
    };
    if let Some(command) = &args.python_cmd {
        let command = command.trim();
        if command.is_empty() || command.contains(['\n', '\r']) {
            return Err(Error::Refused(format!(
                "invalid `--python-cmd {command:?}`: give one command line that starts the \
                 service on {address}, e.g. `--python-cmd \"python server.py\"`"
            )));
        }
        return Ok((command.to_owned(), "--python-cmd".to_owned(), None));
    }
    let example = match transport {
        Transport::Tcp => {
            format!("--python-cmd \"python -m uvicorn main:app --host 127.0.0.1 --port {port}\"")
        }
        Transport::Unix => format!("--python-cmd \"python -m uvicorn main:app --uds {SOCKET}\""),
    };
    let app = match findings.apps.as_slice() {
        [app] => app,
        [] => {
            return Err(Error::Refused(format!(
                "cannot tell how the service starts: no ASGI app (`app = FastAPI()`) or WSGI \
                 app (`app = Flask(__name__)`, `application = get_wsgi_application()`) is \
                 assigned at the top level of a module; pass the command that serves it on \
                 {address}, e.g. {example}"
            )));
        }
        several => {
            let list: Vec<String> = several.iter().map(|a| format!("  {a}")).collect();
            return Err(Error::Refused(format!(
                "found {} apps and cannot tell which one is the service:\n{}\npass the command \
                 that serves it on {address}, e.g. {example}",
                several.len(),
                list.join("\n")
            )));
        }
    };
    let target = format!("{}:{}", app.module, app.attribute);
    let command = match (app.interface, transport) {
        (Interface::Asgi, Transport::Tcp) => {
            format!("python -m uvicorn {target} --host 127.0.0.1 --port {port}")
        }
        (Interface::Asgi, Transport::Unix) => format!("python -m uvicorn {target} --uds {SOCKET}"),
        (Interface::Wsgi, Transport::Tcp) => {
            format!("python -m gunicorn --bind 127.0.0.1:{port} {target}")
        }
        (Interface::Wsgi, Transport::Unix) => {
            format!("python -m gunicorn --bind unix:{SOCKET} {target}")
        }
    };
    let command = match (app.app_dir.as_str(), app.interface) {
        ("", _) => command,
        (dir, Interface::Asgi) => format!("{command} --app-dir {dir}"),
        (dir, Interface::Wsgi) => format!("{command} --pythonpath {dir}"),
    };
    Ok((command, app.to_string(), Some(app.interface.server())))
}

/// What `pip install` gets, from the project root: the service's dependency list as it is,
/// and the server that starts it when the list does not name it.
fn install_arguments(dependencies: &Dependencies, server: Option<&str>) -> String {
    let mut words = match dependencies {
        Dependencies::Requirements(_) => vec![format!("-r {SERVICE_DIR}/requirements.txt")],
        Dependencies::Project(_) => vec![format!("./{SERVICE_DIR}")],
        Dependencies::None => Vec::new(),
    };
    if let Some(server) = server
        && !detect::mentions(&dependencies.names(), server)
    {
        words.push(server.to_owned());
    }
    words.join(" ")
}

/// What `pip install` needs for the service's tests: their own requirements (or extra) as
/// they are, and pytest when those do not name it; empty when there are no tests.
fn test_arguments(findings: &Findings) -> String {
    if !findings.has_tests {
        return String::new();
    }
    let mut words = Vec::new();
    let mut listed = findings.dependencies.names();
    if let Some((arguments, text)) = &findings.test_dependencies {
        words.push(arguments.clone());
        listed.push('\n');
        listed.push_str(&Dependencies::Requirements(text.clone()).names());
    }
    if !detect::mentions(&listed, "pytest") {
        words.push("pytest".to_owned());
    }
    words.join(" ")
}

/// `ci.yml` → `ci.pre-rspy.yml`; `Dockerfile` → `Dockerfile.pre-rspy`.
fn set_aside_name(file: &str) -> String {
    let (dir, base) = file.rsplit_once('/').map_or(("", file), |(d, b)| (d, b));
    let aside = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.pre-rspy.{ext}"),
        _ => format!("{base}.pre-rspy"),
    };
    if dir.is_empty() {
        aside
    } else {
        format!("{dir}/{aside}")
    }
}

/// Whether the user has workflows of their own (kept, or set aside) that will run against the
/// new layout.
fn workflows_of_the_user(root: &Path, renamed: &[(String, String)]) -> bool {
    let dir = root.join(".github/workflows");
    let Ok(entries) = fs::read_dir(&dir) else {
        return false;
    };
    !renamed.is_empty() || entries.filter_map(|e| e.ok()).next().is_some()
}

/// Every file below `dir`, as slash-separated paths relative to the rendered project.
fn list_files(dir: &Path, relative: &Path, out: &mut Vec<String>) -> Result<()> {
    let here = dir.join(relative);
    let mut entries: Vec<_> = fs::read_dir(&here)
        .map_err(Error::io("reading", &here))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        if entry.path().is_dir() {
            list_files(dir, &path, out)?;
        } else {
            out.push(detect::slash_path(&path));
        }
    }
    Ok(())
}

/// Moves the service into `python/`, sets colliding files aside and moves the rendered
/// project into place; every step is recorded so that a failure takes all of it back.
fn apply(transaction: &Transaction, adoption: &Adoption, rendered: &Path) -> Result<()> {
    let root = &adoption.root;
    let service = root.join(SERVICE_DIR);
    check_interrupted()?;
    transaction.created_dir(service.clone());
    fs::create_dir(&service).map_err(Error::io("creating", &service))?;
    for name in &adoption.moved {
        check_interrupted()?;
        let (from, to) = (root.join(name), service.join(name));
        transaction.moving(from.clone(), to.clone());
        fs::rename(&from, &to).map_err(Error::io("moving", &from))?;
    }
    for (file, aside) in &adoption.renamed {
        check_interrupted()?;
        let (from, to) = (root.join(file), root.join(aside));
        transaction.moving(from.clone(), to.clone());
        fs::rename(&from, &to).map_err(Error::io("moving", &from))?;
    }
    merge(transaction, rendered, root)
}

/// Moves every entry of `from` into `into`: whole when `into` has no such entry, else (a
/// folder both have, like `.github`) entry by entry.
fn merge(transaction: &Transaction, from: &Path, into: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(Error::io("reading", from))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        check_interrupted()?;
        let source = entry.path();
        let target = into.join(entry.file_name());
        let existing = fs::symlink_metadata(&target);
        if existing.as_ref().is_ok_and(|m| m.is_dir()) && source.is_dir() {
            merge(transaction, &source, &target)?;
        } else if existing.is_ok() {
            return Err(Error::Refused(format!(
                "`{}` is in the way of a file rspy adds; move it and run `rspy init` again",
                target.display()
            )));
        } else {
            transaction.created_tree(target.clone());
            fs::rename(&source, &target).map_err(Error::io("creating", &target))?;
        }
    }
    Ok(())
}

/// The findings and every change, under the given verbs.
fn report(adoption: &Adoption, moved: &str, renamed: &str, created: &str) -> String {
    let findings = &adoption.findings;
    let mut out = String::new();
    let install = if adoption.install.is_empty() {
        "nothing (no requirements.txt or pyproject.toml)".to_owned()
    } else {
        format!("pip install {}", adoption.install)
    };
    let readiness = if findings.health_route_found {
        format!("GET {} (found in the sources)", findings.health_path)
    } else {
        format!(
            "GET {} (no health route found: any answer below 500 means ready)",
            findings.health_path
        )
    };
    let tests = if findings.has_tests {
        format!(
            "pytest in python/; CI installs `pip install {}` and runs them with BASE_URL set to the api",
            adoption.tests
        )
    } else {
        "none found".to_owned()
    };
    writeln!(out, "The Python service").unwrap();
    writeln!(out, "  app:        {}", adoption.command_source).unwrap();
    writeln!(out, "  command:    {}", adoption.command).unwrap();
    writeln!(out, "  install:    {install}").unwrap();
    writeln!(out, "  readiness:  {readiness}").unwrap();
    let keep_alive = match &adoption.keep_alive {
        Some(keep_alive) if keep_alive.idle_timeout_ms() == 0 => format!(
            "{} s ({}): the api opens a new connection to Python for every request",
            keep_alive.seconds, keep_alive.source,
        ),
        Some(keep_alive) => format!(
            "{} s ({}): the api closes idle connections after {} ms",
            keep_alive.seconds,
            keep_alive.source,
            keep_alive.idle_timeout_ms()
        ),
        None => format!(
            "unknown (the api closes idle connections after {DEFAULT_IDLE_TIMEOUT_MS} ms; \
             lower `[upstream] idle_timeout_ms` if the service closes them sooner)"
        ),
    };
    writeln!(out, "  keep-alive: {keep_alive}").unwrap();
    writeln!(out, "  tests:      {tests}").unwrap();
    let is_dir = |name: &str| adoption.root.join(name).is_dir();
    writeln!(
        out,
        "\n{moved} into {SERVICE_DIR}/, contents unchanged ({}):",
        adoption.moved.len()
    )
    .unwrap();
    for name in &adoption.moved {
        // After the move the names are below python/; before it, at the root.
        let slash = if is_dir(name) || adoption.root.join(SERVICE_DIR).join(name).is_dir() {
            "/"
        } else {
            ""
        };
        writeln!(out, "  {name}{slash}").unwrap();
    }
    if !adoption.renamed.is_empty() {
        writeln!(
            out,
            "\n{renamed}, where rspy adds a file of its own ({}):",
            adoption.renamed.len()
        )
        .unwrap();
        for (from, to) in &adoption.renamed {
            writeln!(out, "  {from} -> {to}").unwrap();
        }
    }
    if !adoption.kept.is_empty() {
        writeln!(out, "\nLeft where they are:").unwrap();
        for (name, why) in &adoption.kept {
            writeln!(out, "  {name}/ ({why})").unwrap();
        }
    }
    writeln!(out, "\n{created} ({}):", adoption.created.len()).unwrap();
    for file in &adoption.created {
        writeln!(out, "  {file}").unwrap();
    }
    out
}

fn next_steps(adoption: &Adoption, given: &Path) -> String {
    let mut out = String::new();
    out.push_str(
        "\nNo route is declared: the api forwards every request to Python, so clients see the \
         service they know.\n",
    );
    if adoption.has_own_workflows {
        out.push_str(
            "Your workflows in .github/workflows still run from the repository root, but the \
             service now lives in python/: update their paths (e.g. `working-directory: \
             python`), or delete them; .github/workflows/ci.yml is rspy's.\n",
        );
    }
    let cd = if given == Path::new(".") {
        String::new()
    } else {
        format!("  cd {}\n", given.display())
    };
    let install = if adoption.install.is_empty() {
        String::new()
    } else {
        format!("{} ", adoption.install)
    };
    write!(
        out,
        "\nNext steps:\n\
         {cd}\
         \x20 cargo build --release\n\
         \x20 python3 -m venv .venv && . .venv/bin/activate && pip install {install}supervisor\n\
         \x20 supervisord -c deploy/supervisord.conf\n\
         \x20 rspy import-routes     # declare every operation of Python's /openapi.json (while it runs)\n\
         \x20 rspy routes\n"
    )
    .unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_aside_names_keep_the_extension() {
        assert_eq!(
            set_aside_name(".github/workflows/ci.yml"),
            ".github/workflows/ci.pre-rspy.yml"
        );
        assert_eq!(set_aside_name("Dockerfile"), "Dockerfile.pre-rspy");
        assert_eq!(set_aside_name(".dockerignore"), ".dockerignore.pre-rspy");
    }

    #[test]
    fn the_server_is_added_only_when_the_list_lacks_it() {
        let requirements = Dependencies::Requirements("fastapi\nuvicorn==0.30\n".to_owned());
        assert_eq!(
            install_arguments(&requirements, Some("uvicorn")),
            "-r python/requirements.txt"
        );
        let project = Dependencies::Project(
            "[project]\ndescription = \"run by gunicorn\"\ndependencies = [\"flask\"]\n".to_owned(),
        );
        assert_eq!(
            install_arguments(&project, Some("gunicorn")),
            "./python gunicorn"
        );
        assert_eq!(install_arguments(&Dependencies::None, None), "");
    }
}
