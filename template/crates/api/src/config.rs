//! Run-time settings from environment variables, with defaults from rspy.toml and the contract.

use std::{env, error::Error, fmt, str::FromStr, time::Duration};

use crate::manifest::DEFAULT_UPSTREAM_URL;
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
    /// `READINESS_INTERVAL_MS`: how often Python's `/healthz` is probed.
    pub readiness_interval: Duration,
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
            readiness_interval: millis("READINESS_INTERVAL_MS", 1_000)?,
        })
    }
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
    }

    #[test]
    fn upstream_url_accepts_tcp_and_unix() {
        let tcp = config(&[("UPSTREAM_URL", "http://127.0.0.1:9000/")]).expect("valid");
        assert_eq!(
            tcp.upstream,
            UpstreamAddr::Tcp(Authority::from_static("127.0.0.1:9000"))
        );
        let unix = config(&[("UPSTREAM_URL", "unix:/tmp/py.sock")]).expect("valid");
        assert_eq!(
            unix.upstream,
            UpstreamAddr::Unix(PathBuf::from("/tmp/py.sock"))
        );
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
    }
}
