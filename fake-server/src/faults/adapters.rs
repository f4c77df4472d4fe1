//! Body adapters: each fault that acts on a response body is one small wrapper around another
//! body, so faults compose (`Tracked(Cut(Throttle(Corrupt(Once(bytes)))))`) and each can be
//! tested against an in-memory body.
//!
//! Positions are body-relative byte counts. Adapters split frames at the exact byte a fault
//! starts, so "1000 bytes" means 1000 bytes on the wire. A fault reports the moment it takes
//! effect through an [`EventSink`]; [`Tracked`] reports how the body ended.
//!
//! The clean path (no fault) is `Tracked(Once(bytes))`: one frame that shares the cached file's
//! memory; no byte is copied by the server.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Every response body, once wrapped.
pub type BoxedBody = http_body_util::combinators::UnsyncBoxBody<Bytes, io::Error>;

/// What one poll of a body yields.
type FramePoll = Poll<Option<io::Result<Frame<Bytes>>>>;

/// A duplicate of the connection's socket: lets a fault reset the connection (RST) or write
/// bytes that HTTP framing would not let through.
pub type RawSocket = Arc<std::net::TcpStream>;

/// Where body adapters report what happened.
pub trait EventSink: Send + Sync {
    /// A fault took effect after `bytes_sent` body bytes.
    fn fault(&self, tag: &Tag, bytes_sent: u64);
    /// The body ended: `bytes_sent` bytes went to the connection; `aborted` when fewer than
    /// declared, or the body failed.
    fn complete(&self, bytes_sent: u64, aborted: bool);
}

/// A shared event sink.
pub type Sink = Arc<dyn EventSink>;

/// Which rule a fault comes from, and how it is described in events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub rule: usize,
    pub label: String,
}

/// How long a body waits before ending the connection, so that every byte already handed to
/// hyper is flushed to the socket first (hyper discards its write buffer on a body error).
pub const FLUSH_PAUSE: Duration = Duration::from_millis(20);

/// A body of one in-memory frame.
#[derive(Debug, Default)]
pub struct Once {
    data: Option<Bytes>,
    len: u64,
}

impl Once {
    pub fn new(data: Bytes) -> Self {
        let len = data.len() as u64;
        Self {
            data: (!data.is_empty()).then_some(data),
            len,
        }
    }
}

impl Body for Once {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> FramePoll {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Bytes read from disk per frame when streaming a file.
pub const FILE_CHUNK: usize = 64 * 1024;

type OpenFuture = Pin<Box<dyn std::future::Future<Output = io::Result<tokio::fs::File>> + Send>>;

enum FileState {
    Opening(OpenFuture),
    Reading(tokio::fs::File),
    Done,
}

/// A body streamed from disk: `len` bytes of `path` from `start`, in frames of
/// [`FILE_CHUNK`] bytes, so that memory stays bounded whatever the file size.
pub struct FileChunks {
    state: FileState,
    remaining: u64,
    len: u64,
}

impl FileChunks {
    pub fn new(path: std::path::PathBuf, start: u64, len: u64) -> Self {
        let open = async move {
            use tokio::io::AsyncSeekExt as _;
            let mut f = tokio::fs::File::open(&path).await?;
            f.seek(io::SeekFrom::Start(start)).await?;
            Ok(f)
        };
        Self {
            state: FileState::Opening(Box::pin(open)),
            remaining: len,
            len,
        }
    }
}

impl Body for FileChunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        loop {
            if this.remaining == 0 {
                this.state = FileState::Done;
            }
            match &mut this.state {
                FileState::Done => return Poll::Ready(None),
                FileState::Opening(open) => match ready!(open.as_mut().poll(cx)) {
                    Ok(f) => this.state = FileState::Reading(f),
                    Err(e) => {
                        this.state = FileState::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                FileState::Reading(file) => {
                    let want = usize::try_from(this.remaining)
                        .unwrap_or(usize::MAX)
                        .min(FILE_CHUNK);
                    let mut buf = vec![0u8; want];
                    let mut read_buf = tokio::io::ReadBuf::new(&mut buf);
                    ready!(tokio::io::AsyncRead::poll_read(
                        Pin::new(file),
                        cx,
                        &mut read_buf
                    ))?;
                    let n = read_buf.filled().len();
                    if n == 0 {
                        this.state = FileState::Done;
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the image file shrank while it was being served",
                        ))));
                    }
                    buf.truncate(n);
                    this.remaining -= n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Pulls data out of an inner body in pieces no larger than asked for (splitting frames
/// without copying), counts the bytes that went through, and reports the fault of the adapter
/// it feeds under that adapter's tag.
struct Feed<B> {
    inner: B,
    rest: Option<Bytes>,
    pos: u64,
    ended: bool,
    tag: Tag,
    sink: Sink,
}

impl<B: Inner> Feed<B> {
    /// The next at most `max` bytes (`max` ≥ 1); `None` at the end of the inner body.
    fn poll_take(&mut self, cx: &mut Context<'_>, max: u64) -> Poll<Option<io::Result<Bytes>>> {
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        loop {
            if let Some(mut rest) = self.rest.take() {
                let chunk = if rest.len() <= max {
                    rest
                } else {
                    let head = rest.split_to(max);
                    self.rest = Some(rest);
                    head
                };
                self.pos += chunk.len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                None => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                // Trailers are not used by this server; empty frames carry nothing.
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        self.rest = Some(data);
                    }
                }
            }
        }
    }

