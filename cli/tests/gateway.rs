//! End to end: the generated api as a gateway in front of its Python service, over both
//! transports (loopback TCP and a Unix socket). A project from `rspy new`, with the probe
//! routes of `tests/fixtures/gateway/probe.py` added to its Python side, its api built in
//! release, uvicorn and the api binary started directly (not under supervisord, which
//! e2e.rs covers) so that each test sets the api's environment itself.
//!
//! Checked, with requests written byte for byte: that the api is transparent (the same
//! requests sent to Python directly and through the api get the same answers), that it
//! streams, tunnels WebSockets (opened over HTTP/1.1 and HTTP/2), survives and reports
//! Python's failures, enforces its limits, keeps `X-Forwarded-*` honest, carries the request
//! id and trace context to Python's log, and counts all of it in its metrics.
//!
//! Needs `python3` with `venv` and access to PyPI (or a warm pip cache), like e2e.rs. Both
//! projects build into the shared `target/generated`.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value;
use support::generated::{free_port, shared_target};
use support::http2::Http2WebSocket;
use support::raw::{
    RawResponse, Stream, Target, WS_BINARY, WS_CLOSE, WS_TEXT, WsFrame, build_request, chunked,
    exchange, exchange_while_sending, latin1, read_response, ws_client_frame, ws_close_payload,
    ws_read_frame,
};
use support::{rspy, run_in};
use tempfile::TempDir;

/// The `Host` every request sends, directly or through the api, so Python sees the same one.
const HOST: &str = "gateway.test";
const MIB: usize = 1024 * 1024;
/// The api's `MAX_BODY_BYTES` in the strict instance.
const BODY_LIMIT: usize = 1_000_000;

#[test]
fn gateway_over_tcp() {
    gateway(Transport::Tcp);
}

#[test]
fn gateway_over_unix_socket() {
    gateway(Transport::Unix);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Unix,
}

