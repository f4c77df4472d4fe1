//! The in-memory update server: the release and its manifest in RAM, check-ins answered as
//! the [`Script`] says, image requests with the [`ServerFaults`] the updater's tests ask for.

use std::borrow::Cow;

use super::Counted;
use super::{Script, Setup};
use crate::device::Device;
use crate::http::ResponseHead;
use crate::manifest::Manifest;
use crate::state::BootState;
use crate::updater::{Action, Input};
use crate::{Reason, Version};

/// Faults the in-memory server plays on image requests (the updater's own tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerFaults {
    /// Answer ranged image requests with the full body (200).
    pub ignore_range: bool,
    /// Answer this many image requests with 503, `Retry-After: retry_after_s` when given.
    pub unavailable: u32,
    pub retry_after_s: Option<u64>,
    /// Give no answer at all to this many image requests (the host's wait runs out).
    pub stalls: u32,
    /// Cut the body of this many image requests after `cut_after` bytes.
    pub truncations: u32,
    pub cut_after: usize,
    /// Damage every image response: flip the bytes at image offsets `start..start + len`
    /// (they never match their chunk hash, however often they are fetched).
    pub corrupt: Option<(u32, u32)>,
}

/// An in-memory update server and the clock of one simulated board: it answers check-ins
/// by the script, serves the manifest and the image, and plays [`ServerFaults`].
pub struct MemServer<'s> {
    pub setup: &'s Setup,
    pub script: Script,
    pub faults: ServerFaults,
    /// Image requests seen: when (simulated ms) and their ranges.
    pub image_requests: Vec<(u64, Option<(u32, u32)>)>,
    /// The simulated clock at the request being answered.
    pub(super) now: u64,
    rollback_sent: bool,
    /// The release's version (as its manifest says).
    release: Version,
    /// The device fetched the release's manifest.
    manifest_fetched: bool,
    /// A check-in reported a failure that blames the release (a refusal, bytes that never
    /// matched their hash), after fetching it: like the real server, never offer it to this
    /// device again.
    failed: bool,
    /// Stop offering a release a device reported failing (as the real server does); `false`
    /// plays a server that ignores such reports.
    pub heed_reports: bool,
    /// The last check-in was answered `none`: the device has nothing left to do.
    pub quiet: bool,
}

const MANIFEST_URL: &str = "/v1/manifest/v2";

impl<'s> MemServer<'s> {
    pub fn new(setup: &'s Setup, script: Script) -> Self {
        Self {
            setup,
            script,
            faults: setup.faults,
            image_requests: Vec::new(),
            now: 0,
            rollback_sent: false,
            release: setup.versions().1,
            manifest_fetched: false,
            failed: false,
            heed_reports: true,
            quiet: false,
        }
    }

    fn head(status: u16, fields: &str) -> ResponseHead {
        let text = format!("HTTP/1.1 {status} X\r\n{fields}\r\n");
        crate::http::parse_head(text.as_bytes()).unwrap_or_default()
    }

