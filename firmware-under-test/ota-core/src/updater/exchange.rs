//! The request in flight: its head, its body (image bytes verified and written chunk by
//! chunk), its end, and what a failure of it leads to (retry, back off, give up).

use embedded_storage::nor_flash::NorFlash;

use super::{Io, MAX_CHECKIN_BODY, Policy, State, Updater};
use crate::Reason;
use crate::checkin::CheckinResponse;
use crate::console::{CheckinFailure, Line, Why};
use crate::device::Error;
use crate::download::{Download, Retry};
use crate::http::ResponseHead;
use crate::manifest::{self, Manifest};

/// A request in flight and what has arrived of its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Exchange {
    /// No progress by then: the request timed out.
    pub(super) deadline: u64,
    pub(super) head: Option<ResponseHead>,
    /// Body bytes received.
    pub(super) received: u64,
    /// Body bytes to drop before the data wanted (a full body after an ignored Range).
    pub(super) skip: u64,
    /// Bytes of the chunk (or check-in answer) being assembled.
    pub(super) fill: usize,
}

impl Exchange {
    pub(super) fn new(now: u64, policy: &Policy) -> Self {
        Self {
            deadline: now.saturating_add(policy.net_timeout_ms),
            head: None,
            received: 0,
            skip: 0,
            fill: 0,
        }
    }

    fn status(&self) -> u16 {
        self.head.map_or(0, |h| h.status)
    }

    fn retry_after(&self) -> Option<u64> {
        self.head.and_then(|h| h.retry_after_s)
    }
}

/// `reason` as printed in `reason=`: `status-<code>` for a bad status.
fn why(reason: Reason, status: u16) -> Why {
    match reason {
        Reason::Status => Why::status(status),
        r => Why::new(r),
    }
}

