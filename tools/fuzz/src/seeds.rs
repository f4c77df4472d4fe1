//! `--seed-corpus`: writes `corpus/<target>/` from the shipped files (scenarios, runbooks,
//! benches, the fault rules in them) and from deterministic artifacts built with ota-core
//! (images, manifests, state records, check-in messages, payloads). Run once, commit.

use std::path::{Path, PathBuf};

use ota_core::Version;
use ota_core::image::{ImageSpec, board_kind};
use ota_core::payload::Drill;
use ota_core::state::{BootState, Mode};

use crate::targets::seed_key;

/// The seeds of one target: `(file name, bytes)`.
type Seeds = Vec<(String, Vec<u8>)>;

/// Writes every target's seeds under `corpus` (replacing what is there); returns
/// `(target, seeds written)`.
pub fn write_corpus(root: &Path, corpus: &Path) -> std::io::Result<Vec<(&'static str, usize)>> {
    let scenarios = root.join("scenarios");
    let yaml_in = |dir: &Path| -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        Ok(files)
    };
    let shipped = |files: Vec<PathBuf>| -> std::io::Result<Seeds> {
        files
            .into_iter()
            .map(|f| {
                let name = f.file_name().unwrap_or_default().to_string_lossy().into();
                std::fs::read(&f).map(|b| (name, b))
            })
            .collect()
    };
    let all_scenarios = yaml_in(&scenarios)?;
    let (benches, mut plain): (Vec<PathBuf>, Vec<PathBuf>) = all_scenarios
        .into_iter()
        .partition(|p| rig::scenario::is_bench_file(p));
    plain.extend(yaml_in(&scenarios.join("hardware"))?);
    let runbooks = yaml_in(&scenarios.join("runbooks"))?;

    let mut faults = fault_blocks(&shipped(plain.clone())?);
    faults.extend(fault_blocks(&shipped(runbooks.clone())?));
    faults.extend(fault_rules());

    let sets: Vec<(&'static str, Seeds)> = vec![
        ("scenario-yaml", shipped(plain)?),
        ("runbook-yaml", shipped(runbooks)?),
        ("bench-yaml", shipped(benches)?),
        ("fault-rules-yaml", faults),
        ("manifest", manifests()),
        ("image-header", headers()),
        ("state-record", states()),
        ("http-head", heads()),
        ("console-line", console_lines()),
        ("checkin", checkins()),
        ("payload", payloads()),
    ];
    let mut written = Vec::new();
    for (target, seeds) in sets {
        let dir = corpus.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes)?;
        }
        written.push((target, seeds.len()));
    }
    Ok(written)
}

/// The top-level `faults:` block of each file that has one, as a fault file of its own.
fn fault_blocks(files: &Seeds) -> Seeds {
    let mut out = Vec::new();
    for (name, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        let mut block = String::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with("faults:") {
                inside = true;
            } else if inside && !line.is_empty() && !line.starts_with([' ', '-', '#']) {
                inside = false;
            }
            if inside {
                block.push_str(line);
                block.push('\n');
            }
        }
        if !block.is_empty() {
            out.push((format!("from-{name}"), block.into_bytes()));
        }
    }
    out
}

/// One rule of every action and schedule, with every matcher field.
fn fault_rules() -> Seeds {
    let rules = [
        (
            "truncate-bytes",
            "{ match: { path: /v1/images/*, method: GET }, truncate_at: 1000, times: 1 }",
        ),
        (
            "truncate-percent",
            "{ match: { path: \"/v1/images/*\", nth: 2 }, truncate_at: \"25%\" }",
        ),
        (
            "content-length",
            "{ match: { path: /v1/images/* }, content_length: \"+500\", every: 3 }",
        ),
        (
            "content-length-minus",
            "{ match: { device: sim-1 }, content_length: \"-500\" }",
        ),
        (
            "drop",
            "{ match: { path: /v1/images/*, version: 1.0.0 }, drop_after: 4096, reset: true }",
        ),
        (
            "stall",
            "{ match: { path: /v1/images/* }, stall_after: 4000, for: 1.5s }",
        ),
        (
            "throttle",
            "{ match: { path: /v1/images/* }, throttle: 64KiB/s, probability: 0.5, seed: 7 }",
        ),
        (
            "latency",
            "{ match: { path: /v1/checkin, method: POST }, latency: 200ms, jitter: 50ms }",
        ),
        (
            "corrupt",
            "{ match: { path: /v1/images/* }, corrupt: { offset: 300, len: 16 }, times: 2 }",
        ),
        (
            "status",
            "{ match: { path: /v1/images/* }, status: 503, retry_after: 1, share: 20%, seed: 1 }",
        ),
        (
            "ignore-range",
            "{ match: { path: /v1/images/* }, ignore_range: true }",
        ),
        (
            "bad-content-range",
            "{ match: { path: /v1/images/* }, bad_content_range: true }",
        ),
        (
            "slow-headers",
            "{ match: { path: /v1/manifest/* }, slow_headers: 2s }",
        ),
        (
            "serve",
            "{ match: { path: /v1/images/v2.bin }, serve: v3.bin }",
        ),
    ];
    let mut out: Seeds = rules
        .iter()
        .map(|(name, rule)| {
            (
                format!("rule-{name}"),
                format!("faults:\n  - {rule}\n").into_bytes(),
            )
        })
        .collect();
    let all: String = rules.iter().map(|(_, r)| format!("  - {r}\n")).collect();
    out.push(("rules-all".into(), format!("faults:\n{all}").into_bytes()));
    out.push(("rules-empty".into(), b"faults: []\n".to_vec()));
    out.push((
        "rules-block-style".into(),
        b"faults:\n  - match:\n      path: /v1/images/*\n      method: GET\n    status: 500\n    times: 3\n"
            .to_vec(),
    ));
    out
}

