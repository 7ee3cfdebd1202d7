//! `rspy new` through the real binary: the generated tree, the cargo-generate equivalence,
//! and every kind of bad input.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{Outcome, assert_golden, cargo_generate, outcome, repo_root, rspy, run_in, snapshot};
use tempfile::TempDir;

/// Files whose whole contents are kept as golden snapshots; the rest is checked by listing.
const KEY_FILES: &[&str] = &[
    "Cargo.toml",
    "rspy.toml",
    "crates/api/Cargo.toml",
    "deploy/supervisord.conf",
    "python/pyproject.toml",
    "Dockerfile",
];

fn new_in(dir: &Path, args: &[&str]) -> Outcome {
    run_in(dir, rspy().arg("new").args(args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("generated files are UTF-8")
}

#[test]
fn generates_the_golden_tree() {
    let dir = TempDir::new().unwrap();
    let out = new_in(dir.path(), &["demo", "--vcs", "none"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "no noise on stderr: {}", out.stderr);
    assert_golden("new/stdout.txt", &out.stdout);

    let tree = snapshot(&dir.path().join("demo"));
    let listing: String = tree.keys().map(|path| format!("{path}\n")).collect();
    assert_golden("new/files.txt", &listing);
    for file in KEY_FILES {
        let contents = tree
            .get(*file)
            .unwrap_or_else(|| panic!("{file} is generated"));
        assert_golden(&format!("new/demo/{file}.snap"), &text(contents));
    }
    for (path, contents) in &tree {
        let contents = text(contents);
        assert!(
            !contents.contains("{{") || path == ".github/workflows/ci.yml",
            "{path} has an unrendered placeholder"
        );
        assert!(
            !contents.contains("{%"),
            "{path} has an unrendered Liquid tag"
        );
    }
    let workflow = text(&tree[".github/workflows/ci.yml"]);
    assert!(
        workflow.contains("${{"),
        "GitHub Actions expressions survive rendering"
    );
}

#[test]
fn unix_transport_changes_the_upstream_and_supervisord() {
    let dir = TempDir::new().unwrap();
    let out = new_in(
        dir.path(),
        &["sock-svc", "--vcs", "none", "--transport", "unix"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let project = dir.path().join("sock-svc");
    for file in ["rspy.toml", "deploy/supervisord.conf"] {
        let contents = fs::read_to_string(project.join(file)).unwrap();
        assert_golden(&format!("new/sock-svc/{file}.snap"), &contents);
        assert!(
            contents.contains("run/python.sock"),
            "{file} names the socket"
        );
    }
}

#[test]
fn python_port_reaches_manifest_and_supervisord() {
    let dir = TempDir::new().unwrap();
    let out = new_in(
        dir.path(),
        &["ported", "--vcs", "none", "--python-port", "9123"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let project = dir.path().join("ported");
    assert!(
        fs::read_to_string(project.join("rspy.toml"))
            .unwrap()
            .contains("http://127.0.0.1:9123")
    );
    assert!(
        fs::read_to_string(project.join("deploy/supervisord.conf"))
            .unwrap()
            .contains("--port 9123")
    );
}

#[test]
fn same_tree_as_cargo_generate_on_the_template_folder() {
    let template = repo_root().join("template");
    for (name, extra) in [("demo", None), ("sock-svc", Some("transport=unix"))] {
        let dir = TempDir::new().unwrap();
        let ours = dir.path().join("rspy");
        let theirs = dir.path().join("cargo-generate");
        fs::create_dir_all(&ours).unwrap();
        fs::create_dir_all(&theirs).unwrap();

        let mut rspy_args = vec![name, "--vcs", "none"];
        let mut generate = cargo_generate(&dir.path().join("empty-config.toml"));
        generate
            .arg("--path")
            .arg(&template)
            .args(["--name", name, "--vcs", "none", "--silent", "--destination"])
            .arg(&theirs);
        if let Some(define) = extra {
            rspy_args.extend(["--define", define]);
            generate.args(["--define", define]);
        }
        let out = new_in(&ours, &rspy_args);
        assert_eq!(out.code, Some(0), "{out:?}");
        let out = run_in(dir.path(), &mut generate);
        assert_eq!(out.code, Some(0), "{out:?}");

        let ours = snapshot(&ours.join(name));
        let theirs = snapshot(&theirs.join(name));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "same files for {name}"
        );
        for (path, contents) in &ours {
            assert!(contents == &theirs[path], "{path} differs for {name}");
        }
    }
}

#[test]
fn name_flag_overrides_the_folder_name_and_missing_parents_are_made() {
    let dir = TempDir::new().unwrap();
    let out = new_in(
        dir.path(),
        &["nested/deeper/folder", "--name", "billing", "--vcs", "none"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let project = dir.path().join("nested/deeper/folder");
    let manifest = fs::read_to_string(project.join("crates/api/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"billing-api\""), "{manifest}");
    assert!(
        out.stdout.contains("Created service `billing`"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_existing_empty_folder_is_used() {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("empty")).unwrap();
    let out = new_in(dir.path(), &["empty", "--vcs", "none"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(dir.path().join("empty/rspy.toml").is_file());
}

#[test]
fn git_repository_by_default_but_not_inside_another() {
    let dir = TempDir::new().unwrap();
    let out = new_in(dir.path(), &["with-git"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(dir.path().join("with-git/.git").is_dir());
    assert!(out.stdout.contains("with a git repository"));

    let out = new_in(&dir.path().join("with-git"), &["inner"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !dir.path().join("with-git/inner/.git").exists(),
        "no nested repository"
    );
}

/// Runs `rspy new` with `args` in a folder holding the user's work (a non-empty folder and a
/// file) and checks the refusal (see [`support::refusal`]); returns the message.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let dir = TempDir::new().unwrap();
    fs::create_dir(dir.path().join("taken")).unwrap();
    fs::write(dir.path().join("taken/notes.txt"), "the user's work").unwrap();
    fs::write(dir.path().join("file"), "a file").unwrap();
    let args: Vec<&str> = ["new"].iter().chain(args).copied().collect();
    support::refusal(dir.path(), &args, needles)
}

/// A refusal of rspy's own: one line.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let stderr = refused(args, needles);
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
}

/// A flag clap itself rejects, in its own format with a hint to `--help`.
fn assert_refused_by_clap(args: &[&str], needles: &[&str]) {
    let stderr = refused(args, needles);
    assert!(
        stderr.contains("For more information, try '--help'."),
        "{args:?}: {stderr}"
    );
}

#[test]
fn refuses_invalid_names() {
    assert_refused(&["fn"], &["`fn`", "Rust keyword", "try `fn-service`"]);
    assert_refused(&["self"], &["`self`", "Rust keyword"]);
    assert_refused(
        &["9lives"],
        &["`9lives`", "start with a lowercase ASCII letter"],
    );
    assert_refused(&["My.Service"], &["`My.Service`", "try `my-service`"]);
    assert_refused(&["x", "--name", ""], &["``", "empty"]);
    assert_refused(
        &["x", "--name", "has space"],
        &["`has space`", "` ` is not allowed"],
    );
    assert_refused(&["."], &["`.`", "pass `--name <NAME>`"]);
    // Each would give packages (`demo--api`) that differ from the crate names (`demo_api`).
    assert_refused(
        &["demo-"],
        &[
            "`demo-`",
            "go singly between letters or digits",
            "try `demo`",
        ],
    );
    assert_refused(&["a__b"], &["`a__b`", "try `a_b`"]);
    assert_refused(&["ab_"], &["`ab_`", "try `ab`"]);
}

#[test]
fn refuses_existing_targets() {
    assert_refused(&["taken"], &["`taken` already exists", "choose a new path"]);
    assert_refused(&["file"], &["`file` already exists"]);
    assert_refused(&["taken", "--name", "other"], &["`taken` already exists"]);
    assert_refused(
        &["file/svc"],
        &["file` is not a directory", "choose another path"],
    );
}

#[test]
fn refuses_bad_placeholder_values() {
    assert_refused_by_clap(&["svc", "--transport", "udp"], &["'udp'", "tcp, unix"]);
    assert_refused_by_clap(&["svc", "--python-port", "0"], &["'0'", "1..=65535"]);
    assert_refused_by_clap(&["svc", "--python-port", "70000"], &["'70000'"]);
    assert_refused(
        &["svc", "--python-port", "8080"],
        &["`8080`", "the api's port", "choose another"],
    );
    assert_refused(
        &["svc", "--transport", "unix", "--python-port", "9000"],
        &["`--python-port` has no effect with the unix transport"],
    );
    assert_refused(
        &["svc", "-d", "python_port=9000", "-d", "python_port=9001"],
        &[
            "`python_port` is given twice",
            "`--define python_port=9000`",
            "`--define python_port=9001`",
        ],
    );
    assert_refused(
        &["svc", "--define", "python_port=99999"],
        &["`99999`", "from 1 to 65535"],
    );
    assert_refused(
        &["svc", "--define", "transport=udp"],
        &["`udp`", "tcp, unix"],
    );
    assert_refused(
        &["svc", "--define", "colour=blue"],
        &["`colour`", "known placeholders: python_port, transport"],
    );
    assert_refused(
        &["svc", "--define", "python_service=existing"],
        &["`python_service` is set by `rspy init`"],
    );
    assert_refused(
        &["svc", "--define", "novalue"],
        &["`--define novalue`", "KEY=VALUE"],
    );
    assert_refused(
        &["svc", "--transport", "unix", "--define", "transport=unix"],
        &["`transport` is given twice"],
    );
    assert_refused_by_clap(&["svc", "--vcs", "svn"], &["'svn'"]);
}

#[test]
fn refuses_an_unwritable_parent() {
    let dir = TempDir::new().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    let before = snapshot(dir.path());

    if !running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    }
    for target in ["locked/svc", "locked/a/b/svc"] {
        let out = run_in(dir.path(), unprivileged_rspy().args(["new", target]));
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
        assert!(
            out.stderr.contains("choose a directory you can write to"),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(".rspy-new"),
            "the staging folder stays out of sight"
        );
        assert_eq!(snapshot(dir.path()), before);
    }
}

#[test]
fn a_failure_half_way_removes_what_it_made() {
    // With no `git` on PATH, `rspy new` fails after rendering, at `git init`.
    let dir = TempDir::new().unwrap();
    let empty_path = dir.path().join("no-tools");
    fs::create_dir(&empty_path).unwrap();
    let before = snapshot(dir.path());
    for target in ["svc", "new-parent/svc"] {
        let out = run_in(
            dir.path(),
            rspy().args(["new", target]).env("PATH", &empty_path),
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("git init"), "{}", out.stderr);
        assert!(out.stderr.contains("pass `--vcs none`"), "{}", out.stderr);
        assert_eq!(snapshot(dir.path()), before, "nothing is left behind");
    }
}

#[test]
fn never_reads_the_users_cargo_generate_settings() {
    // Each of these makes a plain embedding of cargo-generate fail (a malformed user config,
    // a values file that does not exist) or change its output; rspy's result depends on its
    // flags only. Without USER or CARGO_NAME, cargo-generate cannot name an author either.
    let dir = TempDir::new().unwrap();
    let cargo_home = dir.path().join("cargo-home");
    fs::create_dir(&cargo_home).unwrap();
    fs::write(cargo_home.join("cargo-generate.toml"), "this is [not toml").unwrap();
    let out = run_in(
        dir.path(),
        rspy()
            .args(["new", "plain", "--vcs", "none"])
            .env("CARGO_HOME", &cargo_home)
            .env(
                "CARGO_GENERATE_TEMPLATE_VALUES_FILE",
                dir.path().join("missing.toml"),
            )
            .env("CARGO_GENERATE_VALUE_PYTHON_PORT", "9999")
            .env_remove("USER")
            .env_remove("CARGO_NAME")
            .env_remove("GIT_AUTHOR_NAME")
            .env_remove("GIT_COMMITTER_NAME")
            .env_remove("USERNAME")
            .env_remove("NAME"),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let manifest = fs::read_to_string(dir.path().join("plain/rspy.toml")).unwrap();
    assert!(manifest.contains("http://127.0.0.1:8000"), "{manifest}");
}

#[test]
fn fills_the_current_directory_when_it_is_empty() {
    let dir = TempDir::new().unwrap();
    let here = dir.path().join("here");
    fs::create_dir(&here).unwrap();
    let out = new_in(&here, &[".", "--name", "svc", "--vcs", "none"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        here.join("rspy.toml").is_file(),
        "the project is in the current directory"
    );
    assert!(
        !out.stdout.contains("cd "),
        "no `cd` into where the user already is: {}",
        out.stdout
    );
    let leftovers: Vec<_> = fs::read_dir(&here)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".rspy-new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn fills_an_empty_target_whose_parent_is_not_writable() {
    // A folder made for the user (owned by them) inside one they cannot write to.
    let dir = TempDir::new().unwrap();
    let parent = dir.path().join("srv");
    let target = parent.join("billing");
    fs::create_dir_all(&target).unwrap();
    if running_as_root() {
        let chown = Command::new("chown")
            .arg("65534:65534")
            .arg(&target)
            .status();
        assert!(chown.unwrap().success(), "chown {}", target.display());
    } else {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let mut command = unprivileged_rspy();
    let out = run_in(
        dir.path(),
        command
            .args(["new", "srv/billing", "--vcs", "none"])
            .env("HOME", &target),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(target.join("crates/api/Cargo.toml").is_file());
}

/// Root writes anywhere, so tests about permissions run rspy as `nobody` when they run as root.
fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("`id` runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// rspy as `nobody` (uid 65534) when the tests run as root; otherwise as the current user.
fn unprivileged_rspy() -> Command {
    if !running_as_root() {
        return rspy();
    }
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        env!("CARGO_BIN_EXE_rspy"),
    ]);
    command
}

#[test]
fn help_texts_match_their_golden_files() {
    for (args, golden) in [
        (&["--help"][..], "help/rspy.txt"),
        (&["new", "--help"][..], "help/new.txt"),
        (&["add-route", "--help"][..], "help/add-route.txt"),
        (&["remove-route", "--help"][..], "help/remove-route.txt"),
        (&["routes", "--help"][..], "help/routes.txt"),
        (&["set-fallback", "--help"][..], "help/set-fallback.txt"),
        (&["check", "--help"][..], "help/check.txt"),
    ] {
        let out = outcome(rspy().args(args).env("COLUMNS", "100").output().unwrap());
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_golden(golden, &out.stdout);
    }
}
