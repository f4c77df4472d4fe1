//! Hardware emulated by a simulated board (`emulated: true` in bench.yaml): the relay's GPIO
//! line starts and kills a sim-board process, the recovery button's line holds its button for
//! the next power-on, its console is a pseudo-terminal read through the serial backend, and
//! its probe writes and reads the board's flash file.
//!
//! Everything above these three seams is the hardware code path: [`RelaySwitch`] with
//! polarity, `min_off` and safe state, the serial console reader, probe provisioning and
//! recovery, a fixed update-server address, no exact flash cuts. CI runs the whole suite this
//! way, which is how the hardware path is proven on a machine without boards.
//!
//! [`RelaySwitch`]: crate::backend::relay::RelaySwitch

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::backend::relay::DigitalOutput;
use crate::backend::sim::SimPower;
use crate::board::power::{self, PowerSwitch};
use crate::board::probe::{
    Error, FlashEvent, FlashReport, FlashRequest, HaltCause, Halted, ImageFormat, Probe,
};

/// A machine behind emulated hardware (a sim-board process, a QEMU process): what its relay
/// line, recovery button line and probe do to it.
pub trait EmulatedMachine: Send {
    /// Powers the machine (starts its process). Idempotent.
    fn on(&mut self) -> Result<(), power::Error>;
    /// Cuts its power at once (kills its process). Idempotent.
    fn off(&mut self) -> Result<(), power::Error>;
    /// Stops its process while the power line stays on (a probe halting the core for good).
    fn halt_process(&mut self) -> Result<(), power::Error>;
    /// Whether the power line is on, whatever the process does.
    fn line_powered(&self) -> bool;
    /// Holds (or releases) the recovery button, sampled at the next power-on.
    fn hold_recovery_button(&mut self, held: bool);
}

impl EmulatedMachine for SimPower {
    fn on(&mut self) -> Result<(), power::Error> {
        PowerSwitch::on(self)
    }

    fn off(&mut self) -> Result<(), power::Error> {
        PowerSwitch::off(self)
    }

    fn halt_process(&mut self) -> Result<(), power::Error> {
        SimPower::halt_process(self)
    }

    fn line_powered(&self) -> bool {
        SimPower::line_powered(self)
    }

    fn hold_recovery_button(&mut self, held: bool) {
        SimPower::hold_recovery_button(self, held);
    }
}

/// The machine behind the emulated hardware, shared by its lines and its probe.
pub type Shared<M> = Arc<Mutex<M>>;
/// The simulated board behind the emulated hardware.
pub type SharedSim = Shared<SimPower>;

/// Locks a shared machine (a panic while it was held leaves it usable).
pub fn lock<M>(machine: &Shared<M>) -> MutexGuard<'_, M> {
    machine.lock().unwrap_or_else(|e| e.into_inner())
}

/// The GPIO line of an emulated relay: the level that closes the relay powers the machine.
pub struct EmulatedLine<M> {
    machine: Shared<M>,
    /// The relay closes (board powered) when the line is low (the bench's `active_low`).
    active_low: bool,
}

impl<M> EmulatedLine<M> {
    pub fn new(machine: Shared<M>, active_low: bool) -> Self {
        Self {
            machine,
            active_low,
        }
    }
}

impl<M: EmulatedMachine> DigitalOutput for EmulatedLine<M> {
    fn set(&mut self, high: bool) -> Result<(), power::Error> {
        let powered = high != self.active_low;
        let mut m = lock(&self.machine);
        if powered { m.on() } else { m.off() }
    }
}

/// The GPIO line of an emulated recovery button: the level that presses it holds the
/// machine's button for its next power-on.
pub struct EmulatedButton<M> {
    machine: Shared<M>,
    active_low: bool,
}

impl<M> EmulatedButton<M> {
    pub fn new(machine: Shared<M>, active_low: bool) -> Self {
        Self {
            machine,
            active_low,
        }
    }
}

impl<M: EmulatedMachine> DigitalOutput for EmulatedButton<M> {
    fn set(&mut self, high: bool) -> Result<(), power::Error> {
        lock(&self.machine).hold_recovery_button(high != self.active_low);
        Ok(())
    }
}

/// Flash programming granularity reported as progress (one 4 KiB sector).
const PAGE: usize = 4096;

