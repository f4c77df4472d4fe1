//! The offered release: the check-in answer, the manifest, staging the verified image, and
//! giving up on a release whose downloads keep failing.

use embedded_storage::nor_flash::NorFlash;

use super::{Exchange, Io, MAX_OFFER_ATTEMPTS, State, Updater, split};
use crate::checkin::CheckinResponse;
use crate::console::Line;
use crate::device::{Error, Next, Reset};
use crate::download::Download;
use crate::manifest::Manifest;
use crate::{Reason, Version};

/// An offered release that failed: reported at every check-in (`last_error`). One whose
/// downloads failed is declined once they failed [`MAX_OFFER_ATTEMPTS`] times, with the
/// check-ins spaced out meanwhile; one whose manifest was refused as not the release's
/// (forged, changed in transit, garbled) is declined at once, without fetching it again, until
/// the server offers something else (or the board restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Trouble {
    /// FNV-1a of the offered manifest URL.
    pub(super) offer: u32,
    /// The release's version, once a manifest vouched for it.
    pub(super) version: Option<Version>,
    /// Downloads of it that gave up.
    pub(super) attempts: u8,
    /// The failure that ended the last attempt.
    pub(super) cause: Reason,
}

impl Trouble {
    /// The offer is declined without a fetch.
    pub(super) fn declines(&self) -> bool {
        self.attempts >= MAX_OFFER_ATTEMPTS
            || matches!(
                self.cause,
                Reason::BadManifest | Reason::BadManifestSignature
            )
    }
}

/// FNV-1a, 32 bits: tells offered URLs apart without keeping them.
pub(super) fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811C_9DC5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Updater {
    /// The check-in was answered.
    pub(super) fn on_answer<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        answer: &CheckinResponse,
        now: u64,
    ) -> Result<(), F::Error> {
        io.out.line(&Line::Checkin {
            version: self.version(),
            state: self.boot.checkin_state(),
            command: answer.command,
        });
        let answered = match split(io.dev.answer(&mut self.boot, answer, io.out))? {
            Ok(a) => a,
            Err(r) => return self.on_failure(io, r, now),
        };
        match answered.next {
            Next::CheckInLater => {
                let later = self.checkin_later(now, false);
                self.enter(later);
            }
            Next::ResetForRollback => self.enter(State::Resetting(Reset::Rollback)),
            Next::Update => {
                let offered = answer.manifest_url.as_deref().unwrap_or_default();
                let offer = fnv1a(offered);
                if let Some(t) = self.trouble.filter(|t| t.offer == offer && t.declines()) {
                    // Given up on this release: decline it until something else is offered.
                    io.out.line(&Line::UpdateRefused {
                        version: t.version,
                        reason: t.cause,
                    });
                    let later = self.checkin_later(now, false);
                    self.enter(later);
                    return Ok(());
                }
                self.offer = (offer, None);
                self.url = crate::checkin::bounded(offered);
                if self.policy.slot_variants {
                    let suffix = if self.boot.state.inactive() & 1 == 0 {
                        "-a"
                    } else {
                        "-b"
                    };
                    let _ = self.url.push_str(suffix);
                }
                self.enter(State::Manifest(Exchange::new(now, &self.policy)));
            }
        }
        Ok(())
    }

    /// The manifest arrived (`len` bytes in the host's buffer).
    pub(super) fn on_manifest<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        len: usize,
        now: u64,
    ) -> Result<(), F::Error> {
        let running = self.version();
        let raw = io.bufs.manifest(len);
        let m = match io
            .dev
            .accept_manifest(&mut self.boot.state, running, raw, io.out)
        {
            Ok(m) => m,
            Err(Error::Flash(e)) => return Err(e),
            Err(Error::Refused(cause @ (Reason::BadManifest | Reason::BadManifestSignature))) => {
                // Not the release's manifest: this offer is declined until another comes.
                self.troubled(None, 0, cause);
                let later = self.checkin_later(now, false);
                self.enter(later);
                return Ok(());
            }
            Err(_) => {
                let later = self.checkin_later(now, false);
                self.enter(later);
                return Ok(());
            }
        };
        let next = match split(io.dev.begin_download(&mut self.boot.state, &m))? {
            Ok(next) => next,
            Err(r) => return self.on_failure(io, r, now),
        };
        let dl = Download::start(&m, next, io.out);
        self.url = crate::checkin::bounded(m.url());
        self.offer.1 = Some(m.version());
        let done = dl.done();
        self.enter(State::Download {
            dl,
            manifest_len: len,
            exchange: Some(Exchange::new(now, &self.policy)),
            retry_at: now,
        });
        if done {
            return self.finish(io, now);
        }
        Ok(())
    }

    /// Every chunk is in: verify and stage, or record the refusal.
    pub(super) fn finish<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        now: u64,
    ) -> Result<(), F::Error> {
        let State::Download {
            dl, manifest_len, ..
        } = &self.state
        else {
            return Ok(());
        };
        dl.complete(io.out);
        let running = self.version();
        let raw = io.bufs.manifest(*manifest_len);
        let staged = match Manifest::parse(raw) {
            Ok(m) => split(io.dev.finish_update(
                &mut self.boot.state,
                &m,
                running,
                io.board_check,
                io.out,
            ))?
            .unwrap_or(false),
            Err(_) => false,
        };
        if staged {
            self.enter(State::Resetting(Reset::Update));
        } else {
            let later = self.checkin_later(now, false);
            self.enter(later);
        }
        Ok(())
    }

    /// A download of the current offer ran out of retries, the last failure being `cause`.
    pub(super) fn gave_up(&mut self, cause: Reason) {
        self.troubled(self.offer.1, 1, cause);
    }

    /// The current offer failed for `cause`, adding `failed` to its failed downloads.
    fn troubled(&mut self, version: Option<Version>, failed: u8, cause: Reason) {
        let offer = self.offer.0;
        let before = match self.trouble {
            Some(t) if t.offer == offer => t.attempts,
            _ => 0,
        };
        self.trouble = Some(Trouble {
            offer,
            version,
            attempts: before.saturating_add(failed),
            cause,
        });
    }
}
