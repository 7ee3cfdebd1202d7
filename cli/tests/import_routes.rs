//! `rspy import-routes` through the real binary, on projects made by `rspy new`: OpenAPI
//! documents from files (one exported from a real FastAPI app), from a real HTTP server over
//! TCP and over a Unix socket; golden output, `--dry-run`, idempotence, and bad input.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Outcome, assert_golden, assert_refused, rspy, rspy_ok, run_in, snapshot};
use tempfile::TempDir;

/// A fresh project `demo` (no git) in a temporary folder.
fn project() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let out = run_in(dir.path(), rspy().args(["new", "demo", "--vcs", "none"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    let root = dir.path().join("demo");
    (dir, root)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi")
        .join(name)
}

/// Copies the fixture `name` beside the project (outside it, so snapshots of the project do
/// not hold it), where the project reaches it as `../<name>`.
fn beside(root: &Path, name: &str) -> String {
    fs::copy(fixture(name), root.parent().unwrap().join(name)).unwrap();
    format!("../{name}")
}

fn rspy_in(dir: &Path, args: &[&str]) -> Outcome {
    let out = run_in(dir, rspy().args(args));
    assert!(out.code.is_some(), "{args:?} was killed: {out:?}");
    out
}

/// Points rspy.toml's `[upstream] url` at `url`.
fn set_upstream(root: &Path, url: &str) {
    let manifest = root.join("rspy.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let edited = text.replace(
        "url = \"http://127.0.0.1:8000\"",
        &format!("url = \"{url}\""),
    );
    assert_ne!(edited, text, "the template's upstream line is there");
    fs::write(manifest, edited).unwrap();
}

/// The part of rspy.toml after what `rspy new` wrote.
fn appended(root: &Path, original: &str) -> String {
    let edited = fs::read_to_string(root.join("rspy.toml")).unwrap();
    assert!(
        edited.starts_with(original),
        "everything before stays byte for byte"
    );
    edited[original.len()..].to_owned()
}

/// A server this test started, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` serving `folder` on a loopback port it picks; returns the port.
fn http_server(folder: &Path) -> (Server, u16) {
    let mut child = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let port = line
        .split_whitespace()
        .skip_while(|word| *word != "port")
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (server, port)
}

/// A stdlib-only HTTP server on the Unix socket `socket` that answers `GET /openapi.json` with
/// `document` in chunks (`Transfer-Encoding: chunked`), and 404 otherwise.
fn unix_server(dir: &Path, socket: &Path, document: &Path) -> Server {
    let script = dir.join("unix_server.py");
    fs::write(
        &script,
        r#"import http.server
import socketserver
import sys

socket_path, document = sys.argv[1], sys.argv[2]
with open(document, "rb") as f:
    body = f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/openapi.json":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for start in range(0, len(body), 1000):
            chunk = body[start : start + 1000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def log_message(self, format, *args):
        pass


with socketserver.UnixStreamServer(socket_path, Handler) as server:
    server.serve_forever()
"#,
    )
    .unwrap();
    let child = Command::new("python3")
        .arg(&script)
        .arg(socket)
        .arg(document)
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 starts");
    let server = Server(child);
    let started = Instant::now();
    while !socket.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the Unix socket server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn imports_a_fastapi_document_as_proxied_routes() {
    let (_dir, root) = project();
    let original = fs::read_to_string(root.join("rspy.toml")).unwrap();
    let source = beside(&root, "fastapi-shop.json");
    let out = rspy_ok(&root, &["import-routes", &source]);
    assert_golden("import_routes/fastapi-shop.txt", &out);
    assert_golden(
        "import_routes/fastapi-shop.toml",
        &appended(&root, &original),
    );
    // The whole surface and the progress, as `rspy routes` shows them.
    assert_golden(
        "import_routes/routes-after.txt",
        &rspy_ok(&root, &["routes"]),
    );
    assert!(
        rspy_ok(&root, &["check"]).starts_with("ok: 12 routes (1 native, 11 proxy)"),
        "axum can route everything imported"
    );
}

#[test]
fn dry_run_shows_the_diff_and_writes_nothing() {
    let (_dir, root) = project();
    let source = beside(&root, "fastapi-shop.json");
    let before = snapshot(&root);
    let out = rspy_ok(&root, &["import-routes", &source, "--dry-run"]);
    assert_golden("import_routes/fastapi-shop-dry-run.txt", &out);
    assert_eq!(snapshot(&root), before, "--dry-run writes nothing");
}

#[test]
fn a_second_import_changes_nothing() {
    let (_dir, root) = project();
    let source = beside(&root, "fastapi-shop.json");
    rspy_ok(&root, &["import-routes", &source]);
    let after_first = snapshot(&root);
    let again = rspy_ok(&root, &["import-routes", &source]);
    assert_eq!(
        again,
        "Unchanged: the 11 routes of `../fastapi-shop.json` are all declared already, and kept as they are.\n\
         Skipped `TRACE /debug`: rspy.toml has no TRACE method, so such requests are left to the fallback.\n\
         12 routes: 1 native, 11 proxy\n"
    );
    assert_eq!(snapshot(&root), after_first, "identical bytes");
    let dry = rspy_ok(&root, &["import-routes", &source, "--dry-run"]);
    assert!(dry.starts_with("Unchanged: "), "{dry}");
    assert_eq!(snapshot(&root), after_first);
}

#[test]
fn routes_already_declared_are_kept_as_they_are() {
    let (_dir, root) = project();
    rspy_ok(&root, &["add-route", "GET", "/items/{item_id}", "--native"]);
    rspy_ok(&root, &["add-route", "ANY", "/debug", "--proxy"]);
    let handler = root.join("crates/api/src/routes/items.rs");
    let handler_code = fs::read(&handler).unwrap();
    let manifest_before = fs::read_to_string(root.join("rspy.toml")).unwrap();
    let source = beside(&root, "fastapi-shop.json");

    let out = rspy_ok(&root, &["import-routes", &source]);
    assert!(out.starts_with("Added 8 proxied routes from"), "{out}");
    assert!(
        out.contains(
            "Kept 3 routes already declared, as they are:\n\
             \x20 GET     /hello/python     (proxy, timeout 5000 ms)\n\
             \x20 GET     /items/{item_id}  (native, handler `items::get_items_by_item_id`)\n\
             \x20 OPTIONS /debug            (covered by `ANY /debug`: proxy)\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("12 routes: 2 native, 10 proxy\n"), "{out}");
    // The native route and its handler stay; the new routes come after what was there.
    assert_eq!(fs::read(&handler).unwrap(), handler_code);
    let manifest = appended(&root, &manifest_before);
    assert_eq!(manifest.matches("[[route]]").count(), 8, "{manifest}");
    assert!(
        !manifest.contains("method = \"GET\"\npath = \"/items/{item_id}\""),
        "{manifest}"
    );
    assert!(rspy_ok(&root, &["check"]).starts_with("ok: 12 routes (2 native, 10 proxy)"));
}

#[test]
fn reads_swagger_2_under_its_base_path() {
    let (_dir, root) = project();
    let original = fs::read_to_string(root.join("rspy.toml")).unwrap();
    let source = beside(&root, "swagger-2.json");
    let out = rspy_ok(&root, &["import-routes", &source]);
    assert!(
        out.starts_with(
            "Added 4 proxied routes from `../swagger-2.json`:\n\
             \x20 GET     /api/users/\n\
             \x20 POST    /api/users/\n\
             \x20 GET     /api/users/{user_id}\n\
             \x20 DELETE  /api/users/{user_id}\n"
        ),
        "{out}"
    );
    assert!(
        appended(&root, &original).contains("path = \"/api/users/{user_id}\"\nmode = \"proxy\"\n")
    );
}

#[test]
fn refuses_bad_documents_and_touches_nothing() {
    let (_dir, root) = project();
    let import = |name: &str| {
        let source = beside(&root, name);
        vec!["import-routes".to_owned(), source]
    };
    let cases: [(&str, &[&str]); 6] = [
        (
            "not-json.json",
            &["`../not-json.json` is not JSON (expected value at line 1 column 1)"],
        ),
        (
            "openapi.yaml",
            &[
                "`../openapi.yaml` looks like YAML, and rspy reads OpenAPI documents in JSON only",
                "/openapi.json",
            ],
        ),
        (
            "no-paths.json",
            &["`../no-paths.json` has no `paths`, so it declares no operation to import"],
        ),
        (
            "not-openapi.json",
            &["`../not-openapi.json` is not an OpenAPI document (it has no `openapi` version)"],
        ),
        (
            "unroutable.json",
            &[
                "`GET /files/{name}.json` in `../unroutable.json` cannot be a route",
                "`{name}.json`: a parameter takes a whole segment",
                "change the path in the Python service",
            ],
        ),
        (
            "conflicting.json",
            &[
                "`DELETE /items/{item_id}` in `../conflicting.json` conflicts with `/items/{id}` (earlier in the same document)",
                "rename the parameter",
            ],
        ),
    ];
    for (name, needles) in cases {
        let args = import(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&root, &args, needles);
    }
    assert_refused(
        &root,
        &["import-routes", "../missing.json"],
        &["cannot read `../missing.json`: no such file or directory"],
    );
    assert_refused(
        &root,
        &["import-routes", "https://example.com/openapi.json"],
        &["plain http only", "curl -o openapi.json"],
    );

    // More paths axum cannot route, written on the spot.
    for (path, needle) in [
        ("/a/{x}{y}", "one parameter per segment"),
        ("/a/{id}/b/{id}", "parameter `id` appears twice"),
        ("/readyz", "the api serves this path itself"),
    ] {
        let document = format!(
            r#"{{"openapi": "3.0.0", "paths": {{"/ok": {{"get": {{}}}}, "{path}": {{"post": {{}}}}}}}}"#
        );
        fs::write(root.parent().unwrap().join("bad.json"), document).unwrap();
        assert_refused(
            &root,
            &["import-routes", "../bad.json"],
            &[
                &format!("`POST {path}` in `../bad.json` cannot be a route"),
                needle,
            ],
        );
    }

    // A path that conflicts with a declared route (the document's name for the parameter
    // differs from the manifest's).
    rspy_ok(&root, &["add-route", "GET", "/items/{item_id}", "--proxy"]);
    let source = beside(&root, "fastapi-shop.json");
    fs::write(
        root.parent().unwrap().join("renamed.json"),
        fs::read_to_string(fixture("fastapi-shop.json"))
            .unwrap()
            .replace("\"/items/{item_id}\"", "\"/items/{id}\""),
    )
    .unwrap();
    assert_refused(
        &root,
        &["import-routes", "../renamed.json"],
        &[
            "`GET /items/{id}` in `../renamed.json` conflicts with `/items/{item_id}` (declared in rspy.toml)",
        ],
    );
    assert!(rspy_ok(&root, &["import-routes", &source]).starts_with("Added 9 proxied routes"));
}

#[test]
fn fetches_openapi_json_from_the_python_service_over_tcp() {
    let (dir, root) = project();
    let served = dir.path().join("served");
    fs::create_dir(&served).unwrap();
    fs::copy(fixture("fastapi-shop.json"), served.join("openapi.json")).unwrap();
    let (_server, port) = http_server(&served);
    set_upstream(&root, &format!("http://127.0.0.1:{port}"));
    let before = snapshot(&root);

    let dry = rspy_ok(&root, &["import-routes", "--dry-run"]);
    let shown = format!("`/openapi.json` of the Python service at `http://127.0.0.1:{port}`");
    assert!(
        dry.starts_with(&format!("Would add 10 proxied routes from {shown}:\n")),
        "{dry}"
    );
    assert_eq!(snapshot(&root), before, "--dry-run writes nothing");

    let out = rspy_ok(&root, &["import-routes"]);
    assert!(
        out.starts_with(&format!("Added 10 proxied routes from {shown}:\n")),
        "{out}"
    );
    assert!(out.ends_with("12 routes: 1 native, 11 proxy\n"), "{out}");

    // The same document by its URL: everything is declared already.
    let url = format!("http://127.0.0.1:{port}/openapi.json");
    let again = rspy_ok(&root, &["import-routes", &url]);
    assert!(
        again.starts_with(&format!(
            "Unchanged: the 11 routes of `{url}` are all declared"
        )),
        "{again}"
    );

    // A URL the server does not serve: the operation failed (exit 1), nothing written.
    let after = snapshot(&root);
    let missing = format!("http://127.0.0.1:{port}/nope.json");
    let out = rspy_in(&root, &["import-routes", &missing]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "error: cannot fetch `{missing}`: it answered `404 File not found`; pass the URL of the OpenAPI document in JSON, or the document as a file\n"
        )
    );
    assert_eq!(snapshot(&root), after);
}

#[test]
fn fetches_openapi_json_over_a_unix_socket_in_chunks() {
    let (dir, root) = project();
    let socket = dir.path().join("python.sock");
    let _server = unix_server(dir.path(), &socket, &fixture("fastapi-shop.json"));
    let url = format!("unix:{}", socket.display());
    set_upstream(&root, &url);
    let original = fs::read_to_string(root.join("rspy.toml")).unwrap();

    let out = rspy_ok(&root, &["import-routes"]);
    assert!(
        out.starts_with(&format!(
            "Added 10 proxied routes from `/openapi.json` of the Python service at `{url}`:\n"
        )),
        "{out}"
    );
    // Byte for byte what the same document gives from a file.
    assert_golden(
        "import_routes/fastapi-shop.toml",
        &appended(&root, &original),
    );
    let again = rspy_ok(&root, &["import-routes"]);
    assert!(again.starts_with("Unchanged: "), "{again}");
}

#[test]
fn says_when_the_python_service_is_not_running() {
    // Nothing listens on a port just found free, nor on a socket that does not exist.
    let port = support::generated::free_port();
    let (tcp_dir, tcp) = project();
    let (unix_dir, unix) = project();
    let socket = unix_dir.path().join("absent.sock");
    for (root, url) in [
        (&tcp, format!("http://127.0.0.1:{port}")),
        (&unix, format!("unix:{}", socket.display())),
    ] {
        set_upstream(root, &url);
        let before = snapshot(root);
        let out = rspy_in(root, &["import-routes"]);
        assert_eq!(out.code, Some(1), "{out:?}");
        for needle in [
            format!("error: cannot fetch `/openapi.json` of the Python service at `{url}`: "),
            "is the Python service running?".to_owned(),
            "`supervisord -c deploy/supervisord.conf`".to_owned(),
            "`rspy import-routes openapi.json`".to_owned(),
        ] {
            assert!(
                out.stderr.contains(&needle),
                "`{needle}` not in {}",
                out.stderr
            );
        }
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert_eq!(snapshot(root), before);
    }
    drop(tcp_dir);
}

#[test]
fn refuses_outside_a_project() {
    let dir = TempDir::new().unwrap();
    assert_refused(
        dir.path(),
        &["import-routes", "openapi.json"],
        &["not inside an rspy project"],
    );
}
