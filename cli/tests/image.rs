//! The generated Dockerfile, carried out without a Docker engine (this machine has none):
//! every stage of it, line by line, then the image's `CMD` as its `USER`, checked with its own
//! `HEALTHCHECK`, over HTTP, and by what its processes are. For `rspy new` over each transport
//! and for a service `rspy init` adopted.
//!
//! Each stage has a folder that stands for its `/app`, `/opt` and `/etc`. `RUN` lines run in a
//! private mount namespace, chrooted into a root with the stage's `/app`, `/opt` and `/etc`, an
//! empty `/tmp`, and this machine's other folders read-only. This machine stands in for the
//! base images: Debian 12 with Rust 1.95 and Python 3.11, as `rust:1.95-slim-bookworm` and
//! `python:3.11-slim-bookworm` have (a Python stage's `PATH` has no cargo, and has `python`).
//! `COPY` lines copy from the project (less what `.dockerignore` leaves out) or from an earlier
//! stage's folder; `FROM` an earlier stage starts from a copy of its folder. So the image gets
//! only what the Dockerfile puts in it, its builds run the Dockerfile's own commands
//! (cargo-chef included), and its service runs as the unprivileged user the Dockerfile makes,
//! on files it does not own.
//!
//! Departures, so that the test writes nothing outside its folders and ports: the Rust stages
//! build into the shared `target/generated` (their `/app/target` points there) and install
//! cargo-chef below it; cargo's home is writable, for crate downloads; the container's `PORT`
//! and `METRICS_ADDR` are set to free ports, as `docker run -e` would; and there is no network
//! namespace, so the test reads which addresses the api and Python listen on instead.
//!
//! Needs root (mount namespaces and `chroot`), as CI runs, and PyPI like e2e.rs.

mod support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use support::generated::{
    alive, children, command_line, free_port, is_root, listening_addresses, shared_target, uid_of,
};
use support::http::get;
use support::{copy_tree, repo_root, rspy, run_in};
use tempfile::TempDir;

/// The Dockerfile's instructions: each keyword (upper case) with the rest of its line,
/// continuation lines joined and comments left out.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut parsed = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let (keyword, rest) = pending
            .split_once(char::is_whitespace)
            .unwrap_or((&pending, ""));
        parsed.push((keyword.to_uppercase(), rest.trim().to_owned()));
        pending.clear();
    }
    assert!(
        pending.is_empty(),
        "the Dockerfile ends inside a line: {pending}"
    );
    parsed
}

