//! A debug probe attached to a board (optional).
//!
//! The probe-rs backend ([`crate::backend::probe_rs`]) is blocking and runs on its own thread;
//! [`Probe`] is the channel-facing handle the engine holds. Nothing here names a probe-rs type,
//! so the trait, its errors and the flash-progress helpers compile without the `probe` feature.
//!
//! Two exact cut triggers on real hardware go through this seam:
//! - **after N programmed bytes**: [`FlashRequest::cut_after`]; the flash pauses at the first
//!   flash page that brings the programmed total to ≥ N and calls the progress callback with
//!   [`FlashEvent::CutPoint`] while paused (cut power inside the callback);
//! - **at a symbol**: resolve it with [`crate::elf::symbol_address`],
//!   [`Probe::set_breakpoint`] there, [`Probe::resume`], then [`Probe::wait_halted`]: when it
//!   returns, the core sits on the symbol's first instruction and nothing after it ran.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::timeline::{EventKind, Timeline};

/// Errors from a probe. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connected probe matches the board's selector.
    #[error(
        "no debug probe found matching {selector}: is it plugged in, and does the user have access to the USB device? (udev rule for {vid:04x}:{pid:04x}, see docs/bench-setup.md){seen}"
    )]
    NotFound {
        selector: String,
        vid: u16,
        pid: u16,
        /// `"; probes seen: …"` or empty.
        seen: String,
    },
    /// Several connected probes match the board's selector.
    #[error(
        "{count} debug probes match {selector}: {candidates}; add the serial number to the selector (VID:PID:SERIAL)"
    )]
    Ambiguous {
        selector: String,
        count: usize,
        candidates: String,
    },
    /// The probe is there but this user may not open it.
    #[error(
        "permission denied opening debug probe {selector}: add a udev rule for {vid:04x}:{pid:04x} (MODE=\"660\", GROUP=\"plugdev\"), put the user in `plugdev` and log in again ({detail})"
    )]
    PermissionDenied {
        selector: String,
        vid: u16,
        pid: u16,
        detail: String,
    },
    /// The chip name of the bench file is not in probe-rs's registry.
    #[error("unknown chip `{chip}`; run `probe-rs chip list` ({detail})")]
    UnknownChip { chip: String, detail: String },
    /// The probe answered but the target did not.
    #[error(
        "the probe could not reach the {chip}: check the SWD wiring (SWDIO, SWCLK, GND) and that the board is powered ({detail})"
    )]
    TargetNotFound { chip: String, detail: String },
    /// The handle gave up waiting for the probe thread.
    #[error(
        "probe did not answer `{op}` within {after:?} (hung probe or USB link? unplug/replug the probe)"
    )]
    Timeout { op: &'static str, after: Duration },
    /// probe-rs itself timed out talking to the target.
    #[error(
        "the target did not respond to `{op}` in time: is it powered, wired, not in a deep sleep? ({detail})"
    )]
    TargetTimeout { op: &'static str, detail: String },
    /// An earlier command timed out and the probe thread is still stuck in it.
    #[error(
        "probe is still busy with `{op}`, which timed out earlier; unplug/replug the probe and re-attach"
    )]
    Busy { op: &'static str },
    /// The probe thread exited (panic or shutdown).
    #[error("the probe thread is gone (it panicked or was stopped); re-attach the probe")]
    WorkerGone,
    /// The image to flash cannot be used.
    #[error("cannot flash {}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },
    /// A symbol could not be resolved to an address.
    #[error(transparent)]
    Symbol(#[from] crate::elf::SymbolError),
    /// The request itself is invalid (empty or huge memory range…).
    #[error("invalid probe request: {0}")]
    Invalid(String),
    /// Any other probe failure, with the operation it happened in.
    #[error("probe: `{op}` failed: {detail}")]
    Failed { op: &'static str, detail: String },
}

/// How an image file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// An ELF file: its loadable segments say where everything goes.
    Elf,
    /// A raw binary written at `base`.
    Bin { base: u64 },
}

impl ImageFormat {
    /// `Bin` at `base` when a base is given, else `Elf` if the file starts with the ELF magic.
    pub fn detect(image: &Path, base: Option<u64>) -> Result<Self, Error> {
        if let Some(base) = base {
            return Ok(Self::Bin { base });
        }
        let mut magic = [0u8; 4];
        let read = std::fs::File::open(image)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
        match read {
            Ok(()) if magic == *b"\x7fELF" => Ok(Self::Elf),
            Ok(()) => Err(Error::Image {
                path: image.to_path_buf(),
                reason: "not an ELF file; give the base address to flash a raw binary".into(),
            }),
            Err(e) => Err(Error::Image {
                path: image.to_path_buf(),
                reason: format!("cannot read it: {e}"),
            }),
        }
    }
}

/// What to flash, and whether to stop at a byte count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashRequest {
    pub image: PathBuf,
    pub format: ImageFormat,
    /// Report [`FlashEvent::CutPoint`] once this many bytes are programmed, and keep the flash
    /// paused until the progress callback returns. Exact to one flash page of the chip's flash
    /// algorithm (the granularity of probe-rs progress reports); when set, double-buffered
    /// programming is turned off so a reported page really is in flash, not in flight. probe-rs
    /// erases every sector it will write before programming the first page, so after a cut the
    /// rest of the image's sectors are erased, not stale.
    pub cut_after: Option<u64>,
    /// Read the flash back afterwards.
    pub verify: bool,
}

