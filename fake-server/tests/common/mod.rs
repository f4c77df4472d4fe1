//! Raw HTTP/1.1 over TCP for the integration tests: what arrives on the wire, byte for byte.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A raw exchange: the response head and exactly the body bytes that arrived before EOF.
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
    pub reset: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` and reads until EOF or RST (at most 10 s).
pub fn exchange(addr: &str, request: &[u8]) -> Raw {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    let mut reset = false;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                reset = true;
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    parse(&all, started.elapsed(), reset)
}

pub fn parse(all: &[u8], elapsed: Duration, reset: bool) -> Raw {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: all[end + 4..].to_vec(),
        elapsed,
        reset,
    }
}

/// `GET path` with extra header lines (each ending in CRLF), `Connection: close`.
pub fn get(addr: &str, path: &str, extra: &str) -> Raw {
    request(addr, "GET", path, extra, b"")
}

/// Any method with a body (Content-Length is added).
pub fn request(addr: &str, method: &str, path: &str, extra: &str, body: &[u8]) -> Raw {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}",);
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, &bytes)
}

/// A check-in as a device sends it; returns the response body.
pub fn checkin(
    addr: &str,
    device: &str,
    version: &str,
    state: &str,
    error: Option<&str>,
) -> String {
    let body = format!(
        r#"{{"device":"{device}","version":"{version}","slot":"a","state":"{state}","boot_count":1,"last_error":{}}}"#,
        error.map_or("null".to_string(), |e| format!("\"{e}\""))
    );
    let r = request(
        addr,
        "POST",
        "/v1/checkin",
        &format!("X-Otarig-Device: {device}\r\nContent-Type: application/json\r\n"),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "check-in: {}", r.text());
    r.text()
}

/// A signed image of `version` (e.g. `(2, 0, 0)`) with a `body_len`-byte body.
pub fn signed_image(
    key: &ota_core::keys::SigningKey,
    version: (u16, u16, u16),
    body_len: usize,
) -> Vec<u8> {
    let spec = ota_core::image::ImageSpec {
        version: ota_core::Version::new(version.0, version.1, version.2),
        rollback_counter: 1,
        board: ota_core::image::board_kind("sim").expect("board kind"),
        load_addr: 0x1000_0000,
        entry_offset: 0,
    };
    let body: Vec<u8> = (0..body_len).map(|i| (i % 253) as u8).collect();
    ota_core::image::build(&spec, &body, key)
}

/// A library fake-server (`fake_server::start`) serving a temporary folder with signed
/// images `(file, version, body length)`, all signed by one fresh key that it also signs
/// manifests with. Keep the folder alive as long as the server.
pub async fn library_server(
    images: &[(&str, (u16, u16, u16), usize)],
) -> (tempfile::TempDir, fake_server::ServerHandle) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ota_core::keys::generate();
    for (file, version, len) in images {
        std::fs::write(dir.path().join(file), signed_image(&key, *version, *len)).expect(file);
    }
    let mut cfg = fake_server::Config::new(dir.path());
    cfg.signing_key = Some(key);
    let server = fake_server::start(cfg).await.expect("start");
    (dir, server)
}

/// A `fake-server` process started by a test; killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
    /// The server's image folder.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `cmd` (its images in `dir`) and reads the address it listens on from the first
    /// line it prints (`listening on http://A`).
    pub fn start(mut cmd: std::process::Command, dir: tempfile::TempDir) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn fake-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self { child, addr, dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
