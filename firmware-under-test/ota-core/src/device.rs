//! The device's decisions, over any `NorFlash`: what the bootloader boots, when an update may
//! start, where a download resumes, whether a staged image may be activated, and every state
//! change (stage, confirm, revert, rollback). The host (sim-board process, Pico W firmware, test
//! harness) does the I/O around these calls and prints the console lines they return.
//!
//! Write ordering, and why every cut point is safe:
//! 1. A download first persists "previous slot: none, downloading manifest D into slot X" —
//!    one atomic state record — *then* erases slot X. So the state never points at a slot
//!    that is being rewritten.
//! 2. Chunks are programmed one by one; progress is not persisted: on resume the slot's
//!    chunks are hashed against the manifest, and the first mismatch is where it resumes
//!    (a torn chunk fails its hash; at most one chunk is lost).
//! 3. The staged image is fully verified (header, board, signature, body hash, manifest hash,
//!    version and anti-rollback floor) before one record switches `active` to it in trial
//!    mode with the old slot as `previous`.
//! 4. The bootloader counts trial boots in the record *before* running the image; past the
//!    limit it switches back to `previous` in one record. Confirm is one record too. So the
//!    image that runs is always the one the newest valid record names: there is no state in
//!    which a reverted image runs, nor a confirmed one is reverted.
//! 5. Every boot verifies the image it is about to run; an invalid active image falls back to
//!    an intact previous one, and only with no valid image anywhere is the board bricked.

use core::fmt;

use embedded_storage::nor_flash::NorFlash;

pub use crate::console::Console;
use crate::console::{Fatal, Line, RevertReason, SlotState};

use crate::image::{HEADER_LEN, ImageHeader};
use crate::layout::Layout;
use crate::manifest::Manifest;
use crate::state::{self, BootState, Mode};
use crate::{Digest, Reason, Version};

/// Device errors: a flash failure (on the sim, also a power cut) or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    Flash(E),
    Refused(Reason),
    /// Nothing valid to boot.
    Bricked,
}

impl<E> From<Reason> for Error<E> {
    fn from(r: Reason) -> Self {
        Self::Refused(r)
    }
}

/// Settings a board compiles in.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    pub layout: Layout,
    /// Trusted release key (from the OTP region on the sim).
    pub public_key: [u8; 32],
    /// Board kind images must be built for.
    pub board: &'a str,
    /// Trial boots before reverting.
    pub max_attempts: u8,
    /// Deliberate defects, for proving that the rig catches a broken firmware. Always
    /// `Quirks::default()` (none) in a real build.
    pub quirks: Quirks,
}

/// Deliberate firmware defects (test only). Each one must make some rig scenario or the
/// power-cut sweep fail; `rig/tests/broken_firmware.rs` checks that it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Skip the body hash check: a body that does not match its signed header is accepted.
    pub skip_body_hash: bool,
    /// Write the "staged" record before the image data it describes (the classic ordering bug).
    pub state_before_data: bool,
    /// Confirm a trial image as soon as the app starts, before any successful check-in.
    pub early_confirm: bool,
    /// Trust a state record without checking its CRC (a torn record passes for a valid one).
    pub skip_state_crc: bool,
    /// Revert in RAM only: boot the previous image but never write the record that makes it
    /// the active one (the failed slot stays active in flash).
    pub revert_in_ram: bool,
}

/// Trial boots before the bootloader reverts, on every board unless a test says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u8 = 3;

/// Why a board (re)started, as its first boot line says it
/// (`boot: otarig-boot ... reset=<why>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    PowerOn,
    Watchdog,
    Panic,
    Update,
    Rollback,
    /// A forced reset that did not say why.
    Reboot,
}

impl Reset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PowerOn => "power-on",
            Self::Watchdog => "watchdog",
            Self::Panic => "panic",
            Self::Update => "update",
            Self::Rollback => "rollback",
            Self::Reboot => "reboot",
        }
    }
}

/// What the bootloader decided to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub slot: u8,
    pub header: ImageHeader,
    pub state: BootState,
}

impl Boot {
    /// The state to report at check-in.
    pub fn checkin_state(&self) -> crate::checkin::DeviceState {
        use crate::checkin::DeviceState;
        match (self.state.mode, self.state.reverted) {
            (Mode::Trial, _) => DeviceState::Trial,
            (Mode::Confirmed, true) => DeviceState::Reverted,
            (Mode::Confirmed, false) => DeviceState::Confirmed,
        }
    }

