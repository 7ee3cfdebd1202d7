//! Run-time settings from environment variables, with defaults from rspy.toml and the contract.

use std::{
    env,
    error::Error,
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
    time::Duration,
};

use crate::manifest::{DEFAULT_HEALTH_PATH, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_UPSTREAM_URL};
pub use crate::upstream_addr::UpstreamAddr;

/// Everything `main` needs to start the api.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`: the api listens on `0.0.0.0:PORT`.
    pub port: u16,
    /// `UPSTREAM_URL`: where the Python service listens.
    pub upstream: UpstreamAddr,
    /// `UPSTREAM_CONNECT_TIMEOUT_MS`: how long a new connection to Python may take.
    pub connect_timeout: Duration,
    /// `UPSTREAM_TIMEOUT_MS`: how long to wait for Python's response headers.
    pub upstream_timeout: Duration,
    /// `UPSTREAM_TOTAL_TIMEOUT_MS`: the longest a forwarded exchange may last, response body
    /// included (WebSocket tunnels excepted): a stream still running then is cut.
    pub upstream_total_timeout: Duration,
    /// `UPSTREAM_IDLE_TIMEOUT_MS`: how long a connection to Python may stay unused before
    /// the api closes it; below Python's keep-alive, so Python never closes one first.
    /// The default is `[upstream] idle_timeout_ms` of rspy.toml, else 4 s (uvicorn's
    /// keep-alive is 5 s). Zero keeps no connection: each request opens its own.
    pub upstream_idle_timeout: Duration,
    /// `UPSTREAM_MAX_CONCURRENCY`: forwarded requests in flight at once; more get 503.
    pub upstream_max_concurrency: usize,
    /// `READINESS_INTERVAL_MS`: how often Python's health path is probed.
    pub readiness_interval: Duration,
    /// `UPSTREAM_HEALTH_PATH`: what the readiness probe asks Python for.
    pub health_path: String,
    /// `MAX_BODY_BYTES`: the largest request body accepted (413 beyond), streamed or not.
    pub max_body_bytes: usize,
    /// `HEADER_READ_TIMEOUT_MS`: how long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// `TRUSTED_PROXIES`: peers (IPs or CIDR ranges) whose `X-Forwarded-*` headers are kept.
    pub trusted_proxies: TrustedProxies,
    /// `METRICS_ADDR`: where Prometheus metrics are served (`off`: nowhere).
    pub metrics_addr: Option<SocketAddr>,
    /// `WORKERS`: threads serving requests, each with its own runtime and upstream pool.
    pub workers: usize,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a closure in tests);
    /// unset variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let millis = |name: &'static str, default: u64| {
            let ms = parse(&lookup, name, default)?;
            if ms == 0 {
                return Err(ConfigError::new(
                    name,
                    "0",
                    "must be at least 1 millisecond",
                ));
            }
            Ok(Duration::from_millis(ms))
        };
        Ok(Self {
            port: parse(&lookup, "PORT", 8080)?,
            upstream: {
                let url = lookup("UPSTREAM_URL").unwrap_or_else(|| DEFAULT_UPSTREAM_URL.to_owned());
                url.parse()
                    .map_err(|reason| ConfigError::new("UPSTREAM_URL", &url, reason))?
            },
            connect_timeout: millis("UPSTREAM_CONNECT_TIMEOUT_MS", 1_000)?,
            upstream_timeout: millis("UPSTREAM_TIMEOUT_MS", 30_000)?,
            upstream_total_timeout: millis("UPSTREAM_TOTAL_TIMEOUT_MS", 300_000)?,
            upstream_idle_timeout: Duration::from_millis(parse(
                &lookup,
                "UPSTREAM_IDLE_TIMEOUT_MS",
                DEFAULT_IDLE_TIMEOUT_MS,
            )?),
            upstream_max_concurrency: positive(&lookup, "UPSTREAM_MAX_CONCURRENCY", 512)?,
            readiness_interval: millis("READINESS_INTERVAL_MS", 1_000)?,
            health_path: match lookup("UPSTREAM_HEALTH_PATH") {
                None => DEFAULT_HEALTH_PATH.to_owned(),
                Some(path) if path.starts_with('/') && !path.contains(char::is_whitespace) => path,
                Some(path) => {
                    return Err(ConfigError::new(
                        "UPSTREAM_HEALTH_PATH",
                        &path,
                        "must be a path starting with `/`, e.g. /healthz",
                    ));
                }
            },
            max_body_bytes: positive(&lookup, "MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            header_read_timeout: millis("HEADER_READ_TIMEOUT_MS", 10_000)?,
            trusted_proxies: parse(&lookup, "TRUSTED_PROXIES", TrustedProxies::default())?,
            metrics_addr: match lookup("METRICS_ADDR") {
                Some(off) if off.trim() == "off" => None,
                Some(addr) => Some(addr.trim().parse().map_err(|err| {
                    ConfigError::new(
                        "METRICS_ADDR",
                        &addr,
                        format!("{err}; use HOST:PORT or `off`"),
                    )
                })?),
                None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            },
            workers: positive(&lookup, "WORKERS", default_workers())?,
        })
    }
}

/// One worker per core the process may use (its CPU quota included), as nginx's
/// `worker_processes auto` does.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn parse<T: FromStr>(
    lookup: impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|err: T::Err| ConfigError::new(name, &value, err)),
    }
}

