//! Hostile and mistaken input at the server's edges: ranges of an empty image, wrong methods on
//! the control API, a missing image directory, release names and files that are not images.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, get, request};

const AUTH: &str = "Authorization: Bearer tok\r\n";

/// An image directory with a signed `v2.bin`, an empty `empty.bin`, a `notes.txt` that is not
/// an image, and the release key; returns the directory and the key file.
fn images() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let (private, _) = ota_core::tools::write_keypair(&keys).expect("keys");
    let key = ota_core::tools::read_signing_key(&private).expect("key");
    std::fs::write(
        dir.path().join("v2.bin"),
        common::signed_image(&key, (2, 0, 0), 3000),
    )
    .expect("v2");
    std::fs::write(dir.path().join("empty.bin"), b"").expect("empty");
    std::fs::write(
        dir.path().join("notes.txt"),
        "release notes, not an image\n".repeat(20),
    )
    .expect("notes");
    (dir, private)
}

fn command(images: &Path, key: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-server"));
    cmd.arg("--images")
        .arg(images)
        .args(["--listen", "127.0.0.1:0", "--token", "tok", "--key"])
        .arg(key)
        .args(extra);
    cmd
}

fn start(extra: &[&str]) -> Server {
    let (dir, key) = images();
    let mut cmd = command(dir.path(), &key, extra);
    cmd.stderr(Stdio::null());
    Server::start(cmd, dir)
}

/// Runs a server that must refuse to start: exit 2 within 10 s, nothing on stdout; returns
/// stderr. One that starts serving instead is killed and fails the test.
fn refused(mut cmd: Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fake-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().expect("wait").is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.stdout.is_empty(),
        "the server must not start: {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

#[test]
fn a_suffix_range_of_an_empty_image_is_416() {
    let s = start(&[]);
    for range in ["bytes=-1", "bytes=-500", "bytes=0-", "bytes=0-0"] {
        let r = get(
            &s.addr,
            "/v1/images/empty.bin",
            &format!("Range: {range}\r\n"),
        );
        assert_eq!(r.status, 416, "{range}: {}", r.text());
        assert_eq!(r.header("content-range"), Some("bytes */0"), "{range}");
    }
    // Without a Range: the empty file, whole.
    let r = get(&s.addr, "/v1/images/empty.bin", "");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    // The server is still up and serving ranges of real images.
    let r = get(&s.addr, "/v1/images/v2.bin", "Range: bytes=-10\r\n");
    assert_eq!((r.status, r.body.len()), (206, 10));
}

#[test]
fn every_control_405_says_what_is_allowed() {
    let s = start(&[]);
    for (method, path, allow) in [
        ("DELETE", "/_control/faults", "GET, PUT"),
        ("POST", "/_control/faults", "GET, PUT"),
        ("PUT", "/_control/releases", "GET, POST"),
        ("POST", "/_control/rollout", "GET, PUT"),
        ("GET", "/_control/commands", "POST"),
        ("GET", "/_control/kill-switch", "POST"),
        ("PUT", "/_control/devices", "GET"),
        ("POST", "/_control/events", "GET"),
    ] {
        let r = request(&s.addr, method, path, AUTH, b"");
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some(allow)),
            "{method} {path}"
        );
    }
    assert_eq!(get(&s.addr, "/_control/nope", AUTH).status, 404);
}

