//! The response body for images: a slice of a cached file, with the request's body faults
//! applied as it streams. With no fault it is one zero-copy frame.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::Shared;

/// A body fault, resolved to exact byte positions of this response body.
#[derive(Debug, Clone)]
pub enum BodyFault {
    /// End the body after this many bytes (the connection closes: FIN).
    Cut {
        at: u64,
        rule: usize,
        label: String,
        reset: bool,
    },
    /// Pause after this many bytes.
    Stall {
        at: u64,
        pause: Duration,
        rule: usize,
        label: String,
    },
    /// Limit the rate.
    Throttle {
        bytes_per_sec: u64,
        rule: usize,
        label: String,
    },
    /// Flip every bit of body bytes `start..end` (body-relative).
    Flip {
        start: u64,
        end: u64,
        rule: usize,
        label: String,
    },
}

/// Closes a connection with a TCP RST when asked (SO_LINGER 0 on a duplicate of its socket).
pub type Resetter = Option<Arc<std::net::TcpStream>>;

/// An image body with faults.
pub struct FaultBody {
    data: Bytes,
    sent: u64,
    faults: Vec<BodyFault>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Vec<bool>,
    done: bool,
    id: u64,
    shared: Arc<Shared>,
    reset: Resetter,
    declared: u64,
    /// Set once the body paused so that hyper flushed every byte before a cut.
    flushed: bool,
}

/// How long a body pauses before ending the connection, so every byte already handed to hyper
/// reaches the socket first ("send exactly N bytes" must hold on the wire, not in a buffer).
const FLUSH_PAUSE: Duration = Duration::from_millis(15);

impl FaultBody {
    pub fn new(
        data: Bytes,
        faults: Vec<BodyFault>,
        id: u64,
        shared: Arc<Shared>,
        reset: Resetter,
        declared: u64,
    ) -> Self {
        let n = faults.len();
        Self {
            data,
            sent: 0,
            faults,
            sleep: None,
            stalled: vec![false; n],
            done: false,
            id,
            shared,
            reset,
            declared,
            flushed: false,
        }
    }

    /// Returns `Pending` once (a short timer) so hyper flushes, then `Ready`.
    fn flush_first(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.flushed {
            return Poll::Ready(());
        }
        self.flushed = true;
        let mut sleep = Box::pin(tokio::time::sleep(FLUSH_PAUSE));
        if sleep.as_mut().poll(cx).is_pending() {
            self.sleep = Some(sleep);
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    /// How many bytes may go out now, and whether a fault stops the body here.
    fn next_limit(&mut self) -> Result<u64, (usize, String, bool)> {
        let mut limit = self.data.len() as u64 - self.sent;
        for (i, f) in self.faults.iter().enumerate() {
            match f {
                BodyFault::Cut {
                    at,
                    rule,
                    label,
                    reset,
                } => {
                    if self.sent >= *at {
                        return Err((*rule, label.clone(), *reset));
                    }
                    limit = limit.min(at - self.sent);
                }
                BodyFault::Stall { at, .. } if !self.stalled[i] => {
                    if self.sent < *at {
                        limit = limit.min(at - self.sent);
                    }
                }
                BodyFault::Throttle { bytes_per_sec, .. } => {
                    // Send in slices of about 1/20 s at the configured rate.
                    limit = limit.min((*bytes_per_sec / 20).max(1));
                }
                BodyFault::Flip { start, end, .. } => {
                    // Keep flipped ranges in their own frames so the clean part stays zero-copy.
                    if self.sent < *start {
                        limit = limit.min(start - self.sent);
                    } else if self.sent < *end {
                        limit = limit.min(end - self.sent);
                    }
                }
                BodyFault::Stall { .. } => {}
            }
        }
        Ok(limit)
    }
}

impl Body for FaultBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(sleep) = &mut this.sleep {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        // Stalls due at this position start now.
        for i in 0..this.faults.len() {
            if let BodyFault::Stall {
                at,
                pause,
                rule,
                label,
            } = &this.faults[i]
                && !this.stalled[i]
                && this.sent >= *at
            {
                this.stalled[i] = true;
                this.shared.fault_event(this.id, *rule, label, this.sent);
                let mut sleep = Box::pin(tokio::time::sleep(*pause));
                if sleep.as_mut().poll(cx).is_pending() {
                    this.sleep = Some(sleep);
                    return Poll::Pending;
                }
            }
        }
        let limit = match this.next_limit() {
            Ok(l) => l,
            Err((rule, label, reset)) => {
                if this.flush_first(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                this.shared.fault_event(this.id, rule, &label, this.sent);
                if reset && let Some(sock) = this.reset.take() {
                    let _ = socket2::SockRef::from(&*sock).set_linger(Some(Duration::ZERO));
                }
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    format!("fault: {label}"),
                ))));
            }
        };
        if limit == 0 {
            if this.sent < this.declared && this.flush_first(cx).is_pending() {
                return Poll::Pending;
            }
            this.done = true;
            if this.sent < this.declared {
                // Content-Length promised more than the body holds (`content_length: +N`).
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "body shorter than the declared Content-Length",
                ))));
            }
            return Poll::Ready(None);
        }
        let start = this.sent as usize;
        let mut chunk = this.data.slice(start..start + limit as usize);
        for f in &this.faults {
            if let BodyFault::Flip {
                start: s,
                end: e,
                rule,
                label,
            } = f
                && this.sent >= *s
                && this.sent < *e
            {
                let mut v = chunk.to_vec();
                v.iter_mut().for_each(|b| *b = !*b);
                chunk = Bytes::from(v);
                this.shared.fault_event(this.id, *rule, label, this.sent);
            }
        }
        this.sent += limit;
        for f in &this.faults {
            if let BodyFault::Throttle {
                bytes_per_sec,
                rule,
                label,
            } = f
            {
                if this.sent == limit {
                    this.shared.fault_event(this.id, *rule, label, 0);
                }
                let pause = Duration::from_secs_f64(limit as f64 / *bytes_per_sec as f64);
                this.sleep = Some(Box::pin(tokio::time::sleep(pause)));
            }
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.faults.is_empty() && self.sent == self.data.len() as u64)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared)
    }
}

impl Drop for FaultBody {
    fn drop(&mut self) {
        let finished = self.sent == self.data.len() as u64 && self.sent >= self.declared;
        self.shared.complete_event(self.id, self.sent, !finished);
    }
}