    /// The check-in a board running this boot sends: `device` (cut to the protocol's limit)
    /// and, outside a trial, `boots` (boots since power-on) as the boot count; during a trial
    /// the count is the trial attempt.
    pub fn checkin_request(&self, device: &str, boots: u32) -> crate::checkin::CheckinRequest {
        use crate::checkin::{Slot, bounded};
        let mut version = heapless::String::new();
        let _ = fmt::Write::write_fmt(&mut version, format_args!("{}", self.header.version));
        crate::checkin::CheckinRequest {
            device: bounded(device),
            version,
            slot: if self.slot == 0 { Slot::A } else { Slot::B },
            state: self.checkin_state(),
            boot_count: if self.state.mode == Mode::Trial {
                u32::from(self.state.attempts)
            } else {
                boots
            },
            last_error: self.state.last_error.map(|r| bounded(r.as_str())),
        }
    }
}

/// What a board does after the server answered its check-in ([`Device::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing: check in again later.
    CheckInLater,
    /// A commanded rollback is staged: reset into the previous image.
    ResetForRollback,
    /// An update is offered: fetch the manifest at the answer's `manifest_url`.
    Update,
}

/// A check-in answer, handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The trial image was confirmed by this check-in.
    pub confirmed: bool,
    pub next: Next,
}

/// The device logic bound to one flash.
pub struct Device<'a, F> {
    pub flash: F,
    pub cfg: Config<'a>,
}

fn flash_err<E>(e: E) -> Error<E> {
    Error::Flash(e)
}

impl<'a, F: NorFlash> Device<'a, F> {
    pub fn new(flash: F, cfg: Config<'a>) -> Self {
        Self { flash, cfg }
    }

    fn store(&mut self, st: &mut BootState) -> Result<(), Error<F::Error>> {
        state::store(&mut self.flash, &self.cfg.layout, st).map_err(flash_err)
    }

    /// Reads the header of the image in `slot`, structurally checked.
    pub fn header(&mut self, slot: u8) -> Result<ImageHeader, Error<F::Error>> {
        self.header_at(self.cfg.layout.slot(slot))
    }

    fn header_at(&mut self, addr: u32) -> Result<ImageHeader, Error<F::Error>> {
        let mut buf = [0u8; HEADER_LEN];
        self.flash.read(addr, &mut buf).map_err(flash_err)?;
        ImageHeader::parse(&buf).map_err(|e| {
            Error::Refused(match e {
                crate::image::HeaderError::MissingEntryPoint => Reason::MissingEntryPoint,
                _ => Reason::BadHeader,
            })
        })
    }

    /// What the CPU finds at the entry point of the image in `slot`: the app and the drill it
    /// plays, or why nothing runnable is there.
    pub fn app(&mut self, slot: u8) -> Result<crate::payload::Drill, crate::payload::PayloadError> {
        let mut entry = [0u8; 512];
        let at = self.cfg.layout.slot(slot) + HEADER_LEN as u32;
        match self.flash.read(at, &mut entry) {
            Ok(()) => crate::payload::parse(&entry).map(|a| a.drill),
            Err(_) => Err(crate::payload::PayloadError::NoEntry),
        }
    }

    /// SHA-256 of `len` bytes of flash at `addr`.
    fn hash(&mut self, addr: u32, len: u32) -> Result<Digest, Error<F::Error>> {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let mut buf = [0u8; 256];
        let mut done = 0u32;
        while done < len {
            let n = (len - done).min(buf.len() as u32) as usize;
            self.flash
                .read(addr + done, &mut buf[..n])
                .map_err(flash_err)?;
            h.update(&buf[..n]);
            done += n as u32;
        }
        Ok(h.finalize().into())
    }

    /// Full check of the image in `slot`: header, board, signature, body hash, floor.
    pub fn check_image(&mut self, slot: u8, floor: u32) -> Result<ImageHeader, Error<F::Error>> {
        self.check_at(self.cfg.layout.slot(slot), floor)
    }

