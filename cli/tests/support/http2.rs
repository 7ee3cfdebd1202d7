//! WebSockets over HTTP/2 (RFC 8441) for the gateway tests, which curl cannot open: an h2c
//! connection with prior knowledge, an extended CONNECT, and the stream behind it read and
//! written like a socket by the blocking test code (WebSocket frames are the tests' own, as
//! over HTTP/1.1).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use h2::{RecvStream, SendStream};
use http::{Method, Request, response::Parts};
use tokio::runtime::Runtime;

use super::raw::IO_TIMEOUT;

/// The answer to an extended CONNECT and, when it is a success, the stream behind it.
#[derive(Debug)]
pub struct Http2WebSocket {
    pub answer: Parts,
    stream: Option<Tunnel>,
}

/// Both halves of the HTTP/2 stream, and the runtime that drives its connection.
struct Tunnel {
    runtime: Runtime,
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// Received but not yet read.
    unread: Bytes,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("unread", &self.unread.len())
            .finish_non_exhaustive()
    }
}

impl Http2WebSocket {
    /// Opens `path` on loopback `port` with `CONNECT` and `:protocol = websocket`, sending
    /// `headers` too. Fails if the server does not offer extended CONNECT.
    pub fn open(port: u16, path: &str, headers: &[(&str, &str)]) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(format!("http://127.0.0.1:{port}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).map_err(io::Error::other)?;
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from("websocket"));
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            let (client, connection) =
                h2::client::handshake(tcp).await.map_err(io::Error::other)?;
            tokio::spawn(connection);
            let mut client = client.ready().await.map_err(io::Error::other)?;
            // A client may ask only once the server's SETTINGS have offered it.
            let offered_by = Instant::now() + Duration::from_secs(5);
            while !client.is_extended_connect_protocol_enabled() {
                if Instant::now() > offered_by {
                    return Err(io::Error::other(
                        "the server does not offer extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let (response, send) = client
                .send_request(request, false)
                .map_err(io::Error::other)?;
            let (answer, recv) = response.await.map_err(io::Error::other)?.into_parts();
            Ok::<_, io::Error>((answer, send, recv))
        };
        let (answer, send, recv) = runtime
            .block_on(async { tokio::time::timeout(IO_TIMEOUT, exchange).await })
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in 30 s"))??;
        let stream = answer.status.is_success().then_some(Tunnel {
            runtime,
            send,
            recv,
            unread: Bytes::new(),
        });
        Ok(Self { answer, stream })
    }

    /// A header of the answer, if it is there and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.answer.headers.get(name)?.to_str().ok()
    }

    fn tunnel(&mut self) -> io::Result<&mut Tunnel> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::other(format!("no tunnel: {:?}", self.answer)))
    }

    /// Queues `bytes` on the stream; the connection sends them as flow control allows.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let tunnel = self.tunnel()?;
        tunnel
            .send
            .send_data(Bytes::copy_from_slice(bytes), false)
            .map_err(io::Error::other)
    }
}

impl Read for Http2WebSocket {
    /// What the server sent on the stream; 0 once it ended the stream.
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let tunnel = self.tunnel()?;
        while tunnel.unread.is_empty() {
            let recv = &mut tunnel.recv;
            let next = tunnel
                .runtime
                .block_on(async { tokio::time::timeout(IO_TIMEOUT, recv.data()).await })
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no data in 30 s"))?;
            let Some(data) = next else {
                return Ok(0);
            };
            let data = data.map_err(io::Error::other)?;
            // Read means consumed: let the server send more.
            tunnel
                .recv
                .flow_control()
                .release_capacity(data.len())
                .map_err(io::Error::other)?;
            tunnel.unread = data;
        }
        let read = buffer.len().min(tunnel.unread.len());
        buffer[..read].copy_from_slice(&tunnel.unread[..read]);
        tunnel.unread.advance(read);
        Ok(read)
    }
}
