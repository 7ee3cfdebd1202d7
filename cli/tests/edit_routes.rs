//! `rspy add-route` and `rspy remove-route` through the real binary, on projects made by
//! `rspy new`: their effect as golden diffs, idempotence, `--dry-run`, and bad input.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

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

fn rspy_in(dir: &Path, args: &[&str]) -> Outcome {
    let out = run_in(dir, rspy().args(args));
    assert!(out.code.is_some(), "{args:?} was killed: {out:?}");
    out
}

#[test]
fn dry_run_shows_the_diffs_and_writes_nothing() {
    let (_dir, root) = project();
    let before = snapshot(&root);
    let out = rspy_ok(
        &root,
        &["add-route", "GET", "/users/{id}", "--native", "--dry-run"],
    );
    assert_golden("edit_routes/add-native-dry-run.txt", &out);
    assert_eq!(snapshot(&root), before, "--dry-run writes nothing");
}

#[test]
fn add_native_then_again_changes_nothing_the_second_time() {
    let (_dir, root) = project();
    let out = rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    assert_golden("edit_routes/add-native.txt", &out);
    let after_first = snapshot(&root);
    assert_golden(
        "edit_routes/users.rs",
        &String::from_utf8(after_first["crates/api/src/routes/users.rs"].clone()).unwrap(),
    );

    let again = rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    assert!(
        again.starts_with("Unchanged: `GET /users/{id}` is native"),
        "{again}"
    );
    assert_eq!(
        snapshot(&root),
        after_first,
        "identical bytes after the second run"
    );
}

#[test]
fn a_second_handler_is_appended_to_the_module_rspy_made() {
    let (_dir, root) = project();
    rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    let first = fs::read_to_string(root.join("crates/api/src/routes/users.rs")).unwrap();
    rspy_ok(
        &root,
        &[
            "add-route",
            "POST",
            "/users",
            "--native",
            "--name",
            "create_user",
        ],
    );
    let both = fs::read_to_string(root.join("crates/api/src/routes/users.rs")).unwrap();
    assert!(
        both.starts_with(&first),
        "the existing code stays as it was"
    );
    assert!(both.contains("pub async fn create_user("), "{both}");
    let routes_rs = fs::read_to_string(root.join("crates/api/src/routes.rs")).unwrap();
    assert_eq!(
        routes_rs.matches("pub mod users;").count(),
        1,
        "{routes_rs}"
    );
}

#[test]
fn add_proxy_keeps_comments_and_order_of_the_manifest() {
    let (_dir, root) = project();
    let manifest = root.join("rspy.toml");
    let original = fs::read_to_string(&manifest).unwrap();
    let out = rspy_ok(
        &root,
        &[
            "add-route",
            "POST",
            "/reports",
            "--proxy",
            "--timeout",
            "60000",
        ],
    );
    assert!(
        out.contains("Added `POST /reports` (proxy, timeout 60000 ms)"),
        "{out}"
    );
    let edited = fs::read_to_string(&manifest).unwrap();
    assert!(
        edited.starts_with(&original),
        "everything before stays byte for byte"
    );
    assert_golden("edit_routes/proxy-appended.toml", &edited[original.len()..]);
    let json = rspy_ok(&root, &["routes", "--json"]);
    assert!(json.contains("\"path\": \"/reports\""), "{json}");
}

