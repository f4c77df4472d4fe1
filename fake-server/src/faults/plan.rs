//! What the fired rules do to one response: a [`Plan`] sorts the actions into the ones that
//! change the response head (delay, status, range handling, length, file) and the body
//! adapters, and [`Plan::wrap`] builds the body.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::adapters::{
    BoxedBody, Corrupt, Cut, FileChunks, Once, RawSocket, Sink, Spill, StallAfter, Tag, Throttle,
    Tracked,
};
use super::{Action, LengthLie};

/// The fired rules of one request, sorted by what they touch.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    /// Waits before the response head (`latency` + jitter, `slow_headers`), in rule order.
    pub delays: Vec<(Tag, Duration)>,
    /// Answer with this status instead (`status`, `retry_after`).
    pub status: Option<(Tag, u16, Option<u64>)>,
    pub ignore_range: Option<Tag>,
    pub bad_content_range: Option<Tag>,
    pub length_lie: Option<(Tag, LengthLie)>,
    /// Serve this file instead (`serve`).
    pub serve: Option<(Tag, String)>,
    /// Serve the manifest with this field changed after signing (`tamper_manifest`).
    pub tamper: Option<(Tag, super::ManifestField)>,
    /// Body actions, in rule order.
    pub body: Vec<(Tag, Action)>,
}

/// Where a response body's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// In memory (a slice of a cached file, or a small generated body): sent without a copy.
    Memory(Bytes),
    /// Streamed from disk: `len` bytes of `path` from `start`.
    Disk {
        path: std::path::PathBuf,
        start: u64,
        len: u64,
    },
}

impl Source {
    pub fn len(&self) -> u64 {
        match self {
            Self::Memory(b) => b.len() as u64,
            Self::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_body(self) -> BoxedBody {
        match self {
            Self::Memory(b) => Once::new(b).boxed_unsync(),
            Self::Disk { path, start, len } => FileChunks::new(path, start, len).boxed_unsync(),
        }
    }
}

/// Where a response body sits in the resource: `start` is the absolute offset of its first
/// byte (a Range response starts inside the image; `corrupt` offsets are image offsets).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub start: u64,
}

impl Plan {
    /// Sorts fired `(rule index, action)` pairs; `request_id` seeds the latency jitter.
    pub fn new(fired: Vec<(usize, Action)>, request_id: u64) -> Self {
        let mut plan = Self::default();
        for (rule, action) in fired {
            let tag = Tag {
                rule,
                label: action.to_string(),
            };
            match action {
                Action::Latency { base, jitter } => {
                    plan.delays
                        .push((tag, base + jitter_for(request_id, jitter)));
                }
                Action::SlowHeaders(d) => plan.delays.push((tag, d)),
                Action::Status { code, retry_after } => {
                    plan.status.get_or_insert((tag, code, retry_after));
                }
                Action::IgnoreRange => {
                    plan.ignore_range.get_or_insert(tag);
                }
                Action::BadContentRange => {
                    plan.bad_content_range.get_or_insert(tag);
                }
                Action::ContentLength(lie) => {
                    plan.length_lie.get_or_insert((tag, lie));
                }
                Action::Serve(file) => {
                    plan.serve.get_or_insert((tag, file));
                }
                Action::TamperManifest(field) => {
                    plan.tamper.get_or_insert((tag, field));
                }
                other => plan.body.push((tag, other)),
            }
        }
        plan
    }

    /// The Content-Length to declare for a body of `real` bytes.
    pub fn declared_len(&self, real: u64) -> u64 {
        self.length_lie
            .as_ref()
            .map_or(real, |(_, lie)| lie.apply(real))
    }

