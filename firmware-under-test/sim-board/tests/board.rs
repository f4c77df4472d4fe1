//! The real `sim-board` binary against the real fake-server on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ota_core::Version;
use ota_core::image::{ImageSpec, board_kind};
use ota_core::keys::SigningKey;
use ota_core::payload::{self, Drill};
use ota_core::tools::Corruption;

const BODY: usize = 32 * 1024;

struct Env {
    dir: tempfile::TempDir,
    key: SigningKey,
    rt: tokio::runtime::Runtime,
    server: Option<fake_server::ServerHandle>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = ota_core::keys::generate();
        std::fs::write(
            dir.path().join("release.pub"),
            hex(key.verifying_key().as_bytes()),
        )
        .expect("pub");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = fake_server::Config::new(dir.path());
        cfg.signing_key = Some(key.clone());
        let server = rt.block_on(fake_server::start(cfg)).expect("server");
        let env = Self {
            dir,
            key,
            rt,
            server: Some(server),
        };
        env.image("v1.bin", Version::new(1, 0, 0), Drill::None, 1, None);
        env
    }

    fn server(&self) -> &fake_server::ServerHandle {
        self.server.as_ref().expect("server")
    }

    fn image(
        &self,
        name: &str,
        v: Version,
        drill: Drill,
        counter: u32,
        corrupt: Option<Corruption>,
    ) {
        let spec = ImageSpec {
            version: v,
            rollback_counter: counter,
            board: board_kind("sim").expect("kind"),
            load_addr: payload::SIM_LOAD_ADDR,
            entry_offset: 0,
        };
        let mut img = ota_core::image::build(&spec, &payload::build(v, drill, BODY), &self.key);
        if let Some(c) = corrupt {
            img = ota_core::tools::corrupt(&img, c, &self.key, &ota_core::keys::generate())
                .expect("corrupt");
        }
        std::fs::write(self.dir.path().join(name), img).expect("image");
    }

    fn publish(&self, release: &str, file: &str) {
        self.server().publish(release, file).expect("publish");
    }

    fn board(&self, device: &str, extra: &[&str]) -> Board {
        Board::start(self.dir.path(), &self.server().url(), device, extra)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Board {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Board {
    fn start(dir: &Path, url: &str, device: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sim-board"))
            .arg("--flash")
            .arg(dir.join(format!("{device}.flash")))
            .args(["--server", url, "--device", device])
            .arg("--factory")
            .arg(dir.join("v1.bin"))
            .arg("--trust-key")
            .arg(dir.join("release.pub"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sim-board");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(l);
            }
        });
        Self { child, lines }
    }

    fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self
                .lines
                .lock()
                .expect("lock")
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn has(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(needle))
    }

    fn dump(&self) -> String {
        self.lines.lock().expect("lock").join("\n")
    }

    /// Waits for the process to exit by itself (an exact cut).
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const T: Duration = Duration::from_secs(10);

#[test]
fn factory_v1_updates_to_v2_and_confirms() {
    let env = Env::new();
    env.image("v2.bin", Version::new(2, 0, 0), Drill::None, 1, None);
    env.publish("v2", "v2.bin");
    let b = env.board("dev-a", &[]);
    assert!(b.wait_for("app: v2.0.0 confirmed", T), "{}", b.dump());
    assert!(b.has("verify: ok version=2.0.0"));
    assert!(
        b.wait_for("checkin: version=2.0.0 state=confirmed", T),
        "{}",
        b.dump()
    );
    let d = env.server().device("dev-a").expect("checked in");
    assert_eq!(
        (d.version.as_str(), d.state.as_str()),
        ("2.0.0", "confirmed")
    );
}

#[test]
fn every_drill_reverts_to_v1_and_reports_it() {
    let env = Env::new();
    for (i, drill) in [Drill::CrashInInit, Drill::NoNetwork, Drill::Hang]
        .into_iter()
        .enumerate()
    {
        let file = format!("v2-{}.bin", drill.as_str());
        env.image(&file, Version::new(2, 0, 0), drill, 1, None);
        env.publish(&format!("r{i}"), &file);
        let device = format!("drill-{}", drill.as_str());
        let b = env.board(&device, &[]);
        assert!(
            b.wait_for("boot: revert to=1.0.0 reason=trial-exhausted", T),
            "{}: {}",
            drill.as_str(),
            b.dump()
        );
        assert!(
            b.wait_for("checkin: version=1.0.0 state=reverted", T),
            "{}",
            b.dump()
        );
        let d = env.server().device(&device).expect("checked in");
        assert_eq!(
            (d.version.as_str(), d.state.as_str()),
            ("1.0.0", "reverted"),
            "{}",
            drill.as_str()
        );
        assert_eq!(d.last_error.as_deref(), Some("trial-exhausted"));
    }
}

#[test]
fn bad_images_are_refused_before_activation() {
    let env = Env::new();
    let cases = [
        (
            "header",
            Some(Corruption::Header),
            1,
            "verify: failed reason=bad-header",
        ),
        (
            "entry",
            Some(Corruption::Entry),
            1,
            "verify: failed reason=missing-entry-point",
        ),
        (
            "signature",
            Some(Corruption::Signature),
            1,
            "verify: failed reason=bad-signature",
        ),
        (
            "counter",
            None,
            0,
            "update: refused version=2.0.0 reason=rollback-counter",
        ),
    ];
    for (name, corrupt, counter, expected) in cases {
        // A floor of 1 comes from the factory image; counter 0 is below it.
        let file = format!("v2-{name}.bin");
        env.image(&file, Version::new(2, 0, 0), Drill::None, counter, corrupt);
        env.publish(name, &file);
        let b = env.board(&format!("bad-{name}"), &[]);
        assert!(b.wait_for(expected, T), "{name}: {}", b.dump());
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !b.has("boot: trial"),
            "{name} must never be activated: {}",
            b.dump()
        );
    }
}

