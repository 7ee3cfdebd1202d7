//! `rspy new`: a new service from the embedded template, created all at once or not at all.
//!
//! The project is rendered into a hidden staging folder beside the target, given its git
//! repository there, and only then renamed into place: a failure at any step leaves the
//! disk as it was, and a finished project appears in one rename.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{NewArgs, Vcs};
use crate::error::{Error, Result};
use crate::{name, render, template};

/// What `rspy new` made, for the closing message.
#[derive(Debug)]
pub struct Created {
    pub path: PathBuf,
    pub name: String,
    pub values: BTreeMap<String, String>,
    /// Whether a git repository was initialized (not inside an existing work tree).
    pub git_initialized: bool,
}

/// Creates the project described by `args`; `exe` is the rspy binary that renders it.
pub fn run(args: &NewArgs, exe: &Path) -> Result<Created> {
    let name = project_name(args)?;
    name::validate(&name)?;
    let values = placeholder_values(args)?;
    check_target(&args.path)?;

    let target = absolute(&args.path)?;
    let parent = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    let created_parents = CreatedDirs::create(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".rspy-new-")
        .tempdir_in(&parent)
        .map_err(|e| Error::ParentNotWritable {
            path: parent.clone(),
            // The kind alone ("permission denied"): the full error names the staging folder.
            reason: e.kind().to_string(),
        })?;

    render::render(exe, staging.path(), &name, &values)?;
    let rendered = staging.path().join(&name);
    let git_initialized = match args.vcs {
        Vcs::Git if !inside_git_work_tree(&parent) => {
            git_init(&rendered)?;
            true
        }
        _ => false,
    };
    // rename(2) replaces an empty directory, so an existing empty target works too.
    fs::rename(&rendered, &target).map_err(Error::io("moving the new project into", &target))?;
    created_parents.keep();
    Ok(Created {
        path: args.path.clone(),
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
    let mut from_flags = Vec::new();
    if let Some(transport) = args.transport {
        values.insert("transport".to_owned(), transport.as_str().to_owned());
        from_flags.push(("transport", "transport"));
    }
    if let Some(port) = args.python_port {
        values.insert("python_port".to_owned(), port.to_string());
        from_flags.push(("python_port", "python-port"));
    }
    for define in &args.defines {
        let invalid = |reason: String| Error::InvalidDefine {
            value: define.clone(),
            reason,
        };
        let (key, value) = define.split_once('=').ok_or_else(|| {
            invalid("expected `KEY=VALUE`, e.g. `--define transport=unix`".to_owned())
        })?;
        if !placeholders.contains_key(key) {
            let known: Vec<&str> = placeholders.keys().map(String::as_str).collect();
            return Err(invalid(format!(
                "the template has no placeholder `{key}`; known placeholders: {}",
                known.join(", ")
            )));
        }
        if let Some((_, flag)) = from_flags.iter().find(|(k, _)| *k == key) {
            return Err(Error::DuplicatePlaceholder {
                key: key.to_owned(),
                flag: (*flag).to_owned(),
            });
        }
        values.insert(key.to_owned(), value.to_owned());
    }
    for (key, value) in &values {
        placeholders[key].check(key, value)?;
    }
    Ok(values)
}

/// The target may not exist yet, or be an empty directory; anything else is the user's.
fn check_target(path: &Path) -> Result<()> {
    let exists = || Error::TargetExists {
        path: path.to_path_buf(),
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::ParentNotWritable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Ok(meta) if !meta.is_dir() => Err(exists()),
        Ok(_) => {
            let mut entries = fs::read_dir(path).map_err(Error::io("reading", path))?;
            match entries.next() {
                None => Ok(()),
                Some(_) => Err(exists()),
            }
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(Error::io("resolving", path))
}

/// Ancestors of the target that `rspy new` had to create; removed again unless kept.
struct CreatedDirs {
    /// The outermost directory created, whose removal removes them all.
    outermost: Option<PathBuf>,
}

impl CreatedDirs {
    fn create(dir: &Path) -> Result<Self> {
        let outermost = dir
            .ancestors()
            .take_while(|d| !d.exists())
            .last()
            .map(Path::to_path_buf);
        let created = Self { outermost };
        if created.outermost.is_some() {
            // On failure `created` is dropped, removing whatever part of the chain was made.
            fs::create_dir_all(dir).map_err(|e| Error::ParentNotWritable {
                path: dir.to_path_buf(),
                reason: e.kind().to_string(),
            })?;
        }
        Ok(created)
    }

    fn keep(mut self) {
        self.outermost = None;
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        if let Some(dir) = &self.outermost {
            let _ = fs::remove_dir_all(dir);
        }
    }
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
    let output = Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Git(e.to_string()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(Error::Git(stderr.trim().to_owned()))
    }
}
