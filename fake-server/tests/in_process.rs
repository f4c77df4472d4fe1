//! In-process connections (`ServerHandle::in_process`): the same HTTP, routes and body faults
//! as over TCP, and a refusal for the faults only a socket can play.

mod common;

use fake_server::{Error, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Env {
    _dir: tempfile::TempDir,
    server: ServerHandle,
}

async fn env() -> Env {
    let (dir, server) = common::library_server(&[("v2.bin", (2, 0, 0), 10_000)]).await;
    server.publish("v2", "v2.bin").expect("publish");
    Env { _dir: dir, server }
}

/// Status, body (as framed by Content-Length, or to EOF when `to_eof`), and the raw head.
async fn exchange<S>(s: &mut S, request: &str, to_eof: bool) -> (u16, Vec<u8>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read head");
        assert_eq!(n, 1, "head cut short: {}", String::from_utf8_lossy(&raw));
        raw.push(byte[0]);
    }
    let head = ota_core::http::parse_head(&raw).expect("head");
    let mut body = Vec::new();
    if to_eof {
        s.read_to_end(&mut body).await.expect("body");
    } else {
        let len = usize::try_from(head.content_length.unwrap_or(0)).expect("len");
        body.resize(len, 0);
        s.read_exact(&mut body).await.expect("body");
    }
    (head.status, body)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-Otarig-Device: dev-1\r\n{extra}\r\n")
}

#[tokio::test(flavor = "current_thread")]
async fn a_pipe_answers_like_a_socket_and_keeps_alive() {
    let e = env().await;
    let mut tcp = tokio::net::TcpStream::connect(e.server.addr())
        .await
        .expect("tcp");
    let mut pipe = e
        .server
        .in_process()
        .expect("no socket faults")
        .connect()
        .expect("pipe");
    for (path, extra) in [
        ("/v1/images/v2.bin", ""),
        ("/v1/images/v2.bin", "Range: bytes=100-4195\r\n"),
        ("/v1/manifest/v2", ""),
        ("/v1/nothing", ""),
    ] {
        let over_tcp = exchange(&mut tcp, &get(path, extra), false).await;
        let over_pipe = exchange(&mut pipe, &get(path, extra), false).await;
        assert_eq!(over_tcp, over_pipe, "{path} {extra}");
    }
    // A check-in on the same pipe (keep-alive) reaches the registry.
    let body = r#"{"device":"dev-1","version":"1.0.0","slot":"a","state":"confirmed","boot_count":1,"last_error":null}"#;
    let req = format!(
        "POST /v1/checkin HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, _) = exchange(&mut pipe, &req, false).await;
    assert_eq!(status, 200);
    assert!(e.server.device("dev-1").is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn body_faults_act_on_a_pipe() {
    let e = env().await;
    let rules = fake_server::faults::parse_faults_yaml(
        "faults:\n  - match: { path: \"/v1/images/*\" }\n    truncate_at: 100\n",
        "test",
    )
    .expect("rules");
    e.server.set_faults(rules);
    let mut pipe = e
        .server
        .in_process()
        .expect("truncation needs no socket")
        .connect()
        .expect("pipe");
    // Headers promise the whole image; 100 bytes arrive, then the connection ends.
    let (status, body) = exchange(&mut pipe, &get("/v1/images/v2.bin", ""), true).await;
    assert_eq!((status, body.len()), (200, 100));
}

#[tokio::test(flavor = "current_thread")]
async fn socket_faults_refuse_a_pipe() {
    let e = env().await;
    let connector = e.server.in_process().expect("no faults yet");
    for rule in [
        "drop_after: 100\n    reset: true",
        "content_length: \"-10\"",
        "content_length: 5",
    ] {
        let yaml = format!("faults:\n  - match: {{ path: \"/v1/images/*\" }}\n    {rule}\n");
        let rules = fake_server::faults::parse_faults_yaml(&yaml, "test").expect("rules");
        assert!(rules[0].needs_socket(), "{rule}");
        e.server.set_faults(rules);
        assert!(
            matches!(e.server.in_process(), Err(Error::NeedsSocket(_))),
            "{rule}"
        );
        // A connector taken before the rule was installed refuses too.
        assert!(
            matches!(connector.connect(), Err(Error::NeedsSocket(_))),
            "{rule}"
        );
    }
    for rule in [
        "drop_after: 100",
        "content_length: \"+10\"",
        "stall_after: 10\n    for: 1ms",
    ] {
        let yaml = format!("faults:\n  - match: {{ path: \"/v1/images/*\" }}\n    {rule}\n");
        let rules = fake_server::faults::parse_faults_yaml(&yaml, "test").expect("rules");
        assert!(!rules[0].needs_socket(), "{rule}");
        e.server.set_faults(rules);
        assert!(connector.connect().is_ok(), "{rule}");
    }
}
