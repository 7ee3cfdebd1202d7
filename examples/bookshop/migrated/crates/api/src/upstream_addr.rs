//! Where the Python service listens, as `UPSTREAM_URL` and rspy.toml's `[upstream] url` write
//! it. Shared with build.rs (through `#[path]`), so the build accepts exactly the urls the
//! api accepts at start. Depends on std and `http` only.

use std::{fmt, path::PathBuf, str::FromStr};

use http::uri::Authority;

/// Where the Python service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    /// `http://host:port`: plain HTTP/1.1 over TCP, normally on loopback.
    Tcp(Authority),
    /// `unix:/path.sock`: HTTP/1.1 over a Unix domain socket (uvicorn `--uds`).
    Unix(PathBuf),
}

impl FromStr for UpstreamAddr {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(path) = url.strip_prefix("unix:") {
            return if path.starts_with('/') {
                Ok(Self::Unix(PathBuf::from(path)))
            } else {
                Err("the socket path must be absolute, e.g. `unix:/tmp/python.sock`".to_owned())
            };
        }
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
            .ok_or("expected `http://host:port` or `unix:/path.sock`")?;
        match authority.parse::<Authority>() {
            Ok(parsed) if parsed.as_str() == authority && !authority.contains('@') => {
                Ok(Self::Tcp(parsed))
            }
            _ => {
                Err("expected a bare `http://host:port`, without a path or credentials".to_owned())
            }
        }
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