#[test]
fn dropping_a_setting_is_a_change_that_needs_force() {
    // Re-adding without the route's timeout would drop it: rspy asks instead of guessing.
    let (_dir, root) = project();
    let before = snapshot(&root);
    let out = rspy_in(&root, &["add-route", "GET", "/hello/python", "--proxy"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains(
            "is already declared (proxy, timeout 5000 ms); pass `--force` to change it to proxy"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&root), before);
    let same = rspy_ok(
        &root,
        &[
            "add-route",
            "GET",
            "/hello/python",
            "--proxy",
            "--timeout",
            "5000",
        ],
    );
    assert!(same.starts_with("Unchanged"), "{same}");
}

#[test]
fn a_proxied_route_can_reach_python_under_another_path() {
    let (_dir, root) = project();
    let manifest = root.join("rspy.toml");
    let original = fs::read_to_string(&manifest).unwrap();
    let args = [
        "add-route",
        "GET",
        "/api/v2/users/{id}",
        "--proxy",
        "--upstream-path",
        "/users/{id}",
    ];
    let out = rspy_ok(&root, &args);
    assert!(
        out.contains("Added `GET /api/v2/users/{id}` (proxy, to Python at `/users/{id}`)"),
        "{out}"
    );
    let edited = fs::read_to_string(&manifest).unwrap();
    assert_golden("edit_routes/upstream-path.toml", &edited[original.len()..]);
    let table = rspy_ok(&root, &["routes"]);
    assert!(
        table.contains("/api/v2/users/{id}  proxy   -                  upstream_path=/users/{id}"),
        "{table}"
    );
    let json = rspy_ok(&root, &["routes", "--json"]);
    assert!(
        json.contains("\"upstream_path\": \"/users/{id}\""),
        "{json}"
    );
    let before = snapshot(&root);
    assert!(rspy_ok(&root, &args).starts_with("Unchanged"));
    assert_eq!(snapshot(&root), before, "the second run writes nothing");

    // Going native keeps the settings: the pass-through stub must reach the same Python path.
    let out = rspy_ok(
        &root,
        &[
            "add-route",
            "GET",
            "/api/v2/users/{id}",
            "--native",
            "--force",
        ],
    );
    assert!(
        out.contains("native, handler `api::get_api_v2_users_by_id`, to Python at `/users/{id}`"),
        "{out}"
    );
    assert!(
        out.contains("Kept the route's to Python at `/users/{id}`"),
        "{out}"
    );
    let edited = fs::read_to_string(&manifest).unwrap();
    assert!(
        edited.contains("upstream_path = \"/users/{id}\""),
        "{edited}"
    );
    assert!(rspy_ok(&root, &["check"]).starts_with("ok: 3 routes (2 native, 1 proxy)"));
}

#[test]
fn mode_switches_are_refused_without_force_and_done_with_it() {
    let (_dir, root) = project();
    rspy_ok(&root, &["add-route", "GET", "/orders", "--proxy"]);
    let before = snapshot(&root);
    let out = rspy_in(&root, &["add-route", "GET", "/orders", "--native"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("`GET /orders` is already declared (proxy); pass `--force`"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&root), before);

    let out = rspy_ok(
        &root,
        &["add-route", "GET", "/orders", "--native", "--force"],
    );
    assert!(
        out.contains("(native, handler `orders::get_orders`)"),
        "{out}"
    );
    let out = rspy_ok(
        &root,
        &["add-route", "GET", "/orders", "--proxy", "--force"],
    );
    assert!(out.contains("stays in crates/api/src/routes/"), "{out}");
    assert!(
        root.join("crates/api/src/routes/orders.rs").is_file(),
        "the handler is the user's"
    );
}

#[test]
fn remove_route_deletes_what_rspy_made_and_keeps_edited_handlers() {
    let (_dir, root) = project();
    let pristine = snapshot(&root);
    rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    let out = rspy_ok(&root, &["remove-route", "GET", "/users/{id}"]);
    assert!(
        out.contains("deleted crates/api/src/routes/users.rs"),
        "{out}"
    );
    assert_eq!(
        snapshot(&root),
        pristine,
        "back to the tree before add-route"
    );
    let again = rspy_ok(&root, &["remove-route", "GET", "/users/{id}"]);
    assert!(
        again.starts_with("Unchanged: `GET /users/{id}` is not declared"),
        "{again}"
    );

    rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    let module = root.join("crates/api/src/routes/users.rs");
    let edited = fs::read_to_string(&module)
        .unwrap()
        .replace("crate::proxy::forward(state, request).await", "todo!()");
    fs::write(&module, &edited).unwrap();
    let out = rspy_ok(&root, &["remove-route", "GET", "/users/{id}"]);
    assert!(out.contains("Kept crates/api/src/routes/users.rs"), "{out}");
    assert_eq!(
        fs::read_to_string(&module).unwrap(),
        edited,
        "the user's edits stay"
    );
    let manifest = fs::read_to_string(root.join("rspy.toml")).unwrap();
    assert!(!manifest.contains("path = \"/users/{id}\""), "{manifest}");
}

#[test]
fn refuses_bad_routes_and_touches_nothing() {
    let (_dir, root) = project();
    rspy_ok(
        &root,
        &["add-route", "GET", "/files/{kind}/{*rest}", "--proxy"],
    );
    let add = |method: &'static str, path: &'static str, extra: &[&'static str]| {
        let mut args = vec!["add-route", method, path];
        args.extend(extra);
        args
    };
    assert_refused(
        &root,
        &add("FETCH", "/x", &["--proxy"]),
        &["invalid method `FETCH`", "use GET, POST"],
    );
    assert_refused(
        &root,
        &add("GET", "x", &["--proxy"]),
        &["invalid path `x`", "did you mean `/x`"],
    );
    assert_refused(
        &root,
        &add("GET", "/x/{id", &["--proxy"]),
        &["unbalanced braces"],
    );
    assert_refused(
        &root,
        &add("GET", "/x/{*rest}/y", &["--proxy"]),
        &["must come last"],
    );
    assert_refused(
        &root,
        &add("GET", "/x/{id}/{id}", &["--proxy"]),
        &["`id` appears twice"],
    );
    assert_refused(
        &root,
        &add("GET", "/x/:id", &["--proxy"]),
        &["axum 0.8 writes it `{id}`"],
    );
    assert_refused(
        &root,
        &add("GET", "/livez", &["--proxy"]),
        &["serves this path itself"],
    );
    assert_refused(
        &root,
        &add("GET", "/files/{name}/{*rest}", &["--proxy"]),
        &["conflicts with a declared route", "/files/{kind}/{*rest}"],
    );
    assert_refused(
        &root,
        &add("GET", "/x", &["--native", "--name", "GetX"]),
        &["invalid handler name `GetX`", "snake_case"],
    );
    assert_refused(
        &root,
        &add("GET", "/x", &["--native", "--name", "match"]),
        &["`match`", "keyword"],
    );
    assert_refused(
        &root,
        &add("GET", "/x", &["--proxy", "--name", "x"]),
        &["`--name`", "proxied route has none"],
    );
    assert_refused(
        &root,
        &add(
            "GET",
            "/x/{id}",
            &["--proxy", "--upstream-path", "/v1/{user}"],
        ),
        &[
            "invalid upstream path `/v1/{user}`",
            "use one of the route's: {id}",
        ],
    );
    assert_refused(
        &root,
        &add(
            "GET",
            "/x/{*rest}",
            &["--proxy", "--upstream-path", "/{*rest}/y"],
        ),
        &["`{*rest}` takes the rest of the path, so it must come last"],
    );
    assert_refused(
        &root,
        &add("ANY", "/hello/rust", &["--proxy"]),
        &["overlaps `GET /hello/rust`"],
    );
    // hello.rs is the template's, not rspy add-route's: rspy does not write into it.
    assert_refused(
        &root,
        &add("GET", "/hello/there", &["--native"]),
        &[
            "hello.rs exists and was not made by `rspy add-route`",
            "--force",
        ],
    );
    assert_refused(
        &root,
        &["remove-route", "GET", "nope"],
        &["invalid path `nope`"],
    );
}

#[test]
fn refuses_outside_a_project_and_with_a_broken_manifest() {
    let dir = TempDir::new().unwrap();
    assert_refused(
        dir.path(),
        &["add-route", "GET", "/x", "--proxy"],
        &["not inside an rspy project"],
    );
    let (_dir, root) = project();
    fs::write(root.join("rspy.toml"), "schema = 3\n").unwrap();
    assert_refused(
        &root,
        &["add-route", "GET", "/x", "--proxy"],
        &["understands schema 1 only"],
    );
    assert_refused(
        &root,
        &["remove-route", "GET", "/x"],
        &["understands schema 1 only"],
    );
}

#[test]
fn set_fallback_switches_and_keeps_the_comments() {
    let (_dir, root) = project();
    let manifest = root.join("rspy.toml");
    let before = fs::read_to_string(&manifest).unwrap();
    let out = rspy_ok(&root, &["set-fallback", "none"]);
    assert!(
        out.starts_with("Set the fallback (`none`: requests no route matches get 404 from Rust)"),
        "{out}"
    );
    let after = fs::read_to_string(&manifest).unwrap();
    assert_eq!(
        after,
        before.replace(
            "mode = \"proxy\"\n\n# One [[route]]",
            "mode = \"none\"\n\n# One [[route]]"
        )
    );
    let again = rspy_ok(&root, &["set-fallback", "none"]);
    assert!(
        again.starts_with("Unchanged: the fallback is `none`"),
        "{again}"
    );
    assert!(rspy_ok(&root, &["routes"]).contains("fallback: none"));
    rspy_ok(&root, &["set-fallback", "proxy"]);
    assert_eq!(
        fs::read_to_string(&manifest).unwrap(),
        before,
        "back byte for byte"
    );
}

#[test]
fn check_passes_on_a_consistent_project_and_lists_every_problem() {
    let (_dir, root) = project();
    rspy_ok(&root, &["add-route", "GET", "/users/{id}", "--native"]);
    let out = rspy_ok(&root, &["check"]);
    assert!(out.starts_with("ok: 3 routes (2 native, 1 proxy)"), "{out}");

    // Drift: a handler renamed in code, a conflicting path, a proxy route with a handler. An
    // idle timeout of zero is no problem: it keeps no connection to Python.
    let module = root.join("crates/api/src/routes/users.rs");
    let code = fs::read_to_string(&module)
        .unwrap()
        .replace("pub async fn get_users_by_id(", "pub async fn renamed(");
    fs::write(&module, code).unwrap();
    let mut manifest = fs::read_to_string(root.join("rspy.toml"))
        .unwrap()
        .replacen("\n[fallback]", "idle_timeout_ms = 0\n\n[fallback]", 1);
    manifest.push_str("\n[[route]]\nmethod = \"POST\"\npath = \"/users/{name}\"\nmode = \"proxy\"\nhandler = \"x::y\"\n");
    fs::write(root.join("rspy.toml"), manifest).unwrap();
    let before = snapshot(&root);

    let out = rspy_in(&root, &["check"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let problems: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(problems.len(), 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no `pub async fn get_users_by_id` in crates/api/src/routes/users.rs")
    );
    assert!(out.stderr.contains("axum would refuse to start"));
    assert!(out.stderr.contains("is proxied but names a handler"));
    assert!(!out.stderr.contains("idle_timeout_ms"), "{}", out.stderr);
    assert!(out.stderr.contains("not consistent (3 problems above)"));
    assert_eq!(snapshot(&root), before, "check only reads");
}

#[test]
fn every_writing_command_twice_changes_nothing_the_second_time() {
    let (_dir, root) = project();
    let commands: [&[&str]; 6] = [
        &["add-route", "GET", "/users/{id}", "--native"],
        &[
            "add-route",
            "POST",
            "/reports",
            "--proxy",
            "--timeout",
            "500",
        ],
        &["add-route", "POST", "/reports", "--native", "--force"],
        &["remove-route", "GET", "/users/{id}"],
        &["set-fallback", "none"],
        &["remove-route", "POST", "/reports", "--force"],
    ];
    for args in commands {
        let before = snapshot(&root);
        let mut dry = args.to_vec();
        dry.push("--dry-run");
        let preview = rspy_ok(&root, &dry);
        assert!(
            preview.contains("Nothing was written (--dry-run)"),
            "{args:?}: {preview}"
        );
        assert_eq!(snapshot(&root), before, "{args:?} --dry-run wrote");

        let first = rspy_ok(&root, args);
        assert!(!first.starts_with("Unchanged"), "{args:?}: {first}");
        let after_first = snapshot(&root);
        assert_ne!(after_first, before, "{args:?} changed nothing");
        let second = rspy_ok(&root, args);
        assert!(second.starts_with("Unchanged: "), "{args:?}: {second}");
        assert_eq!(
            snapshot(&root),
            after_first,
            "{args:?}: identical bytes after the second run"
        );
    }
}
