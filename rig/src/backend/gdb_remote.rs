//! A debug probe over the GDB remote serial protocol: QEMU's gdbstub (`-gdb tcp:127.0.0.1:P`)
//! behind the rig's [`Probe`] trait, so breakpoint cuts run on an emulated Cortex-M board the
//! way they run on a real one through probe-rs.
//!
//! Packets are `$payload#cc` (two hex digits of the byte sum); the client switches
//! acknowledgements off (`QStartNoAckMode`) when the stub allows it. A running core is stopped
//! with a raw 0x03 byte and reports `T05…`/`S05` when it halts. QEMU reports a breakpoint again
//! on `c` while the core sits on it, so resuming from a breakpoint removes it, single-steps,
//! re-inserts it, then continues. Flash is the board's flash file ([`program_flash_file`]); a
//! reset is the monitor's `system_reset` through `qRcmd`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::backend::emulated::program_flash_file;
use crate::board::probe::{Error, FlashEvent, FlashReport, FlashRequest, HaltCause, Halted, Probe};

/// The Thumb breakpoint kind (a 2-byte instruction) for `Z0`/`z0`.
const THUMB: u32 = 2;
/// Most bytes one `m` request asks for.
const MAX_READ: u64 = 1024;
/// Index of the program counter in the `g` register block of an ARM (M-profile) target.
const PC_REGISTER: usize = 15;

/// One connection to a gdbstub.
pub struct GdbRemote {
    stream: TcpStream,
    /// Bytes received and not yet consumed.
    pending: Vec<u8>,
    acks: bool,
    running: bool,
    breakpoints: Vec<u64>,
    /// The board's flash file, which `flash` programs.
    flash: PathBuf,
    /// How long one request may take.
    timeout: Duration,
}

fn failed(op: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Failed {
        op,
        detail: detail.to_string(),
    }
}

/// `$payload#cc`, with `#`, `$`, `}` and `*` escaped.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 4);
    for &b in payload {
        if matches!(b, b'#' | b'$' | b'}' | b'*') {
            body.extend([b'}', b ^ 0x20]);
        } else {
            body.push(b);
        }
    }
    let sum = body.iter().fold(0u8, |s, b| s.wrapping_add(*b));
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(b'$');
    out.extend(&body);
    out.extend(format!("#{sum:02x}").as_bytes());
    out
}

/// The payload of a received packet body (between `$` and `#`): escapes and run-length
/// encoding (`X*n`: `X` repeated `n - 29` more times) undone.
pub fn unframe(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'}' => {
                let b = body.get(i + 1).ok_or("escape at the end of a packet")?;
                out.push(b ^ 0x20);
                i += 2;
            }
            b'*' => {
                let last = *out
                    .last()
                    .ok_or("run-length marker with nothing to repeat")?;
                let n = body
                    .get(i + 1)
                    .ok_or("run-length marker at the end of a packet")?;
                let times = n.checked_sub(29).ok_or("bad run-length count")?;
                out.extend(std::iter::repeat_n(last, usize::from(times)));
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd-length hex `{}`", clip(text)));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| format!("not hex: `{}`", clip(text)))
        })
        .collect()
}

fn clip(text: &str) -> &str {
    text.get(..64).unwrap_or(text)
}

/// Why a stop reply says the core halted.
fn stop_cause(reply: &str) -> Result<u8, String> {
    match reply.as_bytes() {
        [b'T' | b'S', a, b, ..] => u8::from_str_radix(&format!("{}{}", *a as char, *b as char), 16)
            .map_err(|_| format!("bad stop reply `{}`", clip(reply))),
        [b'W' | b'X', ..] => Err(format!("the target exited (`{}`)", clip(reply))),
        _ => Err(format!("not a stop reply: `{}`", clip(reply))),
    }
}