    /// The next at most `max` bytes, passed on unchanged as a frame.
    fn poll_pass(&mut self, cx: &mut Context<'_>, max: u64) -> FramePoll {
        data(ready!(self.poll_take(cx, max)))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Feed<B> {
    /// The fault took effect after `bytes_sent` body bytes.
    fn report(&self, bytes_sent: u64) {
        self.sink.fault(&self.tag, bytes_sent);
    }

    /// Ends the body with an error, which makes hyper close the connection.
    fn abort(&self) -> FramePoll {
        Poll::Ready(Some(Err(aborted(&self.tag.label))))
    }
}

fn data(chunk: Option<io::Result<Bytes>>) -> FramePoll {
    Poll::Ready(chunk.map(|c| c.map(Frame::data)))
}

fn aborted(label: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, format!("fault: {label}"))
}

fn sleep_for(pause: Duration) -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(pause))
}

/// A body an adapter can wrap.
trait Inner: Body<Data = Bytes, Error = io::Error> + Unpin {}

impl<B: Body<Data = Bytes, Error = io::Error> + Unpin> Inner for B {}

/// What is specific to one fault: its parameters and state, and how it turns the bytes of its
/// [`Feed`] into frames.
trait Fault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll;
}

/// A body adapter: one fault `F` ([`Corrupt`], [`StallAfter`], [`Throttle`], [`Cut`],
/// [`Spill`]) applied to an inner body `B`.
pub struct Adapter<B, F> {
    feed: Feed<B>,
    fault: F,
}

impl<B, F> Adapter<B, F> {
    fn with(inner: B, tag: Tag, sink: Sink, fault: F) -> Self {
        Self {
            feed: Feed {
                inner,
                rest: None,
                pos: 0,
                ended: false,
                tag,
                sink,
            },
            fault,
        }
    }
}

impl<B, F> Body for Adapter<B, F>
where
    B: Body<Data = Bytes, Error = io::Error> + Unpin,
    F: Fault + Unpin,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        this.fault.poll_frame(&mut this.feed, cx)
    }

    fn size_hint(&self) -> SizeHint {
        self.feed.size_hint()
    }
}

/// Flips every bit of body bytes `start..end` (`corrupt`). Only those bytes are copied.
pub type Corrupt<B> = Adapter<B, CorruptFault>;

/// The state of a [`Corrupt`] adapter.
pub struct CorruptFault {
    start: u64,
    end: u64,
    reported: bool,
}

impl<B> Corrupt<B> {
    pub fn new(inner: B, start: u64, end: u64, tag: Tag, sink: Sink) -> Self {
        let fault = CorruptFault {
            start,
            end,
            reported: false,
        };
        Self::with(inner, tag, sink, fault)
    }
}

impl Fault for CorruptFault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll {
        let pos = feed.pos;
        let (inside, max) = if pos < self.start {
            (false, self.start - pos)
        } else if pos < self.end {
            (true, self.end - pos)
        } else {
            (false, u64::MAX)
        };
        match ready!(feed.poll_take(cx, max)) {
            Some(Ok(chunk)) if inside => {
                if !self.reported {
                    self.reported = true;
                    feed.report(pos);
                }
                let flipped: Vec<u8> = chunk.iter().map(|b| !b).collect();
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(flipped)))))
            }
            other => data(other),
        }
    }
}

