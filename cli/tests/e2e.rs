//! End to end: `rspy new`, then the generated project's own checks, a release build, its
//! Python service installed in a virtual environment, and the real supervisord running both
//! processes, driven over HTTP on loopback — the steps its Dockerfile and CI take.
//!
//! Needs `python3` with `venv` and access to PyPI (or a warm pip cache). Generated projects
//! share one target folder, `target/generated`, so their dependencies build once.

mod support;

use std::fs::{self, Permissions};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::generated::{
    Supervisor, alive, check, free_port, is_root, json_field, listening_addresses, shared_target,
    wait_for,
};
use support::http::{Response, get, request};
use support::http2::Http2WebSocket;
use support::raw::{WS_TEXT, ws_client_frame, ws_read_frame};
use support::{rspy, rspy_ok, run_in};
use tempfile::TempDir;

/// The socket is a socket, in a folder that only its owner may enter; when the test runs as
/// root (as CI does), another user (`nobody`) is refused by the kernel when connecting, while
/// reading a file of the project beside it works.
fn only_the_owner_reaches(socket: &Path, project: &Path, context: &dyn Fn(&str) -> String) {
    let kind = fs::metadata(socket).map(|m| m.file_type().is_socket());
    assert!(
        matches!(kind, Ok(true)),
        "{}",
        context(&format!("{} is not a socket", socket.display()))
    );
    let folder = fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        folder.permissions().mode() & 0o777,
        0o700,
        "{} is open to others",
        socket.parent().unwrap().display()
    );
    if !is_root() {
        eprintln!("not root: skipped connecting to the socket as another user");
        return;
    }
    let as_nobody = |code: &str, path: &Path| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", "python3", "-c", code])
            .arg(path)
            .output()
            .expect("runuser")
    };
    let read = as_nobody(
        "import sys; open(sys.argv[1]).read()",
        &project.join("rspy.toml"),
    );
    assert!(read.status.success(), "nobody reads rspy.toml: {read:?}");
    let connect = as_nobody(
        "import socket, sys\n\
         s = socket.socket(socket.AF_UNIX)\n\
         try:\n    s.connect(sys.argv[1])\n\
         except PermissionError:\n    sys.exit(3)",
        socket,
    );
    assert_eq!(
        connect.status.code(),
        Some(3),
        "another user is refused the socket: {connect:?}"
    );
}

#[test]
fn generated_service_builds_checks_and_runs_under_supervisord() {
    let python_port = free_port();
    let mut service = Service::new("e2e-svc", &["--python-port", &python_port.to_string()]);
    service.python_port = Some(python_port);
    // The generated project's own checks, as its CI runs them.
    service.check("cargo", &["fmt", "--all", "--check"]);
    service.clippy_and_tests();
    service.install();
    service.check(".venv/bin/ruff", &["check", "python"]);
    service.check(".venv/bin/ruff", &["format", "--check", "python"]);
    service.check(".venv/bin/pytest", &["-q", "python/tests"]);
    service.run_under_supervisord();
}

#[test]
fn unix_socket_transport_runs_under_supervisord() {
    // The longest name rspy accepts, so the formatters' layout is checked where names could
    // change it; the socket path (run/python.sock) does not depend on it.
    let name = format!("e2e-sock-{}", "x".repeat(64 - "e2e-sock-".len()));
    let mut service = Service::new(&name, &["--transport", "unix"]);
    service.socket = Some(service.project.join("run/python.sock"));
    // The temporary folder is 0700: open it as a home folder would be, so that only the
    // socket's own folder stands between other users and Python.
    fs::set_permissions(
        service.project.parent().unwrap(),
        Permissions::from_mode(0o755),
    )
    .unwrap();
    service.check("cargo", &["fmt", "--all", "--check"]);
    service.install();
    service.check(".venv/bin/ruff", &["format", "--check", "python"]);
    service.run_under_supervisord();
}

