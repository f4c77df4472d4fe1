//! The running image's side: a manifest accepted or refused, the download planned and
//! resumed, chunks verified and written, the staged image verified and activated, confirm,
//! the server's commands, and each response head checked against the range asked for.

use super::*;

impl<F: NorFlash> Device<'_, F> {
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
            return Ok(self.resume_at(m, k));
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

    /// Where a download resumes when chunk `first_bad` is the first one not intact in the slot:
    /// at the chunk holding the first byte of `first_bad`'s sector. A chunk smaller than a
    /// sector does not erase the sector it starts in ([`Device::write_chunk`]), so the bytes a
    /// torn write left there can only be replaced after that sector is erased again. With
    /// chunks of a sector or more (every chunk starts a sector) it is `first_bad` itself.
    fn resume_at(&self, m: &Manifest<'_>, first_bad: u32) -> u32 {
        if first_bad >= m.chunk_count() {
            return first_bad;
        }
        let sector = self.cfg.layout.sector;
        let start = first_bad * m.chunk_size();
        (start - start % sector) / m.chunk_size()
    }

    /// Verifies chunk `index` against the manifest, then programs it into `slot`, erasing
    /// first the sectors that begin inside it. Chunks are written in order from the start of
    /// the slot (a sector boundary), so a sector is erased by the chunk holding its first
    /// byte and the chunks after it in the same sector (chunks smaller than a sector) land on
    /// erased flash: erasing the whole sector again would wipe them.
    ///
    /// Never inlined: it is a debugger's breakpoint target (`scenarios/hardware/` cuts power
    /// as the core enters the N-th chunk write), so every board's ELF must keep the symbol,
    /// whatever its optimiser would do (the QEMU app's fat LTO inlined it).
    #[inline(never)]
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
        let erase_from = base.div_ceil(layout.sector) * layout.sector;
        let erase_to = (base + data.len() as u32).div_ceil(layout.sector) * layout.sector;
        if erase_from < erase_to {
            self.flash.erase(erase_from, erase_to).map_err(flash_err)?;
        }
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