fn positive(
    lookup: impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    match parse(lookup, name, default)? {
        0 => Err(ConfigError::new(name, "0", "must be at least 1")),
        n => Ok(n),
    }
}

/// `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges (`10.0.0.0/8, ::1`). Only a
/// peer in one of them may tell the api who the client is (`X-Forwarded-For`, `-Proto`,
/// `-Host`, `Forwarded`); from anyone else those headers are replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0
            .iter()
            .any(|&(network, prefix)| match (network, peer) {
                (IpAddr::V4(network), IpAddr::V4(peer)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    u32::from(network) & mask == u32::from(peer) & mask
                }
                (IpAddr::V6(network), IpAddr::V6(peer)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    u128::from(network) & mask == u128::from(peer) & mask
                }
                _ => false,
            })
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut ranges = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (address, prefix) = item.split_once('/').unwrap_or((item, ""));
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or CIDR range"))?;
            let address = address.to_canonical();
            let bits = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                "" => bits,
                prefix => prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|prefix| *prefix <= bits)
                    .ok_or_else(|| format!("`{item}`: the prefix length must be 0 to {bits}"))?,
            };
            ranges.push((address, prefix));
        }
        Ok(Self(ranges))
    }
}

/// A setting that is present but unusable; names the variable, its value and why.
#[derive(Debug)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, value: &str, reason: impl fmt::Display) -> Self {
        Self {
            variable,
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}=`{}`: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl Error for ConfigError {}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use http::uri::Authority;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.port, 8080);
        assert_eq!(
            config.upstream,
            DEFAULT_UPSTREAM_URL.parse().expect("valid")
        );
        assert_eq!(config.upstream_timeout, Duration::from_secs(30));
        assert_eq!(
            config.upstream_idle_timeout,
            Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS)
        );
        assert_eq!(config.workers, default_workers());
    }

    #[test]
    fn an_idle_timeout_of_zero_keeps_no_connection() {
        let config = config(&[("UPSTREAM_IDLE_TIMEOUT_MS", "0")]).expect("valid");
        assert_eq!(config.upstream_idle_timeout, Duration::ZERO);
    }

    #[test]
    fn upstream_url_accepts_tcp_and_unix() {
        let tcp = config(&[("UPSTREAM_URL", "http://127.0.0.1:9000/")]).expect("valid");
        assert_eq!(
            tcp.upstream,
            UpstreamAddr::Tcp(Authority::from_static("127.0.0.1:9000"))
        );
        for path in ["/tmp/py.sock", "run/python.sock", "../run/py.sock"] {
            let unix = config(&[("UPSTREAM_URL", &format!("unix:{path}"))]).expect("valid");
            assert_eq!(unix.upstream, UpstreamAddr::Unix(PathBuf::from(path)));
        }
        let ipv6 = config(&[("UPSTREAM_URL", "http://[::1]:9000")]).expect("valid");
        assert_eq!(
            ipv6.upstream,
            UpstreamAddr::Tcp(Authority::from_static("[::1]:9000"))
        );
        let long = format!("unix:/{}", "s".repeat(107));
        for bad in [
            "unix:",
            "unix:run/",
            long.as_str(),
            "http://127.0.0.1:99999",
            "http://127.0.0.1:abc",
            "http://127.0.0.1:",
            "http://127.0.0.1:0",
            "http://[::1]:x",
        ] {
            let err = config(&[("UPSTREAM_URL", bad)]).expect_err("not a socket path");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges() {
        let trusted: TrustedProxies = "10.0.0.0/8, 192.0.2.7,::1, fd00::/8"
            .parse()
            .expect("valid");
        for inside in ["10.1.2.3", "192.0.2.7", "::1", "fd00::5", "::ffff:10.9.9.9"] {
            assert!(
                trusted.contains(inside.parse().expect("an address")),
                "{inside}"
            );
        }
        for outside in ["11.0.0.1", "192.0.2.8", "::2", "127.0.0.1"] {
            assert!(
                !trusted.contains(outside.parse().expect("an address")),
                "{outside}"
            );
        }
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().expect("an address")));
        let everyone: TrustedProxies = "0.0.0.0/0".parse().expect("valid");
        assert!(everyone.contains("203.0.113.9".parse().expect("an address")));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_variable_and_value() {
        let err = config(&[("PORT", "eighty")]).expect_err("not a number");
        assert!(
            err.to_string().starts_with("invalid PORT=`eighty`: "),
            "{err}"
        );
        let err = config(&[("UPSTREAM_URL", "https://example.com/api")]).expect_err("no TLS");
        assert!(err.to_string().contains("UPSTREAM_URL"), "{err}");
        let err = config(&[("UPSTREAM_TIMEOUT_MS", "0")]).expect_err("zero");
        assert!(err.to_string().contains("UPSTREAM_TIMEOUT_MS"), "{err}");
        let err = config(&[("UPSTREAM_IDLE_TIMEOUT_MS", "4s")]).expect_err("not a number");
        assert!(
            err.to_string()
                .starts_with("invalid UPSTREAM_IDLE_TIMEOUT_MS=`4s`: "),
            "{err}"
        );
        let err = config(&[("WORKERS", "0")]).expect_err("zero");
        assert!(
            err.to_string().starts_with("invalid WORKERS=`0`: "),
            "{err}"
        );
        let err = config(&[("WORKERS", "many")]).expect_err("not a number");
        assert!(
            err.to_string().starts_with("invalid WORKERS=`many`: "),
            "{err}"
        );
    }
}
