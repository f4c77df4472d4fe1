//! The probe thread ([`ProbeWorker`]) and its channel-facing handle ([`ProbeHandle`]).
//!
//! The worker owns a blocking [`Driver`] (the probe-rs session on hardware, a fake in tests)
//! and serves one command at a time. Each command carries its own reply channel, so an answer
//! that arrives after the handle gave up ([`Error::Timeout`]) can never be mistaken for the
//! answer to a later command; until that late answer arrives, further calls fail fast with
//! [`Error::Busy`] instead of queueing behind a hung probe.
//!
//! Dropping the handle closes the command channel; the worker drops its driver (releasing the
//! USB device) and exits, and the handle joins it. A worker stuck inside a USB call for longer
//! than [`Timeouts::shutdown`] is left behind with an error log rather than hanging the rig;
//! it ends with the process.

use std::ops::Range;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::board::probe::{Error, FlashEvent, FlashReport, FlashRequest, Halted, Probe};

/// The largest memory read one call may ask for.
pub const MAX_READ: u64 = 1 << 20;

/// The blocking operations the worker thread performs on an attached target.
///
/// Implemented over `probe_rs::Session` (feature `probe`) and by fakes in tests. The driver
/// reports raw flash progress; the worker adds the cut-point pause on top.
pub trait Driver {
    /// Flashes `request.image`, calling `progress` as pages are programmed. When
    /// `request.cut_after` is set, each `Programmed` event must mean the page is in flash.
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(FlashEvent),
    ) -> Result<(), Error>;
    fn reset(&mut self) -> Result<(), Error>;
    fn reset_and_halt(&mut self) -> Result<Halted, Error>;
    fn halt(&mut self) -> Result<Halted, Error>;
    fn resume(&mut self) -> Result<(), Error>;
    /// Fills `buf` from target memory at `addr`.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error>;
    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error>;
    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error>;
    /// `Ok(None)` when the core still runs after `timeout`.
    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error>;
}

/// How long the handle waits for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Listing, opening the probe and attaching to the chip.
    pub attach: Duration,
    /// A simple command (reset, halt, breakpoint, small read).
    pub command: Duration,
    /// A whole flash, erase and verify included.
    pub flash: Duration,
    /// How long a cut point may keep the flash paused if the handle never answers.
    pub cut_pause: Duration,
    /// How long dropping the handle waits for the worker to exit.
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            attach: Duration::from_secs(30),
            command: Duration::from_secs(10),
            flash: Duration::from_secs(300),
            cut_pause: Duration::from_secs(60),
            shutdown: Duration::from_secs(5),
        }
    }
}

/// A request to the worker.
#[derive(Debug)]
enum Command {
    Flash(FlashRequest),
    Reset,
    ResetAndHalt,
    Halt,
    Resume,
    Read(Range<u64>),
    SetBreakpoint(u64),
    ClearBreakpoint(u64),
    WaitHalted(Duration),
}

impl Command {
    /// The operation's name in errors and spans.
    fn op(&self) -> &'static str {
        match self {
            Self::Flash(_) => "flash",
            Self::Reset => "reset",
            Self::ResetAndHalt => "reset-and-halt",
            Self::Halt => "halt",
            Self::Resume => "resume",
            Self::Read(_) => "read-memory",
            Self::SetBreakpoint(_) => "set-breakpoint",
            Self::ClearBreakpoint(_) => "clear-breakpoint",
            Self::WaitHalted(_) => "wait-halted",
        }
    }
}

/// A successful command's result.
#[derive(Debug)]
enum Answer {
    Done,
    Halted(Halted),
    MaybeHalted(Option<Halted>),
    Memory(Vec<u8>),
    Flashed(FlashReport),
}

/// What the worker sends back for one command: progress, then exactly one `Done`.
#[derive(Debug)]
enum Reply {
    Progress(FlashEvent),
    /// The flash is paused until `resume` gets a message or is dropped.
    CutPoint {
        programmed: u64,
        resume: Sender<()>,
    },
    Done(Result<Answer, Error>),
}

struct Envelope {
    command: Command,
    reply: Sender<Reply>,
}

/// A command the handle stopped waiting for.
struct Pending {
    op: &'static str,
    replies: Receiver<Reply>,
}