    /// Builds the response body from `source` with every body fault of the plan. Without
    /// faults an in-memory body is `Tracked(Once(bytes))`: one frame, no copy.
    pub fn wrap(
        &self,
        source: Source,
        window: Window,
        sink: &Sink,
        raw: Option<&RawSocket>,
    ) -> BoxedBody {
        let real = source.len();
        let declared = self.declared_len(real);
        if self.body.is_empty() && declared == real {
            return match source {
                Source::Memory(data) => {
                    Tracked::new(Once::new(data), declared, sink.clone()).boxed_unsync()
                }
                disk => Tracked::new(disk.into_body(), declared, sink.clone()).boxed_unsync(),
            };
        }
        let mut body = source.into_body();
        // Innermost first: corruption, then stalls, throttles, then cuts, so each adapter sees
        // the same byte positions.
        for (tag, action) in &self.body {
            if let Action::Corrupt { offset, len } = action {
                let end = offset.saturating_add(*len);
                let (s, e) = ((*offset).max(window.start), end.min(window.start + real));
                if s < e {
                    let (s, e) = (s - window.start, e - window.start);
                    body = Corrupt::new(body, s, e, tag.clone(), sink.clone()).boxed_unsync();
                }
            }
        }
        for (tag, action) in &self.body {
            match action {
                Action::StallAfter { bytes, pause } => {
                    body = StallAfter::new(
                        body,
                        (*bytes).min(real),
                        *pause,
                        tag.clone(),
                        sink.clone(),
                    )
                    .boxed_unsync();
                }
                Action::Throttle { bytes_per_sec } => {
                    body = Throttle::new(body, *bytes_per_sec, tag.clone(), sink.clone())
                        .boxed_unsync();
                }
                _ => {}
            }
        }
        for (tag, action) in &self.body {
            let (at, reset) = match action {
                Action::TruncateAt(amount) => (amount.resolve(real), false),
                Action::DropAfter { bytes, reset } => ((*bytes).min(real), *reset),
                _ => continue,
            };
            let raw = if reset { raw.cloned() } else { None };
            body = Cut::new(body, at, tag.clone(), sink.clone(), raw).boxed_unsync();
        }
        if let Some((tag, _)) = &self.length_lie {
            if declared > real {
                // The body ends before the promised length: close after the real bytes.
                body = Cut::new(body, real, tag.clone(), sink.clone(), None).boxed_unsync();
            } else if declared < real {
                match raw {
                    Some(raw) if declared > 0 => {
                        body = Spill::new(body, declared, tag.clone(), sink.clone(), raw.clone())
                            .boxed_unsync();
                    }
                    // Without the socket (or with nothing declared) HTTP framing stops the
                    // body at the declared length.
                    _ => {}
                }
            }
        }
        Tracked::new(body, declared, sink.clone()).boxed_unsync()
    }
}

/// A deterministic jitter in `0..jitter` from the request id.
fn jitter_for(request_id: u64, jitter: Duration) -> Duration {
    let span = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
    if span == 0 {
        return Duration::ZERO;
    }
    let mut x = request_id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Duration::from_nanos((x ^ (x >> 31)) % span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Amount;

    #[test]
    fn sorts_actions_and_lies_about_lengths() {
        let plan = Plan::new(
            vec![
                (0, Action::TruncateAt(Amount::Bytes(10))),
                (
                    1,
                    Action::Latency {
                        base: Duration::from_millis(100),
                        jitter: Duration::from_millis(50),
                    },
                ),
                (2, Action::ContentLength(LengthLie::Plus(7))),
                (
                    3,
                    Action::Status {
                        code: 503,
                        retry_after: Some(2),
                    },
                ),
                (
                    4,
                    Action::Status {
                        code: 500,
                        retry_after: None,
                    },
                ),
            ],
            9,
        );
        assert_eq!(plan.body.len(), 1);
        assert_eq!(plan.delays.len(), 1);
        let d = plan.delays[0].1;
        assert!(
            (Duration::from_millis(100)..Duration::from_millis(150)).contains(&d),
            "{d:?}"
        );
        assert_eq!(plan.declared_len(100), 107);
        assert_eq!(
            plan.status.as_ref().map(|s| s.1),
            Some(503),
            "the first status rule wins"
        );
        assert_eq!(
            jitter_for(9, Duration::from_millis(50)),
            jitter_for(9, Duration::from_millis(50))
        );
    }
}