/// Whether `name` matches the glob `pattern` (`*`, `?` and `[...]` with ranges and `^`, as
/// Go's `filepath.Match` reads them in one path component).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((b'[', rest)) => {
            let end = rest.iter().position(|&b| b == b']').unwrap_or_else(|| {
                panic!("an unclosed `[` in {}", String::from_utf8_lossy(pattern))
            });
            let (negated, class) = match rest[..end].split_first() {
                Some((b'^', class)) => (true, class),
                _ => (false, &rest[..end]),
            };
            name.split_first().is_some_and(|(&c, tail)| {
                in_class(class, c) != negated && glob(&rest[end + 1..], tail)
            })
        }
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// Whether `c` is one of the bytes or ranges (`a-z`) of a `[...]` class.
fn in_class(class: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            if (class[i]..=class[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if class[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// Whether the slash-separated `path` matches a `.dockerignore` `pattern`, where `**` stands
/// for any number of components.
fn ignore_matches(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| ignore_matches(rest, &path[skip..])),
        Some((component, rest)) => path.split_first().is_some_and(|(name, tail)| {
            glob(component.as_bytes(), name.as_bytes()) && ignore_matches(rest, tail)
        }),
    }
}

/// The build context: the project, less what its `.dockerignore` names (a folder named there
/// is left out with everything in it).
struct Context {
    root: PathBuf,
    ignored: Vec<String>,
}

impl Context {
    fn new(project: &Path) -> Self {
        let ignore = fs::read_to_string(project.join(".dockerignore")).unwrap_or_default();
        let ignored = ignore
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                assert!(
                    !line.starts_with('!'),
                    "the test does not read `!` lines of .dockerignore yet: {line}"
                );
                line.trim_start_matches('/').to_owned()
            })
            .collect();
        Self {
            root: project.to_owned(),
            ignored,
        }
    }

    fn is_ignored(&self, relative: &str) -> bool {
        let components: Vec<&str> = relative.split('/').collect();
        (1..=components.len()).any(|n| {
            self.ignored.iter().any(|pattern| {
                let pattern: Vec<&str> = pattern.split('/').collect();
                ignore_matches(&pattern, &components[..n])
            })
        })
    }

    /// The context's paths that `source` names (a glob in its last component), relative.
    fn sources_named(&self, source: &str) -> Vec<String> {
        let source = source.trim_start_matches("./").trim_end_matches('/');
        if source == "." || source.is_empty() {
            return vec![String::new()];
        }
        let (parent, last) = source.rsplit_once('/').unwrap_or(("", source));
        if !last.contains(['*', '?', '[']) {
            return vec![source.to_owned()];
        }
        let mut found: Vec<String> = fs::read_dir(self.root.join(parent))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| glob(last.as_bytes(), name.as_bytes()))
            .map(|name| child_of(parent, &name))
            .filter(|relative| !self.is_ignored(relative))
            .collect();
        found.sort();
        found
    }

    /// Copies the context's `relative` path (a file, or a folder's contents) to `to`.
    fn copy(&self, relative: &str, to: &Path) {
        let from = self.root.join(relative);
        if from.is_dir() {
            fs::create_dir_all(to).unwrap();
            for entry in fs::read_dir(&from).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let child = child_of(relative, &name);
                if !self.is_ignored(&child) {
                    self.copy(&child, &to.join(&name));
                }
            }
        } else {
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(&from, to).unwrap_or_else(|err| panic!("COPY {}: {err}", from.display()));
        }
    }
}