/// Everything, for one transport: one project, one Python, two apis in front of it.
fn gateway(transport: Transport) {
    let (name, options, tag): (&str, &[&str], &str) = match transport {
        Transport::Tcp => ("gw-tcp", &[], "tcp"),
        Transport::Unix => ("gw-unix", &["--transport", "unix"], "unix"),
    };
    let project = Project::generate(name, options);
    project.build_and_install();

    // Python listens where this test says, not at the project's default (a fixed port, or
    // /tmp/gw-unix-python.sock), so parallel runs never meet; the socket path stays short.
    let sockets = tempfile::Builder::new()
        .prefix("gw")
        .tempdir_in("/tmp")
        .unwrap();
    let listen = match transport {
        Transport::Tcp => Listen::Tcp(port()),
        Transport::Unix => Listen::Unix(sockets.path().join("py.sock")),
    };
    let python_log = project.root.join("python.log");
    let mut python = start_python(&project, &listen, &[], &python_log);
    let direct = listen.target();
    wait_until_ok(&direct, "/healthz", Duration::from_secs(60), &mut python);

    // The api as deployed (default limits), its metrics on a port of its own.
    let (api_port, metrics_port) = (port(), port());
    let mut api = start_api(
        &project,
        "api",
        api_port,
        &listen.url(),
        &[("METRICS_ADDR", &format!("127.0.0.1:{metrics_port}"))],
    );
    // A strict one: small bodies, short timeouts, two forwarded requests at a time, and
    // loopback a trusted proxy.
    let (strict_port, strict_metrics_port) = (port(), port());
    let mut strict = start_api(
        &project,
        "strict-api",
        strict_port,
        &listen.url(),
        &[
            ("METRICS_ADDR", &format!("127.0.0.1:{strict_metrics_port}")),
            ("MAX_BODY_BYTES", &BODY_LIMIT.to_string()),
            ("UPSTREAM_TIMEOUT_MS", "500"),
            ("UPSTREAM_TOTAL_TIMEOUT_MS", "2000"),
            ("UPSTREAM_MAX_CONCURRENCY", "2"),
            ("HEADER_READ_TIMEOUT_MS", "500"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let via_api = Target::Tcp(api_port);
    let via_strict = Target::Tcp(strict_port);
    wait_until_ok(&via_api, "/readyz", Duration::from_secs(30), &mut api);
    wait_until_ok(&via_strict, "/readyz", Duration::from_secs(30), &mut strict);

    let started = Instant::now();
    differential(&direct, &via_api);
    streaming(&via_api);
    http2_clients(&direct, &via_api, &project.root);
    websocket(|id| ws_open(&direct, id), "direct", &python_log, tag);
    websocket(|id| ws_open(&via_api, id), "api", &python_log, tag);
    websocket(|id| ws_open_http2(api_port, id), "api-h2", &python_log, tag);
    request_id_and_traceparent(&via_api, &python_log, tag);
    forwarded_headers(&via_api, &via_strict);
    oversized_bodies(&via_strict);
    hanging_python(&via_strict);
    stream_limits(&via_strict);
    slow_client(&via_strict);
    let strict_metrics = scrape(strict_metrics_port);
    for (series, at_least) in [
        (r#"api_upstream_errors_total{kind="timeout"}"#, 1.0),
        (r#"api_upstream_errors_total{kind="body_too_large"}"#, 2.0),
        (r#"api_upstream_errors_total{kind="overloaded"}"#, 1.0),
    ] {
        let value = metric(&strict_metrics, series);
        assert!(value >= at_least, "{series} is {value}:\n{strict_metrics}");
    }

    let without_keep_alive = match transport {
        Transport::Tcp => Listen::Tcp(port()),
        Transport::Unix => Listen::Unix(sockets.path().join("py-once.sock")),
    };
    python_without_keep_alive(&project, &without_keep_alive, tag);

    let killed = python_killed_mid_load(&project, &listen, &mut python, &mut api, &via_api);
    metrics(metrics_port, &via_api, &killed);
    assert!(api.alive() && strict.alive(), "both apis still run");
    eprintln!("gateway over {tag}: checks took {:?}", started.elapsed());
}

// --- Processes -------------------------------------------------------------------------------

/// A project made by `rspy new`, with the probe routes added to its Python service.
struct Project {
    _dir: TempDir,
    name: String,
    root: PathBuf,
}

impl Project {
    fn generate(name: &str, options: &[&str]) -> Self {
        let dir = TempDir::new().unwrap();
        let out = run_in(
            dir.path(),
            rspy().args(["new", name, "--vcs", "none"]).args(options),
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        let root = dir.path().join(name);
        let app = root.join("python/app");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateway/probe.py");
        fs::copy(&fixture, app.join("probe.py")).unwrap();
        let mut main = fs::read_to_string(app.join("main.py")).unwrap();
        main.push_str(
            "\nfrom app.probe import router as probe_router  # noqa: E402\n\n\
             app.include_router(probe_router)\n",
        );
        fs::write(app.join("main.py"), main).unwrap();
        Self {
            _dir: dir,
            name: name.to_owned(),
            root,
        }
    }

    /// The api in release (into the shared target folder) and, meanwhile, the Python
    /// service in a virtual environment of its own.
    fn build_and_install(&self) {
        thread::scope(|scope| {
            let python = scope.spawn(|| {
                self.check(Command::new("python3").args(["-m", "venv", ".venv"]));
                self.check(Command::new(".venv/bin/pip").args(["install", "--quiet", "./python"]));
            });
            self.check(
                Command::new("cargo")
                    .args(["build", "--release"])
                    .env("CARGO_TARGET_DIR", shared_target()),
            );
            python.join().unwrap();
        });
    }

    fn check(&self, command: &mut Command) {
        let shown = format!("{command:?}");
        let out = run_in(&self.root, command);
        assert_eq!(
            out.code,
            Some(0),
            "{shown} failed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }

    fn api_binary(&self) -> PathBuf {
        shared_target()
            .join("release")
            .join(format!("{}-api", self.name))
    }
}

/// A child process, killed (and reaped) on drop; its output goes to `log`, whose end is
/// printed if the test is failing.
struct Proc {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(what: &str, command: &mut Command, log: &Path) -> Self {
        // Appended to: a restarted Python logs on in the same file.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        Self {
            what: what.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL, then waits for the process to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- last lines of {} ({}) ---\n{}",
                self.what,
                self.log.display(),
                tail.join("\n")
            );
        }
    }
}

/// Where Python listens.
enum Listen {
    Tcp(u16),
    Unix(PathBuf),
}

impl Listen {
    fn target(&self) -> Target {
        match self {
            Self::Tcp(port) => Target::Tcp(*port),
            Self::Unix(path) => Target::Unix(path.clone()),
        }
    }

    /// The api's `UPSTREAM_URL` for it.
    fn url(&self) -> String {
        match self {
            Self::Tcp(port) => format!("http://127.0.0.1:{port}"),
            Self::Unix(path) => format!("unix:{}", path.display()),
        }
    }
}

/// uvicorn serving the project's app, as deploy/supervisord.conf starts it, with `options`
/// added.
fn start_python(project: &Project, listen: &Listen, options: &[&str], log: &Path) -> Proc {
    let mut command = Command::new(project.root.join(".venv/bin/python"));
    command.args(["-m", "uvicorn", "app.main:app", "--no-access-log"]);
    command.args(options);
    match listen {
        Listen::Tcp(port) => command.args(["--host", "127.0.0.1", "--port", &port.to_string()]),
        Listen::Unix(path) => command.arg("--uds").arg(path),
    };
    command
        .current_dir(project.root.join("python"))
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("PYTHON_LOG_LEVEL");
    Proc::spawn("uvicorn", &mut command, log)
}

/// Every setting the api reads: none is inherited from the test's environment.
const API_SETTINGS: [&str; 16] = [
    "PORT",
    "UPSTREAM_URL",
    "UPSTREAM_CONNECT_TIMEOUT_MS",
    "UPSTREAM_TIMEOUT_MS",
    "UPSTREAM_TOTAL_TIMEOUT_MS",
    "UPSTREAM_IDLE_TIMEOUT_MS",
    "UPSTREAM_HEALTH_PATH",
    "UPSTREAM_MAX_CONCURRENCY",
    "READINESS_INTERVAL_MS",
    "MAX_BODY_BYTES",
    "HEADER_READ_TIMEOUT_MS",
    "TRUSTED_PROXIES",
    "METRICS_ADDR",
    "RUST_LOG",
    "LOG_FORMAT",
    "WORKERS",
];

/// The api binary on `port` in front of `upstream`, with `settings` on top of the defaults.
/// Always give it a `METRICS_ADDR` (a free port, or `off`): apis of other tests run too.
fn start_api(
    project: &Project,
    what: &str,
    port: u16,
    upstream: &str,
    settings: &[(&str, &str)],
) -> Proc {
    assert!(
        settings.iter().any(|(name, _)| *name == "METRICS_ADDR"),
        "the default metrics address is shared by every api"
    );
    let mut command = Command::new(project.api_binary());
    for name in API_SETTINGS {
        command.env_remove(name);
    }
    command
        .current_dir(&project.root)
        .env("PORT", port.to_string())
        .env("UPSTREAM_URL", upstream)
        .env("READINESS_INTERVAL_MS", "200")
        .envs(settings.iter().copied());
    Proc::spawn(
        what,
        &mut command,
        &project.root.join(format!("{what}.log")),
    )
}

/// A free port no other call in this test process has handed out.
fn port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|err| err.into_inner());
    loop {
        let port = free_port();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

/// Polls `GET path` until it answers 200 (failing the test if `process` exits or `limit`
/// passes); when it did.
fn wait_until_ok(target: &Target, path: &str, limit: Duration, process: &mut Proc) -> Instant {
    let start = Instant::now();
    loop {
        let last = exchange(target, &get_request(path, &[]));
        if matches!(&last, Ok(response) if response.status == 200) {
            return Instant::now();
        }
        assert!(process.alive(), "{} exited; last: {last:?}", process.what);
        assert!(
            start.elapsed() < limit,
            "GET {path} on {target:?} not 200 within {limit:?}; last: {last:?}"
        );
        sleep(Duration::from_millis(25));
    }
}

/// Waits (up to 10 s) for a line of `log` that contains `needle`, and returns it.
fn log_line(log: &Path, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no line with `{needle}` in {}",
            log.display()
        );
        sleep(Duration::from_millis(50));
    }
}

// --- Requests --------------------------------------------------------------------------------

fn get_request(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut all = vec![("Host", HOST)];
    all.extend_from_slice(headers);
    build_request("GET", path, &all, None)
}

/// `GET path` with `headers` (and `Host`), failing the test if the exchange fails.
fn get(target: &Target, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    exchange(target, &get_request(path, headers))
        .unwrap_or_else(|err| panic!("GET {path} on {target:?}: {err}"))
}

fn json(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {response:?}"))
}

/// The `error.code` of one of the api's own error answers.
fn error_code(response: &RawResponse) -> String {
    json(response)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The headers /probe/echo saw, by name, each name's values in the order received.
fn echo_headers(response: &RawResponse) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in json(response)["headers"].as_array().unwrap() {
        let name = pair[0].as_str().unwrap().to_ascii_lowercase();
        headers
            .entry(name)
            .or_default()
            .push(pair[1].as_str().unwrap().to_owned());
    }
    headers
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos:x}", std::process::id())
}

/// 5 MiB, byte i being i % 256: what /probe/bytes sends, and a body to send.
fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 256) as u8).collect()
}

// --- Transparency ----------------------------------------------------------------------------

type Expect = Box<dyn Fn(&RawResponse) -> Result<(), String>>;

/// One request of the differential test, and what its answer must be either way.
struct Case {
    name: String,
    request: Vec<u8>,
    /// A /probe/echo request: the body describes the request Python got, so the headers the
    /// api adds show in it and it is compared field by field rather than byte for byte.
    echo: bool,
    expect: Expect,
}

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// What /probe/echo must have seen: `method`, the raw path and query, the body length.
fn echoed(method: &'static str, path: &'static str, query: &'static str, length: usize) -> Expect {
    Box::new(move |response| {
        ensure!(response.status == 200, "status {}", response.status);
        let seen = json(response);
        let want = (method, path, query, length as u64);
        let got = (
            seen["method"].as_str().unwrap_or_default(),
            seen["raw_path"].as_str().unwrap_or_default(),
            seen["query"].as_str().unwrap_or_default(),
            seen["body_length"].as_u64().unwrap_or(u64::MAX),
        );
        ensure!(got == want, "echo saw {got:?}, not {want:?}");
        Ok(())
    })
}

fn status_is(code: u16) -> Expect {
    Box::new(move |response| {
        ensure!(response.status == code, "status {}", response.status);
        Ok(())
    })
}

fn cases() -> Vec<Case> {
    let post = |path: &str, headers: &[(&str, &str)], body: &[u8]| {
        let mut all = vec![("Host", HOST)];
        all.extend_from_slice(headers);
        build_request("POST", path, &all, Some(body))
    };
    let long = "v".repeat(4000);
    let odd_headers: Vec<(&str, &str)> = vec![
        ("X-Mixed-CASE-Name", "Value With  Inner   Spaces"),
        ("x-repeated", "one"),
        ("X-Between", "between"),
        ("X-Repeated", "two"),
        ("x-REPEATED", "three"),
        ("X-Empty", ""),
        ("X-Comma", "a, b,,c"),
        ("X-Quoted", "\"quoted \\\"string\\\"\"; q=0.5"),
        // Not ASCII: bytes above 0x7F (obs-text), passed on as they are.
        ("X-Utf8", "café ✓"),
        ("X-Long", &long),
        ("Cookie", "a=1; b=2"),
        ("Authorization", "Bearer not-a-secret"),
        ("Accept", "*/*"),
    ];
    let five_mib = pattern(5 * MIB);
    // Chunked by hand: sizes of one, two and five hex digits, and a chunk extension.
    let mut hand_chunked = format!(
        "POST /probe/echo/chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\
         Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n6\r\nhello \r\n"
    )
    .into_bytes();
    hand_chunked.extend_from_slice(b"3e8;note=ext\r\n");
    hand_chunked.extend_from_slice(&[b'x'; 1000]);
    hand_chunked.extend_from_slice(b"\r\n11170\r\n");
    hand_chunked.extend_from_slice(&pattern(70_000));
    hand_chunked.extend_from_slice(b"\r\n0\r\n\r\n");

    let mut cases = vec![
        Case {
            name: "GET /hello/python".into(),
            request: get_request("/hello/python", &[]),
            echo: false,
            expect: Box::new(|response| {
                ensure!(response.status == 200, "status {}", response.status);
                ensure!(
                    json(response)["language"] == "python",
                    "body {}",
                    response.text()
                );
                Ok(())
            }),
        },
        Case {
            name: "GET with odd and repeated headers".into(),
            request: get_request("/probe/echo?x=1", &odd_headers),
            echo: true,
            expect: Box::new(|response| {
                echoed("GET", "/probe/echo", "x=1", 0)(response)?;
                let seen = echo_headers(response);
                let want: [(&str, Vec<String>); 6] = [
                    (
                        "x-repeated",
                        vec!["one".into(), "two".into(), "three".into()],
                    ),
                    ("x-empty", vec![String::new()]),
                    ("x-utf8", vec![latin1("café ✓".as_bytes())]),
                    (
                        "x-mixed-case-name",
                        vec!["Value With  Inner   Spaces".into()],
                    ),
                    ("x-long", vec!["v".repeat(4000)]),
                    ("host", vec![HOST.into()]),
                ];
                for (name, values) in want {
                    ensure!(
                        seen.get(name) == Some(&values),
                        "{name}: {:?}, not {values:?}",
                        seen.get(name)
                    );
                }
                Ok(())
            }),
        },
        Case {
            name: "HEAD".into(),
            request: build_request("HEAD", "/probe/echo", &[("Host", HOST)], None),
            echo: true,
            expect: Box::new(|response| {
                ensure!(response.status == 200, "status {}", response.status);
                ensure!(response.body.is_empty(), "a body after HEAD");
                ensure!(
                    response.header("content-length").is_some(),
                    "no content-length"
                );
                Ok(())
            }),
        },
        Case {
            name: "POST JSON".into(),
            request: post(
                "/probe/echo",
                &[("Content-Type", "application/json")],
                br#"{"hello": "world"}"#,
            ),
            echo: true,
            expect: echoed("POST", "/probe/echo", "", 18),
        },
        Case {
            name: "PUT".into(),
            request: build_request(
                "PUT",
                "/probe/echo/put",
                &[("Host", HOST), ("Content-Type", "text/plain")],
                Some(b"put body"),
            ),
            echo: true,
            expect: echoed("PUT", "/probe/echo/put", "", 8),
        },
        Case {
            name: "PATCH".into(),
            request: build_request("PATCH", "/probe/echo", &[("Host", HOST)], Some(b"patch")),
            echo: true,
            expect: echoed("PATCH", "/probe/echo", "", 5),
        },
        Case {
            name: "DELETE".into(),
            request: build_request("DELETE", "/probe/echo/7", &[("Host", HOST)], None),
            echo: true,
            expect: echoed("DELETE", "/probe/echo/7", "", 0),
        },
        Case {
            name: "OPTIONS".into(),
            request: build_request("OPTIONS", "/probe/echo", &[("Host", HOST)], None),
            echo: true,
            expect: echoed("OPTIONS", "/probe/echo", "", 0),
        },
        Case {
            name: "POST 5 MiB".into(),
            request: post(
                "/probe/echo",
                &[("Content-Type", "application/octet-stream")],
                &five_mib,
            ),
            echo: true,
            expect: echoed("POST", "/probe/echo", "", 5 * MIB),
        },
        Case {
            name: "POST chunked by hand".into(),
            request: hand_chunked,
            echo: true,
            expect: echoed("POST", "/probe/echo/chunked", "", 6 + 1000 + 70_000),
        },
        Case {
            name: "percent-encoded path and query".into(),
            request: get_request("/probe/echo/a%2Fb%20c?x=1&x=2&y=%2F", &[]),
            echo: true,
            expect: echoed("GET", "/probe/echo/a%2Fb%20c", "x=1&x=2&y=%2F", 0),
        },
        Case {
            name: "odd path and query".into(),
            request: get_request(
                "/probe/echo//double//slash/;p=1/%7e%E2%9C%93?q=a+b&q=%26&empty=&flag",
                &[],
            ),
            echo: true,
            expect: echoed(
                "GET",
                "/probe/echo//double//slash/;p=1/%7e%E2%9C%93",
                "q=a+b&q=%26&empty=&flag",
                0,
            ),
        },
        Case {
            name: "GET 5 MiB streamed".into(),
            request: get_request(&format!("/probe/bytes?size={}", 5 * MIB), &[]),
            echo: false,
            expect: Box::new(|response| {
                ensure!(response.status == 200, "status {}", response.status);
                ensure!(
                    response.body == pattern(5 * MIB),
                    "{} bytes, not the 5 MiB pattern",
                    response.body.len()
                );
                Ok(())
            }),
        },
        Case {
            name: "chunks".into(),
            request: get_request("/probe/chunked?count=3&interval_ms=20", &[]),
            echo: false,
            expect: Box::new(|response| {
                ensure!(
                    response.body == b"chunk 1\nchunk 2\nchunk 3\n",
                    "body {:?}",
                    response.text()
                );
                Ok(())
            }),
        },
        Case {
            name: "redirect, not followed".into(),
            request: get_request("/probe/redirect", &[]),
            echo: false,
            expect: Box::new(|response| {
                ensure!(response.status == 302, "status {}", response.status);
                ensure!(
                    response.header("location") == Some("/probe/echo"),
                    "location {:?}",
                    response.header("location")
                );
                Ok(())
            }),
        },
        Case {
            name: "gzip body as is".into(),
            request: get_request("/probe/gzip", &[("Accept-Encoding", "gzip")]),
            echo: false,
            expect: Box::new(|response| {
                ensure!(response.status == 200, "status {}", response.status);
                ensure!(
                    response.header("content-encoding") == Some("gzip"),
                    "content-encoding {:?}",
                    response.header("content-encoding")
                );
                ensure!(
                    response.body.starts_with(&[0x1f, 0x8b]),
                    "not gzip: {:?}",
                    &response.body[..response.body.len().min(8)]
                );
                Ok(())
            }),
        },
        Case {
            name: "repeated response headers".into(),
            request: get_request("/probe/headers", &[]),
            echo: false,
            expect: Box::new(|response| {
                let want: [(&str, &[&str]); 3] = [
                    (
                        "set-cookie",
                        &["first=1; Path=/", "second=2; Path=/; HttpOnly"],
                    ),
                    ("x-multi", &["one", "two"]),
                    ("x-odd-case-header", &["odd"]),
                ];
                for (name, values) in want {
                    ensure!(
                        response.header_all(name) == values,
                        "{name}: {:?}",
                        response.header_all(name)
                    );
                }
                Ok(())
            }),
        },
        Case {
            name: "unknown path".into(),
            request: get_request("/probe/nothing-here", &[]),
            echo: false,
            expect: status_is(404),
        },
    ];
    for code in [204, 304, 400, 418, 500, 503] {
        cases.push(Case {
            name: format!("status {code}"),
            request: get_request(&format!("/probe/status/{code}"), &[]),
            echo: false,
            expect: status_is(code),
        });
    }
    cases
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): each side of the api has its own.
fn hop_by_hop(name: &str, connection: &[&str]) -> bool {
    [
        "connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
    ]
    .contains(&name)
        || name.starts_with("proxy-")
        || connection
            .iter()
            .any(|named| named.eq_ignore_ascii_case(name))
}

/// The end-to-end headers of a response, by lowercase name (names are case-insensitive,
/// and hyper writes them in lowercase), each name's values in order (the order of lines of
/// one name is significant, that of different names is not). Left out: hop-by-hop headers,
/// `Date` and `Server` (each server sets its own), the `x-request-id` the api adds on
/// purpose, and for echo answers `Content-Length`, as their bodies differ.
fn end_to_end(response: &RawResponse, echo: bool) -> BTreeMap<String, Vec<String>> {
    let connection: Vec<&str> = response
        .header_all("connection")
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &response.headers {
        let name = name.to_ascii_lowercase();
        let skip = hop_by_hop(&name, &connection)
            || ["date", "server", "x-request-id"].contains(&name.as_str())
            || (echo && name == "content-length");
        if !skip {
            headers.entry(name).or_default().push(value.clone());
        }
    }
    headers
}

/// What Python's /probe/echo saw, less what the api changes on purpose: the hop-by-hop
/// headers (its connection to Python is its own), and the `x-request-id`, `traceparent` and
/// `x-forwarded-*` it sets (checked on their own below).
fn echo_view(response: &RawResponse) -> Value {
    let seen = json(response);
    let headers = echo_headers(response);
    let connection: Vec<&str> = headers
        .get("connection")
        .into_iter()
        .flatten()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let kept: BTreeMap<&String, &Vec<String>> = headers
        .iter()
        .filter(|(name, _)| {
            !hop_by_hop(name, &connection)
                && !["x-request-id", "traceparent"].contains(&name.as_str())
                && !name.starts_with("x-forwarded-")
        })
        .collect();
    serde_json::json!({
        "method": seen["method"],
        "raw_path": seen["raw_path"],
        "query": seen["query"],
        "body_length": seen["body_length"],
        "body_sha256": seen["body_sha256"],
        "headers": kept,
    })
}

/// Every case sent to Python directly and through the api: same status, same end-to-end
/// headers, same body (byte for byte, or for /probe/echo, the same request seen).
fn differential(direct: &Target, api: &Target) {
    for case in cases() {
        let name = &case.name;
        let answer = |side: &str, target: &Target| {
            let response = exchange(target, &case.request)
                .unwrap_or_else(|err| panic!("{name}, {side}: {err}"));
            if let Err(wrong) = (case.expect)(&response) {
                panic!(
                    "{name}, {side}: {wrong}\nstatus {}, headers {:?}, body {:.500}",
                    response.status,
                    response.headers,
                    response.text()
                );
            }
            response
        };
        let (python, gateway) = (answer("direct", direct), answer("through the api", api));
        assert_eq!(gateway.status, python.status, "{name}: status");
        assert_eq!(
            end_to_end(&gateway, case.echo),
            end_to_end(&python, case.echo),
            "{name}: end-to-end response headers (left: through the api, right: direct)"
        );
        if case.echo {
            // A HEAD answer has no body to compare.
            if !python.body.is_empty() {
                assert_eq!(
                    echo_view(&gateway),
                    echo_view(&python),
                    "{name}: the request Python saw (left: through the api, right: direct)"
                );
            }
        } else {
            assert!(
                gateway.body == python.body,
                "{name}: bodies differ: {} bytes through the api, {} direct",
                gateway.body.len(),
                python.body.len()
            );
        }
        assert!(
            gateway.trailers.is_empty() && python.trailers.is_empty(),
            "{name}: trailers"
        );
    }
}

// --- Streaming -------------------------------------------------------------------------------

/// The first server-sent event arrives through the api long before the stream ends.
fn streaming(api: &Target) {
    let mut stream = api.connect().unwrap();
    let request = get_request(
        "/events?count=3&interval_ms=1000",
        &[("Accept", "text/event-stream")],
    );
    let sent = Instant::now();
    stream.write_all(&request).unwrap();
    let timed = read_timed(&mut stream, sent, b"data: {\"n\": 1}\n\n", || {});
    assert!(timed.error.is_none(), "{timed:?}");
    let response = read_response(&mut &timed.raw[..], false).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/event-stream")),
        "{response:?}"
    );
    let events: String = (1..=3)
        .map(|n| format!("id: {n}\ndata: {{\"n\": {n}}}\n\n"))
        .collect();
    assert_eq!(response.text(), events);
    let (first, ended) = (timed.marker.expect("the first event"), timed.end);
    assert!(
        first < Duration::from_millis(700),
        "the first event took {first:?}, the whole stream {ended:?}: buffered?"
    );
    assert!(
        ended >= first + Duration::from_millis(1500),
        "the first event at {first:?}, the end at {ended:?}"
    );
}

