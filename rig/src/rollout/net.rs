//! The simulated fleet's network: a small HTTP/1.1 client over a pool of keep-alive
//! connections to the real fake-server, plus the faults a fleet meets on the way (a connection
//! that drops part-way through a body, a network that is down).
//!
//! Devices share the pool, so ten thousand devices need only as many connections as there are
//! requests in flight. A connection is loopback TCP or an in-process pipe
//! ([`fake_server::InProcess`]: the same bytes through the same hyper connection and routes,
//! served on the fleet thread's own runtime, without the kernel's TCP stack).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use ota_core::Reason;
use ota_core::http::{self, ResponseHead};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest response head accepted.
const MAX_HEAD: usize = 8 * 1024;

/// A response, body read in full (or up to where the link dropped).
#[derive(Debug, Default)]
pub struct Response {
    /// Parsed by ota-core, as on every board.
    pub head: ResponseHead,
    pub body: Vec<u8>,
    /// The link dropped (or the server closed) before the whole body arrived.
    pub dropped: bool,
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub device: &'a str,
    pub version: &'a str,
    pub range: Option<(u64, u64)>,
    pub body: Option<&'a [u8]>,
    /// Largest body accepted.
    pub max_body: usize,
    /// Simulate a link that dies after this many body bytes.
    pub drop_after: Option<usize>,
}

/// A byte stream to the server: a TCP socket or an in-process pipe.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Conn = BufReader<Box<dyn Stream>>;

/// How the fleet reaches the server.
#[derive(Clone)]
pub enum Transport {
    /// Loopback TCP to the server's address: what every fault rule can act on.
    Tcp(SocketAddr),
    /// In-memory pipes served on the connecting thread's runtime; refuses fault rules that
    /// act on a socket ([`fake_server::faults::FaultRule::needs_socket`]).
    InProcess(fake_server::InProcess),
}

/// A pool of keep-alive connections to one server.
pub struct Client {
    transport: Transport,
    idle: Mutex<Vec<Conn>>,
    timeout: Duration,
}

impl Client {
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            idle: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends a request and reads the whole response. Network problems come back as the
    /// [`Reason`] a device would report.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, Reason> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        match tokio::time::timeout(self.timeout, exchange(&mut conn, req)).await {
            Ok(Ok((resp, keep))) => {
                self.give_back(conn, keep);
                Ok(resp)
            }
            // A pooled connection the server already closed: retry once on a fresh one.
            Ok(Err(Reason::Connect)) if !fresh => {
                let mut conn = self.connect().await?;
                let (resp, keep) = tokio::time::timeout(self.timeout, exchange(&mut conn, req))
                    .await
                    .map_err(|_| Reason::Timeout)??;
                self.give_back(conn, keep);
                Ok(resp)
            }
            Ok(Err(r)) => Err(r),
            Err(_) => Err(Reason::Timeout),
        }
    }

    /// Keeps a connection the server left open for the next request.
    fn give_back(&self, conn: Conn, keep: bool) {
        if keep {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, Reason> {
        let stream: Box<dyn Stream> = match &self.transport {
            Transport::Tcp(addr) => {
                let stream = tokio::time::timeout(self.timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| Reason::Timeout)?
                    .map_err(|_| Reason::Connect)?;
                let _ = stream.set_nodelay(true);
                Box::new(stream)
            }
            Transport::InProcess(server) => match server.connect() {
                Ok(pipe) => Box::new(pipe),
                Err(e) => {
                    // The drill checked the rules before choosing this transport.
                    tracing::error!("in-process connection refused: {e}");
                    return Err(Reason::Connect);
                }
            },
        };
        Ok(BufReader::with_capacity(16 * 1024, stream))
    }
}

/// Writes the request, reads the response; returns it and whether the connection can be
/// reused.
async fn exchange(conn: &mut Conn, req: &Request<'_>) -> Result<(Response, bool), Reason> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: fleet\r\nX-Otarig-Device: {}\r\nX-Otarig-Version: {}\r\n",
        req.method, req.path, req.device, req.version
    );
    if let Some((a, b)) = req.range {
        head.push_str(&format!("Range: bytes={a}-{b}\r\n"));
    }
    if let Some(body) = req.body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(body) = req.body {
        out.extend_from_slice(body);
    }
    conn.get_mut()
        .write_all(&out)
        .await
        .map_err(|_| Reason::Connect)?;

    let mut raw = Vec::with_capacity(512);
    let mut chunked = false;
    loop {
        let at = raw.len();
        let n = conn
            .read_until(b'\n', &mut raw)
            .await
            .map_err(|_| Reason::Connect)?;
        if n == 0 {
            return Err(Reason::Connect);
        }
        if raw.len() > MAX_HEAD {
            return Err(http::HeadError::TooLong.reason());
        }
        let line = &raw[at..];
        chunked |= line.len() > 18
            && line[..18].eq_ignore_ascii_case(b"transfer-encoding:")
            && String::from_utf8_lossy(&line[18..])
                .trim()
                .eq_ignore_ascii_case("chunked");
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    if chunked {
        // Bodies here always have a length (the server's faults keep Content-Length).
        return Err(Reason::BadContentLength);
    }
    let head = http::parse_head(&raw).map_err(|e| e.reason())?;
    let mut keep = !head.close;
    let mut resp = Response {
        head,
        ..Response::default()
    };
    let len = resp.head.content_length.unwrap_or(0);
    if len > req.max_body as u64 {
        return Err(Reason::TooLarge);
    }
    let want = match req.drop_after {
        Some(n) if (n as u64) < len => {
            resp.dropped = true;
            keep = false;
            n
        }
        _ => len as usize,
    };
    // A server that closes early (a truncating fault) leaves the body short: what arrived is
    // kept, as a board keeps the chunks it got.
    resp.body = Vec::with_capacity(want);
    let got = (&mut *conn)
        .take(want as u64)
        .read_to_end(&mut resp.body)
        .await
        .map_err(|_| Reason::ShortBody)?;
    if got < want {
        resp.dropped = true;
        keep = false;
    }
    Ok((resp, keep))
}
