//! A small HTTP/1.0 `GET` over TCP or a Unix socket, std only: enough to read a document
//! from the Python service beside the api (`rspy import-routes`), and nothing more.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use upstream_addr::UpstreamAddr;

/// The generated api's parser of `[upstream] url`, shared as its build.rs shares it.
#[path = "../../template/crates/api/src/upstream_addr.rs"]
mod upstream_addr;

/// How long connecting, and then each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response read; an OpenAPI document is far smaller.
const MAX_RESPONSE: u64 = 64 << 20;

/// Where a request goes, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: Address,
    /// The request target: a path, with its query if any (`/openapi.json`).
    pub path: String,
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host` as the URL writes it (an IPv6 address in brackets), and the port.
    Tcp { host: String, port: u16 },
    /// A Unix domain socket.
    Unix(PathBuf),
}

impl Target {
    /// An `http://host[:port][/path]` URL; the error says what is wrong with it.
    pub fn from_http_url(url: &str) -> Result<Self, String> {
        // A fragment is never sent.
        let url = url.split('#').next().unwrap_or_default();
        let rest = url
            .strip_prefix("http://")
            .ok_or("it does not start with `http://`")?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Self::from_parts(authority, path)
    }

    /// The manifest's `[upstream] url` (`http://host:port` or `unix:path/to.sock`), asked for
    /// `path`, read by the api's own parser, so exactly the urls the api accepts. A relative
    /// socket path starts at `root`, the project root: the api's working directory under
    /// supervisord.
    pub fn from_upstream(url: &str, path: &str, root: &Path) -> Result<Self, String> {
        let address = match url.parse::<UpstreamAddr>()? {
            UpstreamAddr::Unix(socket) => Address::Unix(root.join(socket)),
            UpstreamAddr::Tcp(authority) => Address::Tcp {
                host: authority.host().to_owned(),
                port: authority.port_u16().unwrap_or(80),
            },
        };
        Ok(Self {
            address,
            path: path.to_owned(),
        })
    }

    fn from_parts(authority: &str, path: String) -> Result<Self, String> {
        if authority.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        // The port follows the last `:` unless that is inside an IPv6 address's brackets.
        let (host, port) = match authority.rfind(':') {
            Some(at) if !authority[at..].contains(']') => {
                let port = &authority[at + 1..];
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{port}` is not a port number"))?;
                (&authority[..at], port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() {
            return Err("it names no host".into());
        }
        Ok(Self {
            address: Address::Tcp {
                host: host.to_owned(),
                port,
            },
            path,
        })
    }
}

/// An answer, whatever its status.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The status line's reason phrase (`Not Found`), possibly empty.
    pub reason: String,
    /// Header names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum FetchError {
    /// Nothing listens there: the connection was refused, or the socket file is missing.
    NotListening(String),
    /// Anything else: no such host, a timeout, a reset, a malformed answer.
    Failed(String),
}

/// Sends `GET` for `target` (HTTP/1.0, `Connection: close`) and reads the whole answer.
pub fn get(target: &Target) -> Result<Response, FetchError> {
    let request = |host: &str| {
        format!(
            "GET {} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: rspy/{}\r\nConnection: close\r\n\r\n",
            target.path,
            env!("CARGO_PKG_VERSION")
        )
    };
    let raw = match &target.address {
        Address::Tcp { host, port } => {
            let stream = connect_tcp(host, *port)?;
            let host_header = if *port == 80 {
                host.clone()
            } else {
                format!("{host}:{port}")
            };
            exchange(stream, &request(&host_header))?
        }
        Address::Unix(path) => {
            let stream = UnixStream::connect(path).map_err(|e| connect_error(&e))?;
            stream
                .set_read_timeout(Some(TIMEOUT))
                .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
                .map_err(|e| FetchError::Failed(e.to_string()))?;
            exchange(stream, &request("localhost"))?
        }
    };
    parse_response(&raw).map_err(FetchError::Failed)
}

fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, FetchError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = (bare, port)
        .to_socket_addrs()
        .map_err(|e| FetchError::Failed(format!("cannot resolve `{host}`: {e}")))?;
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(TIMEOUT))
                    .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
                    .map_err(|e| FetchError::Failed(e.to_string()))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || FetchError::Failed(format!("`{host}` has no address")),
        |e| connect_error(&e),
    ))
}

fn connect_error(error: &std::io::Error) -> FetchError {
    match error.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::NotFound => {
            FetchError::NotListening(plain(error))
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            FetchError::Failed(format!("no connection within {} s", TIMEOUT.as_secs()))
        }
        _ => FetchError::Failed(plain(error)),
    }
}

/// Writes the request and reads until the server closes the connection.
fn exchange(mut stream: impl Read + Write, request: &str) -> Result<Vec<u8>, FetchError> {
    let failed = |e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
            FetchError::Failed(format!("no answer within {} s", TIMEOUT.as_secs()))
        }
        _ => FetchError::Failed(plain(&e)),
    };
    stream.write_all(request.as_bytes()).map_err(failed)?;
    stream.flush().map_err(failed)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut raw)
        .map_err(failed)?;
    if raw.len() as u64 > MAX_RESPONSE {
        return Err(FetchError::Failed(format!(
            "the answer is larger than {} MiB",
            MAX_RESPONSE >> 20
        )));
    }
    Ok(raw)
}

/// An I/O error's message without the `(os error N)` tail, in lowercase.
pub fn plain(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_lowercase(),
        None => text,
    }
}

/// Parses a whole HTTP/1.x response: the status line, the headers, and the body (by
/// `Transfer-Encoding: chunked`, `Content-Length`, or up to the end).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    if raw.is_empty() {
        return Err("the server closed the connection without answering".to_owned());
    }
    let split = find(raw, b"\r\n\r\n").ok_or("the answer is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next());
    let status = code
        .filter(|code| code.len() == 3)
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|_| version.starts_with("HTTP/"))
        .ok_or_else(|| {
            format!(
                "the answer is not HTTP (its first line is `{}`)",
                status_line.chars().take(60).collect::<String>()
            )
        })?;
    let reason = parts.next().unwrap_or_default().trim().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    let body = &raw[split + 4..];
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(body)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("its Content-Length `{length}` is not a number"))?;
        body.get(..length)
            .ok_or_else(|| {
                format!(
                    "the answer stopped after {} of its {length} bytes",
                    body.len()
                )
            })?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(response)
}

/// The body of a `Transfer-Encoding: chunked` answer, without the chunk framing.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let cut = || "the chunked answer stopped in the middle".to_owned();
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or_else(cut)?;
        let size_line = String::from_utf8_lossy(&body[..line_end]);
        let size_field = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_field, 16)
            .map_err(|_| format!("`{size_field}` is not a chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            // Trailers, if any, follow; nothing in them is needed.
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or_else(cut)?);
        body = body.get(size..).ok_or_else(cut)?;
        body = body.strip_prefix(b"\r\n").ok_or_else(cut)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_urls_and_upstreams() {
        let tcp = |host: &str, port| Address::Tcp {
            host: host.to_owned(),
            port,
        };
        let cases = [
            (
                "http://127.0.0.1:8000/openapi.json",
                tcp("127.0.0.1", 8000),
                "/openapi.json",
            ),
            ("http://localhost", tcp("localhost", 80), "/"),
            ("http://[::1]:9000/a?b=1", tcp("[::1]", 9000), "/a?b=1"),
            ("http://[::1]/x#frag", tcp("[::1]", 80), "/x"),
            ("http://h:81?q", tcp("h", 81), "/?q"),
        ];
        for (url, address, path) in cases {
            let target = Target::from_http_url(url).unwrap();
            assert_eq!(target.address, address, "{url}");
            assert_eq!(target.path, path, "{url}");
        }
        for (bad, needle) in [
            ("https://x/", "does not start with `http://`"),
            ("http://x:http/", "`http` is not a port number"),
            ("http://x:0/", "`0` is not a port number"),
            ("http:///x", "names no host"),
            ("http://me:pw@x/", "credentials"),
        ] {
            let error = Target::from_http_url(bad).unwrap_err();
            assert!(error.contains(needle), "{bad}: {error}");
        }
        let root = Path::new("/srv/shop");
        let upstream =
            Target::from_upstream("http://127.0.0.1:8000/", "/openapi.json", root).unwrap();
        assert_eq!(upstream.address, tcp("127.0.0.1", 8000));
        assert_eq!(upstream.path, "/openapi.json");
        for (url, socket) in [
            ("unix:/tmp/py.sock", "/tmp/py.sock"),
            ("unix:run/python.sock", "/srv/shop/run/python.sock"),
        ] {
            let unix = Target::from_upstream(url, "/openapi.json", root).unwrap();
            assert_eq!(unix.address, Address::Unix(PathBuf::from(socket)), "{url}");
        }
        let ipv6 = Target::from_upstream("http://[::1]", "/", root).unwrap();
        assert_eq!(ipv6.address, tcp("[::1]", 80));
        let long = format!("unix:/{}", "s".repeat(107));
        for bad in [
            "unix:",
            "unix:run/",
            "http://h:1/base",
            "ftp://h",
            "http://me@h:1",
            "http://h:99999",
            "http://h:abc",
            "http://h:",
            "http://h:0",
            "http://[::1]:x",
            &long,
        ] {
            assert!(Target::from_upstream(bad, "/", root).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_plain_sized_and_chunked_answers() {
        let plain =
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}").unwrap();
        assert_eq!(
            (plain.status, plain.reason.as_str(), plain.body.as_slice()),
            (200, "OK", b"{}".as_slice())
        );
        assert_eq!(plain.header("content-type"), Some("application/json"));

        let sized =
            parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(
            (sized.status, sized.body.as_slice()),
            (404, b"abc".as_slice())
        );

        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"{\"a\":1}");

        let no_reason = parse_response(b"HTTP/1.1 204\r\n\r\n").unwrap();
        assert_eq!((no_reason.status, no_reason.reason.as_str()), (204, ""));
    }

    #[test]
    fn refuses_answers_that_are_not_http_or_cut_short() {
        for (raw, needle) in [
            (b"".as_slice(), "without answering"),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                "not HTTP (its first line is `SSH-2.0-OpenSSH`)",
            ),
            (b"HTTP/1.1 200 OK\r\n", "no end of headers"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                "stopped after 3 of its 10 bytes",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "`x` is not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                "stopped in the middle",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "`zz` is not a chunk size",
            ),
        ] {
            let error = parse_response(raw).unwrap_err();
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }
}
