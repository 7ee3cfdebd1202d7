//! `rspy init` through the real binary, on the fixtures in `tests/fixtures/init/`: a FastAPI
//! service (ASGI, requirements.txt), a Flask one (WSGI factory, pyproject.toml) and a plain
//! command (stdlib only), each with files where rspy adds its own. Golden outputs and trees,
//! every original file kept byte for byte, `--dry-run`, a second run, and bad input.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use support::{
    Outcome, assert_golden, assert_refused, copy_tree, refusal, repo_root, rspy, rspy_ok, run_in,
    snapshot,
};
use tempfile::TempDir;

/// Generated files kept whole as golden snapshots; the rest of the tree is checked by listing.
const KEY_FILES: &[&str] = &[
    "rspy.toml",
    "deploy/supervisord.conf",
    "Dockerfile",
    ".github/workflows/ci.yml",
    "crates/api/src/routes.rs",
];

/// The fixtures, and the extra arguments each one needs.
const FIXTURES: &[(&str, &[&str])] = &[
    ("fastapi", &[]),
    ("flask", &[]),
    ("plain", &["--python-cmd", "python server.py"]),
];

/// A copy of fixture `name` (dotfiles included) in a fresh temporary folder named `name`.
fn fixture(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let project = dir.path().join(name);
    copy_tree(
        &repo_root().join("cli/tests/fixtures/init").join(name),
        &project,
    );
    (dir, project)
}

fn init(dir: &Path, args: &[&str]) -> Outcome {
    run_in(dir, rspy().arg("init").args(args))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("generated files are UTF-8")
}

/// The files only (no folder entries) of a snapshot.
fn files(tree: &BTreeMap<String, Vec<u8>>) -> BTreeMap<&str, &[u8]> {
    tree.iter()
        .filter(|(path, _)| !path.ends_with('/'))
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect()
}

#[test]
fn adopts_each_fixture_into_the_golden_tree_keeping_every_file() {
    for (name, extra) in FIXTURES {
        let (_dir, project) = fixture(name);
        let before = snapshot(&project);

        let mut args = vec!["--dry-run"];
        args.extend_from_slice(extra);
        let dry = init(&project, &args);
        assert_eq!(dry.code, Some(0), "{name}: {dry:?}");
        assert_golden(&format!("init/{name}/dry-run.txt"), &dry.stdout);
        assert_eq!(
            snapshot(&project),
            before,
            "{name}: --dry-run wrote something"
        );

        let out = init(&project, extra);
        assert_eq!(out.code, Some(0), "{name}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{name}: noise on stderr: {}",
            out.stderr
        );
        assert_golden(&format!("init/{name}/stdout.txt"), &out.stdout);
        let after = snapshot(&project);
        let listing: String = after.keys().map(|path| format!("{path}\n")).collect();
        assert_golden(&format!("init/{name}/files.txt"), &listing);
        for file in KEY_FILES {
            let contents = after
                .get(*file)
                .unwrap_or_else(|| panic!("{name}: {file} is generated"));
            assert_golden(&format!("init/{name}/{file}.snap"), &text(contents));
        }

        // Every file of the user's is still there, byte for byte: in python/, or (where rspy
        // adds its own workflow) set aside beside it.
        let after_files = files(&after);
        for (path, bytes) in files(&before) {
            let kept = if path == ".github/workflows/ci.yml" {
                ".github/workflows/ci.pre-rspy.yml".to_owned()
            } else if path.starts_with(".github/") {
                path.to_owned()
            } else {
                format!("python/{path}")
            };
            assert_eq!(
                after_files.get(kept.as_str()).copied(),
                Some(bytes),
                "{name}: {path} is not kept as {kept}"
            );
        }
        // The dry run announced exactly the files that were made.
        for (path, _) in after_files
            .iter()
            .filter(|(p, _)| !p.starts_with("python/"))
        {
            assert!(
                dry.stdout.contains(&format!("  {path}\n"))
                    || dry.stdout.contains(&format!(" -> {path}\n"))
                    || before.contains_key(*path),
                "{name}: {path} was created but not announced by --dry-run"
            );
        }
        for (path, contents) in &after {
            if path.starts_with("python/") {
                continue;
            }
            let contents = text(contents);
            // GitHub Actions expressions (`${{ ... }}`) are meant to stay.
            assert!(
                !contents.replace("${{", "").contains("{{"),
                "{name}: {path} has an unrendered placeholder"
            );
            assert!(
                !contents.contains("{%"),
                "{name}: {path} has an unrendered Liquid tag"
            );
        }

        // A second run changes nothing and says so.
        let again = init(&project, extra);
        assert_eq!(again.code, Some(0), "{name}: {again:?}");
        assert!(
            again.stdout.starts_with("Unchanged: "),
            "{name}: {}",
            again.stdout
        );
        assert_eq!(
            snapshot(&project),
            after,
            "{name}: the second run changed files"
        );
    }
}