fn image(version: Version, board: &str, drill: Drill, size: usize, entry: u32) -> Vec<u8> {
    let spec = ImageSpec {
        version,
        rollback_counter: u32::from(version.major),
        board: board_kind(board).expect("board kind"),
        load_addr: ota_core::payload::SIM_LOAD_ADDR,
        entry_offset: entry,
    };
    let body = ota_core::payload::build(version, drill, size);
    ota_core::image::build(&spec, &body, &seed_key())
}

fn images() -> Vec<(String, Vec<u8>)> {
    let v = Version::new;
    vec![
        (
            "v1-sim".into(),
            image(v(1, 0, 0), "sim", Drill::None, 1024, 0),
        ),
        (
            "v2-sim".into(),
            image(v(2, 0, 0), "sim", Drill::CrashInInit, 4096, 0),
        ),
        (
            "v3-pico".into(),
            image(v(3, 1, 4), "pico-w", Drill::Hang, 3000, 2999),
        ),
        (
            "v65535".into(),
            image(v(65535, 65535, 65535), "x", Drill::None, 256, 17),
        ),
    ]
}

fn headers() -> Seeds {
    let key = seed_key();
    let other = ota_core::keys::SigningKey::from_bytes(&[0xa5; 32]);
    let mut out: Seeds = images()
        .into_iter()
        .map(|(name, img)| (name, img[..ota_core::image::HEADER_LEN + 32].to_vec()))
        .collect();
    let (_, v2) = &images()[1];
    for (name, mode) in [
        ("corrupt-header", ota_core::tools::Corruption::Header),
        ("corrupt-entry", ota_core::tools::Corruption::Entry),
        ("corrupt-signature", ota_core::tools::Corruption::Signature),
    ] {
        let bad = ota_core::tools::corrupt(v2, mode, &key, &other).expect("corrupt");
        out.push((name.into(), bad[..ota_core::image::HEADER_LEN].to_vec()));
    }
    out
}

fn manifests() -> Seeds {
    let key = seed_key();
    let mut out = Vec::new();
    for (name, img) in images() {
        for (chunk, url) in [
            (256, "/v1/images/v2.bin"),
            (
                1024,
                "http://127.0.0.1:8080/v1/images/release-candidate.bin",
            ),
            (65536, "/x"),
        ] {
            let m = ota_core::manifest::build(&img, chunk, url, &key).expect("manifest");
            out.push((format!("{name}-chunk{chunk}"), m));
        }
    }
    out
}

fn states() -> Seeds {
    let digest = ota_core::sha256(b"manifest");
    let mut trial = BootState::factory(1, 2);
    trial.seq = 7;
    trial.mode = Mode::Trial;
    trial.attempts = 2;
    trial.previous = Some(0);
    let mut reverted = BootState::factory(0, 3);
    reverted.seq = 0xffff_fffe;
    reverted.reverted = true;
    reverted.last_error = ota_core::Reason::from_code(22);
    reverted.rejected = Some(Version::new(3, 0, 0));
    let mut downloading = BootState::factory(0, 1);
    downloading.seq = 3;
    downloading.previous = Some(1);
    downloading.download = Some((digest, 1));
    downloading.last_error = ota_core::Reason::from_code(12);
    let mut out: Seeds = [
        ("factory", BootState::factory(0, 0)),
        ("trial", trial),
        ("reverted", reverted),
        ("downloading", downloading),
    ]
    .into_iter()
    .map(|(name, s)| (name.to_string(), s.encode().to_vec()))
    .collect();
    // As it sits on flash: a record, then erased bytes to the end of the page.
    let mut page = BootState::factory(1, 0).encode().to_vec();
    page.resize(256, 0xff);
    out.push(("factory-page".into(), page));
    out
}