/// An HTTP/2 client (curl, h2c with prior knowledge) reaches Python over HTTP/1.1: the
/// `:authority` becomes Host and X-Forwarded-Host, repeated headers, the raw path, the query
/// and a 100 kB body pass as an HTTP/1.1 client's do (compared with the same request sent
/// straight to Python), the answer comes back over HTTP/2, and an event stream arrives as
/// Python produces it.
fn http2_clients(direct: &Target, api: &Target, scratch: &Path) {
    let Target::Tcp(port) = api else {
        unreachable!("the api listens on TCP")
    };
    let authority = format!("127.0.0.1:{port}");
    let path = "/probe/echo/h2/a%2Fb?x=1&x=2";
    let body = pattern(100_000);
    let body_file = scratch.join("h2-body.bin");
    fs::write(&body_file, &body).unwrap();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--http2-prior-knowledge"])
        .args(["--dump-header", "-", "--data-binary"])
        .arg(format!("@{}", body_file.display()))
        .args(["-H", "Content-Type: application/octet-stream"])
        .args(["-H", "X-Multi: one", "-H", "X-Multi: two"])
        .arg(format!("http://{authority}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl: {out:?}");
    let (head, json_body) = text.split_once("\r\n\r\n").expect("headers, then the body");
    assert!(
        head.starts_with("HTTP/2 200"),
        "answered over HTTP/2: {head}"
    );
    let seen: Value = serde_json::from_str(json_body).expect("the echo's JSON");
    let mut via_h2 = BTreeMap::new();
    for pair in seen["headers"].as_array().unwrap() {
        let name = pair[0].as_str().unwrap().to_owned();
        via_h2
            .entry(name)
            .or_insert_with(Vec::new)
            .push(pair[1].as_str().unwrap().to_owned());
    }
    for (name, want) in [
        ("host", vec![authority.clone()]),
        ("x-forwarded-host", vec![authority.clone()]),
        ("x-multi", vec!["one".to_owned(), "two".to_owned()]),
    ] {
        assert_eq!(via_h2.get(name), Some(&want), "{name}: {via_h2:?}");
    }
    let request = build_request(
        "POST",
        path,
        &[
            ("Host", &authority),
            ("Content-Type", "application/octet-stream"),
        ],
        Some(&body),
    );
    let straight = json(&exchange(direct, &request).unwrap());
    for field in ["method", "raw_path", "query", "body_length", "body_sha256"] {
        assert_eq!(
            seen[field], straight[field],
            "{field} over HTTP/2 and straight"
        );
    }

    let mut events = Command::new("curl")
        .args(["--silent", "--http2-prior-knowledge", "--no-buffer"])
        .arg(format!(
            "http://{authority}/events?count=3&interval_ms=1000"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    let started = Instant::now();
    let mut first = [0; 16];
    events
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    let took = started.elapsed();
    let mut rest = String::new();
    events
        .stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    let all = format!("{}{rest}", String::from_utf8_lossy(&first));
    let ended = started.elapsed();
    assert!(events.wait().unwrap().success());
    assert!(all.starts_with("id: 1\ndata: {"), "{all}");
    assert_eq!(all.matches("data: ").count(), 3, "{all}");
    assert!(
        took < Duration::from_millis(700) && ended >= took + Duration::from_millis(1500),
        "over HTTP/2 the first event took {took:?}, the whole stream {ended:?}: buffered?"
    );
}

/// What [`read_timed`] read, and when.
struct Timed {
    raw: Vec<u8>,
    /// When the marker had arrived, from the start given.
    marker: Option<Duration>,
    /// When the stream ended (or failed), from the start given.
    end: Duration,
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("raw", &latin1(&self.raw))
            .field("marker", &self.marker)
            .field("end", &self.end)
            .field("error", &self.error)
            .finish()
    }
}

/// Reads `stream` until it ends or fails, calling `on_marker` once `marker` has arrived.
fn read_timed(stream: &mut Stream, since: Instant, marker: &[u8], on_marker: impl Fn()) -> Timed {
    let mut raw = Vec::new();
    let mut at = None;
    let mut buffer = [0; 16 * 1024];
    let error = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break None,
            Ok(read) => raw.extend_from_slice(&buffer[..read]),
            Err(err) => break Some(err),
        }
        if at.is_none() && contains(&raw, marker) {
            at = Some(since.elapsed());
            on_marker();
        }
    };
    Timed {
        raw,
        marker: at,
        end: since.elapsed(),
        error,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

// --- WebSocket -------------------------------------------------------------------------------

/// The key and accept value of the example handshake in RFC 6455, section 1.3.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opens /ws/echo, offering two subprotocols; checks the 101 and returns the connection.
fn ws_open(target: &Target, request_id: &str) -> BufReader<Stream> {
    let mut stream = target.connect().unwrap();
    let handshake = format!(
        "GET /ws/echo HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, other\r\nx-request-id: {request_id}\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let response = read_response(&mut reader, false).unwrap();
    let upgrade = response.header("upgrade").unwrap_or_default();
    let connection = response.header("connection").unwrap_or_default();
    assert!(
        response.status == 101
            && upgrade.eq_ignore_ascii_case("websocket")
            && connection.to_ascii_lowercase().contains("upgrade")
            && response.header("sec-websocket-accept") == Some(WS_ACCEPT)
            && response.header("sec-websocket-protocol") == Some("chat"),
        "{target:?}: {response:?}"
    );
    reader
}

/// Opens /ws/echo over HTTP/2 (RFC 8441), offering two subprotocols; checks the 200 (which
/// carries no accept value: HTTP/2 has no key) and returns the stream.
fn ws_open_http2(port: u16, request_id: &str) -> Http2WebSocket {
    let ws = Http2WebSocket::open(
        port,
        "/ws/echo",
        &[
            ("sec-websocket-version", "13"),
            ("sec-websocket-protocol", "chat, other"),
            ("x-request-id", request_id),
        ],
    )
    .unwrap();
    assert!(
        ws.answer.status == 200
            && ws.header("sec-websocket-protocol") == Some("chat")
            && ws.header("sec-websocket-accept").is_none(),
        "{:?}",
        ws.answer
    );
    ws
}

/// A WebSocket connection as these tests drive it, over HTTP/1.1 or HTTP/2.
trait WsConnection: Read {
    fn send_frame(&mut self, frame: &[u8]);
}

impl WsConnection for BufReader<Stream> {
    fn send_frame(&mut self, frame: &[u8]) {
        self.get_mut().write_all(frame).unwrap();
    }
}

impl WsConnection for Http2WebSocket {
    fn send_frame(&mut self, frame: &[u8]) {
        self.send(frame).unwrap();
    }
}

/// The next frame, which a server must send final here and unmasked.
fn ws_next(ws: &mut impl Read) -> WsFrame {
    let frame = ws_read_frame(ws).unwrap();
    assert!(frame.fin && !frame.masked, "{frame:?}");
    frame
}

/// The connection ends (within the 30 s read timeout).
fn ws_eof(ws: &mut impl Read, side: &str) {
    let mut rest = Vec::new();
    let read = ws.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)),
        "{side}: after the close, {read:?} and {rest:?}"
    );
}

