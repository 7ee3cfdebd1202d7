//! What the end-to-end tests share about generated projects: where their builds go, and free
//! loopback ports for the processes they run.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::http::{Response, get};
use super::{repo_root, run_in};

/// The one target folder every generated project of the tests builds into, so their
/// dependencies build once: `target/generated`, or `RSPY_GENERATED_TARGET_DIR`.
pub fn shared_target() -> PathBuf {
    std::env::var_os("RSPY_GENERATED_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/generated"))
}

/// A free loopback port below the kernel's ephemeral range, so that no outgoing connection
/// (of the builds and tests running meanwhile) takes it between now and its use.
pub fn free_port() -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ephemeral_start: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_start / 2);
    let span = u32::from(ephemeral_start - low);
    // Spread concurrent test processes over the range.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let seed = std::process::id().wrapping_mul(2_654_435_761) ^ now.subsec_nanos();
    (0..span)
        .map(|i| low + u16::try_from((seed.wrapping_add(i.wrapping_mul(7919))) % span).unwrap())
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// Local addresses (as /proc/net/tcp{,6} writes them, hex) of the sockets listening on `port`.
pub fn listening_addresses(port: u16) -> Vec<String> {
    let port = format!("{port:04X}");
    let mut addresses = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // fields[1] is "ADDRESS:PORT", fields[3] the state; 0A is LISTEN.
            if let (Some((address, p)), Some(&"0A")) = (fields[1].split_once(':'), fields.get(3))
                && p == port
            {
                addresses.push(address.to_owned());
            }
        }
    }
    addresses
}

/// The real user id of a process (`self`, or a pid), read from /proc: no libc call needed.
pub fn uid_of(process: &str) -> Option<u32> {
    fs::read_to_string(format!("/proc/{process}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Whether the tests run as root (user id 0).
pub fn is_root() -> bool {
    uid_of("self") == Some(0)
}

/// Whether process `pid` still runs.
pub fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not reaped it yet.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// Pids of the processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The command line of process `pid`, its arguments joined by spaces.
pub fn command_line(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Runs `program args` in `dir`, failing the test with its output unless it succeeds.
pub fn check(dir: &Path, program: &str, args: &[&str]) {
    let out = run_in(
        dir,
        Command::new(program)
            .args(args)
            .env("CARGO_TARGET_DIR", shared_target()),
    );
    assert_eq!(
        out.code,
        Some(0),
        "`{program} {}` failed in {}:\n{}\n{}",
        args.join(" "),
        dir.display(),
        out.stdout,
        out.stderr
    );
}

/// Polls `path` until `accept` holds for its response, for at most `limit`.
pub fn wait_for(
    port: u16,
    path: &str,
    limit: Duration,
    accept: impl Fn(&Response) -> bool,
) -> Response {
    let start = Instant::now();
    loop {
        let last = get(port, path);
        match &last {
            Ok(response) if accept(response) => return last.unwrap(),
            _ if start.elapsed() > limit => {
                panic!("GET {path} never became as expected within {limit:?}; last: {last:?}")
            }
            _ => sleep(Duration::from_millis(50)),
        }
    }
}

pub fn json_field<'a>(body: &'a str, field: &str) -> Option<&'a str> {
    let after = body.split(&format!("\"{field}\"")).nth(1)?;
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    value.split('"').next()
}

/// supervisord running the generated project; stopped (and its children with it) on drop.
pub struct Supervisor {
    pub child: Child,
    pub log: PathBuf,
    /// Where the api serves its Prometheus metrics (one free port per run: tests run in
    /// parallel, and the default address would clash).
    pub metrics_port: u16,
}

impl Supervisor {
    pub fn start(project: &Path, api_port: u16) -> Self {
        let venv_bin = project.join(".venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = project.join("supervisord.log");
        let log_file = fs::File::create(&log).unwrap();
        let metrics_port = free_port();
        let child = Command::new(venv_bin.join("supervisord"))
            .args(["-c", "deploy/supervisord.conf"])
            .current_dir(project)
            .env("PATH", path)
            .env("PORT", api_port.to_string())
            .env("READINESS_INTERVAL_MS", "200")
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("supervisord starts");
        Self {
            child,
            log,
            metrics_port,
        }
    }

    /// Pid of the child process of supervisord whose command line contains `needle`.
    pub fn child_pid(&self, needle: &str) -> Option<u32> {
        children(self.child.id())
            .into_iter()
            .find(|pid| command_line(*pid).contains(needle))
    }

    /// Sends `signal` (e.g. `-TERM`) to `pid`; whether it was delivered.
    pub fn signal(pid: u32, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Sends SIGTERM and waits (bounded) for supervisord to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        // An already exited supervisord is seen by try_wait below.
        let _ = Self::signal(self.child.id(), "-TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let orphans: Vec<u32> = ["uvicorn", "-api"]
                .iter()
                .filter_map(|n| self.child_pid(n))
                .collect();
            if self.stop().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            for pid in orphans {
                let _ = Self::signal(pid, "-KILL");
            }
        }
    }
}
