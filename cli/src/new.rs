//! `rspy new`: a new service from the embedded template, created all at once or not at all.
//!
//! The project is rendered into a hidden staging folder (`.rspy-new-*`) and given its git
//! repository there, then moved into place: by one rename when the target does not exist, or
//! entry by entry into an existing empty target (staged inside it, so the target keeps its
//! owner and mode and its parent need not be writable). Whatever was made is removed again on
//! an error or an interrupt.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{NewArgs, Transport, Vcs};
use crate::error::{Error, Result};
use crate::undo::{self, Transaction, check_interrupted};
use crate::{name, render, template};

/// The port the generated api listens on by default; Python cannot have it too.
pub const API_PORT: &str = "8080";

/// Placeholders `rspy init` sets: `rspy new` always makes the sample Python service.
pub const INIT_ONLY: &[&str] = &["python_service"];

/// What `rspy new` made, for the closing message.
#[derive(Debug)]
pub struct Created {
    /// The target as the user gave it.
    pub path: PathBuf,
    /// Whether the target is the current directory (so there is nowhere to `cd`).
    pub is_current_dir: bool,
    pub name: String,
    /// The value of every template placeholder.
    pub values: BTreeMap<String, String>,
    /// Whether a git repository was initialized (not inside an existing work tree).
    pub git_initialized: bool,
}

/// Where the project goes.
enum Target {
    /// Nothing there yet.
    Missing,
    /// An empty directory, kept as it is and filled.
    EmptyDir,
}

/// Creates the project described by `args`; `exe` is the rspy binary that renders it.
pub fn run(args: &NewArgs, exe: &Path) -> Result<Created> {
    let name = project_name(args)?;
    name::validate(&name)?;
    let values = placeholder_values(args)?;
    // Checked as typed, so messages show the path as the user wrote it.
    let state = check_target(&args.path)?;
    let target = std::path::absolute(&args.path).map_err(Error::io("resolving", &args.path))?;

    let transaction = Transaction::begin();
    let parent = target.parent().unwrap_or(Path::new("/"));
    let staging_parent = match state {
        Target::Missing => {
            create_dirs(&transaction, parent)?;
            parent
        }
        Target::EmptyDir => &target,
    };
    let staging = create_staging(&transaction, staging_parent, ".rspy-new-")?;

    render::render(exe, &staging, &name, &values)?;
    let rendered = staging.join(&name);
    let git_initialized = args.vcs == Vcs::Git && !inside_git_work_tree(parent);
    if git_initialized {
        git_init(&rendered)?;
    }
    match state {
        Target::Missing => {
            check_interrupted()?;
            transaction.created_tree(target.clone());
            fs::rename(&rendered, &target).map_err(Error::io("moving the project to", &target))?;
        }
        Target::EmptyDir => {
            for entry in fs::read_dir(&rendered).map_err(Error::io("reading", &rendered))? {
                let from = entry.map_err(Error::io("reading", &rendered))?.path();
                let to = target.join(from.file_name().unwrap_or_default());
                check_interrupted()?;
                transaction.created_tree(to.clone());
                fs::rename(&from, &to).map_err(Error::io("moving the project to", &to))?;
            }
        }
    }
    fs::remove_dir_all(&staging).map_err(Error::io("removing", &staging))?;
    // The last moment an interrupt takes everything back; after it, the project stands.
    check_interrupted()?;
    transaction.commit();
    Ok(Created {
        path: args.path.clone(),
        is_current_dir: std::env::current_dir().is_ok_and(|cwd| cwd == target),
        name,
        values,
        git_initialized,
    })
}

fn project_name(args: &NewArgs) -> Result<String> {
    if let Some(name) = &args.name {
        return Ok(name.clone());
    }
    let last = args.path.file_name().ok_or_else(|| Error::InvalidName {
        name: args.path.display().to_string(),
        reason: "the path has no last component to take the name from".to_owned(),
        hint: "pass `--name <NAME>`".to_owned(),
    })?;
    last.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidName {
            name: last.to_string_lossy().into_owned(),
            reason: "it is not valid UTF-8".to_owned(),
            hint: "pass `--name <NAME>`".to_owned(),
        })
}