/// Frames echoed unchanged, a close the server makes on request (4001), and one the client
/// makes (4002); both sessions show in Python's log with their close codes.
/// `open` opens /ws/echo with the request id it is given.
fn websocket<C: WsConnection>(open: impl Fn(&str) -> C, side: &str, python_log: &Path, tag: &str) {
    let first_id = unique(&format!("gw-ws-{tag}-{side}"));
    let mut ws = open(&first_id);
    let text = "héllo, gateway ✓";
    let medium: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let large = pattern(70_000);
    for (opcode, payload) in [
        (WS_TEXT, text.as_bytes()),
        (WS_BINARY, &medium),
        (WS_BINARY, &large),
    ] {
        ws.send_frame(&ws_client_frame(opcode, payload, MASK));
    }
    for (opcode, payload) in [
        (WS_TEXT, text.as_bytes()),
        (WS_BINARY, &medium),
        (WS_BINARY, &large),
    ] {
        let frame = ws_next(&mut ws);
        assert!(
            frame.opcode == opcode && frame.payload == payload,
            "{side}: sent opcode {opcode} with {} bytes, got opcode {} with {} bytes",
            payload.len(),
            frame.opcode,
            frame.payload.len()
        );
    }
    ws.send_frame(&ws_client_frame(WS_TEXT, b"close 4001", MASK));
    let close = ws_next(&mut ws);
    assert_eq!(close.opcode, WS_CLOSE, "{side}: {close:?}");
    assert_eq!(close.close_code(), Some(4001), "{side}: {close:?}");
    assert_eq!(&close.payload[2..], b"requested", "{side}: {close:?}");
    ws.send_frame(&ws_client_frame(
        WS_CLOSE,
        &ws_close_payload(4001, ""),
        MASK,
    ));
    ws_eof(&mut ws, side);

    let second_id = unique(&format!("gw-ws-{tag}-{side}"));
    let mut ws = open(&second_id);
    ws.send_frame(&ws_client_frame(
        WS_CLOSE,
        &ws_close_payload(4002, "bye"),
        MASK,
    ));
    let close = ws_next(&mut ws);
    assert_eq!(close.opcode, WS_CLOSE, "{side}: {close:?}");
    assert_eq!(close.close_code(), Some(4002), "{side}: {close:?}");
    ws_eof(&mut ws, side);

    for (id, code) in [(first_id, 4001), (second_id, 4002)] {
        let line = log_line(python_log, &format!("request_id={id} "));
        assert!(
            line.contains(&format!("method=WS path=/ws/echo status={code} ")),
            "{side}: {line}"
        );
    }
}