#[test]
fn a_kill_during_download_resumes_from_the_persisted_offset() {
    let env = Env::new();
    env.image("v2.bin", Version::new(2, 0, 0), Drill::None, 1, None);
    env.publish("v2", "v2.bin");
    env.server().set_faults(
        fake_server::faults::parse_faults_yaml(
            "faults:\n  - { match: { path: /v1/images/*, nth: 1 }, throttle: \"64KiB/s\" }\n",
            "test",
        )
        .expect("faults"),
    );
    let mut b = env.board("resume", &["--net-timeout", "2s"]);
    assert!(b.wait_for("download: progress", T), "{}", b.dump());
    std::thread::sleep(Duration::from_millis(100));
    b.child.kill().expect("SIGKILL");
    let _ = b.child.wait();
    let b2 = env.board("resume", &[]);
    assert!(b2.wait_for("download: resume offset=", T), "{}", b2.dump());
    assert!(b2.wait_for("app: v2.0.0 confirmed", T), "{}", b2.dump());
    let ranged = env.server().events().iter().any(|e| {
        matches!(&e.kind, fake_server::EventKind::Request { path, range: Some(r), .. }
            if path.starts_with("/v1/images/") && !r.starts_with("bytes=0-"))
    });
    assert!(
        ranged,
        "the resume must be a Range request from the persisted offset"
    );
}

fn flash_ops(log: &Path) -> Vec<(u64, String, u32)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.parse().ok()?,
                it.next()?.to_string(),
                u32::from_str_radix(it.next()?.trim_start_matches("0x"), 16).ok()?,
            ))
        })
        .collect()
}

#[test]
fn bounded_power_cut_sample_never_bricks() {
    let env = Env::new();
    env.image("v2.bin", Version::new(2, 0, 0), Drill::None, 1, None);
    env.publish("v2", "v2.bin");
    // The clean run, logged.
    let log = env.dir.path().join("clean.log");
    let b = env.board("clean", &["--flash-log", log.to_str().expect("utf8")]);
    assert!(
        b.wait_for("checkin: version=2.0.0 state=confirmed", T),
        "{}",
        b.dump()
    );
    drop(b);
    let ops = flash_ops(&log);
    assert!(ops.len() > 50, "{} ops", ops.len());
    // Every op from the last slot write on (stage, trial, confirm) plus every 7th op before.
    let last_chunk = ops
        .iter()
        .rposition(|(_, _, addr)| *addr >= 0x2_0000)
        .unwrap_or(0);
    let sample: Vec<u64> = ops
        .iter()
        .enumerate()
        .filter(|(i, _)| *i + 20 >= last_chunk || i % 7 == 0)
        .map(|(_, (idx, _, _))| *idx)
        .collect();
    let mut tried = 0;
    for &op in &sample {
        for torn in [false, true] {
            let device = format!("cut-{op}-{torn}");
            let cut = op.to_string();
            let mut args = vec!["--cut-at-flash-op", cut.as_str()];
            if torn {
                args.push("--torn");
            }
            let mut b = env.board(&device, &args);
            let code = b.wait_exit(T);
            assert_eq!(
                code,
                Some(sim_board::CUT_EXIT_CODE),
                "op {op}: {}",
                b.dump()
            );
            drop(b);
            let b = env.board(&device, &[]);
            let settled = b.wait_for("state=confirmed -> command=none", T);
            assert!(
                settled && !b.has("FATAL"),
                "op {op} torn={torn}: bricked or stuck:\n{}",
                b.dump()
            );
            tried += 1;
        }
    }
    println!("process power-cut sample: {tried} cut points tried, 0 bricked");
    assert!(tried >= 40, "{tried}");
}