fn heads() -> Seeds {
    let heads: &[(&str, &str)] = &[
        (
            "200",
            "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\nContent-Type: application/octet-stream\r\n\r\n",
        ),
        (
            "206",
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1024-4095/4096\r\nContent-Length: 3072\r\nConnection: keep-alive\r\n\r\n",
        ),
        (
            "503",
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "416",
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */0\r\nConnection: close\r\n\r\n",
        ),
        (
            "http10",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 12\r\n\r\nbody follows",
        ),
        (
            "fold",
            "HTTP/1.1 200 OK\r\nX-Long: a\r\n b\r\n\tc\r\nContent-Length:  7 \r\n\r\n",
        ),
        ("no-blank-line", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"),
        (
            "duplicates",
            "HTTP/1.1 206 \r\ncontent-length: 5\r\nCONTENT-LENGTH: 5\r\nContent-Range: bytes 0-4/10\r\ncontent-range: bytes 0-4/10\r\nretry-after: 99999999999999999999999\r\n\r\n",
        ),
        (
            "checkin",
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 52\r\ndate: Sun, 29 Nov 2026 14:07:13 GMT\r\n\r\n{\"command\":\"update\",\"manifest_url\":\"/v1/manifest/v2\"}",
        ),
    ];
    heads
        .iter()
        .map(|(n, h)| (n.to_string(), h.as_bytes().to_vec()))
        .collect()
}

fn console_lines() -> Seeds {
    let lines = [
        "boot: otarig-boot board=sim device=sim-1 reset=power-on",
        "boot: otarig-boot board=pico-w device=pico-e6614103e7d1a234 reset=watchdog",
        "boot: trial version=2.0.0 attempt=1/3",
        "boot: revert to=1.0.0 reason=trial-exhausted",
        "boot: revert to=1.0.0 reason=bad-image",
        "boot: slot=b version=2.0.0 state=trial",
        "boot: slot=a version=1.0.0 state=confirmed",
        "boot: refuse slot=b reason=bad-signature",
        "boot: FATAL no bootable image",
        "boot: FATAL flash error",
        "boot: factory reset version=1.0.0",
        "boot: factory reset failed reason=bad-header",
        "app: v2.0.0 starting drill=none",
        "app: v2.0.0 starting drill=crash-on-rev-b",
        "app: v2.0.0 network up",
        "app: v2.0.0 running",
        "app: v2.0.0 confirmed",
        "app: v2.0.0 crash in init (drill)",
        "app: v2.0.0 crash: no app at the entry point",
        "app: v2.0.0 network disabled (drill)",
        "app: v2.0.0 hang (drill)",
        "checkin: version=1.0.0 state=confirmed -> command=update",
        "checkin: version=2.0.0 state=trial -> command=none",
        "checkin: failed reason=status-503",
        "checkin: failed reason=malformed",
        "checkin: failed reason=timeout",
        "update: offered manifest=/v1/manifest/v2",
        "update: manifest version=2.0.0 size=4352 chunks=5 chunk_size=1024",
        "update: refused version=0.9.0 reason=downgrade",
        "update: refused version=unknown reason=bad-manifest-signature",
        "download: start offset=0 total=4352",
        "download: resume offset=2048 chunk=2/5",
        "download: progress 3/5",
        "download: error reason=chunk-hash retry=1/5 in=500ms",
        "download: complete bytes=4352",
        "verify: ok version=2.0.0",
        "verify: failed reason=bad-hash",
        "update: staged version=2.0.0",
        "update: manifest unavailable reason=status-404",
        "update: failed reason=retries-exhausted",
        "rollback: refused reason=no-previous",
        "rollback: command received to=1.0.0",
        "watchdog: expired",
        "12 erase 0x00010000 4096",
        "13 program 0x00010000 256",
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("line-{i:02}"), format!("{l}\r").into_bytes()))
        .collect()
}

fn checkins() -> Seeds {
    let texts = [
        (
            "request",
            r#"{"device":"sim-1","version":"1.0.0","slot":"a","state":"confirmed","boot_count":1,"last_error":null}"#,
        ),
        (
            "request-error",
            r#"{"device":"pico-e6614103e7d1a234","version":"2.0.0","slot":"b","state":"reverted","boot_count":4294967295,"last_error":"chunk-hash"}"#,
        ),
        (
            "request-spaced",
            "{ \"device\" : \"d\\\"1\" , \"version\":\"1.0.0\", \"slot\":\"b\", \"state\":\"updating\", \"boot_count\": 0, \"last_error\": \"\\u00e9\" }",
        ),
        (
            "response-update",
            r#"{"command":"update","manifest_url":"/v1/manifest/v2"}"#,
        ),
        ("response-none", r#"{"command":"none"}"#),
        (
            "response-rollback",
            r#"{"command":"rollback","manifest_url":null,"hint":{"later":[1,2]}}"#,
        ),
        ("response-update-missing-url", r#"{"command":"update"}"#),
    ];
    texts
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect()
}

fn payloads() -> Seeds {
    [
        Drill::None,
        Drill::CrashInInit,
        Drill::NoNetwork,
        Drill::Hang,
        Drill::SlowBoot,
        Drill::CrashOnRevB,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, d)| {
        let body = ota_core::payload::build(Version::new(i as u16, 1, 2), d, 128);
        (format!("app-{}", d.as_str()), body)
    })
    .collect()
}