/// The probe thread's state: a driver and the cut-point policy.
pub struct ProbeWorker<D> {
    driver: D,
    cut_pause: Duration,
}

impl<D: Driver> ProbeWorker<D> {
    /// Starts a thread named `probe-{name}` that opens its driver with `open` (returning the
    /// driver and a one-line description of what it attached to) and serves commands. Waits
    /// up to `timeouts.attach` for `open`.
    pub fn spawn(
        name: &str,
        timeouts: Timeouts,
        open: impl FnOnce() -> Result<(D, String), Error> + Send + 'static,
    ) -> Result<ProbeHandle, Error> {
        let (commands, inbox) = mpsc::channel::<Envelope>();
        let (ready_tx, ready) = mpsc::channel::<Result<String, Error>>();
        let (exited_tx, exited) = mpsc::channel::<()>();
        let span = tracing::info_span!("probe", board = %name);
        let thread = std::thread::Builder::new()
            .name(format!("probe-{name}"))
            .spawn(move || {
                // Dropped last: the handle sees the exit only after the driver is gone.
                let _exited = exited_tx;
                let _span = span.entered();
                let (driver, description) = match open() {
                    Ok(ok) => ok,
                    Err(e) => {
                        tracing::warn!(error = %e, "probe attach failed");
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                tracing::info!(%description, "probe attached");
                if ready_tx.send(Ok(description)).is_err() {
                    return; // the handle gave up waiting
                }
                let worker = ProbeWorker {
                    driver,
                    cut_pause: timeouts.cut_pause,
                };
                worker.run(&inbox);
                tracing::debug!("probe worker stopping");
            })
            .map_err(|e| Error::Failed {
                op: "spawn",
                detail: format!("cannot start the probe thread: {e}"),
            })?;
        let mut handle = ProbeHandle {
            commands: Some(commands),
            thread: Some(thread),
            exited,
            timeouts,
            pending: None,
            description: String::new(),
        };
        match ready.recv_timeout(timeouts.attach) {
            Ok(Ok(description)) => {
                handle.description = description;
                Ok(handle)
            }
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout {
                op: "attach",
                after: timeouts.attach,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(Error::WorkerGone),
        }
    }

    fn run(mut self, inbox: &Receiver<Envelope>) {
        while let Ok(Envelope { command, reply }) = inbox.recv() {
            let op = command.op();
            let _span = tracing::debug_span!("probe_command", op).entered();
            let started = Instant::now();
            let result = self.serve(command, &reply);
            match &result {
                Ok(_) => tracing::debug!(ms = started.elapsed().as_millis(), "done"),
                Err(e) => tracing::warn!(error = %e, "probe command failed"),
            }
            // The handle may have given up: then nobody reads this.
            let _ = reply.send(Reply::Done(result));
        }
    }

    fn serve(&mut self, command: Command, reply: &Sender<Reply>) -> Result<Answer, Error> {
        let d = &mut self.driver;
        match command {
            Command::Flash(request) => self.flash(&request, reply).map(Answer::Flashed),
            Command::Reset => d.reset().map(|()| Answer::Done),
            Command::ResetAndHalt => d.reset_and_halt().map(Answer::Halted),
            Command::Halt => d.halt().map(Answer::Halted),
            Command::Resume => d.resume().map(|()| Answer::Done),
            Command::Read(range) => {
                let len = usize::try_from(range.end - range.start)
                    .map_err(|_| Error::Invalid(format!("cannot read {range:#x?}")))?;
                let mut buf = vec![0u8; len];
                d.read_memory(range.start, &mut buf)?;
                Ok(Answer::Memory(buf))
            }
            Command::SetBreakpoint(a) => d.set_breakpoint(a).map(|()| Answer::Done),
            Command::ClearBreakpoint(a) => d.clear_breakpoint(a).map(|()| Answer::Done),
            Command::WaitHalted(t) => d.wait_halted(t).map(Answer::MaybeHalted),
        }
    }

    /// Runs the driver's flash, forwarding progress and pausing at the cut point.
    fn flash(
        &mut self,
        request: &FlashRequest,
        reply: &Sender<Reply>,
    ) -> Result<FlashReport, Error> {
        let mut report = FlashReport::default();
        let cut_pause = self.cut_pause;
        let result = self.driver.flash(request, &mut |event| {
            let crossed = match &event {
                FlashEvent::Started { total } => {
                    report.total = *total;
                    request.cut_after == Some(0)
                }
                FlashEvent::Programmed { done, total } => {
                    report.programmed = *done;
                    report.total = *total;
                    request.cut_after.is_some_and(|n| *done >= n)
                }
                FlashEvent::Finished { programmed } => {
                    report.programmed = *programmed;
                    false
                }
                FlashEvent::CutPoint { .. } | FlashEvent::Note(_) => false,
            } && report.cut_at.is_none();
            let _ = reply.send(Reply::Progress(event));
            if crossed {
                report.cut_at = Some(report.programmed);
                pause_at_cut_point(reply, report.programmed, cut_pause);
            }
        });
        match result {
            Ok(()) => {
                report.completed = true;
                Ok(report)
            }
            Err(e) if report.cut_at.is_some() => {
                tracing::info!(error = %e, "flash stopped after the cut point");
                report.after_cut = Some(e.to_string());
                Ok(report)
            }
            Err(e) => Err(e),
        }
    }
}

/// Tells the handle about the cut point and blocks the flash until it answers (or hangs up,
/// or `limit` passes).
fn pause_at_cut_point(reply: &Sender<Reply>, programmed: u64, limit: Duration) {
    let (resume, resumed) = mpsc::channel();
    if reply.send(Reply::CutPoint { programmed, resume }).is_err() {
        return;
    }
    tracing::info!(programmed, "flash paused at the cut point");
    if let Err(RecvTimeoutError::Timeout) = resumed.recv_timeout(limit) {
        tracing::warn!(?limit, "nobody answered the cut point; flashing on");
    }
}

/// The rig's side of a probe thread: implements [`Probe`] by sending commands and waiting
/// for the answers with timeouts. Dropping it stops and joins the thread.
pub struct ProbeHandle {
    commands: Option<Sender<Envelope>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnects when the worker thread has exited.
    exited: Receiver<()>,
    timeouts: Timeouts,
    pending: Option<Pending>,
    description: String,
}

impl std::fmt::Debug for ProbeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeHandle")
            .field("description", &self.description)
            .field("pending", &self.pending.as_ref().map(|p| p.op))
            .finish_non_exhaustive()
    }
}

impl ProbeHandle {
    /// What the worker attached to (probe, serial, chip).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Fails fast while an earlier, timed-out command still occupies the worker.
    fn settle_pending(&mut self) -> Result<(), Error> {
        let Some(p) = &self.pending else {
            return Ok(());
        };
        loop {
            match p.replies.try_recv() {
                Ok(Reply::Done(late)) => {
                    tracing::warn!(op = p.op, ok = late.is_ok(), "late probe answer dropped");
                    self.pending = None;
                    return Ok(());
                }
                // Dropping `resume` lets a paused flash go on.
                Ok(Reply::Progress(_) | Reply::CutPoint { .. }) => {}
                Err(TryRecvError::Empty) => return Err(Error::Busy { op: p.op }),
                Err(TryRecvError::Disconnected) => {
                    self.pending = None;
                    return Err(Error::WorkerGone);
                }
            }
        }
    }

