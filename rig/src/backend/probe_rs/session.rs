//! The probe-rs [`Driver`]: a `probe_rs::Session` attached by selector + chip name.
//!
//! Listing probes only enumerates USB devices. The chip registry (≈21 MB of RSS once loaded)
//! is loaded by [`ProbeWorker::attach`] alone, on the probe thread, so a bench without probes
//! never pays for it.

use std::path::Path;
use std::time::Duration;

use probe_rs::config::Registry;
use probe_rs::flashing::{
    self, BinOptions, DownloadOptions, ElfOptions, FlashProgress, ProgressEvent, ProgressOperation,
};
use probe_rs::probe::DebugProbeInfo;
use probe_rs::probe::list::{Accessibility, Lister};
use probe_rs::{CoreStatus, HaltReason, MemoryInterface, Permissions, Session};

use super::errors::{self, Context};
use super::select::ProbeSelector;
use super::select::{self, ProbeInfo};
use super::worker::{Driver, ProbeHandle, ProbeWorker, Timeouts};
use crate::board::probe::{Error, FlashEvent, FlashRequest, HaltCause, Halted, ImageFormat};

/// How long halt / reset-and-halt wait for the core inside probe-rs.
const HALT_TIMEOUT: Duration = Duration::from_millis(500);

/// Which probe and chip a board uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The board's name (thread name, spans).
    pub board: String,
    pub selector: ProbeSelector,
    /// A probe-rs chip name (`RP2040`).
    pub chip: String,
    /// The core to drive (0: the boot core).
    pub core: usize,
    /// SWD clock; `None` keeps the probe's default.
    pub speed_khz: Option<u32>,
}

impl ProbeSpec {
    /// Core 0 at the probe's default speed.
    pub fn new(board: &str, selector: &ProbeSelector, chip: &str) -> Self {
        Self {
            board: board.to_string(),
            selector: selector.clone(),
            chip: chip.to_string(),
            core: 0,
            speed_khz: None,
        }
    }

    fn context(&self, op: &'static str) -> Context<'_> {
        Context {
            op,
            selector: &self.selector,
            chip: &self.chip,
            image: None,
        }
    }
}

/// Where Linux lists USB devices; missing in containers without USB passthrough.
const USB_SYSFS: &str = "/sys/bus/usb/devices";

/// Whether this machine shows a USB bus at all (always true off Linux).
fn usb_visible() -> bool {
    !cfg!(target_os = "linux") || Path::new(USB_SYSFS).is_dir()
}

/// Every connected debug probe probe-rs knows, with whether this user may open it.
pub fn list_probes() -> Vec<ProbeInfo> {
    list_raw().into_iter().map(|(info, _)| info).collect()
}

/// The index of the probe `selector` means in `probes` (see [`select::select`]); a "not
/// found" also says when this machine shows no USB bus at all.
pub fn find_probe(selector: &ProbeSelector, probes: &[ProbeInfo]) -> Result<usize, Error> {
    select::select(selector, probes).map_err(|e| match e {
        Error::NotFound {
            selector,
            vid,
            pid,
            seen,
        } if !usb_visible() => Error::NotFound {
            selector,
            vid,
            pid,
            seen: format!("{seen} ({USB_SYSFS} is missing: no USB here, a container?)"),
        },
        other => other,
    })
}

fn list_raw() -> Vec<(ProbeInfo, DebugProbeInfo)> {
    if !usb_visible() {
        // probe-rs would log one warning per driver and find nothing.
        tracing::debug!("{USB_SYSFS} is missing: no USB probes to list");
        return Vec::new();
    }
    Lister::new()
        .list_all_with_access()
        .into_iter()
        .map(|item| {
            let p = item.info;
            let info = ProbeInfo {
                vid: p.vendor_id,
                pid: p.product_id,
                serial: p.serial_number.clone().filter(|s| !s.is_empty()),
                identifier: p.identifier.clone(),
                accessible: item.accessibility == Accessibility::Accessible,
            };
            (info, p)
        })
        .collect()
}

impl ProbeWorker<ProbeRsDriver> {
    /// Starts a probe thread for `spec`: finds the probe, loads the chip registry, attaches.
    pub fn attach(spec: ProbeSpec, timeouts: Timeouts) -> Result<ProbeHandle, Error> {
        let name = spec.board.clone();
        ProbeWorker::spawn(&name, timeouts, move || ProbeRsDriver::open(spec))
    }
}

/// An attached probe-rs session, driven on the probe thread.
pub struct ProbeRsDriver {
    session: Session,
    spec: ProbeSpec,
}

impl ProbeRsDriver {
    /// Selects the probe, checks the chip name, opens and attaches. Blocking.
    fn open(spec: ProbeSpec) -> Result<(Self, String), Error> {
        let listed = list_raw();
        let infos: Vec<ProbeInfo> = listed.iter().map(|(i, _)| i.clone()).collect();
        let index = find_probe(&spec.selector, &infos)?;
        let (info, raw) = &listed[index];
        tracing::info!(probe = %info, chip = %spec.chip, "attaching");
        let registry = Registry::from_builtin_families();
        let target = registry
            .get_target_by_name(&spec.chip)
            .map_err(|e| errors::map(spec.context("attach"), &e))?;
        let mut probe = raw
            .open()
            .map_err(|e| errors::map(spec.context("open"), &e))?;
        if let Some(khz) = spec.speed_khz {
            probe
                .set_speed(khz)
                .map_err(|e| errors::map(spec.context("set-speed"), &e))?;
        }
        let session = probe
            .attach_with_registry(target, Permissions::default(), &registry)
            .map_err(|e| errors::map(spec.context("attach"), &e))?;
        let description = format!("{info}, {}", spec.chip);
        Ok((Self { session, spec }, description))
    }