impl GdbRemote {
    /// Connects to the stub at `addr` (loopback), turns acknowledgements off if it can, and
    /// reads why the core is stopped (QEMU started with `-S` waits halted).
    pub fn connect(addr: SocketAddr, flash: PathBuf, timeout: Duration) -> Result<Self, Error> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| failed("connect", format!("gdbstub at {addr}: {e}")))?;
        stream.set_nodelay(true).map_err(|e| failed("connect", e))?;
        let mut gdb = Self {
            stream,
            pending: Vec::new(),
            acks: true,
            running: false,
            breakpoints: Vec::new(),
            flash,
            timeout,
        };
        if gdb.request("QStartNoAckMode")? == "OK" {
            gdb.acks = false;
        }
        let why = gdb.request("?")?;
        stop_cause(&why).map_err(|e| failed("connect", e))?;
        Ok(gdb)
    }

    fn send(&mut self, payload: &str) -> Result<(), Error> {
        self.stream
            .write_all(&frame(payload.as_bytes()))
            .map_err(|e| failed("send", e))
    }

    /// Reads one packet, waiting until `deadline`: `None` if none came by then.
    fn read_packet(&mut self, deadline: Instant) -> Result<Option<String>, Error> {
        loop {
            // Acks (`+`) and stray bytes before a packet are skipped.
            if let Some(start) = self.pending.iter().position(|&b| b == b'$') {
                self.pending.drain(..start);
                if let Some(hash) = self.pending.iter().position(|&b| b == b'#')
                    && self.pending.len() >= hash + 3
                {
                    let packet: Vec<u8> = self.pending.drain(..hash + 3).collect();
                    let body = &packet[1..hash];
                    let sum = body.iter().fold(0u8, |s, b| s.wrapping_add(*b));
                    let given = std::str::from_utf8(&packet[hash + 1..])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if given != Some(sum) {
                        return Err(failed("receive", "a packet with a bad checksum"));
                    }
                    if self.acks {
                        self.stream
                            .write_all(b"+")
                            .map_err(|e| failed("receive", e))?;
                    }
                    let payload = unframe(body).map_err(|e| failed("receive", e))?;
                    return String::from_utf8(payload)
                        .map(Some)
                        .map_err(|_| failed("receive", "a packet that is not text"));
                }
            } else {
                self.pending.clear();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| failed("receive", e))?;
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(failed("receive", "the gdbstub closed the connection")),
                Ok(n) => self.pending.extend(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(failed("receive", e)),
            }
        }
    }

    /// Sends a request and returns its reply (console output packets `O…` skipped).
    fn request(&mut self, payload: &str) -> Result<String, Error> {
        self.send(payload)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_packet(deadline)? {
                Some(reply) if reply.starts_with('O') && reply != "OK" => continue,
                Some(reply) if reply.starts_with('E') && reply.len() == 3 => {
                    return Err(failed(
                        "request",
                        format!("`{}` answered {reply}", clip(payload)),
                    ));
                }
                Some(reply) => return Ok(reply),
                None => {
                    return Err(Error::Timeout {
                        op: "gdb request",
                        after: self.timeout,
                    });
                }
            }
        }
    }

    /// Core register `n` (r0..r15 of the `g` block) of the halted core.
    fn register(&mut self, n: usize) -> Result<u32, Error> {
        let regs = self.request("g")?;
        let at = n * 8;
        let hex = regs
            .get(at..at + 8)
            .ok_or_else(|| failed("read registers", "too short a register block"))?;
        let bytes = hex_decode(hex).map_err(|e| failed("read registers", e))?;
        match bytes[..] {
            [a, b, c, d] => Ok(u32::from_le_bytes([a, b, c, d])),
            _ => Err(failed("read registers", "a register is not 4 bytes")),
        }
    }

    fn pc(&mut self) -> Result<u64, Error> {
        self.register(PC_REGISTER).map(u64::from)
    }

    /// The halted core after a stop reply.
    fn halted(&mut self, reply: &str, asked: bool) -> Result<Halted, Error> {
        let signal = stop_cause(reply).map_err(|e| failed("halt", e))?;
        self.running = false;
        let pc = self.pc()?;
        let cause = match signal {
            5 if self.breakpoints.contains(&pc) => HaltCause::Breakpoint,
            5 if asked => HaltCause::Step,
            2 => HaltCause::Request,
            5 => HaltCause::Other,
            _ => HaltCause::Exception,
        };
        Ok(Halted { pc, cause })
    }

    /// Runs `f` with the core halted, resuming it afterwards if it was running.
    fn while_halted<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let was_running = self.running;
        if was_running {
            self.halt()?;
        }
        let out = f(self);
        if was_running {
            self.resume()?;
        }
        out
    }
}

impl Probe for GdbRemote {
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<FlashReport, Error> {
        // The core stays out of its flash while the file is rewritten.
        if self.running {
            self.halt()?;
        }
        program_flash_file(&self.flash, request, progress)
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.reset_and_halt()?;
        self.resume()
    }

    fn reset_and_halt(&mut self) -> Result<Halted, Error> {
        if self.running {
            self.halt()?;
        }
        let command: String = b"system_reset".iter().map(|b| format!("{b:02x}")).collect();
        self.request(&format!("qRcmd,{command}"))?;
        Ok(Halted {
            pc: self.pc()?,
            cause: HaltCause::Request,
        })
    }