// --- Request id and trace context ------------------------------------------------------------

/// The client's request id and trace id reach Python's log line for the request; the api
/// takes the parent's place in the trace, and starts a trace when the client sent none.
fn request_id_and_traceparent(api: &Target, python_log: &Path, tag: &str) {
    let request_id = unique(&format!("gw-{tag}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let trace_id = format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96));
    let parent = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{parent}-01");
    let response = get(
        api,
        "/hello/python",
        &[("x-request-id", &request_id), ("traceparent", &traceparent)],
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("x-request-id"),
        Some(request_id.as_str()),
        "{response:?}"
    );
    let line = log_line(python_log, &format!("request_id={request_id} "));
    assert!(
        line.contains("method=GET path=/hello/python status=200 "),
        "{line}"
    );
    let sent_on = Regex::new(&format!(r"traceparent=00-{trace_id}-([0-9a-f]{{16}})-01$")).unwrap();
    let new_parent = sent_on
        .captures(line.trim_end())
        .unwrap_or_else(|| panic!("the trace id {trace_id} is not in Python's log: {line}"));
    assert_ne!(&new_parent[1], parent, "the api is the new parent: {line}");

    let echo = get(api, "/probe/echo", &[]);
    let seen = echo_headers(&echo);
    let started = Regex::new(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$").unwrap();
    let generated = seen.get("traceparent").cloned().unwrap_or_default();
    assert!(
        generated.len() == 1 && started.is_match(&generated[0]),
        "without a traceparent, Python got {generated:?}"
    );
    let id = seen.get("x-request-id").cloned().unwrap_or_default();
    assert!(
        id.len() == 1 && id[0].len() == 32 && Some(id[0].as_str()) == echo.header("x-request-id"),
        "without an x-request-id, Python got {id:?}, the client {:?}",
        echo.header("x-request-id")
    );
}

// --- Faults and limits -----------------------------------------------------------------------

/// `X-Forwarded-*` from an untrusted peer are replaced by what the api saw (`Forwarded` and
/// `X-Real-IP` dropped); from a trusted one (TRUSTED_PROXIES=127.0.0.1) they are kept, the peer
/// appended to the chain.
fn forwarded_headers(untrusted: &Target, trusted: &Target) {
    let spoofed = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "for=6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
    ];
    for (target, want) in [
        (
            untrusted,
            [Some("127.0.0.1"), Some("http"), Some(HOST), None, None],
        ),
        (
            trusted,
            [
                Some("6.6.6.6, 127.0.0.1"),
                Some("https"),
                Some("evil.example"),
                Some("for=6.6.6.6"),
                Some("6.6.6.6"),
            ],
        ),
    ] {
        let seen = echo_headers(&get(target, "/probe/echo", &spoofed));
        let names = [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-real-ip",
        ];
        for (name, value) in names.into_iter().zip(want) {
            assert_eq!(
                seen.get(name),
                value.map(|value| vec![value.to_owned()]).as_ref(),
                "{name} through {target:?}: {seen:?}"
            );
        }
    }
    // Without one, the trusted api starts the chain with the peer.
    let seen = echo_headers(&get(trusted, "/probe/echo", &[]));
    assert_eq!(
        seen.get("x-forwarded-for"),
        Some(&vec!["127.0.0.1".to_owned()]),
        "{seen:?}"
    );
}

/// MAX_BODY_BYTES=1000000: a body at the limit passes; 2 MB get 413, declared or chunked.
fn oversized_bodies(strict: &Target) {
    let head = |framing: &str| {
        format!(
            "POST /probe/echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/octet-stream\r\n\
             {framing}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let at_limit = pattern(BODY_LIMIT);
    let mut request = head(&format!("Content-Length: {BODY_LIMIT}"));
    request.extend_from_slice(&at_limit);
    let response = exchange(strict, &request).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(json(&response)["body_length"], BODY_LIMIT);
    let mut request = head("Transfer-Encoding: chunked");
    request.extend_from_slice(&chunked(&pattern(900_000), 64 * 1024));
    let response = exchange(strict, &request).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(json(&response)["body_length"], 900_000);

    let two_mb = pattern(2_000_000);
    for (what, head, body) in [
        (
            "with Content-Length",
            head("Content-Length: 2000000"),
            two_mb.clone(),
        ),
        (
            "chunked",
            head("Transfer-Encoding: chunked"),
            chunked(&two_mb, 64 * 1024),
        ),
    ] {
        let response = exchange_while_sending(strict, &head, body)
            .unwrap_or_else(|err| panic!("2 MB {what}: {err}"));
        assert_eq!(response.status, 413, "2 MB {what}: {response:?}");
        assert_eq!(error_code(&response), "payload_too_large", "{response:?}");
    }
}

/// UPSTREAM_TIMEOUT_MS=500 and a Python that takes 10 s: 504 after about 0.5 s, and the
/// api's own routes answer at once meanwhile.
fn hanging_python(strict: &Target) {
    let done = Arc::new(AtomicBool::new(false));
    let slow = {
        let (target, done) = (strict.clone(), Arc::clone(&done));
        thread::spawn(move || {
            let start = Instant::now();
            let response = get(&target, "/probe/slow?ms=10000", &[]);
            let took = start.elapsed();
            done.store(true, Ordering::SeqCst);
            (response, took)
        })
    };
    sleep(Duration::from_millis(50));
    let mut meanwhile = Vec::new();
    while !done.load(Ordering::SeqCst) && meanwhile.len() < 5 {
        let start = Instant::now();
        let response = get(strict, "/hello/rust", &[]);
        let took = start.elapsed();
        assert_eq!(response.status, 200, "{response:?}");
        if !done.load(Ordering::SeqCst) {
            meanwhile.push(took);
        }
        sleep(Duration::from_millis(20));
    }
    let (response, took) = slow.join().unwrap();
    assert_eq!(response.status, 504, "{response:?}");
    assert_eq!(error_code(&response), "upstream_timeout", "{response:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "504 after {took:?}"
    );
    assert!(
        meanwhile.len() >= 3
            && meanwhile
                .iter()
                .all(|took| *took < Duration::from_millis(300)),
        "/hello/rust while Python hangs: {meanwhile:?}"
    );
}

/// UPSTREAM_MAX_CONCURRENCY=2: while two forwarded responses stream, a third forwarded
/// request gets 503 with Retry-After (native routes need no slot), and the slots come back
/// when the streams end. UPSTREAM_TOTAL_TIMEOUT_MS=2000: a response still streaming then is
/// cut, which the client sees as a chunked body that never ends properly.
fn stream_limits(strict: &Target) {
    let (started, starts) = mpsc::channel();
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let (target, started) = (strict.clone(), started.clone());
            thread::spawn(move || {
                let mut stream = target.connect().unwrap();
                let request = get_request("/probe/chunked?count=3&interval_ms=700", &[]);
                stream.write_all(&request).unwrap();
                read_timed(&mut stream, Instant::now(), b"chunk 1\n", || {
                    let _ = started.send(());
                })
            })
        })
        .collect();
    for _ in 0..2 {
        starts
            .recv_timeout(Duration::from_secs(10))
            .expect("both streams start");
    }
    let busy = get(strict, "/hello/python", &[]);
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(error_code(&busy), "upstream_overloaded", "{busy:?}");
    assert!(busy.header("retry-after").is_some(), "{busy:?}");
    assert_eq!(get(strict, "/hello/rust", &[]).status, 200);
    for stream in streams {
        let timed = stream.join().unwrap();
        let response = read_response(&mut &timed.raw[..], false);
        assert!(
            timed.error.is_none()
                && response.is_ok_and(|r| r.body == b"chunk 1\nchunk 2\nchunk 3\n"),
            "{timed:?}"
        );
    }
    let again = get(strict, "/hello/python", &[]);
    assert_eq!(again.status, 200, "the slots are free again: {again:?}");

    let mut stream = strict.connect().unwrap();
    let sent = Instant::now();
    // Chunks at 0, 0.4, 0.8 ... 2.0, 2.4 s: the seventh comes well after the cut.
    stream
        .write_all(&get_request("/probe/chunked?count=20&interval_ms=400", &[]))
        .unwrap();
    let timed = read_timed(&mut stream, sent, b"chunk 1\n", || {});
    let text = latin1(&timed.raw);
    assert!(
        text.starts_with("HTTP/1.1 200 ")
            && text.contains("chunk 1\n")
            && !text.contains("chunk 7\n")
            && !text.ends_with("0\r\n\r\n"),
        "a stream cut at 2 s: {text:?}"
    );
    assert!(
        timed.end >= Duration::from_millis(1900) && timed.end < Duration::from_millis(3500),
        "the stream was cut after {:?}",
        timed.end
    );
}

/// HEADER_READ_TIMEOUT_MS=500: a client that never finishes its request head is cut off,
/// and other clients are served meanwhile.
fn slow_client(strict: &Target) {
    let mut stream = strict.connect().unwrap();
    stream.set_timeouts(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    stream
        .write_all(format!("GET /hello/python HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes())
        .unwrap();
    assert_eq!(get(strict, "/hello/rust", &[]).status, 200);
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(4),
        "the half-sent request was ended after {took:?}: {read:?}"
    );
    assert!(
        !latin1(&rest).contains(" 200 "),
        "a request without the end of its head was answered: {}",
        latin1(&rest)
    );
}

/// One request of the load sent while Python is killed and restarted.
struct Sample {
    start: Instant,
    end: Instant,
    outcome: Result<RawResponse, Cut>,
}

impl Sample {
    fn status(&self) -> Option<u16> {
        self.outcome.as_ref().ok().map(|response| response.status)
    }

    /// A response whose head came (with status 200) but whose body was cut short: what a
    /// client gets when Python dies while sending it, once the api has passed the head on.
    fn cut_after_head(&self) -> bool {
        self.outcome
            .as_ref()
            .is_err_and(|cut| cut.received.starts_with("HTTP/1.1 200 "))
    }
}

/// A request that got no complete response: why, and what did arrive.
struct Cut {
    error: String,
    received: String,
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} after receiving {:?}", self.error, self.received)
    }
}

/// Sends `request` and reads until the connection ends; the response, or what came of it.
fn exchange_to_end(target: &Target, request: &[u8]) -> Result<RawResponse, Cut> {
    let mut received = Vec::new();
    let result = target
        .connect()
        .and_then(|mut stream| {
            stream.write_all(request)?;
            stream.read_to_end(&mut received)
        })
        .and_then(|_| read_response(&mut &received[..], false));
    result.map_err(|err| Cut {
        error: err.to_string(),
        received: latin1(&received),
    })
}

/// What the load saw: how many answers were 200 and how many the api's own 503.
struct Killed {
    ok: usize,
    unavailable: usize,
}

/// A second Python that keeps no connection open (`--timeout-keep-alive 0`: it closes each
/// one once it has answered), at `listen`, behind an api set as `rspy init` sets it for such
/// a server (`UPSTREAM_IDLE_TIMEOUT_MS=0`): requests sent back to back all get Python's
/// answer. With an idle timeout of 1 ms, what `init` wrote before, some got a 502: the api
/// sent them on connections Python was closing.
fn python_without_keep_alive(project: &Project, listen: &Listen, tag: &str) {
    let log = project.root.join("python-once.log");
    let mut python = start_python(project, listen, &["--timeout-keep-alive", "0"], &log);
    wait_until_ok(
        &listen.target(),
        "/healthz",
        Duration::from_secs(60),
        &mut python,
    );
    let api_port = port();
    let mut api = start_api(
        project,
        "once-api",
        api_port,
        &listen.url(),
        &[("METRICS_ADDR", "off"), ("UPSTREAM_IDLE_TIMEOUT_MS", "0")],
    );
    let via_api = Target::Tcp(api_port);
    wait_until_ok(&via_api, "/readyz", Duration::from_secs(30), &mut api);
    let mut statuses = BTreeMap::new();
    for _ in 0..300 {
        *statuses
            .entry(get(&via_api, "/hello/python", &[]).status)
            .or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        BTreeMap::from([(200, 300)]),
        "statuses of 300 requests over {tag} to a Python without keep-alive"
    );
}

/// Python killed under load: the api stays up, answers 503 (Retry-After, upstream_unavailable)
/// while Python is down, and answers again within 2 s of the restarted Python being ready.
fn python_killed_mid_load(
    project: &Project,
    listen: &Listen,
    python: &mut Proc,
    api: &mut Proc,
    via_api: &Target,
) -> Killed {
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, target) = (Arc::clone(&stop), via_api.clone());
        thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let start = Instant::now();
                let outcome = exchange_to_end(&target, &get_request("/hello/python", &[]));
                samples.push(Sample {
                    start,
                    end: Instant::now(),
                    outcome,
                });
                sleep(Duration::from_millis(5));
            }
            samples
        })
    };
    sleep(Duration::from_millis(500));
    let kill = Instant::now();
    python.kill();
    let died = Instant::now();
    sleep(Duration::from_secs(1));
    assert!(api.alive(), "the api died with Python");
    let restart = Instant::now();
    *python = start_python(project, listen, &[], &python.log.clone());
    let ready = wait_until_ok(
        &listen.target(),
        "/healthz",
        Duration::from_secs(30),
        python,
    );
    sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::SeqCst);
    let samples = load.join().unwrap();
    assert!(api.alive(), "the api died");

    let show = |sample: &Sample| {
        let when = match sample.start.checked_duration_since(kill) {
            Some(after) => format!("{after:?} after"),
            None => format!("{:?} before", kill - sample.start),
        };
        format!(
            "request started {when} the kill, ended {:?} after it: {:?}",
            sample.end.saturating_duration_since(kill),
            sample.outcome
        )
    };
    // In flight when Python died, a request may get Python's answer, a broken exchange
    // (502), a 503, or a 200 cut off after its head (once the head is out, closing the
    // connection is the only way left to tell the client). Any other request gets a whole
    // answer from the api.
    let in_flight = |s: &Sample| s.start <= died && s.end >= kill;
    for sample in &samples {
        let allowed = match sample.status() {
            Some(status) => in_flight(sample) || status == 200 || status == 503,
            None => in_flight(sample) && sample.cut_after_head(),
        };
        assert!(
            allowed && matches!(sample.status(), None | Some(200 | 502 | 503)),
            "{}",
            show(sample)
        );
    }
    let before: Vec<&Sample> = samples.iter().filter(|s| s.end < kill).collect();
    assert!(
        before.len() >= 5 && before.iter().all(|s| s.status() == Some(200)),
        "before the kill: {:?}",
        before.iter().map(|s| s.status()).collect::<Vec<_>>()
    );
    let mut unavailable = 0;
    for sample in samples.iter().filter(|s| s.start > died && s.end < restart) {
        let response = sample.outcome.as_ref().unwrap();
        assert!(
            response.status == 503
                && response.header("retry-after").is_some()
                && error_code(response) == "upstream_unavailable",
            "while Python is down: {}",
            show(sample)
        );
        unavailable += 1;
    }
    assert!(
        unavailable >= 10,
        "only {unavailable} requests during the outage"
    );
    let recovered = samples
        .iter()
        .find(|s| s.start > died && s.status() == Some(200))
        .unwrap_or_else(|| panic!("no request succeeded after the restart"));
    assert!(
        recovered.end <= ready + Duration::from_secs(2),
        "the first success came {:?} after Python was ready",
        recovered.end.saturating_duration_since(ready)
    );
    let after: Vec<&Sample> = samples.iter().filter(|s| s.start > recovered.end).collect();
    assert!(
        after.len() >= 10,
        "only {} requests after recovery",
        after.len()
    );
    for sample in after {
        assert_eq!(
            sample.status(),
            Some(200),
            "after recovery: {}",
            show(sample)
        );
    }
    Killed {
        ok: samples.iter().filter(|s| s.status() == Some(200)).count(),
        unavailable: samples
            .iter()
            .filter(|s| {
                s.outcome
                    .as_ref()
                    .is_ok_and(|r| r.status == 503 && error_code(r) == "upstream_unavailable")
            })
            .count(),
    }
}