/// Programs a raw whole-flash image into a board's flash file (an emulated board's, a QEMU
/// board's), from the request's base address, with progress, the cut point and read-back:
/// what an SWD probe does to real flash, done to the file that is that board's flash.
pub fn program_flash_file(
    flash: &std::path::Path,
    request: &FlashRequest,
    progress: &mut dyn FnMut(&FlashEvent),
) -> Result<FlashReport, Error> {
    let failed = |op: &'static str, detail: String| Error::Failed { op, detail };
    let ImageFormat::Bin { base } = request.format else {
        return Err(Error::Image {
            path: request.image.clone(),
            reason: "a flash-file probe flashes raw binaries only (a whole flash image)".into(),
        });
    };
    let image = std::fs::read(&request.image).map_err(|e| Error::Image {
        path: request.image.clone(),
        reason: format!("cannot read it: {e}"),
    })?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(flash)
        .map_err(|e| failed("flash", format!("{}: {e}", flash.display())))?;
    let total = image.len() as u64;
    progress(&FlashEvent::Started { total });
    file.seek(SeekFrom::Start(base))
        .map_err(|e| failed("flash", e.to_string()))?;
    let mut report = FlashReport {
        total,
        ..FlashReport::default()
    };
    for page in image.chunks(PAGE) {
        file.write_all(page)
            .map_err(|e| failed("flash", e.to_string()))?;
        report.programmed += page.len() as u64;
        progress(&FlashEvent::Programmed {
            done: report.programmed,
            total,
        });
        if let Some(at) = request.cut_after
            && report.cut_at.is_none()
            && report.programmed >= at
        {
            report.cut_at = Some(report.programmed);
            file.flush().map_err(|e| failed("flash", e.to_string()))?;
            progress(&FlashEvent::CutPoint {
                programmed: report.programmed,
            });
            return Ok(report);
        }
    }
    file.sync_all()
        .map_err(|e| failed("flash", e.to_string()))?;
    if request.verify {
        let mut back = vec![0u8; image.len()];
        file.seek(SeekFrom::Start(base))
            .and_then(|_| file.read_exact(&mut back))
            .map_err(|e| failed("verify", e.to_string()))?;
        if back != image {
            return Err(failed(
                "verify",
                "flash contents differ from the image".into(),
            ));
        }
        progress(&FlashEvent::Note("verified".into()));
    }
    progress(&FlashEvent::Finished {
        programmed: report.programmed,
    });
    report.completed = true;
    Ok(report)
}

/// The probe of an emulated board: programs its flash file (the board's whole flash, from
/// address 0) with the core halted, like SWD programming.
pub struct EmulatedProbe<M> {
    sim: Shared<M>,
    flash: PathBuf,
    halted: bool,
}

impl<M: EmulatedMachine> EmulatedProbe<M> {
    pub fn new(sim: Shared<M>, flash: PathBuf) -> Self {
        Self {
            sim,
            flash,
            halted: false,
        }
    }

    fn failed(op: &'static str, detail: impl std::fmt::Display) -> Error {
        Error::Failed {
            op,
            detail: detail.to_string(),
        }
    }

    /// Stops the core: the sim board's process ends, the power line stays as it is.
    fn stop_core(&mut self) -> Result<(), Error> {
        lock(&self.sim)
            .halt_process()
            .map_err(|e| Self::failed("halt", e))?;
        self.halted = true;
        Ok(())
    }
}

impl<M: EmulatedMachine> Probe for EmulatedProbe<M> {
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<FlashReport, Error> {
        self.stop_core()?;
        program_flash_file(&self.flash, request, progress)
    }

    fn reset(&mut self) -> Result<(), Error> {
        let mut sim = lock(&self.sim);
        sim.halt_process().map_err(|e| Self::failed("reset", e))?;
        self.halted = false;
        if sim.line_powered() {
            sim.on().map_err(|e| Self::failed("reset", e))?;
        }
        Ok(())
    }

    fn reset_and_halt(&mut self) -> Result<Halted, Error> {
        self.stop_core()?;
        Ok(Halted {
            pc: 0,
            cause: HaltCause::Request,
        })
    }

    fn halt(&mut self) -> Result<Halted, Error> {
        self.reset_and_halt()
    }

    fn resume(&mut self) -> Result<(), Error> {
        if self.halted {
            self.reset()?;
        }
        Ok(())
    }