    fn send(&mut self, command: Command) -> Result<Receiver<Reply>, Error> {
        self.settle_pending()?;
        let (reply, replies) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or(Error::WorkerGone)?
            .send(Envelope { command, reply })
            .map_err(|_| Error::WorkerGone)?;
        Ok(replies)
    }

    /// The answer to `replies` before `deadline`; on a timeout the command becomes pending.
    fn wait(
        &mut self,
        op: &'static str,
        replies: Receiver<Reply>,
        timeout: Duration,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<Answer, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match replies.recv_timeout(left) {
                Ok(Reply::Done(result)) => return result,
                Ok(Reply::Progress(event)) => progress(&event),
                Ok(Reply::CutPoint { programmed, resume }) => {
                    progress(&FlashEvent::CutPoint { programmed });
                    let _ = resume.send(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.pending = Some(Pending { op, replies });
                    return Err(Error::Timeout { op, after: timeout });
                }
                Err(RecvTimeoutError::Disconnected) => return Err(Error::WorkerGone),
            }
        }
    }

    fn call(&mut self, command: Command, timeout: Duration) -> Result<Answer, Error> {
        let op = command.op();
        let replies = self.send(command)?;
        self.wait(op, replies, timeout, &mut |_| {})
    }
}

/// The answer a command should have got.
fn unexpected(op: &'static str, answer: &Answer) -> Error {
    Error::Failed {
        op,
        detail: format!("internal: unexpected answer {answer:?}"),
    }
}

impl Probe for ProbeHandle {
    fn flash(
        &mut self,
        request: &FlashRequest,
        progress: &mut dyn FnMut(&FlashEvent),
    ) -> Result<FlashReport, Error> {
        let replies = self.send(Command::Flash(request.clone()))?;
        match self.wait("flash", replies, self.timeouts.flash, progress)? {
            Answer::Flashed(report) => Ok(report),
            other => Err(unexpected("flash", &other)),
        }
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.call(Command::Reset, self.timeouts.command).map(drop)
    }