#[test]
fn a_missing_image_directory_is_a_usage_error() {
    let (dir, key) = images();
    let missing = dir.path().join("no-such-dir");
    let err = refused(command(&missing, &key, &[]));
    assert!(
        err.contains("--images") && err.contains("no-such-dir"),
        "{err}"
    );
    // A file is not an image directory either.
    let file = dir.path().join("v2.bin");
    let err = refused(command(&file, &key, &[]));
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn publish_refuses_bad_release_names_and_files_that_are_not_images() {
    let (dir, key) = images();
    let long = format!("v{}", "1".repeat(64));
    for (publish, says) in [
        ("../x=v2.bin", "release name \"../x\""),
        (".hidden=v2.bin", "starts with a dot"),
        ("v 2=v2.bin", "character other than"),
        ("=v2.bin", "empty"),
        (&format!("{long}=v2.bin"), "longer than 64"),
        (
            "v2=notes.txt",
            "`notes.txt` is not a firmware image: bad image magic",
        ),
        ("v2=empty.bin", "`empty.bin` is not a firmware image"),
    ] {
        let err = refused(command(dir.path(), &key, &["--publish", publish]));
        assert!(
            err.contains(&format!("--publish {publish}")) && err.contains(says),
            "--publish {publish}: want {says:?} in {err}"
        );
    }
}

#[test]
fn the_control_api_refuses_bad_names_and_non_images_with_a_json_error() {
    let s = start(&["--publish", "v2-a=v2.bin"]);
    let long = "x".repeat(65);
    for (body, says) in [
        (
            r#"{"name":"../../x","file":"v2.bin"}"#.to_string(),
            "release name",
        ),
        (
            r#"{"name":"a/b","file":"v2.bin"}"#.into(),
            "character other than",
        ),
        (
            r#"{"name":".v2","file":"v2.bin"}"#.into(),
            "starts with a dot",
        ),
        (
            format!(r#"{{"name":"{long}","file":"v2.bin"}}"#),
            "longer than 64",
        ),
        (
            r#"{"name":"v3","file":"notes.txt"}"#.into(),
            "not a firmware image",
        ),
        (
            r#"{"name":"v3","file":"empty.bin"}"#.into(),
            "not a firmware image",
        ),
        (r#"{"name":"v3","nope":1}"#.into(), "request body"),
    ] {
        let r = request(&s.addr, "POST", "/_control/releases", AUTH, body.as_bytes());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{body}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error body");
        let error = v["error"].as_str().expect("an `error` string");
        assert!(error.contains(says), "{body}: want {says:?} in {error}");
    }
    // Nothing of that was published.
    let r = get(&s.addr, "/_control/releases", AUTH);
    let list: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // A real image still publishes.
    let r = request(
        &s.addr,
        "POST",
        "/_control/releases",
        AUTH,
        br#"{"name":"v2.0_rc-1","file":"v2.bin"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_manifest_route_validates_names_after_decoding() {
    let s = start(&["--publish", "v2-a=v2.bin"]);
    assert_eq!(get(&s.addr, "/v1/manifest/v2-a", "").status, 200);
    // Percent-encoded spellings of a valid name decode to it.
    assert_eq!(get(&s.addr, "/v1/manifest/v2%2Da", "").status, 200);
    // Decoded names that are not release names are never looked up.
    for path in [
        "/v1/manifest/%2e%2e",
        "/v1/manifest/..%2fv2-a",
        "/v1/manifest/%2ev2-a",
        "/v1/manifest/v2-a%00",
        "/v1/manifest/%zz",
    ] {
        let r = get(&s.addr, path, "");
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
}

/// In-process, `publish` still serves deliberately broken images (scenarios need them) but
/// never a bad name; `publish_image` is the checked door the CLI and control API use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_checks_names_always_and_headers_on_request() {
    let (dir, key) = images();
    let mut cfg = fake_server::Config::new(dir.path());
    cfg.signing_key = Some(ota_core::tools::read_signing_key(&key).expect("key"));
    let server = fake_server::start(cfg).await.expect("start");
    let info = server
        .publish("broken", "notes.txt")
        .expect("a broken image");
    assert_eq!(info.file, "notes.txt");
    assert!(matches!(
        server.publish_image("v3", "notes.txt"),
        Err(fake_server::Error::NotAnImage { .. })
    ));
    assert!(matches!(
        server.publish("../x", "v2.bin"),
        Err(fake_server::Error::BadReleaseName { .. })
    ));
    server.publish_image("v2", "v2.bin").expect("a real image");
    assert_eq!(server.releases().len(), 2);
    server.shutdown().await;
}
