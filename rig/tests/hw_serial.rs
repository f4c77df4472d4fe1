//! The serial console backend over pseudo-terminals: bytes, partial lines and binary noise
//! reach the timeline as lines; a port that vanishes and comes back (a re-enumerating USB-CDC
//! board, mimicked by re-pointing a by-id style symlink to a new pty) is reopened, and the gap
//! is recorded.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use rig::backend::serial::SerialConsole;
use rig::console::spawn_reader;
use rig::timeline::{BoardLane, EventKind, Timeline};
use serialport::{SerialPort, TTYPort};

fn lines(tl: &Timeline) -> Vec<String> {
    tl.snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Console { line } => Some(line),
            _ => None,
        })
        .collect()
}

fn wait_until(tl: &Timeline, pred: impl Fn(&[String]) -> bool) -> bool {
    for _ in 0..300 {
        if pred(&lines(tl)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn pair() -> (TTYPort, String) {
    let (master, slave) = TTYPort::pair().expect("pty pair");
    // The backend opens the slave side by its path, as it would a /dev/ttyACM0.
    let name = slave.name().expect("pty name");
    drop(slave);
    (master, name)
}

#[test]
fn partial_lines_and_noise_arrive_as_lines() {
    let (mut master, name) = pair();
    let port = SerialConsole::open(&name, 115_200).expect("open pty");
    let tl = Timeline::new();
    let reader = spawn_reader(
        Box::new(port),
        BoardLane::fixed(Arc::clone(&tl), Arc::from("pico-1")),
    );
    master.write_all(b"boot: otarig-bo").expect("write");
    master.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(60));
    master
        .write_all(b"ot board=pico-w\r\n\x00\xffnoise\napp: v1.0.0 running\n")
        .expect("write");
    master.flush().expect("flush");
    assert!(wait_until(&tl, |l| l.len() >= 3), "{:?}", lines(&tl));
    reader.stop();
    let l = lines(&tl);
    assert_eq!(l[0], "boot: otarig-boot board=pico-w");
    assert!(l[1].contains("noise"));
    assert_eq!(l[2], "app: v1.0.0 running");
}

#[test]
fn a_vanished_port_is_reopened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("usb-board-if00");
    let (mut first, name) = pair();
    std::os::unix::fs::symlink(&name, &link).expect("symlink");
    let port = SerialConsole::open(link.to_str().expect("utf8"), 115_200).expect("open");
    let tl = Timeline::new();
    let reader = spawn_reader(
        Box::new(port),
        BoardLane::fixed(Arc::clone(&tl), Arc::from("pico-1")),
    );
    first.write_all(b"before reset\n").expect("write");
    assert!(wait_until(&tl, |l| l.iter().any(|x| x == "before reset")));
    // The board resets: its port disappears, then a new one appears under the same name.
    drop(first);
    std::thread::sleep(Duration::from_millis(150));
    let (mut second, name2) = pair();
    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink(&name2, &link).expect("relink");
    let mut seen = false;
    for _ in 0..100 {
        let _ = second.write_all(b"after reset\n");
        let _ = second.flush();
        if wait_until(&tl, |l| l.iter().any(|x| x == "after reset")) {
            seen = true;
            break;
        }
    }
    reader.stop();
    assert!(seen, "{:?}", lines(&tl));
    let gap = tl
        .snapshot()
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Rig { detail } if detail.contains("disconnected")));
    assert!(gap, "the gap is on the timeline");
}

#[test]
fn opening_a_missing_port_says_what_to_fix() {
    let err = SerialConsole::open("/dev/serial/by-id/does-not-exist", 115_200)
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("does-not-exist"), "{err}");
    assert!(err.contains("by-id") || err.contains("dialout"), "{err}");
}
