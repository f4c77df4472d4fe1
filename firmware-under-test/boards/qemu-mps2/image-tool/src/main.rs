//! Host tool for the otarig QEMU MPS2 board (std; run it with `--target <host triple>`):
//!
//! ```text
//! otarig-qemu-image keygen DIR
//!     DIR/release.key + DIR/release.pub (the rig's `rig keygen` format: hex).
//! otarig-qemu-image image --bin APP.bin --version X.Y.Z [--rollback-counter N]
//!                         --key release.key [--corrupt header|entry|signature|body] --out F.img
//!     A signed image for board `qemu-mps2`: ota-core's 256-byte header (load address
//!     0x00100000, entry point from the app's vector table) + APP.bin (from
//!     `pico_image.py bin APP.elf APP.bin --base 0x100000 --size 0x7ff00`). `--corrupt` makes
//!     a deliberately broken one (ota-core's `tools::corrupt`; `signature` signs with a fresh
//!     untrusted key).
//! otarig-qemu-image flash --pub release.pub [--slot-a F.img] [--slot-b F.img]
//!                         [--factory F.img] [--state trial-b] --out flash.bin
//!     A 2 MiB flash file (erased: 0xFF) with ota-core's layout: `OTPK` + the public key at
//!     0x10000, the images at 0x20000 (A), 0xA0000 (B), 0x120000 (factory), and no state
//!     record (the bootloader rebuilds one from the slots) unless `--state trial-b`: slot B
//!     staged for its first trial boot, slot A its previous image (as after `update: staged`).
//! otarig-qemu-image lines LOG
//!     Checks a console log: every line must be one of CONSOLE.md's (`ota_core::console::parse`)
//!     or one of the board's operator lines (`net: ...`, `boot: FATAL ...`); prints the others
//!     and exits 1 if there is any.
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ota_core::Version;
use ota_core::image::{self, ImageSpec};
use ota_core::layout::SIM;
use ota_core::state::{self, BootState, Mode};
use ota_core::tools::{self, Corruption};

const BOARD: &str = "qemu-mps2";
const APP_BASE: u32 = 0x0010_0000;

fn usage() -> String {
    "usage: otarig-qemu-image keygen DIR\n\
     \x20      otarig-qemu-image image --bin APP.bin --version X.Y.Z [--rollback-counter N] --key release.key [--corrupt header|entry|signature|body] --out F.img\n\
     \x20      otarig-qemu-image flash --pub release.pub [--slot-a F.img] [--slot-b F.img] [--factory F.img] [--state trial-b] --out flash.bin"
        .to_string()
}

/// `--name value` pairs.
fn options(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let Some(name) = name.strip_prefix("--") else {
            return Err(format!("unexpected argument {name}\n{}", usage()));
        };
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.push((name.to_string(), value.clone()));
    }
    Ok(out)
}

