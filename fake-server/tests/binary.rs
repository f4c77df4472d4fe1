//! The real `fake-server` binary on 127.0.0.1:0, checked byte-exactly with a raw TCP client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, checkin, exchange, get, request};

const IMAGE_LEN: usize = 10_000;

fn image() -> Vec<u8> {
    (0..IMAGE_LEN).map(|i| (i * 7 % 251) as u8).collect()
}

fn start(faults: &str, extra: &[&str]) -> Server {
    start_with(faults, extra, |_| {})
}

fn start_with(faults: &str, extra: &[&str], setup: impl FnOnce(&std::path::Path)) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    std::fs::write(dir.path().join("app.bin"), image()).expect("image");
    std::fs::write(dir.path().join("other.bin"), vec![0xAB; 3000]).expect("other");
    let faults_file = dir.path().join("faults.yaml");
    std::fs::write(&faults_file, faults).expect("faults");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-server"));
    cmd.arg("--images")
        .arg(dir.path())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--faults")
        .arg(&faults_file)
        .args(extra)
        .stderr(Stdio::piped());
    Server::start(cmd, dir)
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
    assert_eq!(
        r.body,
        image(),
        "a -N length still sends the real body, then closes"
    );
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
    assert!(r.reset, "reset: true ends with RST");
    assert_eq!(r.body.len(), 3000, "the bytes before the RST still arrive");
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
    let dir = s.dir.path();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("link.bin")).expect("symlink");
    assert_eq!(get(&s.addr, "/v1/images/link.bin", "").status, 404);
}

#[test]
fn malformed_requests_get_4xx_and_the_server_keeps_serving() {
    let s = start("faults: []\n", &[]);
    let r = exchange(&s.addr, b"BLAH\r\n\r\n");
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
    let r = request(&s.addr, "POST", "/v1/checkin", "", b"{bad}");
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
    let r = request(
        &s.addr,
        "PUT",
        "/_control/faults",
        "Authorization: Bearer s3cret\r\n",
        body.as_bytes(),
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
        request(
            &s.addr,
            "DELETE",
            "/_control/faults",
            "Authorization: Bearer s3cret\r\n",
            b""
        )
        .status,
        405
    );
}

fn serde_json_line(l: &str) -> bool {
    l.starts_with('{') && l.ends_with('}')
}

#[test]
fn head_wrong_methods_and_unknown_routes() {
    let s = start("faults: []\n", &[]);
    let r = request(&s.addr, "HEAD", "/v1/images/app.bin", "", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10000"));
    assert!(r.header("etag").is_some());
    assert!(r.body.is_empty(), "HEAD has no body");
    let r = request(&s.addr, "POST", "/v1/images/app.bin", "", b"x");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(get(&s.addr, "/v1/checkin", "").status, 405);
    assert_eq!(
        request(&s.addr, "PUT", "/v1/manifest/v2", "", b"x").status,
        405
    );
    assert_eq!(get(&s.addr, "/v1/nope", "").status, 404);
    assert_eq!(get(&s.addr, "/", "").status, 404);
    assert_eq!(get(&s.addr, "/v1/manifest/none", "").status, 404);
}

#[test]
fn oversized_bodies_get_413() {
    let s = start("faults: []\n", &[]);
    let big = vec![b' '; 5 * 1024];
    assert_eq!(
        request(&s.addr, "POST", "/v1/checkin", "", &big).status,
        413
    );
    let huge = vec![b' '; 65 * 1024];
    assert_eq!(
        request(&s.addr, "PUT", "/_control/faults", "", &huge).status,
        413
    );
    assert_eq!(get(&s.addr, "/v1/images/app.bin", "").body.len(), IMAGE_LEN);
}

/// A server with a signing key, `v2` and `v3` images and a published `v2`.
fn release_server(token: &str) -> (Server, ota_core::keys::SigningKey) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (private, _) = ota_core::tools::write_keypair(keys.path()).expect("keys");
    let key = ota_core::tools::read_signing_key(&private).expect("key");
    let s = start_with(
        "faults: []\n",
        &[
            "--token",
            token,
            "--key",
            private.to_str().expect("utf8"),
            "--publish",
            "v2=v2.bin",
        ],
        |dir| {
            std::fs::write(
                dir.join("v2.bin"),
                common::signed_image(&key, (2, 0, 0), 6000),
            )
            .expect("v2");
            std::fs::write(
                dir.join("v3.bin"),
                common::signed_image(&key, (3, 0, 0), 5000),
            )
            .expect("v3");
        },
    );
    (s, key)
}