    /// Full check of the image at `addr` (a slot or the factory region).
    fn check_at(&mut self, addr: u32, floor: u32) -> Result<ImageHeader, Error<F::Error>> {
        let h = self.header_at(addr)?;
        if h.image_len() > self.cfg.layout.slot_size {
            return Err(Reason::TooLarge.into());
        }
        if h.board_kind() != self.cfg.board {
            return Err(Reason::WrongBoard.into());
        }
        if !h.verify_signature(&self.cfg.public_key) {
            return Err(Reason::BadSignature.into());
        }
        let body = self.hash(addr + HEADER_LEN as u32, h.body_len)?;
        if body != h.body_sha256 && !self.cfg.quirks.skip_body_hash {
            return Err(Reason::BadHash.into());
        }
        if h.rollback_counter < floor {
            return Err(Reason::RollbackCounter.into());
        }
        Ok(h)
    }

    /// The bootloader: picks the image to run, counting trial boots and reverting when needed.
    pub fn boot(&mut self, out: &mut dyn Console) -> Result<Boot, Error<F::Error>> {
        let check_crc = !self.cfg.quirks.skip_state_crc;
        let loaded = state::load_checked(&mut self.flash, &self.cfg.layout, check_crc);
        let mut st = match loaded.map_err(flash_err)? {
            Some(s) => s,
            None => self.recover_state(out)?,
        };
        if st.mode == Mode::Trial {
            st.attempts = st.attempts.saturating_add(1);
            if st.attempts > self.cfg.max_attempts && st.previous.is_some() {
                return self.revert(st, Reason::TrialExhausted, out);
            }
            let version = self
                .header(st.active)
                .map(|h| h.version)
                .unwrap_or_default();
            self.store(&mut st)?;
            out.line(&Line::BootTrial {
                version,
                attempt: u32::from(st.attempts),
                max: u32::from(self.cfg.max_attempts),
            });
        }
        match self.check_image(st.active, st.floor) {
            Ok(header) => {
                out.line(&Line::BootSlot {
                    slot: st.active,
                    version: header.version,
                    state: if st.mode == Mode::Trial {
                        SlotState::Trial
                    } else {
                        SlotState::Confirmed
                    },
                });
                Ok(Boot {
                    slot: st.active,
                    header,
                    state: st,
                })
            }
            Err(Error::Refused(reason)) => {
                out.line(&Line::BootRefuse {
                    slot: st.active,
                    reason,
                });
                if st.previous.is_some() {
                    self.revert(st, reason, out)
                } else {
                    out.line(&Line::BootFatal {
                        why: Fatal::NoBootableImage,
                    });
                    Err(Error::Bricked)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Goes back to the previous slot (one state record), then boots it.
    fn revert(
        &mut self,
        mut st: BootState,
        reason: Reason,
        out: &mut dyn Console,
    ) -> Result<Boot, Error<F::Error>> {
        let Some(prev) = st.previous else {
            return Err(Error::Bricked);
        };
        let failed = self.header(st.active).ok().map(|h| h.version);
        let header = match self.check_image(prev, st.floor) {
            Ok(h) => h,
            Err(Error::Refused(r)) => {
                out.line(&Line::BootRefuse {
                    slot: prev,
                    reason: r,
                });
                out.line(&Line::BootFatal {
                    why: Fatal::NoBootableImage,
                });
                return Err(Error::Bricked);
            }
            Err(e) => return Err(e),
        };
        let why = if reason == Reason::TrialExhausted {
            RevertReason::TrialExhausted
        } else {
            RevertReason::BadImage
        };
        st.active = prev;
        st.mode = Mode::Confirmed;
        st.attempts = 0;
        st.previous = None;
        st.reverted = true;
        st.rejected = failed.or(st.rejected);
        st.last_error = Some(reason);
        st.download = None;
        if !self.cfg.quirks.revert_in_ram {
            self.store(&mut st)?;
        }
        out.line(&Line::BootRevert {
            to: header.version,
            reason: why,
        });
        out.line(&Line::BootSlot {
            slot: prev,
            version: header.version,
            state: SlotState::Confirmed,
        });
        Ok(Boot {
            slot: prev,
            header,
            state: st,
        })
    }

    /// The factory-reset drill (the board's recovery button held at power-on): copies the
    /// factory image back into slot A, erases slot B and starts a factory state record,
    /// then boots as usual. The anti-rollback floor goes back to the factory image's counter:
    /// a factory reset needs hands on the board, like reflashing it. Prints
    /// `boot: factory reset version=V` (or `... failed reason=R`, changing nothing).
    pub fn factory_reset(&mut self, out: &mut dyn Console) -> Result<(), Error<F::Error>> {
        let layout = self.cfg.layout;
        let h = match self.check_at(layout.factory, 0) {
            Ok(h) => h,
            Err(Error::Refused(reason)) => {
                out.line(&Line::FactoryResetFailed { reason });
                return Err(Error::Refused(reason));
            }
            Err(e) => return Err(e),
        };
        let (a, b) = (layout.slot(0), layout.slot(1));
        let sectors = h.image_len().div_ceil(layout.sector) * layout.sector;
        self.flash.erase(a, a + sectors).map_err(flash_err)?;
        // Slot B goes back to erased, as the factory left it: no stale chunk of an earlier
        // download may pass for a resumed one.
        self.flash
            .erase(b, b + layout.slot_size)
            .map_err(flash_err)?;
        let mut page = [0xFFu8; 256];
        let page_len = (layout.page as usize).min(page.len()) as u32;
        let mut done = 0u32;
        while done < h.image_len() {
            let n = (h.image_len() - done).min(page_len);
            page.fill(0xFF);
            self.flash
                .read(layout.factory + done, &mut page[..n as usize])
                .map_err(flash_err)?;
            self.flash
                .write(a + done, &page[..page_len as usize])
                .map_err(flash_err)?;
            done += n;
        }
        let seq = state::load(&mut self.flash, &layout)
            .ok()
            .flatten()
            .map_or(0, |s| s.seq);
        let mut st = BootState::factory(0, h.rollback_counter);
        st.seq = seq;
        self.store(&mut st)?;
        out.line(&Line::FactoryReset { version: h.version });
        Ok(())
    }

    /// No valid state record (both copies damaged): rebuild one from the best valid image.
    fn recover_state(&mut self, out: &mut dyn Console) -> Result<BootState, Error<F::Error>> {
        let mut best: Option<(u8, ImageHeader)> = None;
        for slot in 0..2u8 {
            if let Ok(h) = self.check_image(slot, 0)
                && best.as_ref().is_none_or(|(_, b)| h.version > b.version)
            {
                best = Some((slot, h));
            }
        }
        let Some((slot, h)) = best else {
            out.line(&Line::BootFatal {
                why: Fatal::NoBootableImage,
            });
            return Err(Error::Bricked);
        };
        let mut st = BootState::factory(slot, h.rollback_counter);
        self.store(&mut st)?;
        Ok(st)
    }

    /// A manifest the server offered: verifies its signature and checks the release may be
    /// installed (recording a refusal so it is not retried), printing the console lines every
    /// board prints. `Err(Refused)`: nothing to download now; `Err(Flash)`: the refusal could
    /// not be recorded.
    pub fn accept_manifest<'r>(
        &mut self,
        st: &mut BootState,
        running: Version,
        raw: &'r [u8],
        out: &mut dyn Console,
    ) -> Result<Manifest<'r>, Error<F::Error>> {
        let m = match Manifest::parse_verified(raw, &self.cfg.public_key) {
            Ok(m) => m,
            Err(e) => {
                let r = if e == crate::manifest::ManifestError::BadSignature {
                    Reason::BadManifestSignature
                } else {
                    Reason::BadManifest
                };
                out.line(&Line::UpdateRefused {
                    version: None,
                    reason: r,
                });
                return Err(Error::Refused(r));
            }
        };
        out.line(&Line::UpdateManifest {
            version: m.version(),
            size: m.size(),
            chunks: m.chunk_count(),
            chunk_size: m.chunk_size(),
        });
        if let Err(r) = self.plan(st, running, &m) {
            out.line(&Line::UpdateRefused {
                version: Some(m.version()),
                reason: r,
            });
            self.reject(st, m.version(), r)?;
            return Err(Error::Refused(r));
        }
        Ok(m)
    }

    /// May this release be installed on a board running `running`?
    pub fn plan(&self, st: &BootState, running: Version, m: &Manifest<'_>) -> Result<(), Reason> {
        let v = m.version();
        if v < running {
            return Err(Reason::Downgrade);
        }
        if v == running {
            return Err(Reason::SameVersion);
        }
        if m.rollback_counter() < st.floor {
            return Err(Reason::RollbackCounter);
        }
        if m.size() > self.cfg.layout.slot_size {
            return Err(Reason::TooLarge);
        }
        if st.rejected == Some(v) {
            return Err(Reason::PreviouslyRejected);
        }
        Ok(())
    }

    /// Starts or resumes a download of `m` into the inactive slot. Returns the first chunk
    /// still needed (0 = from scratch).
    pub fn begin_download(
        &mut self,
        st: &mut BootState,
        m: &Manifest<'_>,
    ) -> Result<u32, Error<F::Error>> {
        let slot = st.inactive();
        let digest = m.digest();
        if st.download == Some((digest, slot)) {
            let mut k = 0;
            while k < m.chunk_count() {
                let (s, e) = m
                    .chunk_range(k)
                    .ok_or(Error::Refused(Reason::BadManifest))?;
                let at = self.cfg.layout.slot(slot) + s;
                if Some(self.hash(at, e - s)?) != m.chunk_hash(k) {
                    break;
                }
                k += 1;
            }
            return Ok(k);
        }
        st.previous = None;
        st.download = Some((digest, slot));
        if self.cfg.quirks.state_before_data {
            // Deliberately wrong (test quirk): the record naming the new image as the one to
            // boot is written before a single byte of that image exists.
            let mut early = st.clone();
            early.active = slot;
            early.mode = Mode::Trial;
            early.attempts = 0;
            self.store(&mut early)?;
            st.seq = early.seq;
            return Ok(0);
        }
        self.store(st)?;
        Ok(0)
    }

    /// Verifies chunk `index` against the manifest, then erases and programs it into `slot`.
    pub fn write_chunk(
        &mut self,
        slot: u8,
        m: &Manifest<'_>,
        index: u32,
        data: &[u8],
    ) -> Result<(), Error<F::Error>> {
        let (s, e) = m
            .chunk_range(index)
            .ok_or(Error::Refused(Reason::BadManifest))?;
        if data.len() as u32 != e - s || Some(crate::sha256(data)) != m.chunk_hash(index) {
            return Err(Reason::ChunkHash.into());
        }
        let layout = self.cfg.layout;
        let base = layout.slot(slot) + s;
        let erase_from = base - base % layout.sector;
        let erase_to = (base + data.len() as u32).div_ceil(layout.sector) * layout.sector;
        self.flash.erase(erase_from, erase_to).map_err(flash_err)?;
        for (i, page) in data.chunks(layout.page as usize).enumerate() {
            self.flash
                .write(base + (i as u32) * layout.page, page)
                .map_err(flash_err)?;
        }
        Ok(())
    }

    /// Checks the fully downloaded image in the inactive slot before anything activates it.
    pub fn verify_staged(
        &mut self,
        st: &BootState,
        m: &Manifest<'_>,
        running: Version,
    ) -> Result<ImageHeader, Error<F::Error>> {
        let slot = st.inactive();
        let h = self.check_image(slot, st.floor)?;
        let whole = self.hash(self.cfg.layout.slot(slot), m.size())?;
        if (whole != m.sha256() && !self.cfg.quirks.skip_body_hash) || h.image_len() != m.size() {
            return Err(Reason::BadHash.into());
        }
        if h.version <= running {
            return Err(Reason::Downgrade.into());
        }
        Ok(h)
    }

    /// Records a refused release so it is not retried, and the error to report.
    pub fn reject(
        &mut self,
        st: &mut BootState,
        version: Version,
        reason: Reason,
    ) -> Result<(), Error<F::Error>> {
        if reason.rejects_release() {
            st.rejected = Some(version);
        }
        st.last_error = Some(reason);
        st.download = None;
        self.store(st)
    }

    /// After a complete download: verifies the staged image (and whatever `board_check` adds,
    /// e.g. an execute-in-place board's entry check), then stages it for a trial boot
    /// (`Ok(true)`: reset into it) or records the refusal (`Ok(false)`), with the console
    /// lines every board prints.
    pub fn finish_update(
        &mut self,
        st: &mut BootState,
        m: &Manifest<'_>,
        running: Version,
        board_check: impl FnOnce(&mut F, u8, &ImageHeader) -> Result<(), Reason>,
        out: &mut dyn Console,
    ) -> Result<bool, Error<F::Error>> {
        let slot = st.inactive();
        let verified = self.verify_staged(st, m, running).and_then(|h| {
            board_check(&mut self.flash, slot, &h)
                .map(|()| h)
                .map_err(Error::Refused)
        });
        match verified {
            Ok(h) => out.line(&Line::VerifyOk { version: h.version }),
            Err(Error::Refused(r)) => {
                out.line(&Line::VerifyFailed { reason: r });
                self.reject(st, m.version(), r)?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        self.stage(st)?;
        out.line(&Line::UpdateStaged {
            version: m.version(),
        });
        Ok(true)
    }

    /// Activates the verified image in the inactive slot for a trial boot (one record).
    pub fn stage(&mut self, st: &mut BootState) -> Result<(), Error<F::Error>> {
        st.previous = Some(st.active);
        st.active = st.inactive();
        st.mode = Mode::Trial;
        st.attempts = 0;
        st.reverted = false;
        st.last_error = None;
        st.download = None;
        self.store(st)
    }

    /// Marks the running trial image good and raises the anti-rollback floor (one record).
    pub fn confirm(
        &mut self,
        st: &mut BootState,
        header: &ImageHeader,
    ) -> Result<(), Error<F::Error>> {
        st.mode = Mode::Confirmed;
        st.attempts = 0;
        st.reverted = false;
        st.last_error = None;
        st.floor = st.floor.max(header.rollback_counter);
        self.store(st)
    }

    /// Acts on a check-in answer, as every board does: a check-in the server accepted proves a
    /// trial image healthy, so it is confirmed (`app: vV confirmed`); a rollback command is
    /// staged (`rollback: command received to=V`) or refused (`rollback: refused reason=R`);
    /// an update offer is announced (`update: offered manifest=URL`). `Err(Flash)`: the board
    /// must reset.
    pub fn answer(
        &mut self,
        boot: &mut Boot,
        answer: &crate::checkin::CheckinResponse,
        out: &mut dyn Console,
    ) -> Result<Answered, Error<F::Error>> {
        use crate::checkin::Command;
        let v = boot.header.version;
        let confirmed = boot.state.mode == Mode::Trial;
        if confirmed {
            let header = boot.header.clone();
            self.confirm(&mut boot.state, &header)?;
            out.line(&Line::AppConfirmed { version: v });
        }
        let next = match answer.command {
            Command::None => Next::CheckInLater,
            Command::Rollback => match self.rollback(&mut boot.state, v) {
                Ok(to) => {
                    out.line(&Line::RollbackReceived { to });
                    Next::ResetForRollback
                }
                Err(Error::Refused(r)) => {
                    out.line(&Line::RollbackRefused { reason: r });
                    Next::CheckInLater
                }
                Err(e) => return Err(e),
            },
            Command::Update => {
                let url = answer.manifest_url.as_deref().unwrap_or_default();
                out.line(&Line::UpdateOffered { manifest: url });
                Next::Update
            }
        };
        Ok(Answered { confirmed, next })
    }

    /// Server-commanded rollback to the previous image, if it is intact and allowed.
    pub fn rollback(
        &mut self,
        st: &mut BootState,
        running: Version,
    ) -> Result<Version, Error<F::Error>> {
        let prev = st.previous.ok_or(Error::Refused(Reason::NoPrevious))?;
        let h = self.check_image(prev, st.floor)?;
        st.rejected = Some(running);
        st.active = prev;
        st.previous = None;
        st.mode = Mode::Confirmed;
        st.attempts = 0;
        st.reverted = true;
        st.last_error = None;
        st.download = None;
        self.store(st)?;
        Ok(h.version)
    }
}

/// Checks a response head against the range the device asked for.
///
/// `start..start+len` is what was requested out of `total` bytes. A server that ignores
/// Range, lies about the length, or sends a Content-Range for other bytes is caught here,
/// before a single body byte is used.
pub fn check_response(
    start: u32,
    len: u32,
    total: u32,
    head: &crate::http::ResponseHead,
) -> Result<(), Reason> {
    use crate::http::ContentRange;
    match head.status {
        206 => {
            let wanted = ContentRange::Bytes {
                first: start,
                last: start + len - 1,
                total,
            };
            if head.content_range != Some(wanted) {
                return Err(Reason::BadContentRange);
            }
        }
        200 if start > 0 => return Err(Reason::IgnoredRange),
        200 => {}
        _ => return Err(Reason::Status),
    }
    let expected = if head.status == 200 {
        u64::from(total)
    } else {
        u64::from(len)
    };
    match head.content_length {
        Some(n) if n == expected => Ok(()),
        _ => Err(Reason::BadContentLength),
    }
}

/// A console that keeps every line (host tests).
#[cfg(test)]
pub(crate) struct Lines(pub(crate) Vec<String>);

#[cfg(test)]
impl Console for Lines {
    fn line(&mut self, line: &Line<'_>) {
        self.0.push(line.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_reset_restores_the_factory_image_and_floor() {
        let setup = crate::sweep::Setup::new(3000, 1024);
        let layout = setup.layout;
        let mut flash = setup.fresh_flash();
        let at = |r: u32| r as usize;
        // Running v2 from slot B; slot A damaged.
        let (b, f) = (at(layout.slot(1)), at(layout.factory));
        flash.core.mem[b..b + setup.v2.len()].copy_from_slice(&setup.v2);
        flash.core.mem[at(layout.slot(0)) + 300] ^= 0xFF;
        let mut st = BootState::factory(1, 1);
        st.seq = 7;
        state::store(&mut flash, &layout, &mut st).expect("state");
        let mut dev = Device::new(flash, setup.config());
        let mut out = Lines(Vec::new());
        // No factory image yet: refused, nothing changes.
        assert_eq!(
            dev.factory_reset(&mut out),
            Err(Error::Refused(Reason::BadHeader))
        );
        assert_eq!(out.0, ["boot: factory reset failed reason=bad-header"]);
        assert_eq!(dev.boot(&mut out).expect("boot").slot, 1);
        // With the factory image: slot A is v1 again, slot B is gone.
        dev.flash.core.mem[f..f + setup.v1.len()].copy_from_slice(&setup.v1);
        out.0.clear();
        dev.factory_reset(&mut out).expect("reset");
        let boot = dev.boot(&mut out).expect("boot");
        assert_eq!((boot.slot, boot.header.version), (0, Version::new(1, 0, 0)));
        assert_eq!((boot.state.floor, boot.state.previous), (1, None));
        let b = at(layout.slot(1));
        assert!(
            dev.flash.core.mem[b..b + at(layout.slot_size)]
                .iter()
                .all(|x| *x == 0xFF),
            "slot B erased"
        );
        assert_eq!(
            out.0,
            [
                "boot: factory reset version=1.0.0",
                "boot: slot=a version=1.0.0 state=confirmed"
            ]
        );
    }

    /// A response head as a server would send it: status, then `name: value` lines.
    fn head(status: u16, fields: &[&str]) -> crate::http::ResponseHead {
        let mut text = format!("HTTP/1.1 {status} X\r\n");
        for f in fields {
            text.push_str(f);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        crate::http::parse_head(text.as_bytes()).expect("well-formed head")
    }

    #[test]
    fn response_checks() {
        let cl = |n: u32| format!("Content-Length: {n}");
        let ok = |start, len, h: &crate::http::ResponseHead| check_response(start, len, 100, h);
        assert_eq!(ok(0, 100, &head(200, &[&cl(100)])), Ok(()));
        let range = |r: &str| format!("Content-Range: {r}");
        assert_eq!(
            ok(0, 100, &head(206, &[&cl(100), &range("bytes 0-99/100")])),
            Ok(())
        );
        assert_eq!(
            ok(50, 50, &head(206, &[&cl(50), &range("bytes 50-99/100")])),
            Ok(())
        );
        assert_eq!(
            ok(50, 50, &head(200, &[&cl(100)])),
            Err(Reason::IgnoredRange)
        );
        for wrong in [
            "bytes 51-100/100",
            "bytes 50-99/101",
            "bytes 50-98/100",
            "bytes */100",
        ] {
            assert_eq!(
                ok(50, 50, &head(206, &[&cl(50), &range(wrong)])),
                Err(Reason::BadContentRange),
                "{wrong}"
            );
        }
        assert_eq!(
            ok(50, 50, &head(206, &[&cl(50)])),
            Err(Reason::BadContentRange),
            "206 without Content-Range"
        );
        for n in [1100, 90, 99, 101] {
            assert_eq!(
                ok(0, 100, &head(200, &[&cl(n)])),
                Err(Reason::BadContentLength),
                "{n}"
            );
        }
        assert_eq!(
            ok(50, 50, &head(206, &[&cl(51), &range("bytes 50-99/100")])),
            Err(Reason::BadContentLength)
        );
        assert_eq!(ok(0, 100, &head(200, &[])), Err(Reason::BadContentLength));
        assert_eq!(ok(0, 100, &head(503, &[&cl(0)])), Err(Reason::Status));
        assert_eq!(ok(0, 100, &head(204, &[])), Err(Reason::Status));
    }
}