enum Stall {
    Before,
    Sleeping(Pin<Box<tokio::time::Sleep>>),
    After,
}

/// Sends `at` bytes, goes silent for `pause`, then continues (`stall_after` + `for`). The fault
/// event is emitted when the silence starts.
pub type StallAfter<B> = Adapter<B, StallFault>;

/// The state of a [`StallAfter`] adapter.
pub struct StallFault {
    at: u64,
    pause: Duration,
    state: Stall,
}

impl<B> StallAfter<B> {
    pub fn new(inner: B, at: u64, pause: Duration, tag: Tag, sink: Sink) -> Self {
        let state = Stall::Before;
        Self::with(inner, tag, sink, StallFault { at, pause, state })
    }
}

impl Fault for StallFault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll {
        loop {
            match &mut self.state {
                Stall::Before if feed.pos >= self.at => {
                    feed.report(feed.pos);
                    self.state = Stall::Sleeping(sleep_for(self.pause));
                }
                Stall::Before => {
                    let max = self.at - feed.pos;
                    match ready!(feed.poll_take(cx, max)) {
                        // The body is shorter than `at`: stall at its end.
                        None => self.at = feed.pos,
                        other => return data(other),
                    }
                }
                Stall::Sleeping(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = Stall::After;
                }
                Stall::After => return feed.poll_pass(cx, u64::MAX),
            }
        }
    }
}

/// Limits the body to `bytes_per_sec` (`throttle`): slices of about 1/20 s, paced against a
/// deadline so the average rate is exact.
pub type Throttle<B> = Adapter<B, ThrottleFault>;

/// The state of a [`Throttle`] adapter.
pub struct ThrottleFault {
    rate: u64,
    started: Option<Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> Throttle<B> {
    pub fn new(inner: B, bytes_per_sec: u64, tag: Tag, sink: Sink) -> Self {
        let fault = ThrottleFault {
            rate: bytes_per_sec.max(1),
            started: None,
            sleep: None,
        };
        Self::with(inner, tag, sink, fault)
    }
}

impl Fault for ThrottleFault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll {
        if let Some(sleep) = &mut self.sleep {
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        let slice = (self.rate / 20).max(1);
        let chunk = ready!(feed.poll_take(cx, slice));
        if let Some(Ok(_)) = &chunk {
            let started = *self.started.get_or_insert_with(|| {
                feed.report(0);
                Instant::now()
            });
            let due = started + Duration::from_secs_f64(feed.pos as f64 / self.rate as f64);
            self.sleep = Some(Box::pin(tokio::time::sleep_until(due.into())));
        }
        data(chunk)
    }
}

enum CutState {
    Sending,
    Flushing(Pin<Box<tokio::time::Sleep>>),
    Done,
}

/// Sends exactly `at` bytes, then ends the connection: FIN, or RST when given a socket to
/// reset (`truncate_at`, `drop_after`, and the end of a body shorter than its declared length).
/// The fault event is emitted at the cut, after the bytes before it were flushed.
pub type Cut<B> = Adapter<B, CutFault>;

/// The state of a [`Cut`] adapter.
pub struct CutFault {
    at: u64,
    reset: Option<RawSocket>,
    state: CutState,
}

impl<B> Cut<B> {
    pub fn new(inner: B, at: u64, tag: Tag, sink: Sink, reset: Option<RawSocket>) -> Self {
        let state = CutState::Sending;
        Self::with(inner, tag, sink, CutFault { at, reset, state })
    }
}

impl Fault for CutFault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll {
        loop {
            match &mut self.state {
                CutState::Sending if feed.pos < self.at => {
                    let max = self.at - feed.pos;
                    match ready!(feed.poll_take(cx, max)) {
                        None => self.state = CutState::Flushing(sleep_for(FLUSH_PAUSE)),
                        other => return data(other),
                    }
                }
                CutState::Sending => self.state = CutState::Flushing(sleep_for(FLUSH_PAUSE)),
                CutState::Flushing(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = CutState::Done;
                    feed.report(feed.pos);
                    if let Some(sock) = self.reset.take()
                        && let Err(e) =
                            socket2::SockRef::from(&*sock).set_linger(Some(Duration::ZERO))
                    {
                        tracing::warn!("cannot arm the RST for {}: {e}", feed.tag.label);
                    }
                    return feed.abort();
                }
                CutState::Done => return Poll::Ready(None),
            }
        }
    }
}

