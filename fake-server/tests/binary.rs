//! The real `fake-server` binary on 127.0.0.1:0, checked byte-exactly with a raw TCP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE_LEN: usize = 10_000;

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn image() -> Vec<u8> {
    (0..IMAGE_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

fn start(faults: &str, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.bin"), image()).expect("image");
    std::fs::write(dir.path().join("other.bin"), vec![0xAB; 3000]).expect("other");
    let faults_file = dir.path().join("faults.yaml");
    std::fs::write(&faults_file, faults).expect("faults");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-server"))
        .arg("--images")
        .arg(dir.path())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--faults")
        .arg(&faults_file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    Server {
        child,
        addr,
        _dir: dir,
    }
}

/// A raw exchange: the response head and exactly the body bytes that arrived before EOF.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    elapsed: Duration,
    reset: bool,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn exchange(addr: &str, request: &str) -> Raw {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
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
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
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
        elapsed: started.elapsed(),
        reset,
    }
}

fn get(addr: &str, path: &str, extra: &str) -> Raw {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
    )
}

#[test]
fn clean_full_and_ranged_downloads_are_exact() {
    let s = start("faults: []\n", &[]);
    let img = image();
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, img);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some("10000"));
    let etag = r.header("etag").expect("etag").to_string();

    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=100-199\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/10000"));
    assert_eq!(r.body, &img[100..200]);
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=9990-\r\n");
    assert_eq!(r.body, &img[9990..]);
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=-10\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &img[9990..]));
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=10000-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10000"));
    // If-Range: matching ETag honours Range, a stale one gets the whole file.
    let r = get(
        &s.addr,
        "/v1/images/app.bin",
        &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!((r.status, r.body.len()), (206, 10));
    let r = get(
        &s.addr,
        "/v1/images/app.bin",
        "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, IMAGE_LEN));
    // Malformed Range is ignored (RFC 9110): 200 with the whole body.
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=abc\r\n");
    assert_eq!((r.status, r.body.len()), (200, IMAGE_LEN));
}

#[test]
fn truncate_sends_exactly_n_bytes_then_closes() {
    let s = start(
        "faults:\n  - { match: { path: \"/v1/images/*\" }, truncate_at: 1000, times: 1 }\n",
        &[],
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(
        r.header("content-length"),
        Some("10000"),
        "headers promise the full length"
    );
    assert_eq!(r.body.len(), 1000);
    assert_eq!(r.body, &image()[..1000]);
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body.len(), IMAGE_LEN, "times: 1 applies once");
}

#[test]
fn truncate_by_percent_and_wrong_lengths() {
    let s = start(
        "faults:\n  - { match: { path: /v1/images/*, nth: 1 }, truncate_at: \"25%\" }\n  - { match: { path: /v1/images/*, nth: 2 }, content_length: \"+500\" }\n  - { match: { path: /v1/images/*, nth: 3 }, content_length: \"-500\" }\n",
        &[],
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body.len(), 2500);
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.header("content-length"), Some("10500"));
    assert_eq!(
        r.body.len(),
        IMAGE_LEN,
        "a +N length leaves the client short"
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.header("content-length"), Some("9500"));
    assert_eq!(r.body.len(), 9500);
}

#[test]
fn drop_with_fin_and_with_rst() {
    let s = start(
        "faults:\n  - { match: { path: /v1/images/*, nth: 1 }, drop_after: 3000 }\n  - { match: { path: /v1/images/*, nth: 2 }, drop_after: 3000, reset: true }\n",
        &[],
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body.len(), 3000);
    assert!(!r.reset);
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert!(
        r.reset || r.body.len() <= 3000,
        "RST drop: {} bytes",
        r.body.len()
    );
}

#[test]
fn stall_throttle_latency_and_slow_headers_take_time() {
    let s = start(
        "faults:\n  - { match: { path: /v1/images/*, nth: 1 }, stall_after: 100, for: 600ms }\n  - { match: { path: /v1/images/*, nth: 2 }, throttle: \"20KiB/s\" }\n  - { match: { path: /v1/images/*, nth: 3 }, latency: 300ms }\n  - { match: { path: /v1/images/*, nth: 4 }, slow_headers: 300ms }\n",
        &[],
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body, image());
    assert!(r.elapsed >= Duration::from_millis(550), "{:?}", r.elapsed);
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body, image());
    assert!(
        r.elapsed >= Duration::from_millis(350),
        "10 KB at 20 KiB/s: {:?}",
        r.elapsed
    );
    for _ in 0..2 {
        let r = get(&s.addr, "/v1/images/app.bin", "");
        assert_eq!(r.body.len(), IMAGE_LEN);
        assert!(r.elapsed >= Duration::from_millis(280), "{:?}", r.elapsed);
    }
}

#[test]
fn corrupt_status_range_lies_and_serve() {
    let s = start(
        "faults:\n  - { match: { path: /v1/images/*, nth: 1 }, corrupt: { offset: 10, len: 3 } }\n  - { match: { path: /v1/images/*, nth: 2 }, status: 503, retry_after: 2 }\n  - { match: { path: /v1/images/*, nth: 3 }, ignore_range: true }\n  - { match: { path: /v1/images/*, nth: 4 }, bad_content_range: true }\n  - { match: { path: /v1/images/*, nth: 5 }, serve: other.bin }\n",
        &[],
    );
    let img = image();
    let r = get(&s.addr, "/v1/images/app.bin", "");
    let diff: Vec<usize> = (0..IMAGE_LEN).filter(|&i| r.body[i] != img[i]).collect();
    assert_eq!(diff, [10, 11, 12]);
    assert!(
        diff.iter().all(|&i| r.body[i] == !img[i]),
        "every bit flipped"
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("2")));
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=5000-\r\n");
    assert_eq!((r.status, r.body.len()), (200, IMAGE_LEN));
    let r = get(&s.addr, "/v1/images/app.bin", "Range: bytes=5000-5099\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 5001-5100/10000"));
    assert_eq!(
        r.body,
        &img[5000..5100],
        "the bytes are right, the header lies"
    );
    let r = get(&s.addr, "/v1/images/app.bin", "");
    assert_eq!(r.body, vec![0xAB; 3000]);
}