impl FlashRequest {
    /// Flashes `image` (ELF, or raw binary at `base`) entirely, without verify.
    pub fn new(image: &Path, base: Option<u64>) -> Result<Self, Error> {
        Ok(Self {
            image: image.to_path_buf(),
            format: ImageFormat::detect(image, base)?,
            cut_after: None,
            verify: false,
        })
    }
}

/// Flash progress, in programmed bytes (whole pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashEvent {
    /// Erasing is done, programming starts: `total` bytes will be written.
    Started { total: u64 },
    /// One more page is in flash: `done` of `total` bytes.
    Programmed { done: u64, total: u64 },
    /// The [`FlashRequest::cut_after`] threshold was crossed with `programmed` bytes in flash.
    /// The flash is paused until the callback returns: cut power inside it for an exact cut.
    CutPoint { programmed: u64 },
    /// Programming finished (`programmed` bytes).
    Finished { programmed: u64 },
    /// Something worth a line on the timeline (erase, verify, flash-algorithm messages).
    Note(String),
}

/// How a flash ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlashReport {
    /// Bytes programmed (whole pages).
    pub programmed: u64,
    /// Bytes the image needed (whole pages).
    pub total: u64,
    /// Where the cut point was reported, if a threshold was set and crossed.
    pub cut_at: Option<u64>,
    /// Whether probe-rs finished the whole image.
    pub completed: bool,
    /// After a cut point, the error probe-rs reported (expected when power was cut there).
    pub after_cut: Option<String>,
}

/// Why the core is halted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltCause {
    Breakpoint,
    /// A debugger request (halt, reset-and-halt).
    Request,
    Step,
    Exception,
    Watchpoint,
    Other,
}

/// A halted core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halted {
    pub pc: u64,
    pub cause: HaltCause,
}

/// What the rig can do with a probe. Every call blocks until the probe answered or the
/// handle's timeout passed ([`Error::Timeout`]): call it from a blocking context.
pub trait Probe: Send {
    /// Writes an image to the board's flash, reporting progress to `progress` (on the caller's
    /// thread, as it happens).
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<FlashReport, Error>;
    /// Resets the core and lets it run.
    fn reset(&mut self) -> Result<(), Error>;
    /// Resets the core and halts it before its first instruction.
    fn reset_and_halt(&mut self) -> Result<Halted, Error>;
    /// Halts the core.
    fn halt(&mut self) -> Result<Halted, Error>;
    /// Lets a halted core run.
    fn resume(&mut self) -> Result<(), Error>;
    /// Reads target memory (e.g. the boot state).
    fn read_memory(&mut self, range: Range<u64>) -> Result<Vec<u8>, Error>;
    /// Sets a hardware breakpoint at `addr`.
    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error>;
    /// Removes the breakpoint at `addr`.
    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error>;
    /// Waits until the core halts (e.g. on a breakpoint): `None` if it still runs after
    /// `timeout` (not an error: the breakpoint was just not reached).
    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error>;
    /// Core register `n` (r0..r15) of the halted core, e.g. an argument register at a
    /// breakpoint on a function's entry (r0..r3 carry its first arguments).
    fn read_register(&mut self, n: u8) -> Result<u32, Error> {
        Err(Error::Invalid(format!(
            "this probe cannot read core registers (r{n})"
        )))
    }
}

/// Decides whether a breakpoint hit counts (the core is halted on it): e.g. only the hits
/// whose argument register names a given flash region.
pub type HitFilter<'a> = dyn FnMut(&mut dyn Probe, &Halted) -> Result<bool, Error> + 'a;

/// Runs the target until it halts at one of `addrs` for the `hits`-th time (other halts are
/// resumed), waiting until `deadline`. Breakpoints are set first and cleared before returning,
/// while the core stays halted at the last hit: the caller cuts power at exactly that
/// instruction. `Ok(None)`: the breakpoint was not reached in time (the core runs on).
pub fn run_to_breakpoint(
    probe: &mut dyn Probe,
    addrs: &[u64],
    hits: u32,
    deadline: std::time::Instant,
) -> Result<Option<Halted>, Error> {
    run_to_matching_breakpoint(probe, addrs, hits, deadline, &mut |_, _| Ok(true))
}