enum SpillState {
    Passing,
    Flushing(Pin<Box<tokio::time::Sleep>>),
    Writing(Bytes),
    Waiting(Pin<Box<tokio::time::Sleep>>, Bytes),
    Done,
}

/// For a declared length `declared` shorter than the body (`content_length: "-N"`): hands
/// hyper `declared - 1` bytes, then writes the whole rest of the body straight to the socket
/// (HTTP framing would stop at the declared length) and closes the connection. A client that
/// trusts Content-Length stops early; one that reads to EOF gets the real body.
pub type Spill<B> = Adapter<B, SpillFault>;

/// The state of a [`Spill`] adapter.
pub struct SpillFault {
    handoff: u64,
    raw: RawSocket,
    state: SpillState,
    written: u64,
    deadline: Option<Instant>,
}

/// Longest a spill keeps retrying a full socket.
const SPILL_TIMEOUT: Duration = Duration::from_secs(30);

impl<B> Spill<B> {
    /// `declared` must be at least 1 (with 0, hyper never asks for the body).
    pub fn new(inner: B, declared: u64, tag: Tag, sink: Sink, raw: RawSocket) -> Self {
        let fault = SpillFault {
            handoff: declared.saturating_sub(1),
            raw,
            state: SpillState::Passing,
            written: 0,
            deadline: None,
        };
        Self::with(inner, tag, sink, fault)
    }
}

impl Fault for SpillFault {
    fn poll_frame<B: Inner>(&mut self, feed: &mut Feed<B>, cx: &mut Context<'_>) -> FramePoll {
        use std::io::Write as _;
        loop {
            match std::mem::replace(&mut self.state, SpillState::Done) {
                SpillState::Passing if feed.pos < self.handoff => {
                    self.state = SpillState::Passing;
                    let max = self.handoff - feed.pos;
                    return feed.poll_pass(cx, max);
                }
                SpillState::Passing => self.state = SpillState::Flushing(sleep_for(FLUSH_PAUSE)),
                SpillState::Flushing(mut sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        self.state = SpillState::Flushing(sleep);
                        return Poll::Pending;
                    }
                    feed.report(feed.pos);
                    self.deadline = Some(Instant::now() + SPILL_TIMEOUT);
                    self.state = SpillState::Writing(Bytes::new());
                }
                SpillState::Writing(mut buf) => {
                    if buf.is_empty() {
                        match feed.poll_take(cx, u64::MAX) {
                            Poll::Pending => {
                                self.state = SpillState::Writing(buf);
                                return Poll::Pending;
                            }
                            Poll::Ready(Some(Ok(next))) => buf = next,
                            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                            Poll::Ready(None) => {
                                // Everything is out: close the connection (FIN).
                                tracing::debug!(written = self.written, "spill done");
                                return feed.abort();
                            }
                        }
                    }
                    match (&*self.raw).write(&buf) {
                        Ok(n) => {
                            self.written += n as u64;
                            let _ = buf.split_to(n);
                            self.state = SpillState::Writing(buf);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if self.deadline.is_some_and(|d| Instant::now() > d) {
                                return feed.abort();
                            }
                            self.state =
                                SpillState::Waiting(sleep_for(Duration::from_millis(2)), buf);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            self.state = SpillState::Writing(buf);
                        }
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                SpillState::Waiting(mut sleep, buf) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        self.state = SpillState::Waiting(sleep, buf);
                        return Poll::Pending;
                    }
                    self.state = SpillState::Writing(buf);
                }
                SpillState::Done => return Poll::Ready(None),
            }
        }
    }
}

/// The outermost adapter: declares the length hyper frames the response with, counts the bytes
/// handed to the connection and reports how the body ended when it is dropped.
pub struct Tracked<B> {
    inner: B,
    declared: u64,
    sent: u64,
    failed: bool,
    ended: bool,
    sink: Sink,
}