    fn read_memory(&mut self, range: Range<u64>) -> Result<Vec<u8>, Error> {
        if range.is_empty() || range.end - range.start > 16 << 20 {
            return Err(Error::Invalid(format!(
                "memory range {range:?} is empty or over 16 MiB"
            )));
        }
        let mut file = std::fs::File::open(&self.flash)
            .map_err(|e| Self::failed("read_memory", format!("{}: {e}", self.flash.display())))?;
        let mut out = vec![0u8; (range.end - range.start) as usize];
        file.seek(SeekFrom::Start(range.start))
            .and_then(|_| file.read_exact(&mut out))
            .map_err(|e| Self::failed("read_memory", e))?;
        Ok(out)
    }

    fn set_breakpoint(&mut self, _addr: u64) -> Result<(), Error> {
        Err(Self::failed(
            "set_breakpoint",
            "the emulated probe has no breakpoints (a sim board cuts at exact flash operations instead)",
        ))
    }

    fn clear_breakpoint(&mut self, _addr: u64) -> Result<(), Error> {
        Ok(())
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
        if self.halted {
            return Ok(Some(Halted {
                pc: 0,
                cause: HaltCause::Request,
            }));
        }
        std::thread::sleep(timeout);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::SimSpec;
    use crate::board::probe::FlashRequest;
    use crate::timeline::BoardLane;

    fn probe(dir: &std::path::Path) -> (EmulatedProbe<SimPower>, PathBuf) {
        let flash = dir.join("flash.bin");
        let spec = SimSpec {
            program: vec!["/nonexistent/sim-board".into()],
            flash: flash.clone(),
            flash_log: dir.join("flash.log"),
            server_url: "http://127.0.0.1:9".into(),
            device_id: "emu".into(),
            factory: None,
            trust_key: None,
            extra_args: Vec::new(),
        };
        let (sim, _console) = SimPower::new(spec, BoardLane::default());
        let sim = Arc::new(Mutex::new(sim.behind_relay()));
        (EmulatedProbe::new(sim, flash.clone()), flash)
    }

    fn image(dir: &std::path::Path, len: usize) -> PathBuf {
        let path = dir.join("golden.flash");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, bytes).expect("write image");
        path
    }

    #[test]
    fn flashes_the_whole_image_with_progress_and_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut p, flash) = probe(dir.path());
        let img = image(dir.path(), 3 * PAGE + 100);
        let request = FlashRequest {
            verify: true,
            ..FlashRequest::new(&img, Some(0)).expect("request")
        };
        let mut events = Vec::new();
        let report = p
            .flash(&request, &mut |e| events.push(e.clone()))
            .expect("flash");
        assert!(report.completed);
        assert_eq!(
            (report.programmed, report.total),
            (3 * 4096 + 100, 3 * 4096 + 100)
        );
        assert_eq!(
            std::fs::read(&flash).expect("read"),
            std::fs::read(&img).expect("read")
        );
        assert_eq!(events.first(), Some(&FlashEvent::Started { total: 12388 }));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, FlashEvent::Programmed { .. }))
                .count(),
            4
        );
        assert!(events.contains(&FlashEvent::Note("verified".into())));
        assert_eq!(
            p.read_memory(4096..4100).expect("read"),
            std::fs::read(&img).expect("img")[4096..4100]
        );
    }

    #[test]
    fn cut_after_stops_programming_at_the_page_that_crosses_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut p, flash) = probe(dir.path());
        let img = image(dir.path(), 4 * PAGE);
        let request = FlashRequest {
            cut_after: Some(PAGE as u64 + 1),
            ..FlashRequest::new(&img, Some(0)).expect("request")
        };
        let mut cut = None;
        let report = p
            .flash(&request, &mut |e| {
                if let FlashEvent::CutPoint { programmed } = e {
                    cut = Some(*programmed);
                }
            })
            .expect("flash");
        assert!(!report.completed);
        assert_eq!(cut, Some(2 * PAGE as u64));
        assert_eq!(
            std::fs::metadata(&flash).expect("meta").len(),
            2 * PAGE as u64
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut p, _) = probe(dir.path());
        assert!(matches!(p.set_breakpoint(0x100), Err(Error::Failed { .. })));
        assert!(matches!(p.read_memory(5..5), Err(Error::Invalid(_))));
        let elf = dir.path().join("app.elf");
        std::fs::write(&elf, b"\x7fELF....").expect("write");
        let request = FlashRequest::new(&elf, None).expect("elf request");
        assert!(matches!(
            p.flash(&request, &mut |_| {}),
            Err(Error::Image { .. })
        ));
    }
}
