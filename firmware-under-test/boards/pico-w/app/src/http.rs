//! A small, strict HTTP/1.1 client over an embassy-net TCP socket (the Pico W twin of the
//! simulated board's `http.rs`; the head parser is `otarig_pico::http`, tested on the host):
//! one request per connection, every wait bounded by the network timeout. It reports what the server said (status, Content-Length, Content-Range,
//! Retry-After) and never interprets it: `ota_core::device::check_response` and the update
//! logic decide what to trust.

use core::fmt::Write as _;

use embassy_net::tcp::TcpSocket;
use embassy_net::{Ipv4Address, Stack};
use embassy_time::{Duration, with_timeout};
use ota_core::Reason;
use otarig_pico::http::{MAX_CONTENT_RANGE, head_end};

use crate::{config, watchdog};

/// Socket and head buffers, reused by every request (one at a time).
pub struct Buffers {
    pub rx: [u8; 8192],
    pub tx: [u8; 1024],
    /// The response head (status line and headers) must fit here.
    pub head: [u8; 2048],
}

impl Buffers {
    pub const fn new() -> Self {
        Self {
            rx: [0; 8192],
            tx: [0; 1024],
            head: [0; 2048],
        }
    }
}

/// Where the server is and who is asking.
pub struct Client {
    stack: Stack<'static>,
    bufs: &'static mut Buffers,
    device: heapless::String<24>,
    /// The running firmware version, sent as `X-Otarig-Version`.
    version: heapless::String<16>,
    timeout: Duration,
}

/// A response whose body has not been read yet.
pub struct Response<'a> {
    socket: TcpSocket<'a>,
    pub status: u16,
    pub content_length: Option<u64>,
    /// `Some("")` when the header was present but too long to be valid.
    pub content_range: Option<heapless::String<MAX_CONTENT_RANGE>>,
    pub retry_after: Option<u64>,
    /// Body bytes that arrived with the head.
    pending: &'a [u8],
    timeout: Duration,
}

impl Client {
    pub fn new(
        stack: Stack<'static>,
        bufs: &'static mut Buffers,
        device: &str,
        version: ota_core::Version,
    ) -> Self {
        let mut v = heapless::String::new();
        let _ = write!(v, "{version}");
        let mut d = heapless::String::new();
        let _ = d.push_str(device);
        Self {
            stack,
            bufs,
            device: d,
            version: v,
            timeout: Duration::from_millis(config::NET_TIMEOUT_MS),
        }
    }

