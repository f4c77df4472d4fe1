//! A small, strict HTTP/1.1 client: one request per connection, every wait bounded. It reports
//! what the server said (status, Content-Length, Content-Range) and never interprets it: the
//! device logic decides what to trust.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ota_core::Reason;

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
    pub status: u16,
    pub content_length: Option<u64>,
    pub content_range: Option<String>,
    pub retry_after: Option<u64>,
    stream: TcpStream,
    pending: Vec<u8>,
}

const MAX_HEAD: usize = 16 * 1024;

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
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(Reason::BadContentLength);
        }
        let n = stream.read(&mut tmp).map_err(|e| io_reason(&e))?;
        if n == 0 {
            return Err(Reason::ShortBody);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| Reason::BadContentLength)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(Reason::Status)?;
    let mut resp = Response {
        status,
        content_length: None,
        content_range: None,
        retry_after: None,
        stream,
        pending: buf[end + 4..].to_vec(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => resp.content_length = value.parse().ok(),
            "content-range" => resp.content_range = Some(value.to_string()),
            "retry-after" => resp.retry_after = value.parse().ok(),
            _ => {}
        }
    }
    Ok(resp)
}

impl Response {
    /// Fills `buf` completely, or fails with why it could not.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Reason> {
        let mut filled = 0;
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            filled = n;
        }
        while filled < buf.len() {
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(Reason::ShortBody),
                Ok(n) => filled += n,
                Err(e) => return Err(io_reason(&e)),
            }
        }
        Ok(())
    }

    /// Skips `n` body bytes.
    pub fn skip(&mut self, mut n: u64) -> Result<(), Reason> {
        let mut tmp = vec![0u8; 8192];
        while n > 0 {
            let k = n.min(tmp.len() as u64) as usize;
            self.read_exact(&mut tmp[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// The whole body, at most `max` bytes, exactly Content-Length.
    pub fn body(mut self, max: usize) -> Result<Vec<u8>, Reason> {
        let len = self.content_length.ok_or(Reason::BadContentLength)?;
        if len > max as u64 {
            return Err(Reason::BadContentLength);
        }
        let mut out = vec![0u8; len as usize];
        self.read_exact(&mut out)?;
        Ok(out)
    }
}