#[test]
fn the_adopted_project_declares_no_route_and_rspy_commands_work_in_it() {
    let (_dir, project) = fixture("fastapi");
    let out = init(&project, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let routes = rspy_ok(&project, &["routes"]);
    assert!(routes.contains("0 routes: 0 native, 0 proxy"), "{routes}");
    assert!(routes.contains("fallback: proxy"), "{routes}");
    rspy_ok(&project, &["check"]);
    rspy_ok(
        &project,
        &["add-route", "GET", "/items/{item_id}", "--native"],
    );
    assert_eq!(
        fs::read_to_string(project.join("crates/api/src/routes.rs")).unwrap(),
        "//! Native handlers, one module per resource, wired to paths by the `[[route]]`s of rspy.toml.\n\npub mod items;\n"
    );
}

#[test]
fn the_unix_transport_and_a_src_layout_reach_the_command() {
    let (_dir, project) = fixture("flask");
    let out = init(&project, &["--transport", "unix", "--name", "legacy-web"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let supervisord = fs::read_to_string(project.join("deploy/supervisord.conf")).unwrap();
    assert!(
        supervisord.contains(
            "exec \"$0\" \"$@\"' python -m gunicorn --bind unix:../run/python.sock wsgi:app\n"
        ),
        "the socket's folder is made, then gunicorn started: {supervisord}"
    );
    let manifest = fs::read_to_string(project.join("rspy.toml")).unwrap();
    assert!(
        manifest.contains("url = \"unix:run/python.sock\""),
        "{manifest}"
    );

    // A src layout: the module is imported from src/, which uvicorn is told.
    let dir = TempDir::new().unwrap();
    let project = dir.path().join("shop");
    fs::create_dir_all(project.join("src/shop")).unwrap();
    fs::write(project.join("requirements.txt"), "fastapi\n").unwrap();
    fs::write(project.join("src/shop/__init__.py"), "").unwrap();
    fs::write(
        project.join("src/shop/web.py"),
        "from fastapi import FastAPI\n\nweb_app = FastAPI()\n\n\n@web_app.get(\"/health\")\ndef health():\n    return {}\n",
    )
    .unwrap();
    let out = init(&project, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let supervisord = fs::read_to_string(project.join("deploy/supervisord.conf")).unwrap();
    assert!(
        supervisord.contains(
            "command=python -m uvicorn shop.web:web_app --host 127.0.0.1 --port 8000 --app-dir src\n"
        ),
        "{supervisord}"
    );
    let manifest = fs::read_to_string(project.join("rspy.toml")).unwrap();
    assert!(manifest.contains("health_path = \"/health\""), "{manifest}");
    let dockerfile = fs::read_to_string(project.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("RUN pip install -r python/requirements.txt uvicorn supervisor==4.3.0"),
        "{dockerfile}"
    );
}

#[test]
fn gunicorns_config_file_sets_the_idle_timeout() {
    // gunicorn reads gunicorn.conf.py from the folder it runs in (python/ once adopted).
    let (_dir, project) = fixture("flask");
    fs::write(
        project.join("gunicorn.conf.py"),
        "workers = 2\nkeepalive = 10  # behind a load balancer\n",
    )
    .unwrap();
    let out = init(&project, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(
            "keep-alive: 10 s (keepalive = 10 in gunicorn.conf.py): the api closes idle \
             connections after 8000 ms"
        ),
        "{}",
        out.stdout
    );
    let manifest = fs::read_to_string(project.join("rspy.toml")).unwrap();
    assert!(manifest.contains("idle_timeout_ms = 8000"), "{manifest}");
    assert!(project.join("python/gunicorn.conf.py").is_file());
}

#[test]
fn a_python_server_without_keep_alive_gets_a_connection_per_request() {
    let (_dir, project) = fixture("flask");
    fs::write(project.join("gunicorn.conf.py"), "keepalive = 0\n").unwrap();
    let out = init(&project, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(
            "keep-alive: 0 s (keepalive = 0 in gunicorn.conf.py): the api opens a new \
             connection to Python for every request"
        ),
        "{}",
        out.stdout
    );
    let manifest = fs::read_to_string(project.join("rspy.toml")).unwrap();
    assert!(manifest.contains("idle_timeout_ms = 0\n"), "{manifest}");
    let out = rspy_ok(&project, &["check"]);
    assert!(out.starts_with("ok: "), "{out}");
}

#[test]
fn bad_input_is_refused_and_touches_nothing() {
    let dir = TempDir::new().unwrap();
    let root = dir.path();

    // Not a Python project.
    let docs = root.join("docs");
    fs::create_dir_all(&docs).unwrap();
    fs::write(docs.join("README.md"), "# notes\n").unwrap();
    assert_refused(
        &docs,
        &["init"],
        &["is not a Python project", "`requirements.txt`", "rspy new"],
    );

    // A folder that does not exist, and a file.
    assert_refused(root, &["init", "missing"], &["`missing` does not exist"]);
    assert_refused(
        &docs,
        &["init", "README.md"],
        &["`README.md` is not a directory"],
    );

    // No app to be found, and no --python-cmd.
    let (_plain_dir, plain) = fixture("plain");
    assert_refused(
        &plain,
        &["init"],
        &[
            "cannot tell how the service starts",
            "--python-cmd",
            "127.0.0.1:8000",
        ],
    );
    assert_refused(
        &plain,
        &["init", "--python-cmd", " "],
        &["invalid `--python-cmd"],
    );

    // Two apps: rspy does not guess.
    let (_two_dir, two) = fixture("fastapi");
    fs::write(
        two.join("admin.py"),
        "from fastapi import FastAPI\n\nadmin = FastAPI()\n",
    )
    .unwrap();
    let message = refusal(
        &two,
        &["init"],
        &["found 2 apps", "admin:admin", "service.main:app"],
    );
    assert!(message.contains("--python-cmd"), "{message}");

    // A python/ folder already there.
    let (_py_dir, with_python) = fixture("flask");
    fs::create_dir_all(with_python.join("python")).unwrap();
    fs::write(with_python.join("python/notes.txt"), "mine\n").unwrap();
    assert_refused(
        &with_python,
        &["init"],
        &["already has a `python/` folder", "rename yours"],
    );

    // The place where rspy would set the user's workflow aside is taken.
    let (_taken_dir, taken) = fixture("fastapi");
    fs::write(
        taken.join(".github/workflows/ci.pre-rspy.yml"),
        "name: old\n",
    )
    .unwrap();
    assert_refused(
        &taken,
        &["init"],
        &["`.github/workflows/ci.pre-rspy.yml`", "is taken too"],
    );

    // The api's own port, and a folder name that cannot name the project.
    let (_port_dir, port) = fixture("fastapi");
    assert_refused(
        &port,
        &["init", "--python-port", "8080"],
        &["`8080`", "the api's port"],
    );
    let upper = root.join("Legacy");
    copy_tree(&repo_root().join("cli/tests/fixtures/init/fastapi"), &upper);
    assert_refused(
        &upper,
        &["init"],
        &["invalid project name `Legacy`", "--name"],
    );
}

#[test]
fn a_failure_after_the_moves_puts_everything_back() {
    // `.github` as a file is kept at the root, and is in the way of the workflow rspy adds:
    // the failure comes after the service was moved into python/.
    let (_dir, project) = fixture("flask");
    fs::remove_dir_all(project.join(".github")).unwrap();
    fs::write(project.join(".github"), "not a folder\n").unwrap();
    let before = snapshot(&project);
    let out = init(&project, &[]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains(".github"), "{}", out.stderr);
    assert_eq!(snapshot(&project), before, "the project is not as it was");
}