/// [`run_to_breakpoint`], counting only the hits `counts` accepts (it runs with the core
/// halted on the hit and may read registers and memory).
pub fn run_to_matching_breakpoint(
    probe: &mut dyn Probe,
    addrs: &[u64],
    hits: u32,
    deadline: std::time::Instant,
    counts: &mut HitFilter<'_>,
) -> Result<Option<Halted>, Error> {
    for a in addrs {
        probe.set_breakpoint(*a)?;
    }
    let mut seen = 0u32;
    let result = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Ok(None);
        }
        match probe.wait_halted(left.min(Duration::from_millis(500))) {
            Ok(Some(h)) if h.cause == HaltCause::Breakpoint && addrs.contains(&h.pc) => {
                match counts(&mut *probe, &h) {
                    Ok(true) => seen += 1,
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
                if seen >= hits {
                    break Ok(Some(h));
                }
                if let Err(e) = probe.resume() {
                    break Err(e);
                }
            }
            // Halted for another reason (a fault, a debugger): not ours, let it run.
            Ok(Some(_)) => {
                if let Err(e) = probe.resume() {
                    break Err(e);
                }
            }
            Ok(None) => {}
            Err(e) => break Err(e),
        }
    };
    for a in addrs {
        let _ = probe.clear_breakpoint(*a);
    }
    result
}

/// Turns flash events into timeline details: start, every 10 % of the programmed bytes, the
/// cut point, the end, and notes.
#[derive(Debug, Default)]
pub struct ProgressNotes {
    /// The next tenth (1..=9) to report.
    next_tenth: u64,
}

impl ProgressNotes {
    pub fn new() -> Self {
        Self { next_tenth: 1 }
    }

    /// The timeline detail for `event`, if it deserves one.
    pub fn note(&mut self, event: &FlashEvent) -> Option<String> {
        match event {
            FlashEvent::Started { total } => {
                self.next_tenth = 1;
                Some(format!("programming {total} bytes"))
            }
            FlashEvent::Programmed { done, total } => {
                let tenth = done.saturating_mul(10).checked_div(*total).unwrap_or(0);
                if done < total && tenth >= self.next_tenth.max(1) {
                    self.next_tenth = tenth + 1;
                    Some(format!("programmed {done}/{total} bytes"))
                } else {
                    None
                }
            }
            FlashEvent::CutPoint { programmed } => Some(format!(
                "cut point: {programmed} bytes programmed, flash paused"
            )),
            FlashEvent::Finished { programmed } => {
                Some(format!("programmed {programmed}/{programmed} bytes"))
            }
            FlashEvent::Note(n) => Some(n.clone()),
        }
    }
}

