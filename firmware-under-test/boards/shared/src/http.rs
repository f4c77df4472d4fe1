//! A small, strict HTTP/1.1 client over an embassy-net TCP socket (the real boards' twin of
//! the simulated board's `http.rs`, shared by the Pico W and the QEMU board): one request per
//! connection, every wait bounded by the network timeout. It hands over the response head (parsed by `ota_core::http`, as on every
//! board) and the body bytes, and never interprets them: ota-core's update machine decides
//! what to trust.

use core::fmt::Write as _;

use embassy_net::tcp::TcpSocket;
use embassy_net::{Ipv4Address, Stack};
use embassy_time::{Duration, with_timeout};
use ota_core::Reason;
use ota_core::http::{self, ResponseHead};

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

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The update server: IPv4 address, port, and the `Host` header's text (`host:port`).
#[derive(Debug, Clone, Copy)]
pub struct Server {
    pub ip: [u8; 4],
    pub port: u16,
    pub host: &'static str,
}

/// Where the server is and who is asking.
pub struct Client {
    stack: Stack<'static>,
    bufs: &'static mut Buffers,
    device: heapless::String<24>,
    /// The running firmware version, sent as `X-Otarig-Version`.
    version: heapless::String<16>,
    server: Server,
    timeout: Duration,
    /// Called at every sign of progress (the board's watchdog feeding condition).
    pet: fn(),
}

/// A response whose body has not been read yet.
pub struct Response<'a> {
    socket: TcpSocket<'a>,
    /// Parsed by ota-core, as on every board.
    pub head: ResponseHead,
    /// Body bytes that arrived with the head.
    pending: &'a [u8],
    timeout: Duration,
    pet: fn(),
}

impl Client {
    /// A client of `server` with `timeout_ms` for every network wait.
    pub fn new(
        stack: Stack<'static>,
        bufs: &'static mut Buffers,
        device: &str,
        version: ota_core::Version,
        server: Server,
        timeout_ms: u64,
        pet: fn(),
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
            server,
            timeout: Duration::from_millis(timeout_ms),
            pet,
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
        let ip = self.server.ip;
        let remote = (
            Ipv4Address::new(ip[0], ip[1], ip[2], ip[3]),
            self.server.port,
        );
        match with_timeout(timeout, socket.connect(remote)).await {
            Ok(Ok(())) => {}
            _ => {
                socket.abort();
                return Err(Reason::Connect);
            }
        }
        (self.pet)();
        let mut req: heapless::String<768> = heapless::String::new();
        let written = (|| -> core::fmt::Result {
            write!(
                req,
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Otarig-Device: {}\r\nX-Otarig-Version: {}\r\nConnection: close\r\n",
                self.server.host, self.device, self.version
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
            if let Some(end) = http::head_end(&head[..filled]) {
                break end;
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
                    (self.pet)();
                }
            }
        };
        let head: &'_ [u8] = head;
        let parsed = match http::parse_head(&head[..end]) {
            Ok(h) => h,
            Err(e) => {
                abort(&mut socket).await;
                return Err(e.reason());
            }
        };
        let resp = Response {
            socket,
            head: parsed,
            pending: &head[end..filled],
            timeout,
            pet: self.pet,
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
    /// Reads some body bytes into `buf`: `Ok(0)` at the end of the stream.
    pub async fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Reason> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            return Ok(n);
        }
        match with_timeout(self.timeout, self.socket.read(buf)).await {
            Err(_) => Err(Reason::Timeout),
            Ok(Ok(n)) => {
                (self.pet)();
                Ok(n)
            }
            Ok(Err(_)) => Err(Reason::ShortBody),
        }
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