    fn halt(&mut self) -> Result<Halted, Error> {
        if !self.running {
            return Ok(Halted {
                pc: self.pc()?,
                cause: HaltCause::Request,
            });
        }
        self.stream
            .write_all(&[0x03])
            .map_err(|e| failed("halt", e))?;
        let deadline = Instant::now() + self.timeout;
        let reply = self.read_packet(deadline)?.ok_or(Error::Timeout {
            op: "halt",
            after: self.timeout,
        })?;
        let mut h = self.halted(&reply, false)?;
        if h.cause != HaltCause::Breakpoint {
            h.cause = HaltCause::Request;
        }
        Ok(h)
    }

    fn resume(&mut self) -> Result<(), Error> {
        if self.running {
            return Ok(());
        }
        let pc = self.pc()?;
        if self.breakpoints.contains(&pc) {
            // Step off the breakpoint with it removed, or `c` reports it again at once.
            self.request(&format!("z0,{pc:x},{THUMB}"))?;
            let stepped = self.request("s")?;
            stop_cause(&stepped).map_err(|e| failed("step", e))?;
            self.request(&format!("Z0,{pc:x},{THUMB}"))?;
        }
        self.send("c")?;
        self.running = true;
        Ok(())
    }

    fn read_memory(&mut self, range: Range<u64>) -> Result<Vec<u8>, Error> {
        if range.end < range.start || range.end - range.start > 16 * 1024 * 1024 {
            return Err(Error::Invalid(format!("memory range {range:x?}")));
        }
        self.while_halted(|gdb| {
            let mut out = Vec::with_capacity((range.end - range.start) as usize);
            let mut at = range.start;
            while at < range.end {
                let n = (range.end - at).min(MAX_READ);
                let hex = gdb.request(&format!("m{at:x},{n:x}"))?;
                let bytes = hex_decode(&hex).map_err(|e| failed("read memory", e))?;
                if bytes.is_empty() {
                    return Err(failed("read memory", format!("nothing at 0x{at:x}")));
                }
                at += bytes.len() as u64;
                out.extend(bytes);
            }
            Ok(out)
        })
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.while_halted(|gdb| {
            let reply = gdb.request(&format!("Z0,{addr:x},{THUMB}"))?;
            if reply != "OK" {
                return Err(failed("set breakpoint", format!("0x{addr:x}: `{reply}`")));
            }
            if !gdb.breakpoints.contains(&addr) {
                gdb.breakpoints.push(addr);
            }
            Ok(())
        })
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.while_halted(|gdb| {
            gdb.request(&format!("z0,{addr:x},{THUMB}"))?;
            gdb.breakpoints.retain(|&a| a != addr);
            Ok(())
        })
    }

