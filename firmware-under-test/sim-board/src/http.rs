//! A small, strict HTTP/1.1 client: one request per connection, every wait bounded. It hands
//! over the response head (parsed by ota-core, like on every board) and the body bytes, and
//! never interprets them: the update machine decides what to trust.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ota_core::Reason;
use ota_core::http::{self, ResponseHead};

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Server {
    /// `host:port`.
    pub authority: String,
    pub device: String,
    /// The running firmware version, sent as `X-Otarig-Version` (set at each boot).
    pub version: String,
    pub timeout: Duration,
}

impl Server {
    /// Parses `http://host:port[/]`.
    pub fn parse(url: &str, device: &str, timeout: Duration) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--server {url}: only http://host:port URLs are supported"))?;
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--server {url}: expected http://host:port"));
        }
        Ok(Self {
            authority,
            device: device.to_string(),
            version: String::new(),
            timeout,
        })
    }
}

/// A response whose body has not been read yet.
pub struct Response {
    pub head: ResponseHead,
    stream: TcpStream,
    /// Body bytes that arrived with the head.
    pending: Vec<u8>,
}

fn io_reason(e: &std::io::Error) -> Reason {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Reason::Timeout,
        _ => Reason::ShortBody,
    }
}

/// Sends a request and reads the response head.
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    range: Option<(u32, u32)>,
    body: Option<&[u8]>,
) -> Result<Response, Reason> {
    let addr = server
        .authority
        .to_socket_addrs()
        .map_err(|_| Reason::Connect)?
        .next()
        .ok_or(Reason::Connect)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, server.timeout).map_err(|_| Reason::Connect)?;
    stream
        .set_read_timeout(Some(server.timeout))
        .map_err(|_| Reason::Connect)?;
    stream
        .set_write_timeout(Some(server.timeout))
        .map_err(|_| Reason::Connect)?;
    let _ = stream.set_nodelay(true);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Otarig-Device: {}\r\nX-Otarig-Version: {}\r\nConnection: close\r\n",
        server.authority, server.device, server.version
    );
    if let Some((a, b)) = range {
        head.push_str(&format!("Range: bytes={a}-{b}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| io_reason(&e))?;
    if let Some(b) = body {
        stream.write_all(b).map_err(|e| io_reason(&e))?;
    }
    // Read until the end of the head.
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 4096];
    let end = loop {
        if let Some(end) = http::head_end(&buf) {
            break end;
        }
        if buf.len() > http::MAX_HEAD {
            return Err(http::HeadError::TooLong.reason());
        }
        let n = stream.read(&mut tmp).map_err(|e| io_reason(&e))?;
        if n == 0 {
            return Err(Reason::ShortBody);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = http::parse_head(&buf[..end]).map_err(|e| e.reason())?;
    Ok(Response {
        head,
        stream,
        pending: buf[end..].to_vec(),
    })
}

impl Response {
    /// Reads some body bytes into `buf`: `Ok(0)` at the end of the stream.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Reason> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        self.stream.read(buf).map_err(|e| io_reason(&e))
    }
}