    /// Runs `f` on the driven core, mapping its errors for `op`.
    fn with_core<T>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&mut probe_rs::Core<'_>) -> Result<T, probe_rs::Error>,
    ) -> Result<T, Error> {
        let Self { session, spec } = self;
        session
            .core(spec.core)
            .and_then(|mut core| f(&mut core))
            .map_err(|e| errors::map(spec.context(op), &e))
    }

    /// The core's PC and why it is halted.
    fn halted(&mut self, op: &'static str) -> Result<Halted, Error> {
        self.with_core(op, |core| {
            let pc: u64 = core.read_core_reg(core.program_counter())?;
            let cause = match core.status()? {
                CoreStatus::Halted(reason) => cause(reason),
                _ => HaltCause::Other,
            };
            Ok(Halted { pc, cause })
        })
    }
}

fn cause(reason: HaltReason) -> HaltCause {
    match reason {
        HaltReason::Breakpoint(_) => HaltCause::Breakpoint,
        HaltReason::Request => HaltCause::Request,
        HaltReason::Step => HaltCause::Step,
        HaltReason::Exception => HaltCause::Exception,
        HaltReason::Watchpoint => HaltCause::Watchpoint,
        HaltReason::Multiple | HaltReason::External | HaltReason::Unknown => HaltCause::Other,
    }
}

/// probe-rs progress → [`FlashEvent`]s: totals summed over flash algorithms, programmed bytes
/// counted per page.
struct ProgressMap<'a> {
    sink: &'a mut dyn FnMut(FlashEvent),
    total: u64,
    done: u64,
    started: bool,
}

impl ProgressMap<'_> {
    fn on(&mut self, event: ProgressEvent) {
        match event {
            ProgressEvent::AddProgressBar {
                operation: ProgressOperation::Program,
                total,
            } => self.total += total.unwrap_or(0),
            ProgressEvent::Started(ProgressOperation::Erase) => {
                (self.sink)(FlashEvent::Note("erasing".into()));
            }
            ProgressEvent::Started(ProgressOperation::Program) if !self.started => {
                self.started = true;
                (self.sink)(FlashEvent::Started { total: self.total });
            }
            ProgressEvent::Progress {
                operation: ProgressOperation::Program,
                size,
                ..
            } => {
                self.done += size;
                (self.sink)(FlashEvent::Programmed {
                    done: self.done,
                    total: self.total,
                });
            }
            ProgressEvent::Finished(ProgressOperation::Verify) => {
                (self.sink)(FlashEvent::Note("verified".into()));
            }
            ProgressEvent::Failed(op) => {
                (self.sink)(FlashEvent::Note(format!("{op:?} failed").to_lowercase()));
            }
            ProgressEvent::DiagnosticMessage { message } => {
                (self.sink)(FlashEvent::Note(format!("flash algorithm: {message}")));
            }
            _ => {}
        }
    }
}