    /// Plays one action of a board running `running` with state record `st` against this
    /// server.
    pub(super) fn respond(
        &mut self,
        action: &Action<'_>,
        dev: &Device<'_, Counted>,
        running: Version,
        st: &BootState,
    ) -> Reply<'s> {
        let ok = |body: Cow<'s, [u8]>| Reply::Response {
            head: Self::head(200, &format!("Content-Length: {}\r\n", body.len())),
            body,
            cut: false,
        };
        match action {
            Action::SendCheckin(req) => {
                let v2 = self.release;
                if self.script == Script::FailedTrial
                    && running == v2
                    && req.state == crate::checkin::DeviceState::Trial
                {
                    // The new image never reaches the server.
                    return Reply::Failed(Reason::Connect);
                }
                if self.manifest_fetched
                    && self.heed_reports
                    && req
                        .last_error
                        .as_deref()
                        .and_then(Reason::from_name)
                        .is_some_and(Reason::blames_release)
                {
                    self.failed = true;
                }
                let offer = match self.script {
                    Script::Update | Script::FailedTrial | Script::Rollback => {
                        Manifest::parse(&self.setup.manifest)
                            .is_ok_and(|m| running < v2 && dev.plan(st, running, &m).is_ok())
                    }
                    // Offered as a real server offers it, whether the device wants it or not.
                    Script::Refused => running < v2 && !self.failed,
                    Script::RollbackRefused | Script::NoOp => false,
                };
                // Like a real server, a rollback is commanded until the device reports the
                // older image (a cut may undo a command the device had received).
                let command = if (self.script == Script::Rollback && running == v2)
                    || (self.script == Script::RollbackRefused && !self.rollback_sent)
                {
                    self.rollback_sent = true;
                    r#"{"command":"rollback"}"#.to_string()
                } else if offer && !(self.script == Script::Rollback && self.rollback_sent) {
                    format!(r#"{{"command":"update","manifest_url":"{MANIFEST_URL}"}}"#)
                } else {
                    self.quiet = true;
                    r#"{"command":"none"}"#.to_string()
                };
                ok(command.into_bytes().into())
            }
            Action::Fetch { url, .. } if *url == MANIFEST_URL => {
                self.manifest_fetched = true;
                ok(self.setup.manifest.as_slice().into())
            }
            Action::Fetch { range, .. } => {
                self.image_requests.push((self.now, *range));
                let f = &mut self.faults;
                if f.stalls > 0 {
                    f.stalls -= 1;
                    return Reply::Silence;
                }
                if f.unavailable > 0 {
                    f.unavailable -= 1;
                    let ra = f
                        .retry_after_s
                        .map(|s| format!("Retry-After: {s}\r\n"))
                        .unwrap_or_default();
                    return Reply::Response {
                        head: Self::head(503, &format!("Content-Length: 0\r\n{ra}")),
                        body: Cow::Borrowed(&[]),
                        cut: false,
                    };
                }
                let image: &'s [u8] = &self.setup.v2;
                let total = image.len();
                let (status, from, to) = match range {
                    Some((a, b)) if !f.ignore_range => (206, *a as usize, *b as usize + 1),
                    _ => (200, 0, total),
                };
                let body = image.get(from..to.min(total)).unwrap_or_default();
                let mut fields = format!("Content-Length: {}\r\n", body.len());
                if status == 206 {
                    fields.push_str(&format!(
                        "Content-Range: bytes {from}-{}/{total}\r\n",
                        to - 1
                    ));
                }
                let cut = f.truncations > 0;
                let body = if cut {
                    f.truncations -= 1;
                    &body[..f.cut_after.min(body.len())]
                } else {
                    body
                };
                let body = match f.corrupt {
                    Some((start, len)) => {
                        let mut damaged = body.to_vec();
                        let (start, end) = (start as usize, start as usize + len as usize);
                        for (i, b) in damaged.iter_mut().enumerate() {
                            if (start..end).contains(&(from + i)) {
                                *b ^= 0xA5;
                            }
                        }
                        Cow::Owned(damaged)
                    }
                    None => Cow::Borrowed(body),
                };
                Reply::Response {
                    head: Self::head(status, &fields),
                    body,
                    cut,
                }
            }
            _ => Reply::Silence,
        }
    }
}

/// Body bytes the in-memory server hands over in one piece (a network delivers smaller ones;
/// the machine takes any split, and fewer pieces keep the sweep fast).
const PIECE: usize = 16 * 1024;

/// What the in-memory server did with a request.
pub(super) enum Reply<'s> {
    /// A response; `cut`: the connection dropped after `body`.
    Response {
        head: ResponseHead,
        body: Cow<'s, [u8]>,
        cut: bool,
    },
    /// The request failed before any response.
    Failed(Reason),
    /// No answer at all.
    Silence,
}

impl Reply<'_> {
    /// The inputs a board's network stack hands the machine for this reply (the body in
    /// pieces, as a network delivers it).
    pub(super) fn inputs(&self) -> Vec<Input<'_>> {
        match self {
            Self::Response { head, body, cut } => {
                let mut inputs = vec![Input::ResponseHead(*head)];
                inputs.extend(body.chunks(PIECE).map(Input::BodyBytes));
                inputs.push(if *cut {
                    Input::NetError(Reason::ShortBody)
                } else {
                    Input::BodyEnd
                });
                inputs
            }
            Self::Failed(r) => vec![Input::NetError(*r)],
            Self::Silence => Vec::new(),
        }
    }
}
