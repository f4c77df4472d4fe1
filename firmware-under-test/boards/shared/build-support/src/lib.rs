//! What the real boards' build scripts share: settings read from the environment and checked
//! (a bad value fails the build with a message naming the variable), the app's `config.rs`, and
//! the linker setup around a board's `memory.x`.
//!
//! Used as a `[build-dependencies]` by the Pico W and the QEMU MPS2 board (their `app/build.rs`
//! and `bootloader/build.rs`). Each board keeps what is its own: its memory map, its defaults
//! and ranges, and any setting only it has (the Pico W's `OTARIG_SLOT`).

use std::net::SocketAddrV4;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// The value of the environment variable `name`, trimmed, or `default` when it is unset or
/// blank. Tells cargo to rebuild when it changes.
pub fn var(name: &str, default: &str) -> String {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => default.to_string(),
    }
}

/// Fails the build with `msg`.
pub fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// A millisecond setting: `name`, or `default`, which must lie in `range`.
pub fn millis(name: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
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

/// A board's default and allowed range for one millisecond setting.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub default: u64,
    pub range: RangeInclusive<u64>,
}

impl Bounds {
    pub const fn new(default: u64, range: RangeInclusive<u64>) -> Self {
        Self { default, range }
    }
}

/// What differs between the boards' app settings: defaults and ranges.
#[derive(Debug, Clone)]
pub struct AppDefaults {
    /// `OTARIG_SERVER` when unset (also the example in its error message).
    pub server: &'static str,
    /// `OTARIG_TRIAL_WINDOW_MS`.
    pub trial_window_ms: Bounds,
    /// `OTARIG_WATCHDOG_MS` (the hardware's limits).
    pub watchdog_ms: Bounds,
    /// `OTARIG_NET_TIMEOUT_MS`.
    pub net_timeout_ms: Bounds,
}

/// The app's checked build-time settings (see the boards' `app/build.rs` for the table).
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub server: SocketAddrV4,
    pub drill: String,
    pub hw_rev: char,
    pub checkin_interval_ms: u64,
    pub trial_window_ms: u64,
    pub watchdog_ms: u64,
    pub net_timeout_ms: u64,
}

impl AppSettings {
    /// Reads `OTARIG_SERVER`, `OTARIG_DRILL`, `OTARIG_HW_REV`, `OTARIG_CHECKIN_INTERVAL_MS`,
    /// `OTARIG_TRIAL_WINDOW_MS`, `OTARIG_WATCHDOG_MS` and `OTARIG_NET_TIMEOUT_MS`, in that
    /// order; the first bad one fails the build.
    pub fn from_env(defaults: &AppDefaults) -> Self {
        let server_text = var("OTARIG_SERVER", defaults.server);
        let server: SocketAddrV4 = server_text.parse().unwrap_or_else(|_| {
            fail(format!(
                "OTARIG_SERVER={server_text}: give an IPv4 host:port, e.g. {}",
                defaults.server
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
        let bounded = |name: &str, b: &Bounds| millis(name, b.default, b.range.clone());
        Self {
            server,
            drill,
            hw_rev,
            checkin_interval_ms: millis("OTARIG_CHECKIN_INTERVAL_MS", 1000, 10..=3_600_000),
            trial_window_ms: bounded("OTARIG_TRIAL_WINDOW_MS", &defaults.trial_window_ms),
            watchdog_ms: bounded("OTARIG_WATCHDOG_MS", &defaults.watchdog_ms),
            net_timeout_ms: bounded("OTARIG_NET_TIMEOUT_MS", &defaults.net_timeout_ms),
        }
    }

    /// The constants the app includes as its `config` module.
    pub fn config_rs(&self) -> String {
        let Self {
            server,
            drill,
            hw_rev,
            checkin_interval_ms,
            trial_window_ms,
            watchdog_ms,
            net_timeout_ms,
        } = self;
        let ip = server.ip().octets();
        format!(
            "/// Update server.
pub const SERVER_IP: [u8; 4] = {ip:?};
pub const SERVER_PORT: u16 = {port};
pub const SERVER: &str = {text:?};
/// Failure drill (ota-core name).
pub const DRILL: &str = {drill:?};
pub const HW_REV: char = {hw_rev:?};
pub const CHECKIN_INTERVAL_MS: u64 = {checkin_interval_ms};
pub const TRIAL_WINDOW_MS: u64 = {trial_window_ms};
pub const WATCHDOG_MS: u64 = {watchdog_ms};
pub const NET_TIMEOUT_MS: u64 = {net_timeout_ms};
",
            port = server.port(),
            text = server.to_string(),
        )
    }
}

/// Cargo's `OUT_DIR` for this build script.
pub fn out_dir() -> PathBuf {
    match std::env::var_os("OUT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fail("OUT_DIR is not set: run this as a cargo build script".to_string()),
    }
}

/// Writes `text` to `out/name`, failing the build if it cannot.
pub fn write(out: &Path, name: &str, text: &str) {
    let path = out.join(name);
    if let Err(e) = std::fs::write(&path, text) {
        fail(format!("cannot write {}: {e}", path.display()));
    }
}

/// Links the crate's binaries with cortex-m-rt's `link.x` over `memory` (written to
/// `out/memory.x`), plus the `extra` linker scripts, without page alignment (`--nmagic`).
pub fn link(out: &Path, memory: &str, extra: &[&str]) {
    write(out, "memory.x", memory);
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    for script in extra {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rs_is_the_constants_the_apps_include() {
        let settings = AppSettings {
            server: "10.0.2.100:80".parse().expect("an address"),
            drill: "hang".to_string(),
            hw_rev: 'b',
            checkin_interval_ms: 1000,
            trial_window_ms: 15_000,
            watchdog_ms: 3000,
            net_timeout_ms: 2000,
        };
        assert_eq!(
            settings.config_rs(),
            "/// Update server.\n\
             pub const SERVER_IP: [u8; 4] = [10, 0, 2, 100];\n\
             pub const SERVER_PORT: u16 = 80;\n\
             pub const SERVER: &str = \"10.0.2.100:80\";\n\
             /// Failure drill (ota-core name).\n\
             pub const DRILL: &str = \"hang\";\n\
             pub const HW_REV: char = 'b';\n\
             pub const CHECKIN_INTERVAL_MS: u64 = 1000;\n\
             pub const TRIAL_WINDOW_MS: u64 = 15000;\n\
             pub const WATCHDOG_MS: u64 = 3000;\n\
             pub const NET_TIMEOUT_MS: u64 = 2000;\n"
        );
    }
}
