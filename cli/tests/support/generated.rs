//! What the end-to-end tests share about generated projects: where their builds go, and free
//! loopback ports for the processes they run.

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;

use super::repo_root;

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
