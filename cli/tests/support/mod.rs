//! Helpers shared by the integration tests: run the real binary, snapshot folders, compare
//! with golden files.

#![allow(dead_code)] // each test crate uses its own subset

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The rspy binary cargo built for these tests.
pub fn rspy() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rspy"));
    command.env_remove("RUST_LOG");
    command
}

/// cargo-generate's own CLI, built from the same library version (see `examples/`), with
/// none of the developer's cargo-generate settings: `config` is an empty file.
pub fn cargo_generate(config: &Path) -> Command {
    let exe = Path::new(env!("CARGO_BIN_EXE_rspy"))
        .parent()
        .unwrap()
        .join("examples/cargo-generate");
    assert!(
        exe.exists(),
        "{} is missing: a plain `cargo test` builds it, or run `cargo build --example cargo-generate`",
        exe.display()
    );
    fs::write(config, "").unwrap();
    let mut command = Command::new(exe);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_GENERATE_") {
            command.env_remove(key);
        }
    }
    command
        .arg("generate")
        .arg("--config")
        .arg(config)
        .env("CARGO_NAME", "rspy-tests");
    command
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs rspy with `args` in `dir` and returns its stdout, failing the test unless it exits 0.
pub fn rspy_ok(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, rspy().args(args));
    assert_eq!(out.code, Some(0), "rspy {args:?}: {out:?}");
    out.stdout
}

/// Runs rspy with `args` in `dir` and checks it was refused as bad input: exit 2, nothing on
/// stdout, an `error: ` message holding every one of `needles`, and `dir` exactly as before.
/// Returns the message.
pub fn refusal(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let before = snapshot(dir);
    let out = run_in(dir, rspy().args(args));
    assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    assert!(
        out.stderr.starts_with("error: "),
        "{args:?}: {}",
        out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{args:?}: `{needle}` not in {}",
            out.stderr
        );
    }
    assert_eq!(snapshot(dir), before, "{args:?} changed files");
    out.stderr
}

/// [`refusal`] of rspy's own: its message is one line.
pub fn assert_refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let stderr = refusal(dir, args, needles);
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
}

/// What a finished command did, with its output as text.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn outcome(output: Output) -> Outcome {
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `command` in `dir` and returns its outcome.
pub fn run_in(dir: &Path, command: &mut Command) -> Outcome {
    outcome(
        command
            .current_dir(dir)
            .output()
            .expect("the command starts"),
    )
}

/// Every file below `dir` (not `.git`), by slash-separated relative path, with its bytes.
/// Directories are listed too (with empty contents and a trailing `/`), so an empty folder
/// left behind shows up.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut files);
    }
    files
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if path.is_dir() {
            if path.file_name().unwrap() == ".git" {
                continue;
            }
            files.insert(format!("{relative}/"), Vec::new());
            walk(root, &path, files);
        } else {
            files.insert(relative, fs::read(&path).unwrap());
        }
    }
}

/// Copies the folder `from` to `to` (created), dotfiles included, leaving out build output,
/// virtual environments and caches.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["target", ".venv", "__pycache__", ".pytest_cache"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Compares `actual` with the golden file `tests/golden/<name>`; with `RSPY_BLESS=1` in the
/// environment, rewrites the golden file instead.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("RSPY_BLESS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read golden file {}: {e}; run with RSPY_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output; if the change is intended, run with RSPY_BLESS=1\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
pub mod generated;
pub mod http;
pub mod http2;
pub mod raw;
