//! Build-time settings of the app, all from the environment:
//!
//! | variable                      | default          | meaning                                   |
//! |-------------------------------|------------------|-------------------------------------------|
//! | `OTARIG_SERVER`               | `10.0.2.100:80`  | update server, IPv4 `host:port` (QEMU user networking: the rig relays it with `guestfwd`) |
//! | `OTARIG_DRILL`                | `none`           | failure drill (ota-core's drill names)    |
//! | `OTARIG_HW_REV`               | `a`              | hardware revision some drills depend on   |
//! | `OTARIG_CHECKIN_INTERVAL_MS`  | `1000`           | time between check-ins                    |
//! | `OTARIG_TRIAL_WINDOW_MS`      | `15000`          | a trial image must confirm within this    |
//! | `OTARIG_WATCHDOG_MS`          | `3000`           | watchdog period                           |
//! | `OTARIG_NET_TIMEOUT_MS`       | `3000`           | every network wait (connect, head, body)  |
//!
//! Writes `memory.x` (the app is linked for its RAM copy at 0x0010_0000, whichever slot it is
//! stored in) and `config.rs` with the checked values; a bad value fails the build.

use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::PathBuf;

const MEMORY_X: &str = "\
MEMORY
{
    /* The app's copy in SSRAM1, made by the bootloader from its slot (less the header). */
    FLASH : ORIGIN = 0x00100000, LENGTH = 512K - 256
    /* SSRAM2/3, less the last 256 bytes kept across resets (otarig_qemu::reset). */
    RAM   : ORIGIN = 0x20000000, LENGTH = 4M - 256
}
";

fn var(name: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => default.to_string(),
    }
}

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn millis(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    let text = var(name, &default.to_string());
    match text.parse::<u64>() {
        Ok(v) if range.contains(&v) => v,
        _ => fail(format!(
            "{name}={text}: give milliseconds from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

fn main() {
    let server_text = var("OTARIG_SERVER", "10.0.2.100:80");
    let server: SocketAddrV4 = server_text.parse().unwrap_or_else(|_| {
        fail(format!(
            "OTARIG_SERVER={server_text}: give an IPv4 host:port, e.g. 10.0.2.100:80"
        ))
    });
    let drill = var("OTARIG_DRILL", "none");
    if !drill
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        fail(format!(
            "OTARIG_DRILL={drill}: a drill name is lowercase-kebab-case"
        ));
    }
    let hw_rev = var("OTARIG_HW_REV", "a");
    let hw_rev = match hw_rev.as_bytes() {
        [c] if c.is_ascii_alphabetic() => char::from(c.to_ascii_lowercase()),
        _ => fail(format!("OTARIG_HW_REV={hw_rev}: one letter, e.g. a")),
    };
    let checkin = millis("OTARIG_CHECKIN_INTERVAL_MS", 1000, 10..=3_600_000);
    let trial = millis("OTARIG_TRIAL_WINDOW_MS", 15_000, 500..=3_600_000);
    let watchdog = millis("OTARIG_WATCHDOG_MS", 3000, 100..=60_000);
    let net = millis("OTARIG_NET_TIMEOUT_MS", 3000, 100..=60_000);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("memory.x"), MEMORY_X).expect("write memory.x");
    let ip = server.ip().octets();
    let mut config = String::new();
    writeln!(config, "/// Update server.").unwrap();
    writeln!(config, "pub const SERVER_IP: [u8; 4] = {ip:?};").unwrap();
    writeln!(config, "pub const SERVER_PORT: u16 = {};", server.port()).unwrap();
    writeln!(config, "pub const SERVER: &str = {:?};", server.to_string()).unwrap();
    writeln!(config, "/// Failure drill (ota-core name).").unwrap();
    writeln!(config, "pub const DRILL: &str = {drill:?};").unwrap();
    writeln!(config, "pub const HW_REV: char = {hw_rev:?};").unwrap();
    writeln!(config, "pub const CHECKIN_INTERVAL_MS: u64 = {checkin};").unwrap();
    writeln!(config, "pub const TRIAL_WINDOW_MS: u64 = {trial};").unwrap();
    writeln!(config, "pub const WATCHDOG_MS: u64 = {watchdog};").unwrap();
    writeln!(config, "pub const NET_TIMEOUT_MS: u64 = {net};").unwrap();
    std::fs::write(out.join("config.rs"), config).expect("write config.rs");

    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