#[test]
fn every_and_probability_are_deterministic() {
    let faults = "faults:\n  - { match: { path: /v1/images/* }, truncate_at: 10, probability: 0.5, seed: 3 }\n";
    let pattern = |s: &Server| -> Vec<bool> {
        (0..12)
            .map(|_| get(&s.addr, "/v1/images/app.bin", "").body.len() == 10)
            .collect()
    };
    let a = pattern(&start(faults, &[]));
    let b = pattern(&start(faults, &[]));
    assert_eq!(a, b, "same seed, same faults");
    assert!(a.iter().any(|&x| x) && a.iter().any(|&x| !x), "{a:?}");
    let s = start(
        "faults:\n  - { match: { path: /v1/images/* }, status: 500, every: 3 }\n",
        &[],
    );
    let statuses: Vec<u16> = (0..6)
        .map(|_| get(&s.addr, "/v1/images/app.bin", "").status)
        .collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
}

#[test]
fn traversal_is_always_404() {
    let s = start("faults: []\n", &[]);
    for path in [
        "/v1/images/../Cargo.toml",
        "/v1/images/%2e%2e/faults.yaml",
        "/v1/images/..%2Ffaults.yaml",
        "/v1/images/%2Fetc%2Fpasswd",
        "/v1/images/.hidden",
        "/v1/images/nope.bin",
        "/v1/images/app.bin%00",
    ] {
        assert_eq!(get(&s.addr, path, "").status, 404, "{path}");
    }
    // A symlink pointing outside the image directory is not followed out.
    let dir = s._dir.path();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link.bin")).expect("symlink");
    assert_eq!(get(&s.addr, "/v1/images/link.bin", "").status, 404);
}

#[test]
fn malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let s = start("faults: []\n", &[]);
    let r = exchange(&s.addr, "BLAH\r\n\r\n");
    assert!((400..500).contains(&r.status), "{}", r.status);
    let huge = format!(
        "GET /v1/images/app.bin HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let mut c = TcpStream::connect(&s.addr).expect("connect");
    let _ = c.write_all(huge.as_bytes());
    let mut buf = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = c.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || head.contains(" 431 ") || head.contains(" 400 "),
        "{head}"
    );
    // Half a request, then close.
    let mut c = TcpStream::connect(&s.addr).expect("connect");
    c.write_all(b"GET /v1/images/app.bin HTT").expect("half");
    drop(c);
    let r = exchange(
        &s.addr,
        "POST /v1/checkin HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{bad}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&s.addr, "/v1/images/app.bin", "").body.len(),
        IMAGE_LEN,
        "still serving"
    );
}

#[test]
fn bad_fault_files_exit_2_with_a_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |text: &str, want: &str| {
        let f = dir.path().join("bad.yaml");
        std::fs::write(&f, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_fake-server"))
            .args([
                "--images",
                dir.path().to_str().expect("utf8"),
                "--listen",
                "127.0.0.1:0",
                "--faults",
            ])
            .arg(&f)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        assert!(out.stdout.is_empty(), "the server must not start");
    };
    check(
        "faults:\n  - { truncate_at: 10, stall_after: 5, for: 1s }\n",
        "bad.yaml:2:",
    );
    check("faults:\n  - { truncate_at: \"150%\" }\n", "150%");
    check("faults:\n  - { throttle: fast }\n", "fast");
    check("faults:\n  - { trunc: 5 }\n", "bad.yaml:2:");
}

#[test]
fn non_loopback_needs_a_token_and_control_needs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_fake-server"))
        .args([
            "--images",
            dir.path().to_str().expect("utf8"),
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));

    let s = start("faults: []\n", &["--token", "s3cret"]);
    assert_eq!(get(&s.addr, "/_control/faults", "").status, 401);
    assert_eq!(
        get(
            &s.addr,
            "/_control/faults",
            "Authorization: Bearer wrong\r\n"
        )
        .status,
        401
    );
    let r = get(
        &s.addr,
        "/_control/faults",
        "Authorization: Bearer s3cret\r\n",
    );
    assert_eq!(r.status, 200);
    let body = "faults:\n  - { truncate_at: 7 }\n";
    let r = exchange(
        &s.addr,
        &format!(
            "PUT /_control/faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(get(&s.addr, "/v1/images/app.bin", "").body.len(), 7);
    let r = get(
        &s.addr,
        "/_control/events",
        "Authorization: Bearer s3cret\r\n",
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.lines().all(serde_json_line), "{text}");
    assert!(text.contains("\"event\":\"fault\""), "{text}");
    assert_eq!(
        get(
            &s.addr,
            "/_control/nope",
            "Authorization: Bearer s3cret\r\n"
        )
        .status,
        404
    );
    assert_eq!(
        exchange(&s.addr, "DELETE /_control/faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\nConnection: close\r\n\r\n").status,
        405
    );
}

fn serde_json_line(l: &str) -> bool {
    l.starts_with('{') && l.ends_with('}')
}
