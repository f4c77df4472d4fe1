//! The bootloader's side: which image runs, trial boots counted and reverted, the state
//! record recovered, the factory reset.

use super::*;

impl<F: NorFlash> Device<'_, F> {
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
                    self.fall_back_to_factory(st, reason, out)
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
                return self.fall_back_to_factory(st, reason, out);
            }
            Err(e) => return Err(e),
        };
        let why = if reason == Reason::TrialExhausted {
            RevertReason::TrialExhausted
        } else {
            RevertReason::BadImage
        };
        st.revert_to(prev, failed, reason);
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

    /// Neither the running image nor a previous one can run (bit rot, tampering): the factory
    /// image goes back into slot A and runs, confirmed, so a board with a valid image left
    /// never bricks. Unlike the factory-reset drill the anti-rollback floor stays: a factory
    /// image below it is refused like any other, and only then is the board bricked. A cut
    /// during the copy leaves the same state record in charge, so the next boot does it again.
    fn fall_back_to_factory(
        &mut self,
        mut st: BootState,
        reason: Reason,
        out: &mut dyn Console,
    ) -> Result<Boot, Error<F::Error>> {
        let header = match self.check_at(self.cfg.layout.factory, st.floor) {
            Ok(h) => h,
            Err(Error::Refused(_)) => {
                out.line(&Line::BootFatal {
                    why: Fatal::NoBootableImage,
                });
                return Err(Error::Bricked);
            }
            Err(e) => return Err(e),
        };
        let failed = self.header(st.active).ok().map(|h| h.version);
        self.copy_factory_to_slot_a(&header, |_| Ok(()))?;
        st.revert_to(0, failed, reason);
        self.store(&mut st)?;
        out.line(&Line::BootRevert {
            to: header.version,
            reason: RevertReason::BadImage,
        });
        out.line(&Line::BootSlot {
            slot: 0,
            version: header.version,
            state: SlotState::Confirmed,
        });
        Ok(Boot {
            slot: 0,
            header,
            state: st,
        })
    }

    /// Copies the factory image (checked: `h` is its header) into slot A: erase, then
    /// program. `between` runs after the erase (the factory reset erases slot B there, keeping
    /// its order of operations: slot A's erase is its first).
    fn copy_factory_to_slot_a(
        &mut self,
        h: &ImageHeader,
        between: impl FnOnce(&mut Self) -> Result<(), Error<F::Error>>,
    ) -> Result<(), Error<F::Error>> {
        let layout = self.cfg.layout;
        let a = layout.slot(0);
        let sectors = h.image_len().div_ceil(layout.sector) * layout.sector;
        self.flash.erase(a, a + sectors).map_err(flash_err)?;
        between(self)?;
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
        Ok(())
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
        let b = layout.slot(1);
        // Slot B goes back to erased, as the factory left it: no stale chunk of an earlier
        // download may pass for a resumed one.
        self.copy_factory_to_slot_a(&h, |dev| {
            dev.flash.erase(b, b + layout.slot_size).map_err(flash_err)
        })?;
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
}