/// The value of every placeholder: the template's defaults, then the flags, then `--define`.
fn placeholder_values(args: &NewArgs) -> Result<BTreeMap<String, String>> {
    let placeholders = template::placeholders();
    let mut values: BTreeMap<String, String> = placeholders
        .iter()
        .filter_map(|(key, p)| Some((key.clone(), p.default.clone()?)))
        .collect();
    // Each key given on the command line, with the flag that gave it.
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    if let Some(transport) = args.transport {
        values.insert("transport".to_owned(), transport.as_str().to_owned());
        given.insert("transport".to_owned(), "--transport".to_owned());
    }
    if let Some(port) = args.python_port {
        values.insert("python_port".to_owned(), port.to_string());
        given.insert("python_port".to_owned(), "--python-port".to_owned());
    }
    for define in &args.defines {
        let invalid = |reason: String| Error::InvalidDefine {
            value: define.clone(),
            reason,
        };
        let (key, value) = define.split_once('=').ok_or_else(|| {
            invalid("expected `KEY=VALUE`, e.g. `--define transport=unix`".to_owned())
        })?;
        if INIT_ONLY.contains(&key) {
            return Err(invalid(format!(
                "`{key}` is set by `rspy init`, which adopts an existing Python service; \
                 `rspy new` always makes the sample one"
            )));
        }
        if !placeholders.contains_key(key) {
            let known: Vec<&str> = placeholders
                .keys()
                .map(String::as_str)
                .filter(|key| !INIT_ONLY.contains(key))
                .collect();
            return Err(invalid(format!(
                "the template has no placeholder `{key}`; known placeholders: {}",
                known.join(", ")
            )));
        }
        if let Some(first) = given.insert(key.to_owned(), format!("--define {define}")) {
            return Err(Error::DuplicatePlaceholder {
                key: key.to_owned(),
                first,
                second: format!("--define {define}"),
            });
        }
        values.insert(key.to_owned(), value.to_owned());
    }
    for (key, value) in &values {
        placeholders[key].check(key, value)?;
    }
    check_python_port(
        values["transport"] == Transport::Unix.as_str(),
        &values["python_port"],
        given.get("python_port").map(String::as_str),
    )?;
    Ok(values)
}

/// Refuses a Python port the project cannot use: one given at all (by `flag`) with the unix
/// transport, or the api's own port. Shared by `rspy new` and `rspy init`.
pub(crate) fn check_python_port(unix: bool, port: &str, flag: Option<&str>) -> Result<()> {
    if unix {
        if let Some(flag) = flag {
            return Err(Error::Refused(format!(
                "`{flag}` has no effect with the unix transport (Python listens on a socket); drop it or use `--transport tcp`"
            )));
        }
    } else if port == API_PORT {
        return Err(Error::InvalidPlaceholder {
            key: "python_port".to_owned(),
            value: port.to_owned(),
            reason: format!("{API_PORT} is the api's port; choose another, e.g. 8000"),
        });
    }
    Ok(())
}

/// The target may not exist yet, or be an empty directory; anything else is the user's.
fn check_target(target: &Path) -> Result<Target> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(target).map_err(refusal(target))?;
            match entries.next() {
                None => Ok(Target::EmptyDir),
                Some(_) => Err(Error::TargetExists {
                    path: target.to_path_buf(),
                }),
            }
        }
        Ok(_) => Err(Error::TargetExists {
            path: target.to_path_buf(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
            // Every ancestor that exists must be a directory.
            match target
                .ancestors()
                .skip(1)
                .find(|a| fs::symlink_metadata(a).is_ok())
            {
                Some(ancestor) if !ancestor.is_dir() => Err(Error::NotADirectory {
                    path: ancestor.to_path_buf(),
                }),
                _ => Ok(Target::Missing),
            }
        }
        Err(e) => Err(refusal(target)(e)),
    }
}

/// Maps an I/O error on `path` to what the user can act on: no permission (or a read-only
/// file system) is a refusal of their input, exit 2; anything else a failure, exit 1.
fn refusal(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |e| match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Error::ParentNotWritable {
            path,
            // The kind alone ("permission denied"): the full error may name a staging folder.
            reason: e.kind().to_string(),
        },
        _ => Error::Io {
            action: "writing to",
            path,
            source: e,
        },
    }
}

/// Creates `dir` and its missing ancestors, outermost first, each recorded for undoing.
fn create_dirs(transaction: &Transaction, dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for dir in missing.into_iter().rev() {
        let parent = dir.parent().unwrap_or(dir);
        transaction.created_dir(dir.to_path_buf());
        fs::create_dir(dir).map_err(refusal(parent))?;
    }
    Ok(())
}

/// A fresh hidden folder in `dir` to render the template into (`prefix` and random letters,
/// e.g. `.rspy-new-x1Y2z3`), recorded for undoing.
pub(crate) fn create_staging(
    transaction: &Transaction,
    dir: &Path,
    prefix: &str,
) -> Result<PathBuf> {
    let staging = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(dir)
        .map_err(refusal(dir))?
        .keep();
    transaction.created_tree(staging.clone());
    Ok(staging)
}

/// Like `cargo new`: no nested repository inside an existing work tree.
fn inside_git_work_tree(dir: &Path) -> bool {
    Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn git_init(dir: &Path) -> Result<()> {
    let output = undo::output(
        Command::new("git")
            .args(["init", "--quiet"])
            .current_dir(dir)
            .stdin(Stdio::null()),
    );
    undo::check_interrupted()?;
    let output = output.map_err(|e| Error::Git(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(Error::Git(stderr.trim().to_owned()))
    }
}