// --- Metrics ---------------------------------------------------------------------------------

/// `GET /metrics` on the metrics port.
fn scrape(port: u16) -> String {
    let response = get(&Target::Tcp(port), "/metrics", &[]);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/plain; version=0.0.4")),
        "{response:?}"
    );
    response.text()
}

/// The value of the sample `series` (name and labels, as rendered); 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The counts of the main api after all of the above, at least what the load saw.
fn metrics(port: u16, via_api: &Target, killed: &Killed) {
    let text = scrape(port);
    for (series, at_least) in [
        (
            r#"api_requests_total{route="/hello/python",mode="proxy",status="2xx"}"#,
            killed.ok.max(1),
        ),
        (
            r#"api_requests_total{route="/hello/python",mode="proxy",status="5xx"}"#,
            killed.unavailable.max(1),
        ),
        (
            r#"api_upstream_errors_total{kind="unavailable"}"#,
            killed.unavailable.max(1),
        ),
        (
            r#"api_requests_total{route="fallback",mode="proxy",status="2xx"}"#,
            1,
        ),
    ] {
        let value = metric(&text, series);
        assert!(
            value >= at_least as f64,
            "{series} is {value}, want >= {at_least}:\n{text}"
        );
    }
    // Metrics are served on their own address only: on the public port, /metrics is just
    // another path for Python (which has none).
    let public = get(via_api, "/metrics", &[]);
    assert_eq!(public.status, 404, "{public:?}");
    assert!(!public.text().contains("api_requests_total"), "{public:?}");
}