    fn reset_and_halt(&mut self) -> Result<Halted, Error> {
        match self.call(Command::ResetAndHalt, self.timeouts.command)? {
            Answer::Halted(h) => Ok(h),
            other => Err(unexpected("reset-and-halt", &other)),
        }
    }

    fn halt(&mut self) -> Result<Halted, Error> {
        match self.call(Command::Halt, self.timeouts.command)? {
            Answer::Halted(h) => Ok(h),
            other => Err(unexpected("halt", &other)),
        }
    }

    fn resume(&mut self) -> Result<(), Error> {
        self.call(Command::Resume, self.timeouts.command).map(drop)
    }

    fn read_memory(&mut self, range: Range<u64>) -> Result<Vec<u8>, Error> {
        let len = range.end.saturating_sub(range.start);
        if len == 0 || len > MAX_READ {
            return Err(Error::Invalid(format!(
                "memory range {range:#x?}: must be 1..={MAX_READ} bytes"
            )));
        }
        // SWD reads run at roughly 100 KB/s or better: a second per 64 KiB is generous.
        let timeout = self.timeouts.command + Duration::from_secs(len.div_ceil(64 * 1024));
        match self.call(Command::Read(range), timeout)? {
            Answer::Memory(m) => Ok(m),
            other => Err(unexpected("read-memory", &other)),
        }
    }

    fn set_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.call(Command::SetBreakpoint(addr), self.timeouts.command)
            .map(drop)
    }

    fn clear_breakpoint(&mut self, addr: u64) -> Result<(), Error> {
        self.call(Command::ClearBreakpoint(addr), self.timeouts.command)
            .map(drop)
    }

    fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
        match self.call(
            Command::WaitHalted(timeout),
            timeout + self.timeouts.command,
        )? {
            Answer::MaybeHalted(h) => Ok(h),
            other => Err(unexpected("wait-halted", &other)),
        }
    }
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop; dropping a pending receiver lets a
        // flash paused at its cut point go on.
        self.commands = None;
        self.pending = None;
        let Some(thread) = self.thread.take() else {
            return;
        };
        match self.exited.recv_timeout(self.timeouts.shutdown) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::error!("the probe thread panicked");
                }
            }
            Err(RecvTimeoutError::Timeout) => tracing::error!(
                after = ?self.timeouts.shutdown,
                "the probe thread is stuck in a probe call; leaving it behind (it ends with the process)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::probe::{HaltCause, ImageFormat};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A target in memory: a flash of `pages` pages of `PAGE` bytes, a power switch, a
    /// programmable stall.
    #[derive(Default)]
    struct Fake {
        pages: u64,
        written: Arc<AtomicU64>,
        powered_off: Arc<AtomicBool>,
        stall: Duration,
        /// Held only to be dropped with the driver.
        _dropped: DropFlag,
        panic_on_halt: bool,
    }

    /// Set when the fake driver is dropped.
    #[derive(Default)]
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    const PAGE: u64 = 256;

    fn halted() -> Halted {
        Halted {
            pc: 0x1000_0100,
            cause: HaltCause::Request,
        }
    }

    impl Driver for Fake {
        fn flash(
            &mut self,
            request: &FlashRequest,
            progress: &mut dyn FnMut(FlashEvent),
        ) -> Result<(), Error> {
            let total = self.pages * PAGE;
            progress(FlashEvent::Note("erasing".into()));
            progress(FlashEvent::Started { total });
            for page in 1..=self.pages {
                if self.powered_off.load(Ordering::SeqCst) {
                    return Err(Error::TargetTimeout {
                        op: "flash",
                        detail: "no answer".into(),
                    });
                }
                self.written.store(page * PAGE, Ordering::SeqCst);
                progress(FlashEvent::Programmed {
                    done: page * PAGE,
                    total,
                });
            }
            progress(FlashEvent::Finished { programmed: total });
            let _ = request;
            Ok(())
        }
        fn reset(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn reset_and_halt(&mut self) -> Result<Halted, Error> {
            Ok(halted())
        }
        fn halt(&mut self) -> Result<Halted, Error> {
            assert!(!self.panic_on_halt, "fake probe panics");
            std::thread::sleep(self.stall);
            Ok(halted())
        }
        fn resume(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (addr as usize + i) as u8;
            }
            Ok(())
        }
        fn set_breakpoint(&mut self, _addr: u64) -> Result<(), Error> {
            Ok(())
        }
        fn clear_breakpoint(&mut self, _addr: u64) -> Result<(), Error> {
            Ok(())
        }
        fn wait_halted(&mut self, timeout: Duration) -> Result<Option<Halted>, Error> {
            std::thread::sleep(timeout.min(Duration::from_millis(20)));
            Ok(None)
        }
    }

    fn quick() -> Timeouts {
        Timeouts {
            attach: Duration::from_secs(5),
            command: Duration::from_millis(200),
            flash: Duration::from_secs(5),
            cut_pause: Duration::from_secs(5),
            shutdown: Duration::from_secs(5),
        }
    }

    fn spawn(fake: Fake, timeouts: Timeouts) -> ProbeHandle {
        ProbeWorker::spawn("test", timeouts, move || Ok((fake, "fake probe".into())))
            .expect("attach")
    }

    fn request(cut_after: Option<u64>) -> FlashRequest {
        FlashRequest {
            image: "fw.elf".into(),
            format: ImageFormat::Elf,
            cut_after,
            verify: false,
        }
    }

    #[test]
    fn commands_round_trip_through_the_thread() {
        let mut h = spawn(Fake::default(), quick());
        assert_eq!(h.description(), "fake probe");
        h.reset().expect("reset");
        assert_eq!(h.reset_and_halt().expect("reset-and-halt"), halted());
        assert_eq!(h.halt().expect("halt"), halted());
        h.set_breakpoint(0x1000_0100).expect("bp");
        h.resume().expect("resume");
        assert_eq!(h.wait_halted(Duration::from_millis(5)).expect("wait"), None);
        h.clear_breakpoint(0x1000_0100).expect("clear");
        assert_eq!(
            h.read_memory(0x10..0x14).expect("read"),
            vec![0x10, 0x11, 0x12, 0x13]
        );
    }

    #[test]
    fn bad_memory_ranges_are_refused_before_the_thread() {
        let mut h = spawn(Fake::default(), quick());
        let backwards = Range {
            start: 0x20,
            end: 0x10,
        };
        for r in [0x10..0x10, backwards, 0..MAX_READ + 1] {
            assert!(matches!(h.read_memory(r), Err(Error::Invalid(_))));
        }
    }

    #[test]
    fn flash_reports_progress_in_order() {
        let mut h = spawn(
            Fake {
                pages: 4,
                ..Fake::default()
            },
            quick(),
        );
        let mut events = Vec::new();
        let report = h
            .flash(&request(None), &mut |e| events.push(e.clone()))
            .expect("flash");
        assert!(report.completed && report.cut_at.is_none());
        assert_eq!((report.programmed, report.total), (1024, 1024));
        assert_eq!(events.len(), 1 + 1 + 4 + 1, "{events:?}");
        assert_eq!(events[1], FlashEvent::Started { total: 1024 });
        assert_eq!(
            events[5],
            FlashEvent::Programmed {
                done: 1024,
                total: 1024
            }
        );
    }

    #[test]
    fn cut_point_pauses_the_flash_until_the_callback_returns() {
        let written = Arc::new(AtomicU64::new(0));
        let powered_off = Arc::new(AtomicBool::new(false));
        let mut h = spawn(
            Fake {
                pages: 8,
                written: Arc::clone(&written),
                powered_off: Arc::clone(&powered_off),
                ..Fake::default()
            },
            quick(),
        );
        let mut cut_seen = None;
        let report = h
            .flash(&request(Some(600)), &mut |e| {
                if let FlashEvent::CutPoint { programmed } = e {
                    // Paused: nothing more gets written while we are here.
                    assert_eq!(written.load(Ordering::SeqCst), *programmed);
                    std::thread::sleep(Duration::from_millis(50));
                    assert_eq!(written.load(Ordering::SeqCst), *programmed);
                    powered_off.store(true, Ordering::SeqCst); // the engine cuts power here
                    cut_seen = Some(*programmed);
                }
            })
            .expect("a flash cut at its cut point is a report, not an error");
        // 600 bytes → the third 256-byte page is the first to reach it.
        assert_eq!(cut_seen, Some(768));
        assert_eq!(report.cut_at, Some(768));
        assert_eq!(report.programmed, 768);
        assert!(!report.completed);
        assert!(
            report
                .after_cut
                .is_some_and(|e| e.contains("did not respond"))
        );
        assert_eq!(written.load(Ordering::SeqCst), 768);
    }

    #[test]
    fn cut_after_zero_is_before_the_first_page() {
        let mut h = spawn(
            Fake {
                pages: 2,
                ..Fake::default()
            },
            quick(),
        );
        let report = h.flash(&request(Some(0)), &mut |_| {}).expect("flash");
        // Nobody cut power: the flash goes on after the pause and completes.
        assert_eq!(report.cut_at, Some(0));
        assert!(report.completed);
    }

    #[test]
    fn a_hung_probe_is_a_timeout_then_busy_then_usable_again() {
        let mut h = spawn(
            Fake {
                stall: Duration::from_millis(600),
                ..Fake::default()
            },
            quick(),
        );
        let started = Instant::now();
        let e = h.halt().expect_err("stalls past the timeout");
        assert!(matches!(e, Error::Timeout { op: "halt", .. }), "{e}");
        assert!(started.elapsed() < Duration::from_millis(500));
        let e = h.reset().expect_err("still busy");
        assert!(matches!(e, Error::Busy { op: "halt" }), "{e}");
        std::thread::sleep(Duration::from_millis(700));
        h.reset().expect("the late answer was drained");
    }

    #[test]
    fn dropping_the_handle_joins_the_thread_and_drops_the_driver() {
        let dropped = Arc::new(AtomicBool::new(false));
        let h = spawn(
            Fake {
                _dropped: DropFlag(Arc::clone(&dropped)),
                ..Fake::default()
            },
            quick(),
        );
        drop(h);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn dropping_a_handle_whose_probe_hangs_does_not_hang() {
        let mut t = quick();
        t.shutdown = Duration::from_millis(100);
        let mut h = spawn(
            Fake {
                stall: Duration::from_secs(2),
                ..Fake::default()
            },
            t,
        );
        assert!(h.halt().is_err());
        let started = Instant::now();
        drop(h);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn attach_errors_come_back_and_the_thread_ends() {
        let e = ProbeWorker::<Fake>::spawn("test", quick(), || {
            Err(Error::UnknownChip {
                chip: "RP2041".into(),
                detail: "not in the registry".into(),
            })
        })
        .expect_err("attach fails");
        assert!(e.to_string().contains("probe-rs chip list"), "{e}");
    }

    #[test]
    fn a_panicking_worker_is_worker_gone() {
        // The panic hook may print a symbolised backtrace first: give it time.
        let mut t = quick();
        t.command = Duration::from_secs(10);
        let mut h = spawn(
            Fake {
                panic_on_halt: true,
                ..Fake::default()
            },
            t,
        );
        let e = h.halt().expect_err("the worker panicked");
        assert!(matches!(e, Error::WorkerGone), "{e}");
        let e = h.reset().expect_err("and is gone");
        assert!(matches!(e, Error::WorkerGone), "{e}");
    }
}
