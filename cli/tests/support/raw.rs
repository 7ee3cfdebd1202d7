//! Raw HTTP/1.1 and WebSocket framing over TCP or a Unix socket, for the gateway tests:
//! requests are written byte for byte as the test builds them, and responses are read as they
//! came: header names as sent, values as bytes (read as Latin-1, so nothing is lost), bodies
//! as bytes, chunked bodies decoded with their trailers kept.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long any read or write may block before the test gives up on it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a server listens: a loopback TCP port or a Unix socket.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

impl Target {
    /// A new connection, with read and write timeouts of 30 s.
    pub fn connect(&self) -> io::Result<Stream> {
        let stream = match self {
            Self::Tcp(port) => {
                let stream = TcpStream::connect(("127.0.0.1", *port))?;
                stream.set_nodelay(true)?;
                Stream::Tcp(stream)
            }
            Self::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        };
        stream.set_timeouts(Some(IO_TIMEOUT))?;
        Ok(stream)
    }
}

/// A connection to a [`Target`].
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Tcp(stream) => Self::Tcp(stream.try_clone()?),
            Self::Unix(stream) => Self::Unix(stream.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.shutdown(how),
            Self::Unix(stream) => stream.shutdown(how),
        }
    }

    /// Sets both the read and the write timeout.
    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
            Self::Unix(stream) => {
                stream.set_read_timeout(timeout)?;
                stream.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.read(buf),
            Self::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.write(buf),
            Self::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.flush(),
            Self::Unix(stream) => stream.flush(),
        }
    }
}

/// A response as read off the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines in the order received: names as sent, values trimmed and read as Latin-1.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body, like `headers`.
    pub trailers: Vec<(String, String)>,
}

// Shows the body as text (Latin-1 where it is not UTF-8), its first 1000 characters.
impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match std::str::from_utf8(&self.body) {
            Ok(text) => text.to_owned(),
            Err(_) => latin1(&self.body),
        };
        let shown: String = body.chars().take(1000).collect();
        let cut = if shown.len() < body.len() { "..." } else { "" };
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("body", &format_args!("{shown:?}{cut}"))
            .field("trailers", &self.trailers)
            .finish()
    }
}

impl RawResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Bytes read as Latin-1: one char per byte, so any header value survives as text.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// `method target HTTP/1.1`, the `headers` exactly as given (the caller sends `Host`), then
/// `Content-Length` when there is a `body`, and `Connection: close`.
pub fn build_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some(body) = body {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
    out
}

/// `body` in the chunked transfer coding, in chunks of `chunk` bytes, with the final chunk.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / chunk.max(1) * 8 + 8);
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Connects to `target`, writes `request`, reads the response (the body framed as HTTP/1.1
/// says: none after `HEAD`, else chunked, `Content-Length` or up to the end of the stream).
pub fn exchange(target: &Target, request: &[u8]) -> io::Result<RawResponse> {
    let mut stream = target.connect()?;
    stream.write_all(request)?;
    let head_request = request.starts_with(b"HEAD ");
    read_response(&mut BufReader::new(stream), head_request)
}

/// Writes `head` and then, from another thread, `body`, while this one reads the response:
/// for servers that answer before they have read the whole body (413), so that neither side
/// waits for the other. Write errors (the server closing early) are ignored.
pub fn exchange_while_sending(
    target: &Target,
    head: &[u8],
    body: Vec<u8>,
) -> io::Result<RawResponse> {
    let mut stream = target.connect()?;
    stream.write_all(head)?;
    let mut writer = stream.try_clone()?;
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let response = read_response(&mut BufReader::new(stream.try_clone()?), false);
    // Unblocks the writer if the server stopped reading without closing.
    let _ = stream.shutdown(Shutdown::Both);
    let _ = sending.join();
    response
}

/// Reads one response from `reader`, skipping interim 1xx responses other than 101 (which
/// is returned at once, without a body: the connection then belongs to the new protocol).
pub fn read_response(reader: &mut impl BufRead, head_request: bool) -> io::Result<RawResponse> {
    loop {
        let status_line = read_line(reader)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| malformed(format!("status line `{status_line}`")))?;
        let headers = read_fields(reader)?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        let is_chunked = response
            .header_all("transfer-encoding")
            .iter()
            .any(|value| value.to_ascii_lowercase().contains("chunked"));
        if is_chunked {
            loop {
                let size_line = read_line(reader)?;
                let size = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| malformed(format!("chunk size `{size_line}`")))?;
                if size == 0 {
                    response.trailers = read_fields(reader)?;
                    return Ok(response);
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                reader.read_exact(&mut response.body[start..])?;
                let mut crlf = [0; 2];
                reader.read_exact(&mut crlf)?;
                if &crlf != b"\r\n" {
                    return Err(malformed("no CRLF after a chunk".to_owned()));
                }
            }
        }
        match response.header("content-length") {
            Some(length) => {
                let length: usize = length
                    .parse()
                    .map_err(|_| malformed(format!("content-length `{length}`")))?;
                response.body.resize(length, 0);
                reader.read_exact(&mut response.body)?;
            }
            None => {
                reader.read_to_end(&mut response.body)?;
            }
        }
        return Ok(response);
    }
}

/// One CRLF-terminated line, without its CRLF, read as Latin-1.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the stream ended in a line: `{}`", latin1(&line)),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(latin1(&line))
}

/// Header (or trailer) lines up to the empty line that ends them.
fn read_fields(reader: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(fields);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("header line `{line}`")))?;
        fields.push((name.to_owned(), value.trim().to_owned()));
    }
}

fn malformed(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed response: {what}"),
    )
}

/// WebSocket opcodes (RFC 6455, section 5.2).
pub const WS_TEXT: u8 = 0x1;
pub const WS_BINARY: u8 = 0x2;
pub const WS_CLOSE: u8 = 0x8;

/// A final client frame: masked with `mask`, as a client must send it.
pub fn ws_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | u8::try_from(len).unwrap()),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(
        payload
            .iter()
            .zip(mask.iter().cycle())
            .map(|(byte, key)| byte ^ key),
    );
    frame
}

/// The payload of a close frame: the code, big-endian, then the reason.
pub fn ws_close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// One frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsFrame {
    pub fin: bool,
    pub opcode: u8,
    /// Whether the frame came masked (a server must not mask its frames).
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl WsFrame {
    /// The status code of a close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == WS_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one frame.
pub fn ws_read_frame(reader: &mut impl Read) -> io::Result<WsFrame> {
    let mut head = [0; 2];
    reader.read_exact(&mut head)?;
    let masked = head[1] & 0x80 != 0;
    let length = match head[1] & 0x7F {
        126 => {
            let mut length = [0; 2];
            reader.read_exact(&mut length)?;
            u64::from(u16::from_be_bytes(length))
        }
        127 => {
            let mut length = [0; 8];
            reader.read_exact(&mut length)?;
            u64::from_be_bytes(length)
        }
        length => u64::from(length),
    };
    let mut mask = [0; 4];
    if masked {
        reader.read_exact(&mut mask)?;
    }
    let length = usize::try_from(length).map_err(|_| malformed("frame length".to_owned()))?;
    let mut payload = vec![0; length];
    reader.read_exact(&mut payload)?;
    if masked {
        for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
            *byte ^= key;
        }
    }
    Ok(WsFrame {
        fin: head[0] & 0x80 != 0,
        opcode: head[0] & 0x0F,
        masked,
        payload,
    })
}
