//! Where the Python service listens, as `UPSTREAM_URL` and rspy.toml's `[upstream] url` write
//! it. Shared with build.rs (through `#[path]`), so the build accepts exactly the urls the
//! api accepts at start, and with rspy itself (`rspy import-routes` fetches from this url).
//! Depends on std and `http` only.

use std::{fmt, path::PathBuf, str::FromStr};

use http::uri::Authority;

/// The longest socket path Linux accepts (`sun_path` holds 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// Where the Python service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    /// `http://host:port`: plain HTTP/1.1 over TCP, normally on loopback.
    Tcp(Authority),
    /// `unix:run/python.sock`: HTTP/1.1 over a Unix domain socket (uvicorn `--uds`). A
    /// relative path is taken from the api's working directory, the project root under
    /// supervisord and `cargo run`; it also keeps the path under the kernel's 107-byte limit
    /// wherever the project lives.
    Unix(PathBuf),
}

impl FromStr for UpstreamAddr {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(path) = url.strip_prefix("unix:") {
            return if path.is_empty() || path.ends_with('/') || path.contains('\0') {
                Err("expected a socket file's path, e.g. `unix:run/python.sock`".to_owned())
            } else if path.len() > MAX_SOCKET_PATH {
                Err(format!(
                    "the socket path is {} bytes, over the {MAX_SOCKET_PATH} a Unix socket \
                     allows; use a shorter or a relative path",
                    path.len()
                ))
            } else {
                Ok(Self::Unix(PathBuf::from(path)))
            };
        }
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
            .ok_or("expected `http://host:port` or `unix:path/to.sock`")?;
        let parsed = match authority.parse::<Authority>() {
            Ok(parsed) if parsed.as_str() == authority && !authority.contains('@') => parsed,
            _ => {
                return Err(
                    "expected a bare `http://host:port`, without a path or credentials".to_owned(),
                );
            }
        };
        // `Authority` takes any text after the host's `:`; a port must be 1 to 65535.
        if let Some(port) = authority[parsed.host().len()..].strip_prefix(':')
            && !port.parse::<u16>().is_ok_and(|port| port != 0)
        {
            return Err(format!("`{port}` is not a port number from 1 to 65535"));
        }
        Ok(Self::Tcp(parsed))
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(authority) => write!(f, "http://{authority}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}
