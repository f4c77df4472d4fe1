//! What a board runs on in a sweep: the counted test flash and the console that marks where
//! each phase of the update ended.

use std::cell::Cell;
use std::rc::Rc;

use embedded_storage::nor_flash::NorFlash;

use super::Phase;
use crate::device::Console;
use crate::nor::{FlashError, TestFlash};

/// The test flash, telling the console how many operations happened so far (so that each
/// console line can name the phase of the operations before it).
pub struct Counted {
    pub flash: TestFlash,
    pub(super) seen: Rc<Cell<u64>>,
}

impl embedded_storage::nor_flash::ErrorType for Counted {
    type Error = FlashError;
}

impl embedded_storage::nor_flash::ReadNorFlash for Counted {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.flash.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl NorFlash for Counted {
    const WRITE_SIZE: usize = 1;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let r = self.flash.erase(from, to);
        self.seen.set(self.flash.core.ops());
        r
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let r = self.flash.write(offset, bytes);
        self.seen.set(self.flash.core.ops());
        r
    }
}

/// The console of a point: the last lines, and where each phase of the update ended.
pub(super) struct SweepConsole {
    pub(super) tail: Vec<String>,
    pub(super) seen: Rc<Cell<u64>>,
    /// `(operations before the line, phase of those operations)`.
    pub(super) marks: Vec<(u64, Phase)>,
}

impl SweepConsole {
    /// The phase a line closes: the operations before it belong to that phase.
    fn phase_of(line: &str) -> Option<Phase> {
        let p = |prefix: &str| line.starts_with(prefix);
        Some(if p("download: start") || p("download: resume") {
            Phase::Download
        } else if p("download: progress") || p("download: complete") || p("verify: ") {
            Phase::SlotWrite
        } else if p("update: staged") || p("update: refused") {
            Phase::Stage
        } else if p("app: ") && line.ends_with(" confirmed") {
            Phase::Confirm
        } else if p("rollback: command received") {
            Phase::Rollback
        } else if p("boot: trial") || line.contains("state=trial") {
            Phase::Trial
        } else if p("boot: revert") || p("boot: slot=") {
            Phase::Revert
        } else {
            return None;
        })
    }

    /// The phase of operation `index`: that of the first line printed after it.
    pub(super) fn phase_at(&self, index: u64) -> Phase {
        self.marks
            .iter()
            .find(|(ops, _)| *ops > index)
            .or(self.marks.last())
            .map_or(Phase::Download, |(_, p)| *p)
    }
}

impl Console for SweepConsole {
    fn line(&mut self, line: &crate::console::Line<'_>) {
        let line = line.to_string();
        if let Some(phase) = Self::phase_of(&line) {
            self.marks.push((self.seen.get(), phase));
        }
        if self.tail.len() >= 40 {
            self.tail.remove(0);
        }
        self.tail.push(line);
    }
}