#[test]
fn route_commands_keep_the_generated_project_green() {
    let service = Service::new("e2e-routes", &["--vcs", "none"]);
    let commands: [&[&str]; 7] = [
        &["add-route", "GET", "/users/{id}", "--native"],
        &[
            "add-route",
            "POST",
            "/users",
            "--native",
            "--name",
            "create_user",
        ],
        &["add-route", "ANY", "/files/{kind}/{*rest}", "--native"],
        &["add-route", "GET", "/", "--native"],
        &[
            "add-route",
            "POST",
            "/reports",
            "--proxy",
            "--timeout",
            "60000",
        ],
        &[
            "add-route",
            "GET",
            "/hello/python",
            "--native",
            "--force",
            "--name",
            "greetings::hello_python",
        ],
        &["remove-route", "POST", "/users"],
    ];
    for args in commands {
        rspy_ok(&service.project, args);
        // The Rust rspy writes is laid out as rustfmt would, after every command.
        service.check("cargo", &["fmt", "--all", "--check"]);
    }
    service.clippy_and_tests();
}

/// The JSON string field `field` of a JSON body, or `None`.
fn json_str(body: &str, field: &str) -> Option<String> {
    json_field(body, field).map(str::to_owned)
}

#[test]
fn migration_route_by_route_under_supervisord() {
    let python_port = free_port();
    let mut service = Service::new(
        "e2e-migrate",
        &["--vcs", "none", "--python-port", &python_port.to_string()],
    );
    service.python_port = Some(python_port);
    let project = service.project.clone();
    // The Python service as a team has it: an endpoint to migrate and a slow one.
    let main_py = project.join("python/app/main.py");
    let mut python = fs::read_to_string(&main_py).unwrap();
    python.push_str(
        r#"

import asyncio  # noqa: E402


@app.get("/users/{user_id}")
async def get_user(user_id: int) -> dict[str, object]:
    return {"id": user_id, "from": "python"}


@app.get("/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(3)
    return {"from": "python"}
"#,
    );
    fs::write(&main_py, python).unwrap();

    // Day one of the migration: the endpoint is declared native, still a pass-through; the
    // slow one is declared proxied with its own timeout.
    rspy_ok(&project, &["add-route", "GET", "/users/{id}", "--native"]);
    rspy_ok(
        &project,
        &["add-route", "GET", "/slow", "--proxy", "--timeout", "500"],
    );
    // A new public path for an endpoint Python keeps serving under its old one.
    rspy_ok(
        &project,
        &[
            "add-route",
            "GET",
            "/v2/users/{id}",
            "--proxy",
            "--upstream-path",
            "/users/{id}",
        ],
    );
    service.install();
    let api_port = free_port();
    {
        let mut supervisor = Supervisor::start(&project, api_port);
        wait_for(api_port, "/readyz", Duration::from_secs(60), |r| {
            r.status == 200
        });
        let user = get(api_port, "/users/7").unwrap();
        assert_eq!(
            json_str(&user.body, "from").as_deref(),
            Some("python"),
            "the stub passes through: {user:?}"
        );
        let renamed = get(api_port, "/v2/users/9?verbose=1").unwrap();
        assert_eq!(renamed.status, 200, "{renamed:?}");
        assert_eq!(
            (
                json_str(&renamed.body, "from"),
                renamed.body.contains("\"id\":9")
            ),
            (Some("python".to_owned()), true),
            "Python answers /users/9 for /v2/users/9: {renamed:?}"
        );

        let start = Instant::now();
        let slow = get(api_port, "/slow").unwrap();
        let took = start.elapsed();
        assert_eq!(slow.status, 504, "{slow:?}");
        assert!(
            took < Duration::from_secs(2),
            "the route's 500 ms timeout, not Python's 3 s: {took:?}"
        );
        assert_eq!(
            json_str(&slow.body, "code").as_deref(),
            Some("upstream_timeout"),
            "{slow:?}"
        );
        assert_eq!(
            get(api_port, "/hello/rust").unwrap().status,
            200,
            "the api stays responsive"
        );

        // `rspy routes --json` says what the server does: each route is answered by its side.
        let table = rspy_ok(&project, &["routes", "--json"]);
        for (path, request_path, mode) in [
            ("/hello/rust", "/hello/rust", "native"),
            ("/hello/python", "/hello/python", "proxy"),
            ("/users/{id}", "/users/7", "native"),
            ("/slow", "/slow", "proxy"),
            ("/v2/users/{id}", "/v2/users/9", "proxy"),
        ] {
            let entry = format!("\"path\": \"{path}\",\n      \"mode\": \"{mode}\"");
            assert!(table.contains(&entry), "{path} is {mode} in {table}");
            let answer = get(api_port, request_path).unwrap();
            assert_ne!(answer.status, 404, "{path} is served: {answer:?}");
        }
        assert!(supervisor.stop().is_some_and(|s| s.success()));
    }

    // The Rust implementation replaces the pass-through: now Rust answers.
    let module = project.join("crates/api/src/routes/users.rs");
    let code = fs::read_to_string(&module).unwrap().replace(
        "crate::proxy::forward(state, request).await",
        "let _ = (state, request);\n    let body = serde_json::json!({\"id\": _id.parse::<u64>().ok(), \"from\": \"rust\"});\n    Ok(axum::response::IntoResponse::into_response(axum::Json(body)))",
    );
    fs::write(&module, code).unwrap();
    let user = service.rebuild_and_get(api_port, "/users/7");
    assert_eq!(
        json_str(&user.body, "from").as_deref(),
        Some("rust"),
        "{user:?}"
    );

    // Removed, the route falls back to Python again (the fallback is `proxy`).
    let out = rspy_ok(&project, &["remove-route", "GET", "/users/{id}"]);
    assert!(
        out.contains("Kept crates/api/src/routes/users.rs"),
        "edited, so kept: {out}"
    );
    let user = service.rebuild_and_get(api_port, "/users/7");
    assert_eq!(
        json_str(&user.body, "from").as_deref(),
        Some("python"),
        "{user:?}"
    );

    // The end state: unmatched requests get 404 from Rust and never reach Python. The
    // WebSocket echo is declared so that it still does.
    rspy_ok(&project, &["add-route", "GET", "/ws/echo", "--proxy"]);
    rspy_ok(&project, &["set-fallback", "none"]);
    service.check("cargo", &["build", "--release"]);
    let mut supervisor = Supervisor::start(&project, api_port);
    wait_for(api_port, "/readyz", Duration::from_secs(60), |r| {
        r.status == 200
    });
    let unmatched = request(
        api_port,
        "GET",
        "/users/7",
        &[("x-request-id", "e2e-unmatched")],
    )
    .unwrap();
    assert_eq!(unmatched.status, 404, "{unmatched:?}");
    assert_eq!(
        json_str(&unmatched.body, "code").as_deref(),
        Some("not_found"),
        "{unmatched:?}"
    );
    let declared = request(
        api_port,
        "GET",
        "/hello/python",
        &[("x-request-id", "e2e-declared")],
    )
    .unwrap();
    assert_eq!(
        json_str(&declared.body, "language").as_deref(),
        Some("python"),
        "declared proxy routes still reach Python"
    );
    // An HTTP/2 client opens a WebSocket with CONNECT, not GET: the declared `GET /ws/echo`
    // takes it all the same, and an undeclared path does not.
    let mut ws =
        Http2WebSocket::open(api_port, "/ws/echo", &[("sec-websocket-version", "13")]).unwrap();
    assert_eq!(ws.answer.status, 200, "{:?}", ws.answer);
    ws.send(&ws_client_frame(WS_TEXT, b"still Python", [1, 2, 3, 4]))
        .unwrap();
    let echo = ws_read_frame(&mut ws).unwrap();
    assert_eq!(
        (echo.opcode, echo.payload.as_slice()),
        (WS_TEXT, &b"still Python"[..])
    );
    // Closed now, or the api's graceful stop would wait for it.
    drop(ws);
    let undeclared = Http2WebSocket::open(api_port, "/ws/other", &[]).unwrap();
    assert_eq!(undeclared.answer.status, 404, "{:?}", undeclared.answer);
    // Python logs every request it gets with its id: the declared one shows up, the other never.
    let log = supervisor.log.clone();
    let start = Instant::now();
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("request_id=e2e-declared")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Python never logged the declared request"
        );
        sleep(Duration::from_millis(50));
    }
    assert!(
        !fs::read_to_string(&log)
            .unwrap()
            .contains("request_id=e2e-unmatched"),
        "the unmatched request reached Python"
    );
    assert!(supervisor.stop().is_some_and(|s| s.success()));
}