/// The context's relative path of `name` in the folder `parent` (`""` for the context itself).
fn child_of(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// A stage of the build, or the image its last stage makes.
#[derive(Clone, Debug)]
struct Stage {
    name: Option<String>,
    /// Stands for the stage's `/`: it holds the stage's `app`, `opt` and `etc`.
    root: PathBuf,
    workdir: String,
    env: Vec<(String, String)>,
    user: Option<String>,
    /// The `HEALTHCHECK`'s options (`--timeout=3s`...) and command.
    healthcheck: Option<(Vec<String>, Vec<String>)>,
    cmd: Option<Vec<String>>,
}

/// The folders of `/` that each stage has of its own; the others are this machine's.
const STAGE_FOLDERS: [&str; 3] = ["app", "opt", "etc"];

/// Run with `ROOT` (a stage's folder), `USERSPEC` (empty for root) and `WRITABLE` (paths) in
/// its environment, and `env -i` arguments after it. Makes a root on `/mnt` in this mount
/// namespace and `chroot`s into it: the stage's `/app`, `/opt` and `/etc`; an empty `/tmp` and
/// `/var/log`; `/dev`, `/proc` and `/sys`; the machine's other folders read-only (its `/root`
/// lets other users in, as the base images' `/usr/local` does); and `WRITABLE`, the shared
/// target folder and cargo's home (crate downloads), writable.
const ENTER: &str = r#"set -e
new=/mnt
mount -t tmpfs rspy-image "$new"
for entry in /*; do
  name=${entry#/}
  case "$name" in app|opt|etc|root|mnt|tmp) continue ;; esac
  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$new/$name"
  elif [ -d "$entry" ]; then
    mkdir "$new/$name"
    case "$name" in
      dev|proc|sys) mount --rbind "$entry" "$new/$name" ;;
      *) mount --bind -o ro "$entry" "$new/$name" ;;
    esac
  fi
done
mkdir -m 0755 "$new/root"
for entry in /root/* /root/.[!.]*; do
  if [ -d "$entry" ] && [ ! -L "$entry" ]; then
    mkdir "$new$entry"; mount --bind -o ro "$entry" "$new$entry"
  fi
done
mkdir -m 1777 "$new/tmp"
mount -t tmpfs rspy-log "$new/var/log"
for name in app opt etc; do mkdir "$new/$name"; mount --bind "$ROOT/$name" "$new/$name"; done
for path in $WRITABLE; do mkdir -p "$new$path"; mount --bind "$path" "$new$path"; done
if [ -n "$USERSPEC" ]; then exec chroot --userspec="$USERSPEC" "$new" /usr/bin/env -i "$@"; fi
exec chroot "$new" /usr/bin/env -i "$@"
"#;

impl Stage {
    /// The folder in this stage's folder that stands for `path` (absolute, or relative to
    /// the working directory).
    fn host_path(&self, path: &str) -> PathBuf {
        let absolute = self.absolute(path);
        let inside = absolute.trim_start_matches('/');
        assert!(
            STAGE_FOLDERS
                .iter()
                .any(|folder| inside == *folder || inside.starts_with(&format!("{folder}/"))),
            "the test gives a stage only /app, /opt and /etc of its own, not {absolute}"
        );
        self.root.join(inside)
    }

    /// `path` made absolute against the working directory, `.` components dropped.
    fn absolute(&self, path: &str) -> String {
        let joined = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{}/{path}", self.workdir)
        };
        let parts: Vec<&str> = joined
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .collect();
        format!("/{}", parts.join("/"))
    }

    /// `value` with `$NAME` and `${NAME}` replaced by the stage's variables (empty when
    /// unset), as `ENV` reads them.
    fn substitute_env(&self, value: &str) -> String {
        let mut substituted = String::new();
        let mut rest = value;
        while let Some(at) = rest.find('$') {
            substituted.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                let end = braced.find('}').expect("`${` closed by `}`");
                (&braced[..end], &braced[end + 1..])
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                after.split_at(end)
            };
            if name.is_empty() {
                substituted.push('$');
            } else if let Some((_, known)) = self.env.iter().find(|(key, _)| key == name) {
                substituted.push_str(known);
            }
            rest = tail;
        }
        substituted.push_str(rest);
        substituted
    }

    fn set_env(&mut self, key: &str, value: String) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value));
    }

    /// The home folder of `user` (a name or `uid[:gid]`) in this stage's `/etc/passwd`, as
    /// Docker sets `HOME`.
    fn home_of(&self, user: &str) -> String {
        let who = user.split(':').next().unwrap();
        fs::read_to_string(self.root.join("etc/passwd"))
            .unwrap()
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.len() > 5 && (fields[0] == who || fields[2] == who))
            .map_or_else(|| "/".to_owned(), |fields| fields[5].to_owned())
    }

    /// `argv` in this stage, as the stage's user, with its environment and `extra` on top.
    fn command(&self, argv: &[String], extra: &[(String, String)]) -> Command {
        let mut env = self.env.clone();
        if !env.iter().any(|(key, _)| key == "HOME") {
            let home = self.home_of(self.user.as_deref().unwrap_or("0"));
            env.push(("HOME".to_owned(), home));
        }
        env.extend(extra.iter().cloned());
        let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"),
            PathBuf::from,
        );
        let writable = format!("{} {}", shared_target().display(), cargo_home.display());
        assert!(
            !writable.contains(['\'', '"']) && writable.split(' ').count() == 2,
            "the mount script takes paths without spaces or quotes: {writable}"
        );
        // Two Rust builds at once would race in `cargo install`'s folder: a Rust stage's
        // commands wait for one another (builds wait for the target folder's lock anyway).
        let mut command;
        if env.iter().any(|(key, _)| key == "CARGO_INSTALL_ROOT") {
            command = Command::new("flock");
            command
                .arg(shared_target().join("image-tools.lock"))
                .arg("unshare");
        } else {
            command = Command::new("unshare");
        }
        command
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                ENTER,
                "sh",
            ])
            .arg(format!("--chdir={}", self.workdir))
            .args(env.iter().map(|(key, value)| format!("{key}={value}")))
            .args(argv)
            .env("ROOT", &self.root)
            .env("WRITABLE", writable)
            .env("USERSPEC", self.user.as_deref().unwrap_or(""));
        command
    }
}

/// A base image's stage: a fresh folder with this machine's `/etc`, and the environment the
/// machine's tools need. A Rust image has cargo, builds into the shared target folder (its
/// `/app/target` points there) and installs below it. A Python image has `python` and no
/// cargo on its `PATH`.
fn base_stage(root: PathBuf, image: &str) -> Stage {
    fs::create_dir_all(root.join("app")).unwrap();
    fs::create_dir_all(root.join("opt")).unwrap();
    cp_a(Path::new("/etc"), &root.join("etc"));
    let mut env: Vec<(String, String)> = Vec::new();
    let machine_path = std::env::var("PATH").unwrap();
    let tools = shared_target().join("image-tools");
    let path = if image.starts_with("rust:") {
        for key in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Ok(value) = std::env::var(key) {
                env.push((key.to_owned(), value));
            }
        }
        let target = shared_target();
        fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, root.join("app/target")).unwrap();
        env.push(("CARGO_INSTALL_ROOT".to_owned(), tools.display().to_string()));
        env.push(("CARGO_TARGET_DIR".to_owned(), target.display().to_string()));
        format!("{}:{machine_path}", tools.join("bin").display())
    } else {
        let kept: Vec<&str> = machine_path
            .split(':')
            .filter(|dir| !Path::new(dir).join("cargo").exists())
            .collect();
        let has = |program: &str| {
            kept.iter()
                .find(|dir| Path::new(dir).join(program).exists())
        };
        if has("python").is_some() {
            kept.join(":")
        } else {
            // Debian's Python is `python3` only; the Python images have `python` too.
            let python3 = Path::new(has("python3").expect("python3 on PATH")).join("python3");
            let stand_in = tools.join("python-bin");
            fs::create_dir_all(&stand_in).unwrap();
            let link = stand_in.join(format!("python.{}", std::process::id()));
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(python3, &link).unwrap();
            fs::rename(&link, stand_in.join("python")).unwrap();
            format!("{}:{}", stand_in.display(), kept.join(":"))
        }
    };
    env.push(("PATH".to_owned(), path));
    Stage {
        name: None,
        root,
        workdir: "/".to_owned(),
        env,
        user: None,
        healthcheck: None,
        cmd: None,
    }
}

/// `cp -a`, which keeps symbolic links (a virtual environment's), modes and owners.
fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// `KEY=value` pairs of an `ENV` line, values unquoted.
fn env_pairs(rest: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in rest.chars().chain(std::iter::once(' ')) {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    let (key, value) = word.split_once('=').expect("ENV KEY=value");
                    pairs.push((key.to_owned(), value.to_owned()));
                    word.clear();
                }
            }
            c => word.push(c),
        }
    }
    pairs
}

/// Carries out the Dockerfile of `project`, each stage in a folder below `work`; returns the
/// image (its last stage).
fn build_image(project: &Path, work: &Path) -> Stage {
    let context = Context::new(project);
    let dockerfile = fs::read_to_string(project.join("Dockerfile")).unwrap();
    let mut stages: Vec<Stage> = Vec::new();
    for (keyword, rest) in instructions(&dockerfile) {
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let root = work.join(format!("stage-{}", stages.len()));
            let mut stage = match stages.iter().find(|s| s.name.as_deref() == Some(words[0])) {
                Some(earlier) => {
                    cp_a(&earlier.root, &root);
                    Stage {
                        root,
                        ..earlier.clone()
                    }
                }
                None => base_stage(root, words[0]),
            };
            stage.name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(stage);
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            assert_eq!(keyword, "ARG", "only ARG may come before the first FROM");
            continue;
        };
        let described = format!("{keyword} {rest}");
        // As `docker build` shows its steps: printed with the test's output when it fails.
        eprintln!("[{}] {described}", stage.name.as_deref().unwrap_or("image"));
        match keyword.as_str() {
            "WORKDIR" => {
                fs::create_dir_all(stage.host_path(&rest)).unwrap();
                stage.workdir = stage.absolute(&rest);
            }
            "ENV" => {
                // Every value of the line sees the variables as they were before it.
                let pairs: Vec<(String, String)> = env_pairs(&rest)
                    .into_iter()
                    .map(|(key, value)| (key, stage.substitute_env(&value)))
                    .collect();
                for (key, value) in pairs {
                    stage.set_env(&key, value);
                }
            }
            "RUN" => {
                let out = run_in(
                    project,
                    &mut stage.command(&["sh".to_owned(), "-c".to_owned(), rest.clone()], &[]),
                );
                assert_eq!(
                    out.code,
                    Some(0),
                    "{described} failed:\n{}\n{}",
                    out.stdout,
                    out.stderr
                );
            }
            "COPY" => {
                let mut words: Vec<&str> = rest.split_whitespace().collect();
                let from = words
                    .first()
                    .and_then(|word| word.strip_prefix("--from="))
                    .map(str::to_owned);
                if from.is_some() {
                    words.remove(0);
                }
                let (dest, sources) = words.split_last().expect("COPY has a destination");
                let into_folder = dest.ends_with('/') || sources.len() > 1;
                let dest = stage.host_path(dest);
                let mut copied = 0;
                for source in sources {
                    match &from {
                        Some(name) => {
                            let earlier = stages[..stages.len() - 1]
                                .iter()
                                .find(|s| s.name.as_deref() == Some(name.as_str()))
                                .unwrap_or_else(|| panic!("{described}: no stage {name}"));
                            let path = earlier.host_path(source);
                            assert!(path.exists(), "{described}: stage {name} has no {source}");
                            // A folder's contents go to `dest`, as from the context.
                            let to = if into_folder && path.is_file() {
                                dest.join(path.file_name().unwrap())
                            } else {
                                dest.clone()
                            };
                            fs::create_dir_all(to.parent().unwrap()).unwrap();
                            if path.is_dir() {
                                fs::create_dir_all(&to).unwrap();
                                cp_a(&path.join("."), &to);
                            } else {
                                cp_a(&path, &to);
                            }
                            copied += 1;
                        }
                        None => {
                            for relative in context.sources_named(source) {
                                let from = context.root.join(&relative);
                                assert!(
                                    from.exists() && !context.is_ignored(&relative),
                                    "{described}: the context has no {relative}"
                                );
                                let to = if into_folder && from.is_file() {
                                    dest.join(from.file_name().unwrap())
                                } else {
                                    dest.clone()
                                };
                                context.copy(&relative, &to);
                                copied += 1;
                            }
                        }
                    }
                }
                assert!(copied > 0, "{described} copies nothing");
            }
            "USER" => stage.user = Some(rest),
            "HEALTHCHECK" => {
                let (options, json) = rest.split_once("CMD ").expect("HEALTHCHECK ... CMD [...]");
                let options = options.split_whitespace().map(str::to_owned).collect();
                let command = serde_json::from_str(json).expect("exec form");
                stage.healthcheck = Some((options, command));
            }
            "CMD" => stage.cmd = Some(serde_json::from_str(&rest).expect("exec form")),
            "EXPOSE" | "ARG" => {}
            other => panic!("the test does not carry out {other} yet: {described}"),
        }
    }
    stages.pop().expect("the Dockerfile has a stage")
}

/// The image's `CMD`, running. If the test ends early, it and the programs it started (each
/// in a process group of its own, as supervisord makes them) are killed.
struct Container {
    child: Child,
    log: PathBuf,
}

impl Container {
    /// `what` failed: the message, then what the container wrote.
    fn failed(&self, what: &str) -> String {
        let output = fs::read_to_string(&self.log).unwrap_or_default();
        format!("{what}\n--- container output ---\n{output}")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            for pid in children(self.child.id())
                .into_iter()
                .chain([self.child.id()])
            {
                let _ = killpg(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

/// The Dockerfile of the project `name` in `dir` carried out, and the image run: its health
/// check passes, each `(path, text)` of `answers` gets a 200 whose body holds that text,
/// supervisord and both programs run as the image's user, the api listens on every interface
/// and Python only where the api reaches it (`python_port` on loopback, or a Unix socket in a
/// folder of its own), and a stop ends them all.
fn image_builds_and_runs(
    dir: &Path,
    name: &str,
    python_port: Option<u16>,
    answers: &[(&str, &str)],
) {
    let project = dir.join(name);
    let work = dir.join("build");
    fs::create_dir(&work).unwrap();
    // The shared target outlives the test: a binary from an earlier run must not stand in
    // for one this build did not make.
    let binary = format!("{name}-api");
    let _ = fs::remove_file(shared_target().join("release").join(&binary));
    let image = build_image(&project, &work);

    let user = image.user.clone().expect("the image has a USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert_ne!(uid, 0, "the image runs as root");
    let binary = image.host_path(&format!("/app/target/release/{binary}"));
    assert!(
        binary.is_file(),
        "the image has no api at {}",
        binary.display()
    );

    // The container's standard streams belong to its user, as runc hands them over.
    let log = work.join("container.log");
    fs::File::create(&log).unwrap();
    std::os::unix::fs::chown(&log, Some(uid), None).unwrap();
    let api_port = free_port();
    let settings = [
        ("PORT".to_owned(), api_port.to_string()),
        (
            "METRICS_ADDR".to_owned(),
            format!("127.0.0.1:{}", free_port()),
        ),
        ("READINESS_INTERVAL_MS".to_owned(), "200".to_owned()),
    ];
    let mut command = image.command(image.cmd.as_ref().expect("the image has a CMD"), &settings);
    let child = command
        .stdin(Stdio::null())
        .stdout(fs::File::options().append(true).open(&log).unwrap())
        .stderr(fs::File::options().append(true).open(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut container = Container { child, log };

    // The image's own health check, as Docker runs it (within its --timeout), until it passes.
    let (options, healthcheck) = image
        .healthcheck
        .clone()
        .expect("the image has a HEALTHCHECK");
    let timeout = options
        .iter()
        .find_map(|option| option.strip_prefix("--timeout="))
        .map_or("30s", |value| value);
    let mut timed = vec!["timeout".to_owned(), timeout.to_owned()];
    timed.extend(healthcheck);
    let start = Instant::now();
    loop {
        let check = image.command(&timed, &settings).output().unwrap();
        if check.status.success() {
            break;
        }
        if let Some(status) = container.child.try_wait().unwrap() {
            panic!(
                "{}",
                container.failed(&format!(
                    "the container exited ({status}) before its HEALTHCHECK passed"
                ))
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{}",
            container.failed(&format!(
                "the HEALTHCHECK still failed after {:?} ({}): {}",
                start.elapsed(),
                check.status,
                String::from_utf8_lossy(&check.stderr)
            ))
        );
        sleep(Duration::from_millis(250));
    }

    for (path, text) in answers {
        let response = get(api_port, path)
            .unwrap_or_else(|err| panic!("{}", container.failed(&format!("GET {path}: {err}"))));
        assert!(
            response.status == 200 && response.body.contains(text),
            "{}",
            container.failed(&format!("GET {path}: {response:?}"))
        );
    }
    // `docker run -p` reaches the api from outside the container; Python only the api.
    assert_eq!(
        listening_addresses(api_port),
        ["00000000"],
        "the api listens on every interface"
    );

    // supervisord is the container's process; it, the api and Python run as the image's user.
    let supervisord = container.child.id();
    let programs = children(supervisord);
    let described: Vec<String> = programs
        .iter()
        .map(|pid| format!("{pid}: {}", command_line(*pid)))
        .collect();
    assert_eq!(
        programs.len(),
        2,
        "supervisord runs the api and Python: {described:?}"
    );
    for pid in std::iter::once(supervisord).chain(programs.iter().copied()) {
        assert_eq!(
            uid_of(&pid.to_string()),
            Some(uid),
            "{} runs as the image's user",
            command_line(pid)
        );
    }
    match python_port {
        Some(port) => assert_eq!(
            listening_addresses(port),
            ["0100007F"],
            "Python listens on 127.0.0.1 only"
        ),
        None => {
            let socket = image.host_path("/app/run/python.sock");
            let is_socket = fs::metadata(&socket).map(|meta| meta.file_type().is_socket());
            assert!(
                matches!(is_socket, Ok(true)),
                "{}",
                container.failed(&format!("/app/run/python.sock is no socket: {is_socket:?}"))
            );
            let folder = fs::metadata(socket.parent().unwrap()).unwrap();
            assert_eq!(
                (folder.uid(), folder.permissions().mode() & 0o777),
                (uid, 0o700),
                "only the image's user may enter /app/run"
            );
        }
    }

    // `docker stop`: SIGTERM to the container's process, which stops both programs.
    let _ = nix::sys::signal::kill(
        Pid::from_raw(i32::try_from(supervisord).unwrap()),
        Signal::SIGTERM,
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = container.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            container.failed("the container did not stop within 30 s of SIGTERM")
        );
        sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "{}",
        container.failed(&format!("the container stopped with {status}"))
    );
    for pid in programs {
        assert!(!alive(pid), "{pid} outlived the container");
    }
}

#[test]
fn the_dockerfile_makes_an_image_that_serves_over_both_transports() {
    assert!(
        is_root(),
        "run this test as root (see the module's comment)"
    );
    let hello = [
        ("/hello/rust", r#""language":"rust""#),
        ("/hello/python", r#""language":"python""#),
    ];
    let python_port = free_port();
    let port_arg = python_port.to_string();
    for (name, options, port) in [
        (
            "image-tcp",
            ["--python-port", port_arg.as_str()],
            Some(python_port),
        ),
        ("image-uds", ["--transport", "unix"], None),
    ] {
        let dir = TempDir::new().unwrap();
        let out = run_in(dir.path(), rspy().args(["new", name]).args(options));
        assert_eq!(out.code, Some(0), "{out:?}");
        image_builds_and_runs(dir.path(), name, port, &hello);
    }
}

/// The template's other Dockerfile, for a service that `rspy init` adopted: the service's
/// folder copied whole and its own requirements installed.
#[test]
fn the_dockerfile_of_an_adopted_service_makes_an_image_that_serves() {
    assert!(
        is_root(),
        "run this test as root (see the module's comment)"
    );
    let dir = TempDir::new().unwrap();
    let project = dir.path().join("image-adopted");
    copy_tree(
        &repo_root().join("cli/tests/fixtures/init/fastapi"),
        &project,
    );
    let python_port = free_port();
    let out = run_in(
        &project,
        rspy().args(["init", "--python-port", &python_port.to_string()]),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    image_builds_and_runs(
        dir.path(),
        "image-adopted",
        Some(python_port),
        &[("/items/1", r#""slug":"first-item""#)],
    );
}

#[test]
fn dockerignore_patterns_match_as_docker_reads_them() {
    let context = Context {
        root: PathBuf::new(),
        ignored: [
            "target",
            "**/.venv",
            "**/*.py[cod]",
            "python/build",
            "*.sock",
        ]
        .map(str::to_owned)
        .to_vec(),
    };
    for ignored in [
        "target",
        "target/release/x",
        ".venv",
        "python/.venv/bin/python",
        "python/app/main.pyc",
        "python/build/lib",
        "api.sock",
    ] {
        assert!(context.is_ignored(ignored), "{ignored} is ignored");
    }
    for kept in [
        "crates/target.rs",
        "python/app/main.py",
        "python/app/build/x",
        "run/api.sock",
        "Cargo.toml",
    ] {
        assert!(!context.is_ignored(kept), "{kept} is kept");
    }
}

#[test]
fn globs_read_classes_ranges_and_negation() {
    for (pattern, name, matches) in [
        ("*.py[cod]", "main.pyc", true),
        ("*.py[cod]", "main.py", false),
        ("*.py[b-d]", "main.pyc", true),
        ("*.py[b-d]", "main.pye", false),
        ("[^.]*", "app", true),
        ("[^.]*", ".venv", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("Cargo.lock*", "Cargo.lock", true),
        ("Cargo.lock*", "Cargo.toml", false),
    ] {
        assert_eq!(
            glob(pattern.as_bytes(), name.as_bytes()),
            matches,
            "{pattern} against {name}"
        );
    }
}