#[test]
fn checkin_rollout_commands_and_failed_releases_over_http() {
    let (s, key) = release_server("tok");
    let auth = "Authorization: Bearer tok\r\n";
    let update = r#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#;
    let none = r#"{"command":"none","manifest_url":null}"#;
    let command = |resp: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(resp).expect("json");
        v["command"].as_str().expect("command").to_string()
    };
    // Default rollout: phase 4, everyone.
    let r = checkin(&s.addr, "eng-1", "1.0.0", "confirmed", None);
    assert_eq!(r, update);
    assert_eq!(
        command(&checkin(&s.addr, "eng-1", "2.0.0", "trial", None)),
        "none"
    );

    // The manifest, binary and for people.
    let r = get(&s.addr, "/v1/manifest/v2", "");
    assert_eq!(
        r.header("content-type"),
        Some(ota_core::manifest::CONTENT_TYPE)
    );
    let m = ota_core::manifest::Manifest::parse_verified(&r.body, key.verifying_key().as_bytes())
        .expect("a manifest signed with the release key");
    assert_eq!(m.url(), "/v1/images/v2.bin");
    assert_eq!(m.version(), ota_core::Version::new(2, 0, 0));
    let image = get(&s.addr, m.url(), "").body;
    assert_eq!(ota_core::sha256(&image), m.sha256());
    let r = get(&s.addr, "/v1/manifest/v2?format=json", "");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(
        v["sha256"],
        ota_core::sha256(&image)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    // Phase 0: the engineering list only.
    let r = request(
        &s.addr,
        "PUT",
        "/_control/rollout",
        auth,
        br#"{"phase":0,"engineering":["eng-2"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        checkin(&s.addr, "eng-2", "1.0.0", "confirmed", None),
        update
    );
    assert_eq!(
        checkin(&s.addr, "field-1", "1.0.0", "confirmed", None),
        none
    );
    // The halt button.
    let r = request(
        &s.addr,
        "PUT",
        "/_control/rollout",
        auth,
        br#"{"phase":4,"paused":true}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(checkin(&s.addr, "eng-2", "1.0.0", "confirmed", None), none);
    // A phase past the table is refused.
    let r = request(&s.addr, "PUT", "/_control/rollout", auth, br#"{"phase":9}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = request(&s.addr, "PUT", "/_control/rollout", auth, br#"{"phase":4}"#);
    assert_eq!(r.status, 200);

    // A forced rollback comes before any offer, and is sent again until a check-in shows
    // it was acted on (here: the device comes back reverted).
    let r = request(
        &s.addr,
        "POST",
        "/_control/commands",
        auth,
        br#"{"device":"field-1","command":"rollback"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        command(&checkin(&s.addr, "field-1", "1.0.0", "confirmed", None)),
        "rollback"
    );
    assert_eq!(
        command(&checkin(&s.addr, "field-1", "1.0.0", "confirmed", None)),
        "rollback",
        "the answer may have been lost: told again"
    );
    assert_eq!(
        command(&checkin(&s.addr, "field-1", "1.0.0", "reverted", None)),
        "update",
        "acted on: the offer comes next"
    );

    // eng-2 was offered v2 and comes back reverted: never offered v2 again.
    assert_eq!(checkin(&s.addr, "eng-2", "1.0.0", "reverted", None), none);
    assert_eq!(checkin(&s.addr, "eng-2", "1.0.0", "confirmed", None), none);
    let r = get(&s.addr, "/_control/devices", auth);
    let devices: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let eng2 = devices
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["device"] == "eng-2")
        .expect("eng-2");
    assert_eq!(eng2["failed"], serde_json::json!(["v2"]));

    // Publishing v3 offers it; eng-2 has not failed v3.
    let r = request(
        &s.addr,
        "POST",
        "/_control/releases",
        auth,
        br#"{"name":"v3","file":"v3.bin"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&s.addr, "/_control/releases", auth);
    let list: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(
        checkin(&s.addr, "eng-2", "1.0.0", "confirmed", None),
        r#"{"command":"update","manifest_url":"/v1/manifest/v3"}"#
    );
    // The control API needs the token; the device API does not.
    assert_eq!(get(&s.addr, "/_control/devices", "").status, 401);
    let r = request(
        &s.addr,
        "POST",
        "/_control/releases",
        auth,
        br#"{"name":"v4","file":"../v3.bin"}"#,
    );
    assert_eq!(r.status, 400);
    // Events: JSON lines with `at` in microseconds.
    let r = get(&s.addr, "/_control/events", auth);
    let events: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(events.iter().all(|e| e["at"].is_u64()));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "checkin" && e["command"] == "rollback")
    );
}

#[test]
fn images_too_large_to_cache_stream_from_disk() {
    const BIG: u64 = 65 * 1024 * 1024;
    let s = start_with(
        "faults:\n  - { match: { path: /v1/images/big.bin, nth: 3 }, corrupt: { offset: 66000001, len: 2 } }\n",
        &[],
        |dir| {
            use std::io::{Seek, SeekFrom};
            // Sparse: no disk space, zeros except for the markers.
            let mut f = std::fs::File::create(dir.join("big.bin")).expect("big");
            f.set_len(BIG).expect("len");
            f.seek(SeekFrom::Start(66_000_000)).expect("seek");
            f.write_all(b"MARK").expect("mark");
            f.seek(SeekFrom::Start(BIG - 4)).expect("seek");
            f.write_all(b"TAIL").expect("tail");
        },
    );
    let r = request(&s.addr, "HEAD", "/v1/images/big.bin", "", b"");
    assert_eq!(r.header("content-length"), Some(BIG.to_string().as_str()));
    let r = get(
        &s.addr,
        "/v1/images/big.bin",
        "Range: bytes=65999998-66000005\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"\0\0MARK\0\0");
    let r = get(
        &s.addr,
        "/v1/images/big.bin",
        "Range: bytes=65999998-66000005\r\n",
    );
    assert_eq!(
        r.body,
        [0, 0, b'M', !b'A', !b'R', b'K', 0, 0],
        "corrupt at image offsets"
    );
    let r = get(&s.addr, "/v1/images/big.bin", "Range: bytes=-4\r\n");
    assert_eq!(
        (r.header("content-range"), r.body.as_slice()),
        (
            Some(format!("bytes {}-{}/{BIG}", BIG - 4, BIG - 1).as_str()),
            &b"TAIL"[..]
        )
    );
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut s = start("faults: []\n", &[]);
    assert_eq!(get(&s.addr, "/v1/images/app.bin", "").body.len(), IMAGE_LEN);
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(st) = s.child.try_wait().expect("wait") {
            break st.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}