    /// Sends a request and reads the response head. `range` is `(first, last)` inclusive.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        range: Option<(u32, u32)>,
        body: Option<&[u8]>,
    ) -> Result<Response<'_>, Reason> {
        let timeout = self.timeout;
        let Buffers { rx, tx, head } = &mut *self.bufs;
        let mut socket = TcpSocket::new(self.stack, rx, tx);
        // Backstop: smoltcp aborts a connection silent for this long. Every read and write
        // below has its own, shorter, timeout.
        socket.set_timeout(Some(timeout * 2));
        let ip = config::SERVER_IP;
        let remote = (
            Ipv4Address::new(ip[0], ip[1], ip[2], ip[3]),
            config::SERVER_PORT,
        );
        match with_timeout(timeout, socket.connect(remote)).await {
            Ok(Ok(())) => {}
            _ => {
                socket.abort();
                return Err(Reason::Connect);
            }
        }
        watchdog::pet();
        let mut req: heapless::String<768> = heapless::String::new();
        let written = (|| -> core::fmt::Result {
            write!(
                req,
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Otarig-Device: {}\r\nX-Otarig-Version: {}\r\nConnection: close\r\n",
                config::SERVER,
                self.device,
                self.version
            )?;
            if let Some((a, b)) = range {
                write!(req, "Range: bytes={a}-{b}\r\n")?;
            }
            if let Some(b) = body {
                write!(
                    req,
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    b.len()
                )?;
            }
            req.write_str("\r\n")
        })();
        if written.is_err() {
            // Only a path longer than any manifest allows gets here.
            socket.abort();
            return Err(Reason::BadManifest);
        }
        let sent = async {
            write_all(&mut socket, req.as_bytes(), timeout).await?;
            if let Some(b) = body {
                write_all(&mut socket, b, timeout).await?;
            }
            Ok::<(), Reason>(())
        }
        .await;
        if let Err(r) = sent {
            abort(&mut socket).await;
            return Err(r);
        }
        // Read until the end of the head.
        let mut filled = 0usize;
        let end = loop {
            if let Some(pos) = head_end(&head[..filled]) {
                break pos;
            }
            if filled == head.len() {
                abort(&mut socket).await;
                return Err(Reason::BadContentLength);
            }
            match with_timeout(timeout, socket.read(&mut head[filled..])).await {
                Err(_) => {
                    abort(&mut socket).await;
                    return Err(Reason::Timeout);
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    abort(&mut socket).await;
                    return Err(Reason::ShortBody);
                }
                Ok(Ok(n)) => {
                    filled += n;
                    watchdog::pet();
                }
            }
        };
        let head: &'_ [u8] = head;
        let parsed = match otarig_pico::http::parse_head(&head[..end]) {
            Ok(h) => h,
            Err(r) => {
                abort(&mut socket).await;
                return Err(r);
            }
        };
        let resp = Response {
            socket,
            status: parsed.status,
            content_length: parsed.content_length,
            content_range: parsed.content_range,
            retry_after: parsed.retry_after,
            pending: &head[end + 4..filled],
            timeout,
        };
        Ok(resp)
    }
}

async fn write_all(
    socket: &mut TcpSocket<'_>,
    mut buf: &[u8],
    timeout: Duration,
) -> Result<(), Reason> {
    while !buf.is_empty() {
        match with_timeout(timeout, socket.write(buf)).await {
            Err(_) => return Err(Reason::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Reason::ShortBody),
            Ok(Ok(n)) => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Resets the connection and gives the stack a moment to send the RST.
async fn abort(socket: &mut TcpSocket<'_>) {
    socket.abort();
    let _ = with_timeout(Duration::from_millis(200), socket.flush()).await;
}

impl Response<'_> {
    /// Fills `buf` completely, or fails with why it could not.
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Reason> {
        let mut filled = 0;
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            filled = n;
        }
        while filled < buf.len() {
            match with_timeout(self.timeout, self.socket.read(&mut buf[filled..])).await {
                Err(_) => return Err(Reason::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Reason::ShortBody),
                Ok(Ok(n)) => {
                    filled += n;
                    watchdog::pet();
                }
            }
        }
        Ok(())
    }

    /// Skips `n` body bytes.
    pub async fn skip(&mut self, mut n: u64) -> Result<(), Reason> {
        let mut tmp = [0u8; 256];
        while n > 0 {
            let k = n.min(tmp.len() as u64) as usize;
            self.read_exact(&mut tmp[..k]).await?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads the whole body (exactly Content-Length bytes, which must fit `out`).
    pub async fn body<'b>(&mut self, out: &'b mut [u8]) -> Result<&'b [u8], Reason> {
        let len = self.content_length.ok_or(Reason::BadContentLength)?;
        if len > out.len() as u64 {
            return Err(Reason::BadContentLength);
        }
        let out = &mut out[..len as usize];
        self.read_exact(out).await?;
        Ok(out)
    }

    /// Ends the exchange: a graceful close after a complete response, a reset otherwise (the
    /// server must not wait for a reader that has given up).
    pub async fn end(mut self, complete: bool) {
        if complete {
            self.socket.close();
            let _ = with_timeout(self.timeout, self.socket.flush()).await;
        } else {
            abort(&mut self.socket).await;
        }
    }
}