impl Updater {
    pub(super) fn on_head<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        head: ResponseHead,
        now: u64,
    ) -> Result<(), F::Error> {
        let deadline = now.saturating_add(self.policy.net_timeout_ms);
        match &mut self.state {
            State::Checkin(ex) if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                if head.status != 200 {
                    return self.on_failure(io, Reason::Status, now);
                }
                if head
                    .content_length
                    .is_none_or(|n| n > MAX_CHECKIN_BODY as u64)
                {
                    return self.on_failure(io, Reason::BadContentLength, now);
                }
            }
            State::Manifest(ex) if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                if head.status != 200 {
                    return self.on_failure(io, Reason::Status, now);
                }
                let room = head
                    .content_length
                    .filter(|n| *n <= manifest::MAX_LEN as u64)
                    .and_then(|n| io.bufs.manifest_room(n as usize));
                if room.is_none() {
                    return self.on_failure(io, Reason::BadContentLength, now);
                }
            }
            State::Download {
                dl,
                manifest_len,
                exchange: Some(ex),
                ..
            } if ex.head.is_none() => {
                ex.head = Some(head);
                ex.deadline = deadline;
                let raw = io.bufs.manifest(*manifest_len);
                let checked = match Manifest::parse(raw) {
                    Ok(m) => dl.check_head(&m, &head),
                    Err(_) => Err(Reason::BadManifest),
                };
                match checked {
                    Ok(skip) => ex.skip = skip,
                    Err(r) => return self.on_failure(io, r, now),
                }
            }
            // A response nobody asked for (or a second head): ignored.
            _ => {}
        }
        Ok(())
    }

    pub(super) fn on_body<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), F::Error> {
        if !self.wants_body() {
            return Ok(());
        }
        let deadline = now.saturating_add(self.policy.net_timeout_ms);
        let checkin = matches!(self.state, State::Checkin(_));
        let failed = match &mut self.state {
            State::Checkin(ex) | State::Manifest(ex) => {
                ex.deadline = deadline;
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                let at = ex.received as usize;
                ex.received += bytes.len() as u64;
                if ex.received > len {
                    Some(Reason::LongBody)
                } else {
                    let room = if checkin {
                        io.bufs.chunk_room(len as usize)
                    } else {
                        io.bufs.manifest_room(len as usize)
                    };
                    if let Some(dst) = room.and_then(|r| r.get_mut(at..at + bytes.len())) {
                        dst.copy_from_slice(bytes);
                    }
                    None
                }
            }
            State::Download {
                dl,
                manifest_len,
                exchange: Some(ex),
                ..
            } => {
                ex.deadline = deadline;
                let slot = self.boot.state.inactive();
                match receive(io, dl, ex, *manifest_len, slot, bytes) {
                    Ok(()) if dl.done() => return self.finish(io, now),
                    Ok(()) => None,
                    Err(Error::Flash(e)) => return Err(e),
                    Err(Error::Refused(r)) => Some(r),
                    Err(Error::Bricked) => Some(Reason::Flash),
                }
            }
            _ => None,
        };
        match failed {
            Some(r) => self.on_failure(io, r, now),
            None => Ok(()),
        }
    }

    pub(super) fn on_end<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        now: u64,
    ) -> Result<(), F::Error> {
        match &self.state {
            State::Checkin(ex) if ex.head.is_some() => {
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                if ex.received < len {
                    return self.on_failure(io, Reason::ShortBody, now);
                }
                match CheckinResponse::decode(io.bufs.chunk(len as usize)) {
                    Ok(answer) => self.on_answer(io, &answer, now),
                    _ => {
                        io.out.line(&Line::CheckinFailed {
                            why: CheckinFailure::Malformed,
                        });
                        let later = self.checkin_later(now, true);
                        self.enter(later);
                        Ok(())
                    }
                }
            }
            State::Manifest(ex) if ex.head.is_some() => {
                let len = ex.head.and_then(|h| h.content_length).unwrap_or(0);
                if ex.received < len {
                    return self.on_failure(io, Reason::ShortBody, now);
                }
                self.on_manifest(io, len as usize, now)
            }
            State::Download {
                exchange: Some(ex), ..
            } if ex.head.is_some() => self.on_failure(io, Reason::ShortBody, now),
            _ => Ok(()),
        }
    }

    /// The exchange in flight failed for `reason`.
    pub(super) fn on_failure<F: NorFlash>(
        &mut self,
        io: &mut Io<'_, '_, F>,
        reason: Reason,
        now: u64,
    ) -> Result<(), F::Error> {
        match &mut self.state {
            State::Checkin(ex) => {
                io.out.line(&Line::CheckinFailed {
                    why: CheckinFailure::Why(why(reason, ex.status())),
                });
                let later = self.checkin_later(now, true);
                self.enter(later);
            }
            State::Manifest(ex) => {
                io.out.line(&Line::ManifestUnavailable {
                    why: why(reason, ex.status()),
                });
                let later = self.checkin_later(now, false);
                self.enter(later);
            }
            State::Download {
                dl,
                exchange,
                retry_at,
                ..
            } => {
                let (retry_after, status) =
                    exchange.map_or((None, 0), |ex| (ex.retry_after(), ex.status()));
                match dl.failed(reason, retry_after, status, io.out) {
                    Retry::After(ms) => {
                        *exchange = None;
                        *retry_at = now.saturating_add(ms);
                        self.pending = true;
                    }
                    Retry::GiveUp => {
                        self.gave_up(reason);
                        let later = self.checkin_later(now, false);
                        self.enter(later);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Takes body bytes of an image response: drops what the server sent before the data wanted,
/// assembles chunks in the host's chunk buffer, and verifies and writes each complete one.
fn receive<F: NorFlash>(
    io: &mut Io<'_, '_, F>,
    dl: &mut Download,
    ex: &mut Exchange,
    manifest_len: usize,
    slot: u8,
    mut bytes: &[u8],
) -> Result<(), Error<F::Error>> {
    ex.received += bytes.len() as u64;
    let skip = ex.skip.min(bytes.len() as u64);
    ex.skip -= skip;
    bytes = bytes.get(skip as usize..).unwrap_or_default();
    while !bytes.is_empty() && !dl.done() {
        let m = Manifest::parse(io.bufs.manifest(manifest_len))
            .map_err(|_| Error::Refused(Reason::BadManifest))?;
        let (s, e) = m
            .chunk_range(dl.next())
            .ok_or(Error::Refused(Reason::BadManifest))?;
        let want = (e - s) as usize;
        let chunk = io
            .bufs
            .chunk_room(want)
            .ok_or(Error::Refused(Reason::TooLarge))?;
        let n = (want - ex.fill).min(bytes.len());
        chunk[ex.fill..ex.fill + n].copy_from_slice(&bytes[..n]);
        ex.fill += n;
        bytes = &bytes[n..];
        if ex.fill < want {
            break;
        }
        ex.fill = 0;
        let m = Manifest::parse(io.bufs.manifest(manifest_len))
            .map_err(|_| Error::Refused(Reason::BadManifest))?;
        io.dev
            .write_chunk(slot, &m, dl.next(), io.bufs.chunk(want))?;
        dl.chunk_written(io.out);
    }
    Ok(())
}