    fn read_register(&mut self, n: u8) -> Result<u32, Error> {
        if usize::from(n) > PC_REGISTER {
            return Err(Error::Invalid(format!("core register r{n}")));
        }
        self.while_halted(|gdb| gdb.register(usize::from(n)))
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
        if !self.running {
            return Ok(Some(Halted {
                pc: self.pc()?,
                cause: HaltCause::Request,
            }));
        }
        match self.read_packet(Instant::now() + timeout)? {
            Some(reply) => self.halted(&reply, false).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    #[test]
    fn packets_round_trip_with_escapes_and_run_lengths() {
        assert_eq!(frame(b"g"), b"$g#67");
        assert_eq!(frame(b"a#b"), b"$a}\x03b#43");
        assert_eq!(unframe(b"a}\x03b").as_deref(), Ok(&b"a#b"[..]));
        // `0* ` is "0" then 3 more zeros (' ' = 32 = 29 + 3).
        assert_eq!(unframe(b"0* 1").as_deref(), Ok(&b"00001"[..]));
        assert!(unframe(b"*!").is_err());
        assert_eq!(stop_cause("T05thread:01;"), Ok(5));
        assert!(stop_cause("W00").is_err());
    }

    /// A gdbstub with one core: `c` runs to the next breakpoint (in address order from the
    /// pc, wrapping), `s` moves the pc by 2. It records every packet it gets.
    fn fake_stub(program: Vec<u64>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut pc: u64 = 0x100;
            let mut step = 0usize;
            let mut bps: Vec<u64> = Vec::new();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            let reply = |s: &mut TcpStream, p: &str| {
                let _ = s.write_all(&frame(p.as_bytes()));
            };
            while s.read(&mut byte).is_ok_and(|n| n == 1) {
                match byte[0] {
                    b'$' => buf.clear(),
                    b'#' => {
                        let mut sum = [0u8; 2];
                        if s.read_exact(&mut sum).is_err() {
                            return;
                        }
                        let p = String::from_utf8_lossy(&buf).into_owned();
                        log.lock().expect("log").push(p.clone());
                        let regs = |pc: u64| {
                            let mut r = "00000000".repeat(15);
                            r.extend((pc as u32).to_le_bytes().iter().map(|b| format!("{b:02x}")));
                            r + &"00000000".repeat(2)
                        };
                        match p.as_str() {
                            "QStartNoAckMode" => reply(&mut s, "OK"),
                            "?" => reply(&mut s, "S05"),
                            "g" => reply(&mut s, &regs(pc)),
                            "s" => {
                                pc += 2;
                                reply(&mut s, "T05");
                            }
                            "c" => {
                                // The program visits these addresses in turn; with no
                                // breakpoint ahead it runs on (no reply until interrupted).
                                if let Some(i) =
                                    (step..program.len()).find(|&i| bps.contains(&program[i]))
                                {
                                    step = i + 1;
                                    pc = program[i];
                                    reply(&mut s, "T05");
                                }
                            }
                            p if p.starts_with("Z0,") || p.starts_with("z0,") => {
                                let a = u64::from_str_radix(&p[3..p.rfind(',').unwrap_or(3)], 16)
                                    .unwrap_or(0);
                                if p.starts_with('Z') {
                                    bps.push(a);
                                } else {
                                    bps.retain(|&b| b != a);
                                }
                                reply(&mut s, "OK");
                            }
                            p if p.starts_with('m') => reply(&mut s, "deadbeef"),
                            p if p.starts_with("qRcmd,") => {
                                pc = 0;
                                step = 0;
                                reply(&mut s, "OK");
                            }
                            _ => reply(&mut s, ""),
                        }
                    }
                    0x03 => reply(&mut s, "T02"),
                    b => buf.push(b),
                }
            }
        });
        (addr, seen)
    }

    #[test]
    fn runs_to_the_nth_hit_of_a_breakpoint_stepping_off_it_in_between() {
        let (addr, seen) = fake_stub(vec![0x200, 0x300, 0x200, 0x400, 0x200]);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut gdb =
            GdbRemote::connect(addr, dir.path().join("flash.bin"), Duration::from_secs(5))
                .expect("connect");
        gdb.resume().expect("run");
        let deadline = Instant::now() + Duration::from_secs(5);
        let halted = crate::board::probe::run_to_breakpoint(&mut gdb, &[0x200], 3, deadline)
            .expect("run to breakpoint")
            .expect("reached");
        assert_eq!((halted.pc, halted.cause), (0x200, HaltCause::Breakpoint));
        let log = seen.lock().expect("log").clone();
        // Setting the breakpoint interrupted the running core and resumed it; each resume
        // from the breakpoint removed it, stepped and put it back before `c`.
        let from_first_hit: Vec<&str> = log
            .iter()
            .map(String::as_str)
            .skip_while(|p| *p != "Z0,200,2")
            .filter(|p| *p != "g")
            .collect();
        assert_eq!(
            from_first_hit,
            [
                "Z0,200,2", "c", // set while halted, then running again
                "z0,200,2", "s", "Z0,200,2", "c", // hit 1: step off it
                "z0,200,2", "s", "Z0,200,2", "c",        // hit 2
                "z0,200,2", // hit 3: breakpoints cleared, the core stays halted
            ]
        );
        assert_eq!(
            gdb.read_memory(0x2000_0000..0x2000_0004).expect("read"),
            [0xde, 0xad, 0xbe, 0xef]
        );
    }

    #[test]
    fn a_breakpoint_never_reached_is_not_an_error() {
        let (addr, _) = fake_stub(vec![0x300]);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut gdb =
            GdbRemote::connect(addr, dir.path().join("flash.bin"), Duration::from_secs(5))
                .expect("connect");
        gdb.resume().expect("run");
        let deadline = Instant::now() + Duration::from_millis(300);
        let r = crate::board::probe::run_to_breakpoint(&mut gdb, &[0x200], 1, deadline);
        assert_eq!(r.expect("no error"), None);
    }

    #[test]
    fn a_dead_stub_is_a_clear_error() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let e = GdbRemote::connect(addr, PathBuf::from("f"), Duration::from_millis(500))
            .err()
            .expect("refused");
        assert!(e.to_string().contains("gdbstub at 127.0.0.1"), "{e}");
    }
}