/// A project made by `rspy new` in a temporary folder.
struct Service {
    _dir: TempDir,
    name: String,
    project: PathBuf,
    /// The Unix socket Python listens on, with the unix transport.
    socket: Option<PathBuf>,
    /// Python's loopback port, with the tcp transport.
    python_port: Option<u16>,
}

impl Service {
    fn new(name: &str, options: &[&str]) -> Self {
        let dir = TempDir::new().unwrap();
        let out = run_in(dir.path(), rspy().args(["new", name]).args(options));
        assert_eq!(out.code, Some(0), "{out:?}");
        let project = dir.path().join(name);
        Self {
            _dir: dir,
            name: name.to_owned(),
            project,
            socket: None,
            python_port: None,
        }
    }

    fn check(&self, program: &str, args: &[&str]) {
        check(&self.project, program, args);
    }

    /// Rebuilds the api, runs the service under supervisord just long enough to answer
    /// `GET path`, and returns the answer.
    fn rebuild_and_get(&self, api_port: u16, path: &str) -> Response {
        self.check("cargo", &["build", "--release"]);
        let mut supervisor = Supervisor::start(&self.project, api_port);
        wait_for(api_port, "/readyz", Duration::from_secs(60), |r| {
            r.status == 200
        });
        let response = get(api_port, path).unwrap();
        assert!(
            supervisor.stop().is_some_and(|status| status.success()),
            "supervisord stops cleanly"
        );
        response
    }