impl Driver for ProbeRsDriver {
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(FlashEvent),
    ) -> Result<(), Error> {
        let ctx = Context {
            image: Some(&request.image),
            ..self.spec.context("flash")
        };
        let mut map = ProgressMap {
            sink: progress,
            total: 0,
            done: 0,
            started: false,
        };
        let mut options = DownloadOptions::default();
        options.verify = request.verify;
        // Double buffering reports a page when it is loaded, one page before it is written.
        options.disable_double_buffering = request.cut_after.is_some();
        options.progress = FlashProgress::new(|e| map.on(e));
        let result = download(&mut self.session, &request.image, request.format, options);
        if let Err(e) = result {
            return Err(errors::map(ctx, &e));
        }
        let programmed = map.done;
        (map.sink)(FlashEvent::Finished { programmed });
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.with_core("reset", |core| core.reset())
    }

    fn reset_and_halt(&mut self) -> Result<Halted, Error> {
        self.with_core("reset-and-halt", |core| core.reset_and_halt(HALT_TIMEOUT))?;
        self.halted("reset-and-halt")
    }

    fn halt(&mut self) -> Result<Halted, Error> {
        self.with_core("halt", |core| core.halt(HALT_TIMEOUT))?;
        self.halted("halt")
    }

    fn resume(&mut self) -> Result<(), Error> {
        self.with_core("resume", |core| core.run())
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.with_core("read-memory", |core| core.read(addr, buf))
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.with_core("set-breakpoint", |core| core.set_hw_breakpoint(addr))
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.with_core("clear-breakpoint", |core| core.clear_hw_breakpoint(addr))
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
        let running = self.with_core("wait-halted", |core| {
            match core.wait_for_core_halted(timeout) {
                Ok(()) => Ok(false),
                Err(probe_rs::Error::Timeout) => Ok(true),
                Err(e) => Err(e),
            }
        })?;
        if running {
            Ok(None)
        } else {
            self.halted("wait-halted").map(Some)
        }
    }
}

/// `download_file_with_options` with the loader for `format`.
fn download(
    session: &mut Session,
    image: &Path,
    format: ImageFormat,
    options: DownloadOptions<'_>,
) -> Result<(), flashing::FileDownloadError> {
    match format {
        ImageFormat::Elf => flashing::download_file_with_options(
            session,
            image,
            flashing::ElfLoader(ElfOptions::default()),
            options,
        ),
        ImageFormat::Bin { base } => flashing::download_file_with_options(
            session,
            image,
            flashing::BinLoader(BinOptions {
                base_address: Some(base),
                skip: 0,
            }),
            options,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_without_probes_is_empty_not_an_error() {
        // This machine has no probe: listing must simply find none (and not panic).
        let probes = list_probes();
        assert!(
            probes.iter().all(|p| !p.identifier.is_empty()),
            "{probes:?}"
        );
        // probe-rs's own lister must not fail either, even where there is no USB bus at all.
        let raw = Lister::new().list_all_with_access();
        assert!(usb_visible() || raw.is_empty(), "{raw:?}");
    }

    #[test]
    fn attaching_without_a_probe_is_not_found_and_leaves_no_thread() {
        let sel: ProbeSelector = "2e8a:000c:NO-SUCH-SERIAL".parse().expect("valid");
        let spec = ProbeSpec::new("pico-1", &sel, "RP2040");
        let e = ProbeWorker::attach(spec, Timeouts::default()).expect_err("no probe here");
        let text = e.to_string();
        assert!(matches!(e, Error::NotFound { .. }), "{text}");
        assert!(text.contains("2e8a:000c:NO-SUCH-SERIAL"), "{text}");
    }

    #[test]
    fn progress_map_sums_totals_and_counts_pages() {
        let mut seen = Vec::new();
        let mut sink = |e: FlashEvent| seen.push(e);
        let mut map = ProgressMap {
            sink: &mut sink,
            total: 0,
            done: 0,
            started: false,
        };
        for total in [512, 256] {
            map.on(ProgressEvent::AddProgressBar {
                operation: ProgressOperation::Program,
                total: Some(total),
            });
        }
        map.on(ProgressEvent::Started(ProgressOperation::Erase));
        for _ in 0..2 {
            map.on(ProgressEvent::Started(ProgressOperation::Program));
            map.on(ProgressEvent::Progress {
                operation: ProgressOperation::Program,
                size: 256,
                time: Duration::ZERO,
            });
        }
        assert_eq!(
            seen,
            vec![
                FlashEvent::Note("erasing".into()),
                FlashEvent::Started { total: 768 },
                FlashEvent::Programmed {
                    done: 256,
                    total: 768
                },
                FlashEvent::Programmed {
                    done: 512,
                    total: 768
                },
            ]
        );
    }
}
