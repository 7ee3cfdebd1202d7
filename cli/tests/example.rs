//! End to end on `examples/bookshop`: the legacy service's own HTTP test suite passes
//! against Python directly, then through the api after `rspy init` and `rspy import-routes`,
//! then through the api of the committed mid-migration example, where two routes are Rust.
//! Clients never notice. Also checks that the committed example is what rspy makes today.
//!
//! Real parts throughout: uvicorn, the release api binaries, supervisord, pytest over HTTP.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::generated::{Supervisor, check, free_port, shared_target, wait_for};
use support::http::get;
use support::{copy_tree, repo_root, rspy_ok, run_in, snapshot};
use tempfile::TempDir;

/// Files of the mid-migration example that the migration itself wrote or changed; every other
/// file outside `python/` must be exactly what `rspy init` makes from the legacy service.
fn changed_by_the_migration(path: &str) -> bool {
    path == "rspy.toml"
        || path == "Cargo.toml"
        || path == "Cargo.lock"
        || path == "MIGRATION.md"
        || path.starts_with("crates/core/")
        || path.starts_with("crates/shared/")
        || path.starts_with("crates/api/src/routes")
        || path == "crates/api/Cargo.toml"
        || path == "crates/api/tests/native.rs"
}

/// The legacy suite, run from `suite_dir` against `base_url`; fails the test unless it passes.
fn run_suite(venv: &Path, suite_dir: &Path, base_url: &str, what: &str) -> String {
    let out = run_in(
        suite_dir,
        Command::new(venv.join("bin/python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .env("BASE_URL", base_url)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    assert_eq!(
        out.code,
        Some(0),
        "the bookshop suite failed {what}:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let summary = out.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(summary.contains(" passed"), "{what}: {}", out.stdout);
    summary
}

/// uvicorn serving the legacy app directly; killed on drop.
struct Uvicorn(Child);

impl Drop for Uvicorn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Points a copy of an adopted project at `python_port` (the example is committed with 8000;
/// tests run in parallel and take free ports).
fn move_python_to(project: &Path, python_port: u16) {
    for file in ["rspy.toml", "deploy/supervisord.conf"] {
        let path = project.join(file);
        let text = fs::read_to_string(&path).unwrap();
        let moved = text
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{python_port}"))
            .replace("--port 8000", &format!("--port {python_port}"))
            .replace("PORT=\"8000\"", &format!("PORT=\"{python_port}\""));
        assert_ne!(text, moved, "{file} names port 8000");
        fs::write(&path, moved).unwrap();
    }
}

/// Builds the api in release, links it where supervisord.conf expects it, links the venv as
/// the project's `.venv`, and runs both under supervisord until the api is ready.
fn serve(project: &Path, venv: &Path, binary: &str) -> (Supervisor, u16) {
    // The committed example has its Cargo.lock, and builds with exactly it.
    let locked = project.join("Cargo.lock").exists();
    let mut build = vec!["build", "--release"];
    if locked {
        build.push("--locked");
    }
    check(project, "cargo", &build);
    let release = project.join("target/release");
    fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(
        shared_target().join("release").join(binary),
        release.join(binary),
    )
    .unwrap();
    std::os::unix::fs::symlink(venv, project.join(".venv")).unwrap();
    let api_port = free_port();
    let supervisor = Supervisor::start(project, api_port);
    let log = supervisor.log.clone();
    let ready = std::panic::catch_unwind(|| {
        wait_for(api_port, "/readyz", Duration::from_secs(60), |r| {
            r.status == 200
        })
    });
    assert!(
        ready.is_ok(),
        "the api never became ready:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
    (supervisor, api_port)
}

fn metrics(port: u16) -> String {
    get(port, "/metrics")
        .expect("the metrics endpoint answers")
        .body
}

#[test]
fn the_bookshop_suite_passes_directly_after_init_and_with_two_native_routes() {
    let scratch = TempDir::new().unwrap();
    let legacy = repo_root().join("examples/bookshop/legacy");
    let venv = scratch.path().join("venv");
    check(
        scratch.path(),
        "python3",
        &["-m", "venv", venv.to_str().unwrap()],
    );
    let requirements = legacy.join("requirements-dev.txt");
    check(
        scratch.path(),
        venv.join("bin/pip").to_str().unwrap(),
        &[
            "install",
            "--quiet",
            "-r",
            requirements.to_str().unwrap(),
            "supervisor",
        ],
    );

    // 1. The legacy service as it is: uvicorn, and its suite straight at it.
    let direct = scratch.path().join("direct");
    copy_tree(&legacy, &direct);
    let port = free_port();
    let _uvicorn = Uvicorn(
        Command::new(venv.join("bin/python"))
            .args(["-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .current_dir(&direct)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("uvicorn starts"),
    );
    let document = wait_for(port, "/openapi.json", Duration::from_secs(30), |r| {
        r.status == 200
    });
    let openapi = scratch.path().join("openapi.json");
    fs::write(&openapi, document.body).unwrap();
    let summary = run_suite(
        &venv,
        &direct,
        &format!("http://127.0.0.1:{port}"),
        "directly",
    );
    eprintln!("directly: {summary}");
    drop(_uvicorn);

    // 2. Adopted: `rspy init`, every operation imported as a proxied route, both processes
    // under supervisord; the suite through the api.
    // Its own name: two `bookshop` workspaces building into the shared target folder would
    // take each other's artifacts for fresh.
    let adopted = scratch.path().join("adopted/bookshop");
    copy_tree(&legacy, &adopted);
    let port_arg = free_port().to_string();
    rspy_ok(
        &adopted,
        &["init", "--name", "adopted-shop", "--python-port", &port_arg],
    );
    let imported = rspy_ok(&adopted, &["import-routes", openapi.to_str().unwrap()]);
    assert!(
        imported.contains("7 routes: 0 native, 7 proxy"),
        "{imported}"
    );
    let (mut supervisor, api_port) = serve(&adopted, &venv, "adopted-shop-api");
    let suite = adopted.join("python");
    let summary = run_suite(
        &venv,
        &suite,
        &format!("http://127.0.0.1:{api_port}"),
        "after init",
    );
    eprintln!("after init: {summary}");
    let text = metrics(supervisor.metrics_port);
    assert!(
        text.contains("api_requests_total{route=\"/isbn/{isbn}\",mode=\"proxy\",status=\"2xx\"}"),
        "{text}"
    );
    assert!(supervisor.stop().is_some_and(|s| s.success()));

    // 3. The committed mid-migration example: the same suite, with /isbn/{isbn} and
    // /shipping/quote answered by Rust.
    let migrated_source = repo_root().join("examples/bookshop/migrated");
    let migrated = scratch.path().join("migrated/bookshop");
    copy_tree(&migrated_source, &migrated);
    // Its own checks, as its CI runs them: the Rust rules and handlers have their tests.
    check(&migrated, "cargo", &["fmt", "--all", "--check"]);
    check(&migrated, "cargo", &["test", "--workspace", "--locked"]);
    let routes = rspy_ok(&migrated, &["routes"]);
    assert!(routes.contains("7 routes: 2 native, 5 proxy"), "{routes}");
    let python_port = free_port();
    move_python_to(&migrated, python_port);
    let (mut supervisor, api_port) = serve(&migrated, &venv, "bookshop-api");
    let suite = migrated.join("python");
    let summary = run_suite(
        &venv,
        &suite,
        &format!("http://127.0.0.1:{api_port}"),
        "mid-migration",
    );
    eprintln!("mid-migration: {summary}");
    let text = metrics(supervisor.metrics_port);
    for route in ["/isbn/{isbn}", "/shipping/quote"] {
        let native =
            format!("api_requests_total{{route=\"{route}\",mode=\"native\",status=\"2xx\"}}");
        assert!(
            text.contains(&native),
            "{route} is not served by Rust:\n{text}"
        );
        let proxied = format!("api_requests_total{{route=\"{route}\",mode=\"proxy\"");
        assert!(
            !text.contains(&proxied),
            "{route} still reached Python:\n{text}"
        );
    }
    assert!(
        text.contains("api_requests_total{route=\"/books\",mode=\"proxy\",status=\"2xx\"}"),
        "{text}"
    );
    assert!(supervisor.stop().is_some_and(|s| s.success()));
}

#[test]
fn the_committed_example_is_what_rspy_init_makes() {
    let scratch = TempDir::new().unwrap();
    let adopted = scratch.path().join("bookshop");
    copy_tree(&repo_root().join("examples/bookshop/legacy"), &adopted);
    rspy_ok(&adopted, &["init"]);
    let made = snapshot(&adopted);
    let committed = snapshot(&repo_root().join("examples/bookshop/migrated"));
    for (path, bytes) in &made {
        if path.ends_with('/') || changed_by_the_migration(path) {
            continue;
        }
        assert_eq!(
            committed.get(path),
            Some(bytes),
            "examples/bookshop/migrated/{path} is not what `rspy init` makes from the legacy \
             service today; run scripts/refresh-example.sh"
        );
    }
}