    /// The generated project's Rust checks, as its CI runs them: clippy, then its tests.
    fn clippy_and_tests(&self) {
        self.check(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        );
        self.check("cargo", &["test", "--workspace"]);
    }

    /// What the Dockerfile does: a release build of the api, and the Python service with
    /// supervisord in a virtual environment.
    fn install(&self) {
        self.check("cargo", &["build", "--release"]);
        self.check("python3", &["-m", "venv", ".venv"]);
        self.check(
            ".venv/bin/pip",
            &["install", "--quiet", "./python[dev]", "supervisor"],
        );
        // The release binary where deploy/supervisord.conf (and the image) expect it.
        let binary = format!("{}-api", self.name);
        let release = self.project.join("target/release");
        fs::create_dir_all(&release).unwrap();
        std::os::unix::fs::symlink(
            shared_target().join("release").join(&binary),
            release.join(&binary),
        )
        .unwrap();
    }

    /// Both processes under the real supervisord: both sample routes answer; Python killed
    /// means fast 503s from proxied routes while native ones keep working; supervisord brings
    /// Python back; stopping supervisord stops both.
    fn run_under_supervisord(&self) {
        let api_port = free_port();
        let mut supervisor = Supervisor::start(&self.project, api_port);
        let log = supervisor.log.clone();
        let context = |what: &str| {
            let output = fs::read_to_string(&log).unwrap_or_default();
            format!("{what}\n--- supervisord output ---\n{output}")
        };
        wait_for(api_port, "/readyz", Duration::from_secs(60), |r| {
            r.status == 200
        });
        if let Some(socket) = &self.socket {
            only_the_owner_reaches(socket, &self.project, &context);
            // The api checks the same once Python is ready, and would warn.
            let output = fs::read_to_string(&log).unwrap_or_default();
            assert!(
                output.contains("python upstream is ready")
                    && !output.contains("other local users may reach Python"),
                "{}",
                context("the api found the socket open to others")
            );
        }
        if let Some(port) = self.python_port {
            assert_eq!(
                listening_addresses(port),
                ["0100007F"],
                "Python listens on 127.0.0.1 only"
            );
        }

        let rust = get(api_port, "/hello/rust").unwrap();
        assert_eq!(rust.status, 200, "{}", context(&format!("{rust:?}")));
        assert_eq!(json_field(&rust.body, "language"), Some("rust"), "{rust:?}");
        assert!(rust.header("x-request-id").is_some(), "{rust:?}");
        let python = get(api_port, "/hello/python").unwrap();
        assert_eq!(python.status, 200, "{}", context(&format!("{python:?}")));
        assert_eq!(
            json_field(&python.body, "language"),
            Some("python"),
            "{python:?}"
        );
        assert!(python.header("x-request-id").is_some(), "{python:?}");
        let metrics = get(supervisor.metrics_port, "/metrics").unwrap();
        assert_eq!(metrics.status, 200, "{metrics:?}");
        for series in [
            "api_requests_total{route=\"/hello/rust\",mode=\"native\",status=\"2xx\"} 1",
            "api_requests_total{route=\"/hello/python\",mode=\"proxy\",status=\"2xx\"} 1",
            "api_upstream_ready 1",
        ] {
            assert!(
                metrics.body.contains(series),
                "{series} in {}",
                metrics.body
            );
        }

        // Kill Python: proxied routes fail fast with 503, native ones keep working.
        let python_pid = supervisor
            .child_pid("uvicorn")
            .unwrap_or_else(|| panic!("{}", context("no uvicorn child")));
        let api_pid = supervisor
            .child_pid(&format!("{}-api", self.name))
            .unwrap_or_else(|| panic!("{}", context("no api child")));
        assert!(
            Supervisor::signal(python_pid, "-KILL"),
            "kill -KILL {python_pid}"
        );
        let killed = Instant::now();
        while alive(python_pid) {
            assert!(
                killed.elapsed() < Duration::from_secs(10),
                "{}",
                context("Python survived SIGKILL")
            );
            sleep(Duration::from_millis(5));
        }
        let start = Instant::now();
        let down = get(api_port, "/hello/python").unwrap();
        let took = start.elapsed();
        assert_eq!(down.status, 503, "{}", context(&format!("{down:?}")));
        assert!(took < Duration::from_secs(1), "503 took {took:?}");
        assert!(down.header("retry-after").is_some(), "{down:?}");
        assert_eq!(
            json_field(&down.body, "code"),
            Some("upstream_unavailable"),
            "{down:?}"
        );
        let ready = get(api_port, "/readyz").unwrap();
        assert_eq!(
            ready.status,
            503,
            "{}",
            context(&format!("/readyz while Python is down: {ready:?}"))
        );
        assert_eq!(get(api_port, "/hello/rust").unwrap().status, 200);

        // supervisord restarts Python, and everything answers again.
        wait_for(api_port, "/readyz", Duration::from_secs(30), |r| {
            r.status == 200
        });
        let back = wait_for(api_port, "/hello/python", Duration::from_secs(10), |r| {
            r.status == 200
        });
        assert_eq!(json_field(&back.body, "language"), Some("python"));
        let new_python_pid = supervisor.child_pid("uvicorn").expect("Python runs again");
        assert_ne!(new_python_pid, python_pid, "a new Python process");
        assert_eq!(get(api_port, "/hello/rust").unwrap().status, 200);

        // Stopping supervisord stops both processes.
        let status = supervisor
            .stop()
            .unwrap_or_else(|| panic!("{}", context("supervisord did not stop")));
        assert!(
            status.success(),
            "{}",
            context(&format!("supervisord exited with {status}"))
        );
        assert!(!alive(api_pid), "the api stopped");
        assert!(!alive(new_python_pid), "Python stopped");
        assert!(get(api_port, "/livez").is_err(), "nothing listens any more");
    }
}