/// A progress callback that writes [`ProgressNotes`] to `timeline` as probe events of `board`.
pub fn timeline_progress(
    timeline: Arc<Timeline>,
    board: Option<Arc<str>>,
) -> impl FnMut(&FlashEvent) {
    let mut notes = ProgressNotes::new();
    move |event| {
        if let Some(detail) = notes.note(event) {
            timeline.push(board.as_ref(), EventKind::Probe { detail });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe whose core halts at the scripted program counters, in order.
    #[derive(Default)]
    struct Scripted {
        halts: std::collections::VecDeque<Halted>,
        breakpoints: Vec<u64>,
        resumed: u32,
        cleared: Vec<u64>,
    }

    impl Probe for Scripted {
        fn flash(
            &mut self,
            _: &FlashRequest,
            _: &mut dyn FnMut(&FlashEvent),
        ) -> Result<FlashReport, Error> {
            Err(Error::Invalid("not scripted".into()))
        }
        fn reset(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn reset_and_halt(&mut self) -> Result<Halted, Error> {
            Err(Error::Invalid("not scripted".into()))
        }
        fn halt(&mut self) -> Result<Halted, Error> {
            Err(Error::Invalid("not scripted".into()))
        }
        fn resume(&mut self) -> Result<(), Error> {
            self.resumed += 1;
            Ok(())
        }
        fn read_memory(&mut self, _: Range<u64>) -> Result<Vec<u8>, Error> {
            Ok(Vec::new())
        }
        fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
            self.breakpoints.push(addr);
            Ok(())
        }
        fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
            self.cleared.push(addr);
            Ok(())
        }
        fn wait_halted(&mut self, _: Duration) -> Result<Option<Halted>, Error> {
            Ok(self.halts.pop_front())
        }
    }

    #[test]
    fn only_hits_the_filter_accepts_count() {
        let bp = |pc| Halted {
            pc,
            cause: HaltCause::Breakpoint,
        };
        let mut p = Scripted::default();
        // The filter sees each hit with the core halted; here it accepts those at 0x400.
        p.halts.extend([
            bp(0x200),
            bp(0x400),
            bp(0x200),
            bp(0x200),
            bp(0x400),
            bp(0x200),
        ]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        let hit = run_to_matching_breakpoint(
            &mut p,
            &[0x200, 0x400],
            2,
            deadline,
            &mut |_, h: &Halted| {
                seen.push(h.pc);
                Ok(h.pc == 0x400)
            },
        )
        .expect("run");
        assert_eq!(hit, Some(bp(0x400)));
        assert_eq!(seen, [0x200, 0x400, 0x200, 0x200, 0x400]);
        assert_eq!(p.resumed, 4, "resumed after every hit but the last");
        assert_eq!(p.halts.len(), 1, "stopped at the second accepted hit");
    }

    #[test]
    fn runs_to_the_nth_hit_and_leaves_the_core_halted_there() {
        let bp = |pc| Halted {
            pc,
            cause: HaltCause::Breakpoint,
        };
        let mut p = Scripted::default();
        p.halts.extend([
            bp(0x1000_0200),
            Halted {
                pc: 0x1000_0300,
                cause: HaltCause::Exception,
            },
            bp(0x1002_0400),
            bp(0x1000_0200),
        ]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let addrs = [0x1000_0200, 0x1002_0400];
        let hit = run_to_breakpoint(&mut p, &addrs, 3, deadline).expect("run");
        assert_eq!(hit, Some(bp(0x1000_0200)));
        assert_eq!(p.breakpoints, addrs);
        assert_eq!(p.cleared, addrs, "breakpoints cleared, core left halted");
        assert_eq!(
            p.resumed, 3,
            "two earlier hits and the foreign halt resumed"
        );
        // Never reached: None once the deadline passes, breakpoints cleared.
        let mut p = Scripted::default();
        let soon = std::time::Instant::now() + Duration::from_millis(30);
        assert_eq!(
            run_to_breakpoint(&mut p, &addrs, 1, soon).expect("run"),
            None
        );
        assert_eq!(p.cleared, addrs);
    }

    #[test]
    fn progress_notes_every_tenth_and_at_the_end() {
        let mut n = ProgressNotes::new();
        let mut lines = vec![n.note(&FlashEvent::Started { total: 4096 })];
        for done in (256..=4096).step_by(256) {
            lines.push(n.note(&FlashEvent::Programmed { done, total: 4096 }));
        }
        lines.push(n.note(&FlashEvent::Finished { programmed: 4096 }));
        let lines: Vec<String> = lines.into_iter().flatten().collect();
        assert_eq!(
            lines.first().map(String::as_str),
            Some("programming 4096 bytes")
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("programmed 4096/4096 bytes")
        );
        // 16 pages of 256 bytes: one line per tenth crossed (10 %…90 %), no duplicates.
        assert_eq!(lines.len(), 2 + 9, "{lines:?}");
        assert!(
            lines.contains(&"programmed 512/4096 bytes".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn progress_notes_survive_a_zero_total() {
        let mut n = ProgressNotes::new();
        assert_eq!(n.note(&FlashEvent::Programmed { done: 5, total: 0 }), None);
    }

    #[test]
    fn timeline_progress_writes_probe_events() {
        let tl = Timeline::new();
        let board: Arc<str> = Arc::from("pico-1");
        let mut cb = timeline_progress(Arc::clone(&tl), Some(Arc::clone(&board)));
        cb(&FlashEvent::Started { total: 100 });
        cb(&FlashEvent::Programmed {
            done: 50,
            total: 100,
        });
        cb(&FlashEvent::CutPoint { programmed: 50 });
        let events = tl.snapshot();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].board.as_deref(), Some("pico-1"));
        assert_eq!(
            events[1].kind,
            EventKind::Probe {
                detail: "programmed 50/100 bytes".into()
            }
        );
    }

    #[test]
    fn image_format_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elf = dir.path().join("a.elf");
        let bin = dir.path().join("a.bin");
        std::fs::write(&elf, b"\x7fELF\x01\x01\x01").expect("write");
        std::fs::write(&bin, b"\0\0\0\0").expect("write");
        assert_eq!(ImageFormat::detect(&elf, None).ok(), Some(ImageFormat::Elf));
        assert_eq!(
            ImageFormat::detect(&bin, Some(0x1000_0000)).ok(),
            Some(ImageFormat::Bin { base: 0x1000_0000 })
        );
        let e = ImageFormat::detect(&bin, None).expect_err("raw without base");
        assert!(e.to_string().contains("base address"), "{e}");
        let e = ImageFormat::detect(&dir.path().join("none"), None).expect_err("missing");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