fn get<'a>(opts: &'a [(String, String)], name: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn need<'a>(opts: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    get(opts, name).ok_or_else(|| format!("--{name} is required\n{}", usage()))
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn image(opts: &[(String, String)]) -> Result<(), String> {
    let bin_path = need(opts, "bin")?;
    let body = read(bin_path)?;
    let version: Version = need(opts, "version")?
        .trim_start_matches('v')
        .parse()
        .map_err(|_| "--version: expected major.minor.patch".to_string())?;
    let rollback_counter: u32 = get(opts, "rollback-counter")
        .unwrap_or("1")
        .parse()
        .map_err(|_| "--rollback-counter: a number".to_string())?;
    let key = tools::read_signing_key(Path::new(need(opts, "key")?)).map_err(|e| e.to_string())?;
    if body.len() < 8 || body.len() as u32 > SIM.slot_size - image::HEADER_LEN as u32 {
        return Err(format!(
            "{bin_path}: {} bytes do not fit a slot",
            body.len()
        ));
    }
    let reset = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    if reset & 1 == 0 || reset <= APP_BASE || reset >= APP_BASE + body.len() as u32 {
        return Err(format!(
            "{bin_path}: reset vector 0x{reset:08x} is not inside an app linked at 0x{APP_BASE:08x}"
        ));
    }
    let spec = ImageSpec {
        version,
        rollback_counter,
        board: image::board_kind(BOARD).ok_or("board kind")?,
        load_addr: APP_BASE,
        entry_offset: reset - APP_BASE,
    };
    let mut img = image::build(&spec, &body, &key);
    if let Some(how) = get(opts, "corrupt") {
        let mode = match how {
            "header" => Corruption::Header,
            "entry" => Corruption::Entry,
            "signature" => Corruption::Signature,
            "body" => Corruption::Body,
            other => {
                return Err(format!(
                    "--corrupt {other}: header, entry, signature or body"
                ));
            }
        };
        img = tools::corrupt(&img, mode, &key, &ota_core::keys::generate())
            .map_err(|e| e.to_string())?;
    }
    let out = need(opts, "out")?;
    std::fs::write(out, &img).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "{out}: {BOARD} image v{version} ({} bytes, entry 0x{reset:08x})",
        img.len()
    );
    Ok(())
}

fn flash(opts: &[(String, String)]) -> Result<(), String> {
    let public =
        tools::read_public_key(Path::new(need(opts, "pub")?)).map_err(|e| e.to_string())?;
    let mut mem = vec![0xFFu8; SIM.flash_size as usize];
    let otp = SIM.otp as usize;
    mem[otp..otp + 4].copy_from_slice(b"OTPK");
    mem[otp + 4..otp + 36].copy_from_slice(&public);
    for (name, at) in [
        ("slot-a", SIM.slots[0]),
        ("slot-b", SIM.slots[1]),
        ("factory", SIM.factory),
    ] {
        if let Some(path) = get(opts, name) {
            let img = read(path)?;
            if img.len() > SIM.slot_size as usize {
                return Err(format!("{path}: larger than a slot"));
            }
            mem[at as usize..at as usize + img.len()].copy_from_slice(&img);
        }
    }
    match get(opts, "state") {
        None => {}
        Some("trial-b") => {
            let mut st = BootState::factory(1, 1);
            st.mode = Mode::Trial;
            st.previous = Some(0);
            st.seq = 1;
            let at = SIM.state[1] as usize;
            mem[at..at + state::RECORD_LEN].copy_from_slice(&st.encode());
        }
        Some(other) => return Err(format!("--state {other}: only trial-b")),
    }
    let out = need(opts, "out")?;
    std::fs::write(out, &mem).map_err(|e| format!("{out}: {e}"))?;
    println!("{out}: {} bytes of flash", mem.len());
    Ok(())
}

/// Checks every line of a console log (see the module docs).
fn lines(path: &str) -> Result<(), String> {
    let text = String::from_utf8(read(path)?).map_err(|_| format!("{path}: not UTF-8"))?;
    let mut bad = 0usize;
    let mut total = 0usize;
    for line in text.lines() {
        total += 1;
        let operator = line.starts_with("net: ") || line.starts_with("boot: FATAL ");
        if ota_core::console::parse(line).is_none() && !operator {
            bad += 1;
            println!("not a console line: {line:?}");
        }
    }
    if bad > 0 {
        return Err(format!(
            "{path}: {bad} of {total} lines are not console lines"
        ));
    }
    println!("{path}: {total} lines, all console lines");
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("keygen") => {
            let dir = args.get(1).ok_or_else(usage)?;
            let (k, p) = tools::write_keypair(&PathBuf::from(dir)).map_err(|e| e.to_string())?;
            println!("{} {}", k.display(), p.display());
            Ok(())
        }
        Some("image") => image(&options(&args[1..])?),
        Some("flash") => flash(&options(&args[1..])?),
        Some("lines") => lines(args.get(1).ok_or_else(usage)?),
        _ => Err(usage()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otarig-qemu-image: {e}");
            ExitCode::from(2)
        }
    }
}
