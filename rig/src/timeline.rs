//! The run's timeline: every component (power, console, HTTP server, flash, probe, rig steps)
//! appends events here, stamped from one monotonic origin per run.
//!
//! Readers never miss anything: an [`Cursor`] is an index into the append-only event list, so an
//! expectation that starts after a line was printed still sees it if its cursor was taken before
//! (the labgrid "lost boot output" problem cannot happen).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

/// What an event is about, with its details. One variant per lane of the HTML timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum EventKind {
    /// The board's power changed (`on` true/false), or a power-related note (min_off wait).
    Power { on: bool, detail: String },
    /// One console line, without its line ending (non-UTF-8 bytes replaced).
    Console { line: String },
    /// An HTTP request answered by the update server.
    Http {
        method: String,
        path: String,
        device: Option<String>,
        range: Option<String>,
        status: u16,
        bytes_sent: u64,
        /// The fault rule applied, as text (`truncate_at=1000`), if any.
        fault: Option<String>,
    },
    /// One flash operation of the board (sim: from its flash log).
    Flash {
        op: u64,
        kind: String,
        addr: u32,
        len: u32,
    },
    /// A debug-probe action or result.
    Probe { detail: String },
    /// A rig action: a scenario step starting or ending, a trigger firing, a verdict.
    Rig { detail: String },
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Time since the timeline's origin.
    #[serde(rename = "t_us", serialize_with = "as_micros")]
    pub t: Duration,
    /// The board the event belongs to, if any.
    pub board: Option<Arc<str>>,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Where one board's long-lived parts (console reader, power switch, flash log tail) report:
/// the timeline of the attempt that holds the board now. A simulated board lives for one
/// attempt and reports to it directly ([`BoardLane::fixed`]); a bench board outlives attempts,
/// so each attempt [`attach`](BoardLane::attach)es its timeline and detaches it at the end.
/// Events while no attempt holds the board (it is off between attempts) are dropped.
#[derive(Debug, Clone, Default)]
pub struct BoardLane {
    current: Arc<Mutex<Option<LaneTarget>>>,
}

/// The timeline a lane reports to, and the board name it reports as.
type LaneTarget = (Arc<Timeline>, Arc<str>);

impl BoardLane {
    /// A lane that always reports to `timeline` as `board`.
    pub fn fixed(timeline: Arc<Timeline>, board: Arc<str>) -> Self {
        let lane = Self::default();
        lane.attach(timeline, board);
        lane
    }

    /// From now on, report to `timeline` as `board`.
    pub fn attach(&self, timeline: Arc<Timeline>, board: Arc<str>) {
        *self.lock() = Some((timeline, board));
    }

    /// Stop reporting (events are dropped until the next attach).
    pub fn detach(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<LaneTarget>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn target(&self) -> Option<LaneTarget> {
        self.lock().clone()
    }

    /// Appends one event, stamped now.
    pub fn push(&self, kind: EventKind) {
        if let Some((t, board)) = self.target() {
            t.push(Some(&board), kind);
        }
    }

    /// Appends events that happened together (e.g. the lines of one console read), with one
    /// time stamp.
    pub fn push_all(&self, kinds: impl IntoIterator<Item = EventKind>) {
        if let Some((t, board)) = self.target() {
            let at = t.now();
            for kind in kinds {
                t.push_at(at, Some(&board), kind);
            }
        }
    }
}

/// A position in the timeline: events at or after it are "new" to its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor(pub usize);

/// An append-only, shareable event log with a single time origin.
#[derive(Debug)]
pub struct Timeline {
    origin: Instant,
    events: Mutex<Vec<Event>>,
    changed: Notify,
}

impl Timeline {
    pub fn new() -> Arc<Self> {
        Self::with_origin(Instant::now())
    }

    pub fn with_origin(origin: Instant) -> Arc<Self> {
        Arc::new(Self {
            origin,
            events: Mutex::new(Vec::new()),
            changed: Notify::new(),
        })
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Time since the origin.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        // A panic while holding the lock cannot leave the Vec inconsistent: keep going.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event stamped now.
    pub fn push(&self, board: Option<&Arc<str>>, kind: EventKind) -> Cursor {
        self.push_at(self.now(), board, kind)
    }

    /// Appends an event with an explicit time (e.g. a console line's arrival time).
    pub fn push_at(&self, t: Duration, board: Option<&Arc<str>>, kind: EventKind) -> Cursor {
        let at = {
            let mut events = self.lock();
            events.push(Event {
                t,
                board: board.cloned(),
                kind,
            });
            events.len() - 1
        };
        self.changed.notify_waiters();
        Cursor(at)
    }

    /// The position after the last event.
    pub fn cursor(&self) -> Cursor {
        Cursor(self.lock().len())
    }

    /// A copy of every event.
    pub fn snapshot(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// A copy of the events from `from` on.
    pub fn since(&self, from: Cursor) -> Vec<Event> {
        let events = self.lock();
        events
            .get(from.0..)
            .map(<[Event]>::to_vec)
            .unwrap_or_default()
    }

    /// Waits until an event at or after `from` satisfies `pred`, or `deadline` passes.
    /// Returns the matching event's cursor and a copy of it.
    pub async fn wait_for(
        &self,
        from: Cursor,
        deadline: tokio::time::Instant,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Option<(Cursor, Event)> {
        let mut scanned = from.0;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let events = self.lock();
                while scanned < events.len() {
                    if pred(&events[scanned]) {
                        return Some((Cursor(scanned), events[scanned].clone()));
                    }
                    scanned += 1;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> EventKind {
        EventKind::Console { line: s.into() }
    }

    #[tokio::test]
    async fn wait_sees_events_pushed_before_and_after_it_started() {
        let tl = Timeline::new();
        let start = tl.cursor();
        tl.push(None, line("early"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let got = tl
            .wait_for(start, deadline, |e| e.kind == line("early"))
            .await;
        assert_eq!(got.map(|(c, _)| c), Some(Cursor(0)));

        let tl2 = Arc::clone(&tl);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tl2.push(None, line("late"));
        });
        let got = tl
            .wait_for(start, deadline, |e| e.kind == line("late"))
            .await;
        assert_eq!(got.map(|(c, _)| c), Some(Cursor(1)));
        writer.await.expect("writer task");
    }

    #[tokio::test]
    async fn wait_times_out_without_a_match() {
        let tl = Timeline::new();
        tl.push(None, line("x"));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(30);
        assert!(tl.wait_for(Cursor(0), deadline, |_| false).await.is_none());
    }
}
