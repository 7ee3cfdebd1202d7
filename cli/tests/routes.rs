//! `rspy routes` through the real binary, on projects made by `rspy new`.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::{Outcome, assert_golden, assert_refused, rspy, run_in};
use tempfile::TempDir;

/// A fresh project `demo` (no git) in a temporary folder.
fn project(extra: &[&str]) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let out = run_in(
        dir.path(),
        rspy().args(["new", "demo", "--vcs", "none"]).args(extra),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let root = dir.path().join("demo");
    (dir, root)
}

fn routes_in(dir: &Path, args: &[&str]) -> Outcome {
    run_in(dir, rspy().args(args))
}

#[test]
fn shows_the_table_from_anywhere_inside_the_project() {
    let (_dir, root) = project(&[]);
    let from_root = routes_in(&root, &["routes"]);
    assert_eq!(from_root.code, Some(0), "{from_root:?}");
    assert_golden("routes/table.txt", &from_root.stdout);
    let from_below = routes_in(&root.join("crates/api/src"), &["routes"]);
    assert_eq!(from_below.stdout, from_root.stdout);
    let with_dash_c = routes_in(Path::new("/"), &["-C", root.to_str().unwrap(), "routes"]);
    assert_eq!(with_dash_c.stdout, from_root.stdout);
}

#[test]
fn json_lists_every_route_with_its_settings() {
    let (_dir, root) = project(&["--transport", "unix"]);
    let out = routes_in(&root, &["routes", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_golden("routes/unix.json", &out.stdout);
    assert!(
        out.stdout
            .contains("\"upstream\": \"unix:run/python.sock\""),
        "{}",
        out.stdout
    );
}

#[test]
fn refuses_outside_a_project_and_a_missing_directory() {
    let dir = TempDir::new().unwrap();
    assert_refused(
        dir.path(),
        &["routes"],
        &["not inside an rspy project", "pass `-C <DIR>`"],
    );
    assert_refused(
        dir.path(),
        &["-C", "missing", "routes"],
        &["`-C missing`", "pass an existing directory"],
    );
}

#[test]
fn refuses_a_broken_manifest_and_leaves_it_as_it_is() {
    let (_dir, root) = project(&[]);
    let manifest = root.join("rspy.toml");
    let good = fs::read_to_string(&manifest).unwrap();
    let cases = [
        (
            good.replace("schema = 1", "schema = 2"),
            vec!["`schema = 2`", "understands schema 1 only"],
        ),
        (
            good.replace("mode = \"proxy\"\n", "mode = \"proxy\"\ncolour = \"red\"\n"),
            vec!["unknown field `colour`", "fix the file"],
        ),
        (
            good.replace("method = \"GET\"", "method = \"FETCH\""),
            vec!["FETCH", "line"],
        ),
        (
            "schema = 1\n[upstream\n".to_owned(),
            vec!["line 2", "fix the file"],
        ),
    ];
    for (text, needles) in cases {
        fs::write(&manifest, &text).unwrap();
        let mut needles = needles;
        needles.push("rspy.toml` is not a valid manifest");
        assert_refused(&root, &["routes"], &needles);
        assert_eq!(
            fs::read_to_string(&manifest).unwrap(),
            text,
            "rspy routes never writes"
        );
    }
}