impl<B> Tracked<B>
where
    B: Body<Data = Bytes, Error = io::Error> + Unpin,
{
    pub fn new(inner: B, declared: u64, sink: Sink) -> Self {
        Self {
            inner,
            declared,
            sent: 0,
            failed: false,
            ended: false,
            sink,
        }
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes, Error = io::Error> + Unpin,
{
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.ended = true,
            Some(Err(_)) => this.failed = true,
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    this.sent += d.len() as u64;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared)
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        let finished = !self.failed && (self.ended || self.sent >= self.declared);
        self.sink.complete(self.sent, !finished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Records (label, bytes, when) for faults and `complete` events.
    #[derive(Default)]
    struct Log(Mutex<Vec<(String, u64, Instant)>>);

    impl EventSink for Log {
        fn fault(&self, tag: &Tag, bytes_sent: u64) {
            self.push(tag.label.clone(), bytes_sent);
        }
        fn complete(&self, bytes_sent: u64, aborted: bool) {
            self.push(format!("complete aborted={aborted}"), bytes_sent);
        }
    }

    impl Log {
        fn push(&self, label: String, n: u64) {
            self.0.lock().expect("log").push((label, n, Instant::now()));
        }
        fn events(&self) -> Vec<(String, u64)> {
            self.0
                .lock()
                .expect("log")
                .iter()
                .map(|(l, n, _)| (l.clone(), *n))
                .collect()
        }
        fn at(&self, i: usize) -> Instant {
            self.0.lock().expect("log")[i].2
        }
    }

    fn tag(label: &str) -> Tag {
        Tag {
            rule: 0,
            label: label.into(),
        }
    }

    fn payload(n: usize) -> Bytes {
        (0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
    }

    /// An in-memory body delivered in frames of `size` bytes (like chunked file reads).
    struct Frames(VecDeque<Bytes>);

    fn frames(data: &Bytes, size: usize) -> Frames {
        Frames(
            (0..data.len())
                .step_by(size)
                .map(|i| data.slice(i..(i + size).min(data.len())))
                .collect(),
        )
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
            Poll::Ready(self.0.pop_front().map(|d| Ok(Frame::data(d))))
        }
    }

    /// The frames of a body, and whether it ended with an error.
    async fn drain<B>(mut body: B) -> (Vec<Bytes>, bool)
    where
        B: Body<Data = Bytes, Error = io::Error> + Unpin,
    {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        out.push(d);
                    }
                }
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[tokio::test]
    async fn file_chunks_stream_a_window_of_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.bin");
        let data = payload(3 * FILE_CHUNK + 123);
        std::fs::write(&path, &data).expect("write");
        let (parts, failed) =
            drain(FileChunks::new(path.clone(), 1000, 2 * FILE_CHUNK as u64)).await;
        assert!(!failed);
        assert!(parts.iter().all(|p| p.len() <= FILE_CHUNK));
        assert_eq!(concat(&parts), &data[1000..1000 + 2 * FILE_CHUNK]);
        // Asking for more than the file holds is an error, not a short success.
        let (parts, failed) = drain(FileChunks::new(path, 100, data.len() as u64)).await;
        assert!(failed);
        assert_eq!(concat(&parts), &data[100..]);
        let (_, failed) = drain(FileChunks::new(dir.path().join("none"), 0, 5)).await;
        assert!(failed, "a missing file fails the body");
    }

    #[tokio::test]
    async fn clean_body_is_one_shared_frame() {
        let log = Arc::new(Log::default());
        let data = payload(5000);
        let body = Tracked::new(Once::new(data.clone()), 5000, log.clone());
        let (parts, failed) = drain(body).await;
        assert!(!failed);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].as_ptr(),
            data.as_ptr(),
            "no copy on the clean path"
        );
        assert_eq!(log.events(), [("complete aborted=false".to_string(), 5000)]);
    }

    #[tokio::test]
    async fn truncate_sends_exactly_n_bytes_then_fails() {
        let log = Arc::new(Log::default());
        let data = payload(10_000);
        let started = Instant::now();
        let body = Tracked::new(
            Cut::new(frames(&data, 4096), 1000, tag("cut"), log.clone(), None),
            10_000,
            log.clone(),
        );
        let (parts, failed) = drain(body).await;
        assert!(failed, "the connection must end");
        assert_eq!(concat(&parts), &data[..1000]);
        assert_eq!(
            log.events(),
            [
                ("cut".to_string(), 1000),
                ("complete aborted=true".to_string(), 1000)
            ]
        );
        assert!(log.at(0) >= started + FLUSH_PAUSE, "flush before the cut");
        // A cut past the end sends everything, then still closes.
        let (parts, failed) = drain(Cut::new(
            Once::new(data.clone()),
            20_000,
            tag("cut"),
            log.clone(),
            None,
        ))
        .await;
        assert!(failed);
        assert_eq!(concat(&parts), data);
    }

    #[tokio::test]
    async fn stall_pauses_at_the_exact_byte_and_continues() {
        let log = Arc::new(Log::default());
        let data = payload(3000);
        let mut body = StallAfter::new(
            Once::new(data.clone()),
            100,
            Duration::from_millis(200),
            tag("stall"),
            log.clone(),
        );
        let first = body.frame().await.expect("frame").expect("data");
        assert_eq!(first.data_ref().map(Bytes::len), Some(100));
        let before = Instant::now();
        let (rest, failed) = drain(body).await;
        assert!(!failed);
        assert!(before.elapsed() >= Duration::from_millis(190));
        assert_eq!(concat(&rest), &data[100..]);
        assert_eq!(log.events(), [("stall".to_string(), 100)]);
        assert!(
            log.at(0) <= before + Duration::from_millis(50),
            "event when the stall starts"
        );
    }

    #[tokio::test]
    async fn throttle_holds_the_rate() {
        let log = Arc::new(Log::default());
        let data = payload(20_000);
        let started = Instant::now();
        let (parts, failed) = drain(Throttle::new(
            frames(&data, 7000),
            100_000,
            tag("throttle"),
            log.clone(),
        ))
        .await;
        let took = started.elapsed();
        assert!(!failed);
        assert_eq!(concat(&parts), data);
        assert!(parts.iter().all(|p| p.len() <= 5000), "slices of 1/20 s");
        assert!(
            (Duration::from_millis(190)..Duration::from_millis(600)).contains(&took),
            "20 kB at 100 kB/s: {took:?}"
        );
        assert_eq!(log.events(), [("throttle".to_string(), 0)]);
    }

    #[tokio::test]
    async fn corrupt_flips_exactly_the_range_across_frames() {
        let log = Arc::new(Log::default());
        let data = payload(100);
        let (parts, failed) = drain(Corrupt::new(
            frames(&data, 11),
            10,
            25,
            tag("corrupt"),
            log.clone(),
        ))
        .await;
        assert!(!failed);
        let out = concat(&parts);
        let diff: Vec<usize> = (0..100).filter(|&i| out[i] != data[i]).collect();
        assert_eq!(diff, (10..25).collect::<Vec<_>>());
        assert!(diff.iter().all(|&i| out[i] == !data[i]));
        assert_eq!(log.events(), [("corrupt".to_string(), 10)]);
    }

    #[tokio::test]
    async fn adapters_compose() {
        let log = Arc::new(Log::default());
        let data = payload(10_000);
        let sink: Sink = log.clone();
        let body = Corrupt::new(Once::new(data.clone()), 0, 2, tag("corrupt"), sink.clone());
        let body = StallAfter::new(
            body,
            500,
            Duration::from_millis(50),
            tag("stall"),
            sink.clone(),
        );
        let body = Cut::new(body, 800, tag("cut"), sink.clone(), None);
        let (parts, failed) = drain(Tracked::new(body, 10_000, sink)).await;
        assert!(failed);
        let out = concat(&parts);
        assert_eq!(out.len(), 800);
        assert_eq!((out[0], out[1]), (!data[0], !data[1]));
        assert_eq!(&out[2..], &data[2..800]);
        assert_eq!(
            log.events(),
            [
                ("corrupt".to_string(), 0),
                ("stall".to_string(), 500),
                ("cut".to_string(), 800),
                ("complete aborted=true".to_string(), 800)
            ]
        );
    }

    #[tokio::test]
    async fn spill_writes_the_rest_past_the_declared_length() {
        use std::io::Read as _;
        let log = Arc::new(Log::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let data = payload(300_000);
        let raw = Arc::new(server);
        let reader = std::thread::spawn(move || {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got);
            got
        });
        let body = Spill::new(
            frames(&data, 65_536),
            1000,
            tag("spill"),
            log.clone(),
            Arc::clone(&raw),
        );
        let (parts, failed) = drain(body).await;
        assert!(failed, "the connection closes after the spill");
        assert_eq!(
            concat(&parts),
            &data[..999],
            "hyper gets declared - 1 bytes"
        );
        drop(raw);
        let got = reader.join().expect("reader");
        assert_eq!(got, &data[999..], "the socket gets all the rest");
        assert_eq!(log.events(), [("spill".to_string(), 999)]);
    }
}
