//! Runs scenarios: prepares the board and the update server, executes steps, watches the
//! timeline, and turns what happened into an [`Attempt`] with an observed [`Outcome`].
//!
//! Board preparation follows labgrid's strategy idea: off → console attached → factory image
//! provisioned → on. Every step runs in a `tracing` span; any failure names the step and its
//! line in the scenario file.

pub mod bench_boards;
mod final_cycle;
pub mod images;
pub mod serverlog;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_server::EventKind as ServerKind;
use ota_core::Version;
use ota_core::checkin::{Command, DeviceState};
use ota_core::console::Line;
use tracing::{Instrument, info, info_span, warn};

use crate::backend::sim::{
    CUT_EXIT_CODE, CutPoint, ExactCut, PowerCutEvent, SimPower, SimSpec, power_cut,
};
use crate::board::PowerSwitch;
use crate::scenario::{
    Action, CommandName, Cut, DeviceExpect, Expectation, HttpExpect, PowerAction, Scenario, Trigger,
};
use crate::timeline::BoardLane;
use crate::timeline::{Cursor, EventKind, Timeline};
use crate::verdict::{Attempt, ConsoleFacts, Outcome, Status};
use bench_boards::{BenchBoard, SharedPower, SharedProbe};
use serverlog::ServerLog;

/// Settings shared by every scenario of a run.
pub struct RunContext {
    /// Scratch space for boards (flash files, logs); one sub-directory per attempt.
    pub work_dir: PathBuf,
    pub images: images::ImageStore,
    /// Program + leading args that start a sim board (`rig __sim-board`).
    pub sim_program: Vec<OsString>,
    /// Timing knobs passed to every sim board.
    pub sim_args: Vec<String>,
    pub seed: u64,
    /// How long a board may take to settle on a confirmed image after the last step.
    pub settle: Duration,
    /// How to invoke `rig` in replay commands, and what to append (e.g. the bench).
    pub replay_prefix: String,
    pub replay_suffix: String,
    /// How boards' consoles are wired.
    pub console: ConsoleMode,
}

/// How a sim board's console reaches the rig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// Its stdout, through a pipe.
    Stdout,
    /// A pseudo-terminal read through the serial backend (the hardware path, end to end).
    Pty,
}

/// Why a step did not pass.
#[derive(Debug)]
enum StepError {
    /// The firmware misbehaved (or the expectation is wrong).
    Firmware(String),
    /// The rig or the server failed.
    Infra(String),
}

impl StepError {
    fn infra(e: impl std::fmt::Display) -> Self {
        Self::Infra(e.to_string())
    }
}

/// Runs one attempt of `sc` on a fresh simulated board, or on `bench` (a hardware board lent
/// for the attempt; it is provisioned first and restored after a bad outcome).
pub async fn run_attempt(
    ctx: &RunContext,
    sc: &Scenario,
    index: u32,
    bench: Option<&mut BenchBoard>,
) -> Attempt {
    let seed = attempt_seed(ctx.seed, &sc.name, index);
    let started = Instant::now();
    let timeline = Timeline::with_origin(started);
    let span = info_span!("scenario", name = %sc.name, attempt = index);
    let (board, device_id) = match &bench {
        Some(b) => {
            b.lane.attach(Arc::clone(&timeline), Arc::clone(&b.name));
            (Arc::clone(&b.name), b.device_id.clone())
        }
        None => (
            Arc::from(format!("sim-{}", index)),
            format!("sim-{}-{:08x}", slug(&sc.name), seed as u32),
        ),
    };
    let mut run = AttemptRun {
        ctx,
        sc,
        timeline: Arc::clone(&timeline),
        board,
        device_id,
        bench,
        resolved: Vec::new(),
        server: None,
        log: Arc::new(ServerLog::default()),
        power: None,
        console: None,
        forwarder: None,
        last_power_on: Cursor(0),
        scenario_from: Cursor(0),
        log_from: 0,
        base_faults: sc.faults.clone(),
        armed: None,
    };
    let result = tokio::time::timeout(sc.timeout.0, run.execute().instrument(span)).await;
    let (status, observed, reason) = match result {
        Ok(Ok(observed)) if observed == sc.outcome => (Status::Passed, Some(observed), None),
        Ok(Ok(observed)) => (
            Status::Failed,
            Some(observed),
            Some(format!(
                "expected outcome {}, observed {observed}{}",
                sc.outcome,
                run.evidence()
            )),
        ),
        Ok(Err((observed, StepError::Firmware(msg)))) => (Status::Failed, observed, Some(msg)),
        Ok(Err((_, StepError::Infra(msg)))) => {
            (Status::InfraError, Some(Outcome::InfraError), Some(msg))
        }
        Err(_) => (
            Status::Failed,
            None,
            Some(format!(
                "scenario timed out after {} (raise `timeout:` if the board is just slow){}",
                sc.timeout,
                run.evidence()
            )),
        ),
    };
    // A board that outlives the attempt is restored when its state is unknown or broken.
    let restore = matches!(status, Status::InfraError)
        || matches!(
            observed,
            None | Some(Outcome::Bricked | Outcome::InfraError)
        );
    run.teardown(restore).await;
    if let Some(r) = &reason {
        timeline.push(
            None,
            EventKind::Rig {
                detail: format!("verdict: {r}"),
            },
        );
    }
    if let Some(b) = &run.bench {
        b.lane.detach();
    }
    let replay = format!(
        "{} run {} --exact {} --seed {}{}",
        ctx.replay_prefix,
        sc.file.display(),
        sc.name,
        ctx.seed,
        ctx.replay_suffix
    );
    Attempt {
        index,
        status,
        observed,
        reason,
        duration: started.elapsed(),
        seed,
        resolved: run.resolved,
        replay,
        events: timeline.snapshot(),
        logs: Vec::new(),
    }
}

/// An attempt that could not start (no board left to run it on): an infra error.
pub fn not_run(sc: &Scenario, why: &str) -> Attempt {
    Attempt {
        index: 1,
        status: Status::InfraError,
        observed: Some(Outcome::InfraError),
        reason: Some(format!("{}: not run: {why}", sc.name)),
        duration: Duration::ZERO,
        seed: 0,
        resolved: Vec::new(),
        replay: String::new(),
        events: Vec::new(),
        logs: Vec::new(),
    }
}

/// Per-attempt seed: stable for a run seed, scenario and attempt index.
pub fn attempt_seed(run_seed: u64, name: &str, index: u32) -> u64 {
    // FNV-1a over the inputs: stable across platforms and releases.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in run_seed
        .to_le_bytes()
        .iter()
        .chain(name.as_bytes())
        .chain(&index.to_le_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}

pub use fake_server::faults::glob_match;

/// First byte of a `Range: bytes=N-...` header; 0 without one.
pub fn range_start(range: Option<&str>) -> u64 {
    range
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

struct AttemptRun<'a> {
    ctx: &'a RunContext,
    sc: &'a Scenario,
    timeline: Arc<Timeline>,
    board: Arc<str>,
    device_id: String,
    /// The hardware board lent to this attempt (`None`: a sim board started for it).
    bench: Option<&'a mut BenchBoard>,
    resolved: Vec<String>,
    server: Option<fake_server::ServerHandle>,
    log: Arc<ServerLog>,
    power: Option<SharedPower>,
    console: Option<crate::console::ConsoleReader>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
    last_power_on: Cursor,
    /// Where the scenario proper starts (after provisioning): what a hardware board printed
    /// and reported while it was brought to the starting firmware is not evidence about the
    /// scenario.
    scenario_from: Cursor,
    log_from: usize,
    /// The fault rules the scenario asked for (file plus `faults:` steps), without triggers.
    base_faults: Vec<fake_server::faults::FaultRule>,
    /// A byte-exact download trigger installed ahead of its step: (step index, byte count,
    /// path glob, server-log cursor when it was armed).
    armed: Option<ArmedBytes>,
}

struct ArmedBytes {
    step: usize,
    at: u64,
    glob: String,
    from: usize,
}

type StepResult<T> = Result<T, StepError>;

impl AttemptRun<'_> {
    async fn execute(&mut self) -> Result<Outcome, (Option<Outcome>, StepError)> {
        self.prepare().await.map_err(|e| (None, e))?;
        self.scenario_from = self.timeline.cursor();
        self.last_power_on = self.scenario_from;
        self.log_from = self.log.cursor();
        let steps = self.sc.steps.clone();
        for (i, step) in steps.iter().enumerate() {
            let n = i + 1;
            let span = info_span!("step", n, line = step.line);
            self.note(format!(
                "step {n} (line {}): {}",
                step.line,
                describe(&step.action)
            ));
            let res = match self.arm_next_byte_trigger(i + 1, steps.get(i + 1).map(|s| &s.action)) {
                Ok(()) => self.step(i, &step.action).instrument(span).await,
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                let prefix = format!(
                    "step {n} ({}:{}: {})",
                    self.sc.file.display(),
                    step.line,
                    describe(&step.action)
                );
                return Err(match e {
                    StepError::Firmware(m) => (
                        None,
                        StepError::Firmware(format!("{prefix}: {m}{}", self.evidence())),
                    ),
                    StepError::Infra(m) => (None, StepError::Infra(format!("{prefix}: {m}"))),
                });
            }
        }
        self.settle().await.map_err(|e| (Some(Outcome::Bricked), e))
    }

    fn note(&self, detail: String) {
        info!("{detail}");
        self.timeline
            .push(Some(&self.board), EventKind::Rig { detail });
    }

    fn server(&self) -> StepResult<&fake_server::ServerHandle> {
        self.server
            .as_ref()
            .ok_or_else(|| StepError::Infra("update server not started".into()))
    }

    /// Images, server, board, console: everything up to (not including) power-on.
    async fn prepare(&mut self) -> StepResult<()> {
        let sc = self.sc;
        let factory = self.image(&sc.given.firmware)?;
        let cfg = fake_server::Config {
            faults: sc.faults.clone(),
            signing_key: Some(self.store().signing_key().clone()),
            ..fake_server::Config::new(self.store().dir())
        };
        let server = match &self.bench {
            None => fake_server::start(cfg).await,
            Some(b) => {
                let socket = b.listener.try_clone().map_err(|e| {
                    StepError::Infra(format!("board {}: server socket: {e}", b.name))
                })?;
                // The rig drives its server in-process; the control API stays locked.
                let token = Some(format!(
                    "{:016x}{:016x}",
                    rand::random::<u64>(),
                    rand::random::<u64>()
                ));
                fake_server::start_on(fake_server::Config { token, ..cfg }, socket).await
            }
        }
        .map_err(StepError::infra)?;
        self.forwarder = Some(serverlog::spawn_forwarder(
            server.subscribe(),
            Arc::clone(&self.log),
            Arc::clone(&self.timeline),
            Arc::clone(&self.board),
        ));
        self.server = Some(server);
        if self.bench.is_some() {
            self.provision(&factory).await?;
            self.server()?.forget_devices();
        } else {
            self.start_sim_board(&factory)?;
        }
        // Offered only now: a board being provisioned must not see the release.
        if let Some(release) = &sc.release {
            self.publish(release)?;
        }
        if let Some(r) = &sc.rollout {
            self.apply_rollout(r)?;
        }
        Ok(())
    }

    /// Where this attempt's images come from: the board's own store (a Pico W's firmware
    /// builds, its key), else the run's.
    fn store(&self) -> &images::ImageStore {
        self.bench
            .as_ref()
            .and_then(|b| b.images.as_ref())
            .unwrap_or(&self.ctx.images)
    }

    /// Publishes the scenario's image `name` (every variant the board kind needs) and offers it.
    fn publish(&self, name: &str) -> StepResult<()> {
        let def = self
            .sc
            .images
            .get(name)
            .ok_or_else(|| StepError::Infra(format!("unknown image {name}")))?;
        let set = self
            .store()
            .publish_set(name, def)
            .map_err(StepError::infra)?;
        let server = self.server()?;
        for (release, file) in &set {
            server.publish(release, file).map_err(StepError::infra)?;
        }
        let files: Vec<&str> = set.iter().map(|(_, f)| f.as_str()).collect();
        self.note(format!("server offers {name} ({})", files.join(", ")));
        Ok(())
    }

    /// The file name of the scenario's image `name`, built on first use.
    fn image(&self, name: &str) -> StepResult<String> {
        let def = self
            .sc
            .images
            .get(name)
            .ok_or_else(|| StepError::Infra(format!("unknown image {name}")))?;
        self.store().get(name, def).map_err(StepError::infra)
    }

    /// A fresh simulated board for this attempt, provisioned with `factory`, powered off.
    fn start_sim_board(&mut self, factory: &str) -> StepResult<()> {
        let dir = self
            .ctx
            .work_dir
            .join(format!("{}-{}", slug(&self.sc.name), self.board));
        std::fs::create_dir_all(&dir).map_err(StepError::infra)?;
        let flash = dir.join("flash.bin");
        let flash_log = dir.join("flash.log");
        for f in [&flash, &flash_log] {
            if f.exists() {
                std::fs::remove_file(f).map_err(StepError::infra)?;
            }
        }
        let spec = SimSpec {
            program: self.ctx.sim_program.clone(),
            flash,
            flash_log,
            server_url: self.server()?.url(),
            device_id: self.device_id.clone(),
            factory: Some(self.store().dir().join(factory)),
            trust_key: Some(self.store().public_key_file().to_path_buf()),
            extra_args: self.ctx.sim_args.clone(),
        };
        let lane = BoardLane::fixed(Arc::clone(&self.timeline), Arc::clone(&self.board));
        // The console reader starts before the first power-on and never stops while the board
        // exists, so no boot output is lost.
        let (power, console): (SimPower, Box<dyn crate::board::ConsolePort>) =
            match self.ctx.console {
                ConsoleMode::Stdout => {
                    let (p, c) = SimPower::new(spec, lane.clone());
                    (p, Box::new(c))
                }
                ConsoleMode::Pty => {
                    let (p, c) = SimPower::new_pty(spec, lane.clone()).map_err(StepError::infra)?;
                    (p, Box::new(c))
                }
            };
        self.console = Some(crate::console::spawn_reader(console, lane));
        self.power = Some(Arc::new(Mutex::new(Box::new(power))));
        self.note(format!(
            "board {} prepared: device {} factory image {factory}{}",
            self.board,
            self.device_id,
            if self.ctx.console == ConsoleMode::Pty {
                " (console through a pseudo-terminal and the serial backend)"
            } else {
                ""
            }
        ));
        Ok(())
    }

    /// Brings a hardware board to the scenario's starting firmware, powered off: its probe
    /// writes the golden image; without a probe, the board must already run that firmware
    /// (a board cannot be downgraded over the air, by design).
    async fn provision(&mut self, factory: &str) -> StepResult<()> {
        let Some(b) = &self.bench else {
            return Err(StepError::Infra("no bench board".into()));
        };
        if let Some(why) = &b.out_of_run {
            return Err(StepError::Infra(format!(
                "board {} is out of the run: {why}",
                b.name
            )));
        }
        self.power = Some(Arc::clone(&b.power));
        let probe = b.probe.clone();
        let given = self.version_of(&self.sc.given.firmware)?;
        self.power_off().await?;
        match probe {
            Some(probe) => {
                let (golden, base) = self.store().golden(factory).map_err(StepError::infra)?;
                self.note_what_the_board_runs().await?;
                self.probe_flash(probe, golden, base, "provision").await?;
                self.power_off().await?;
                self.note(format!(
                    "board {} provisioned by its probe: golden image of {factory} ({given}), device {}",
                    self.board, self.device_id
                ));
            }
            None => {
                let runs_given =
                    |(v, st): &(String, String)| *v == given.to_string() && st == "confirmed";
                // With a recovery button every scenario starts from the factory state (no
                // refused release or error remembered from the previous scenario).
                let has_button = self.bench.as_ref().is_some_and(|b| b.button.is_some());
                let found = if has_button {
                    self.factory_reset_drill("provision").await
                } else {
                    self.boot_and_check_in("provision").await
                };
                self.power_off().await?;
                let (version, state) = found?;
                if !runs_given(&(version.clone(), state.clone())) {
                    let why = format!(
                        "board {} runs {version} ({state}) but the scenario starts from {given}, and {}: flash it by hand, or give the board a probe in the bench file",
                        self.board,
                        if has_button {
                            "its factory image is another version"
                        } else {
                            "it has no probe and no recovery button to go back"
                        }
                    );
                    return Err(StepError::Infra(why));
                }
                self.note(if has_button {
                    format!("board {} back to its factory image {given}", self.board)
                } else {
                    format!(
                        "board {} runs {given} (confirmed); no probe and no recovery button, so its flash state carries over from the previous scenario",
                        self.board
                    )
                });
            }
        }
        Ok(())
    }

    /// The factory-reset drill: the recovery button held through a power cycle, then the
    /// board's first check-in (version, state). The button is released whatever happens.
    async fn factory_reset_drill(&mut self, why: &str) -> StepResult<(String, String)> {
        self.note(format!(
            "{why}: factory-reset drill: recovery button held through a power cycle"
        ));
        let hold = |b: &mut BenchBoard, held: bool| match &mut b.button {
            Some(button) if held => button.hold(),
            Some(button) => button.release(),
            None => Ok(()),
        };
        self.power_off().await?;
        if let Some(b) = self.bench.as_deref_mut() {
            hold(b, true).map_err(StepError::infra)?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let found = self.boot_and_check_in(why).await;
        if let Some(b) = self.bench.as_deref_mut() {
            hold(b, false).map_err(StepError::infra)?;
        }
        found
    }

    /// Powers the board and notes which image it boots before the probe overwrites it (the
    /// state the previous scenario left, on the timeline), waiting at most a second for its
    /// boot line: a blank board prints none.
    async fn note_what_the_board_runs(&mut self) -> StepResult<()> {
        let from = self.timeline.cursor();
        self.with_power(|p| p.on())
            .await?
            .map_err(StepError::infra)?;
        let board = Arc::clone(&self.board);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        let boot = self
            .timeline
            .wait_for(from, deadline, |e| {
                e.board.as_deref() == Some(&*board)
                    && matches!(&e.kind, EventKind::Console { line } if matches!(
                        ota_core::console::parse(line),
                        Some(Line::BootSlot { .. } | Line::BootFatal { .. })
                    ))
            })
            .await;
        self.note(match boot.map(|(_, e)| e.kind) {
            Some(EventKind::Console { line }) => {
                format!("provision: the board came in with `{line}`")
            }
            _ => {
                "provision: the board printed no boot line within 1 s (blank or not booting)".into()
            }
        });
        Ok(())
    }

    /// Flashes `image` (a whole-flash golden image, from flash address `base`) with the board
    /// powered, progress on the timeline.
    async fn probe_flash(
        &mut self,
        probe: SharedProbe,
        image: PathBuf,
        base: u64,
        why: &'static str,
    ) -> StepResult<()> {
        self.with_power(|p| p.on())
            .await?
            .map_err(StepError::infra)?;
        self.timeline.push(
            Some(&self.board),
            EventKind::Probe {
                detail: format!("{why}: flashing {}", image.display()),
            },
        );
        let lane = BoardLane::fixed(Arc::clone(&self.timeline), Arc::clone(&self.board));
        let report = tokio::task::spawn_blocking(move || {
            let request = crate::board::probe::FlashRequest {
                verify: true,
                ..crate::board::probe::FlashRequest::new(&image, Some(base))?
            };
            let mut notes = crate::board::probe::ProgressNotes::new();
            let mut progress = |e: &crate::board::probe::FlashEvent| {
                if let Some(detail) = notes.note(e) {
                    lane.push(EventKind::Probe { detail });
                }
            };
            let mut p = probe.lock().unwrap_or_else(|e| e.into_inner());
            let report = p.flash(&request, &mut progress)?;
            p.reset()?;
            Ok::<_, crate::board::probe::Error>(report)
        })
        .await
        .map_err(StepError::infra)?
        .map_err(|e| StepError::Infra(format!("{why}: probe: {e}")))?;
        if !report.completed {
            return Err(StepError::Infra(format!(
                "{why}: the probe programmed {} of {} bytes",
                report.programmed, report.total
            )));
        }
        Ok(())
    }

    /// The board's first check-in after `from` in the server log, waiting up to the settle
    /// time from now.
    async fn first_checkin(&self, from: usize) -> Option<ServerKind> {
        let device = self.device_id.clone();
        let deadline = tokio::time::Instant::now() + self.ctx.settle;
        self.log
            .wait_for(
                from,
                deadline,
                |e| matches!(&e.kind, ServerKind::Checkin { device: d, .. } if *d == device),
            )
            .await
            .map(|(_, e)| e.kind)
    }

    /// Powers the board on and waits for its first check-in: (version, state).
    async fn boot_and_check_in(&mut self, why: &str) -> StepResult<(String, String)> {
        let from = self.log.cursor();
        self.with_power(|p| p.on())
            .await?
            .map_err(StepError::infra)?;
        match self.first_checkin(from).await {
            Some(ServerKind::Checkin { version, state, .. }) => {
                Ok((version, state.as_str().to_string()))
            }
            _ => Err(StepError::Infra(format!(
                "{why}: board {} (device {}) did not check in within {:?} of power-on{}",
                self.board,
                self.device_id,
                self.ctx.settle,
                self.evidence()
            ))),
        }
    }

    fn apply_rollout(&self, r: &crate::scenario::RolloutDef) -> StepResult<()> {
        let server = self.server()?;
        let mut rollout = server.rollout();
        if let Some(p) = r.phase {
            rollout.phase = p;
        }
        if let Some(p) = r.paused {
            rollout.paused = p;
        }
        if let Some(list) = &r.engineering {
            rollout.engineering = list
                .iter()
                .map(|d| {
                    if d == "$device" {
                        self.device_id.clone()
                    } else {
                        d.clone()
                    }
                })
                .collect();
        }
        self.note(format!(
            "rollout: phase {} paused {} engineering {:?}",
            rollout.phase, rollout.paused, rollout.engineering
        ));
        server.set_rollout(rollout);
        Ok(())
    }

    /// Runs a blocking power operation off the async threads.
    async fn with_power<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Box<dyn PowerSwitch>) -> T + Send + 'static,
    ) -> StepResult<T> {
        let power = self
            .power
            .clone()
            .ok_or_else(|| StepError::Infra("board not prepared".into()))?;
        tokio::task::spawn_blocking(move || {
            let mut p = power.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut p)
        })
        .await
        .map_err(StepError::infra)
    }

    /// Arms the exact flash cut of the next `cut` step, if it has one, for the coming power-on.
    fn exact_cut_after(&self, step: usize) -> Option<ExactCut> {
        for s in &self.sc.steps[step + 1..] {
            match &s.action {
                Action::Power(_) => return None,
                Action::Cut(c) => {
                    let f = c.when.flash.as_ref()?;
                    let at = match (f.op, f.slot_write) {
                        (Some(op), _) => CutPoint::FlashOp(op),
                        (None, Some(amount)) => {
                            let len = self.offered_image_len().ok()?;
                            CutPoint::SlotOffset(u32::try_from(amount.resolve(len)).ok()?)
                        }
                        (None, None) => return None,
                    };
                    return Some(ExactCut { at, torn: c.torn });
                }
                _ => {}
            }
        }
        None
    }

    async fn power_on(&mut self, step: usize) -> StepResult<()> {
        let cut = self.exact_cut_after(step);
        self.last_power_on = self.timeline.cursor();
        self.with_power(move |p| {
            if let Some(exact) = p.exact_cuts() {
                exact.arm_cut(cut);
            }
            p.on()
        })
        .await?
        .map_err(StepError::infra)
    }

    async fn power_off(&self) -> StepResult<()> {
        self.with_power(|p| p.off())
            .await?
            .map_err(StepError::infra)
    }

    async fn step(&mut self, i: usize, action: &Action) -> StepResult<()> {
        match action {
            Action::Power(PowerAction::On) => self.power_on(i).await,
            Action::Power(PowerAction::Off) => self.power_off().await,
            Action::Power(PowerAction::Cycle) => {
                self.power_off().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.power_on(i).await
            }
            Action::Cut(cut) => self.cut(i, cut).await,
            Action::Expect(e) => self.expect(e, true).await,
            Action::Absent(e) => self.expect(e, false).await,
            Action::Wait(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
            Action::Publish(name) => self.publish(name),
            Action::Withdraw(_) => self.server()?.offer(None).map_err(StepError::infra),
            Action::Rollout(r) => self.apply_rollout(r),
            Action::Command(CommandName::Rollback) => {
                self.server()?
                    .command(&self.device_id, ota_core::checkin::Command::Rollback);
                Ok(())
            }
            Action::Faults(rules) => {
                self.base_faults = rules.clone();
                self.install_faults()
            }
        }
    }

    async fn cut(&mut self, i: usize, cut: &Cut) -> StepResult<()> {
        let t = &cut.when;
        let within = t.within.map_or(Duration::from_secs(30), |d| d.0);
        let deadline = tokio::time::Instant::now() + within;
        let fired = self.wait_trigger(i, t, deadline).await?;
        if let Some(d) = t.delay {
            tokio::time::sleep(d.0).await;
        }
        self.power_off().await?;
        self.note(format!("cut: {fired}"));
        self.resolved.push(format!("step {}: {fired}", i + 1));
        tokio::time::sleep(cut.hold.map_or(Duration::from_millis(200), |d| d.0)).await;
        self.power_on(i).await
    }

    /// Waits for a trigger; returns what fired, resolved to an exact point where possible.
    async fn wait_trigger(
        &mut self,
        step: usize,
        t: &Trigger,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let missed = |what: String| StepError::Firmware(format!("trigger never fired: {what}"));
        if let Some(after) = t.after {
            tokio::time::sleep(after.0).await;
            return Ok(format!("after {after}"));
        }
        if let Some(p) = &t.console {
            let from = self.last_power_on;
            let board = Arc::clone(&self.board);
            let (_, e) = self
                .timeline
                .wait_for(from, deadline, |e| {
                    e.board.as_deref() == Some(&*board)
                        && matches!(&e.kind, EventKind::Console { line } if p.regex.is_match(line))
                })
                .await
                .ok_or_else(|| missed(format!("console /{p}/")))?;
            let line = match e.kind {
                EventKind::Console { line } => line,
                _ => String::new(),
            };
            return Ok(format!("on console line `{line}`"));
        }
        if let Some(bp) = &t.breakpoint {
            return self.halt_at_breakpoint(bp, deadline).await;
        }
        if let Some(h) = &t.http {
            let glob = h.path.clone().unwrap_or_else(|| "/v1/images/*".into());
            if let Some(amount) = h.bytes_sent {
                return self.cut_at_bytes(step, &glob, amount, deadline).await;
            }
            let nth = h.request.unwrap_or(1);
            let from = self.log.cursor();
            let mut seen = 0u32;
            let (_, e) = self
                .log
                .wait_for(from, deadline, |e| {
                    if let ServerKind::Request { path, .. } = &e.kind
                        && glob_match(&glob, path)
                    {
                        seen += 1;
                        return seen >= nth;
                    }
                    false
                })
                .await
                .ok_or_else(|| missed(format!("request #{nth} to {glob}")))?;
            return Ok(format!("at request #{nth} to {glob} ({:?})", e.kind));
        }
        if let Some(f) = &t.flash {
            let what = match (f.op, f.slot_write) {
                (Some(op), _) => format!("flash op {op}"),
                (None, Some(amount)) => format!("the write of {amount} of the inactive slot"),
                (None, None) => return Err(StepError::Infra("empty flash trigger".into())),
            };
            // Armed at power-on (the sim board stops itself at the exact operation): wait for
            // it to stop, then read back which operation it was.
            self.wait_board_cut(&what, deadline).await?;
            let from = self.last_power_on;
            let board = Arc::clone(&self.board);
            let stop = tokio::time::Instant::now() + Duration::from_secs(1);
            let cut = self
                .timeline
                .wait_for(from, stop, |e| {
                    e.board.as_deref() == Some(&*board) && power_cut(&e.kind).is_some()
                })
                .await
                .and_then(|(_, e)| power_cut(&e.kind));
            let at = |c: &PowerCutEvent| {
                format!(
                    "{} ({} 0x{:08x} {}{})",
                    c.op,
                    c.kind.as_str(),
                    c.addr,
                    c.len,
                    if c.torn { ", torn" } else { "" }
                )
            };
            return Ok(match (f.op, cut) {
                (Some(_), Some(c)) => format!("at exact flash op {}", at(&c)),
                (Some(op), None) => format!("at exact flash op {op}"),
                (None, Some(c)) => format!(
                    "during {what}: flash op {} (replay exactly with `flash: {{ op: {} }}`)",
                    at(&c),
                    c.op
                ),
                (None, None) => format!("during {what}"),
            });
        }
        Err(StepError::Infra("empty trigger".into()))
    }

    /// Runs the board to a breakpoint at `bp.symbol` (looked up in the app ELFs of every image
    /// the scenario uses, both slots) and leaves its core halted there for the cut.
    async fn halt_at_breakpoint(
        &mut self,
        bp: &crate::scenario::BreakpointTrigger,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let probe = self
            .bench
            .as_ref()
            .and_then(|b| b.probe.clone())
            .ok_or_else(|| {
                StepError::Infra(format!(
                    "board {}: a breakpoint trigger needs a debug probe",
                    self.board
                ))
            })?;
        let mut drills: Vec<crate::scenario::Drill> =
            self.sc.images.values().map(|d| d.drill).collect();
        drills.sort_by_key(|d| d.as_str());
        drills.dedup();
        let elfs = self.store().app_elfs(&drills);
        if elfs.is_empty() {
            return Err(StepError::Infra(format!(
                "board {}: no app ELF to look `{}` up in (the firmware directory needs app-*.elf; tools/build-drills.sh writes them)",
                self.board, bp.symbol
            )));
        }
        let mut addrs = Vec::new();
        let mut first_error = None;
        for elf in &elfs {
            match crate::backend::probe_rs::elf::symbol_address_in(elf, &bp.symbol) {
                Ok(a) if !addrs.contains(&a) => addrs.push(a),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if addrs.is_empty() {
            return Err(StepError::Infra(
                first_error.map_or_else(|| "symbol not found".into(), |e| e.to_string()),
            ));
        }
        // The Cortex-M0+ has four hardware breakpoint comparators.
        if addrs.len() > 4 {
            return Err(StepError::Infra(format!(
                "`{}` is at {} different addresses in the builds this scenario uses; at most 4 breakpoints fit",
                bp.symbol,
                addrs.len()
            )));
        }
        let (hits, std_deadline) = (
            bp.hit,
            std::time::Instant::now()
                + deadline.saturating_duration_since(tokio::time::Instant::now()),
        );
        let watched = addrs.clone();
        let halted = tokio::task::spawn_blocking(move || {
            let mut p = probe.lock().unwrap_or_else(|e| e.into_inner());
            crate::board::probe::run_to_breakpoint(&mut **p, &watched, hits, std_deadline)
        })
        .await
        .map_err(StepError::infra)?
        .map_err(|e| StepError::Infra(format!("probe: {e}")))?;
        match halted {
            Some(h) => Ok(format!(
                "at breakpoint `{}` (hit {}, pc 0x{:08x}), core halted",
                bp.symbol, bp.hit, h.pc
            )),
            None => Err(StepError::Firmware(format!(
                "trigger never fired: the firmware did not reach `{}` {} time(s)",
                bp.symbol, bp.hit
            ))),
        }
    }

    /// Waits until a sim board armed with an exact cut stops itself (exit code 86).
    async fn wait_board_cut(&self, what: &str, deadline: tokio::time::Instant) -> StepResult<()> {
        let power = self
            .power
            .clone()
            .ok_or_else(|| StepError::Infra("no board".into()))?;
        loop {
            let status = {
                let mut p = power.lock().unwrap_or_else(|e| e.into_inner());
                match p.exact_cuts() {
                    Some(exact) => exact.stopped(),
                    None => {
                        return Err(StepError::Infra(format!(
                            "board {} cannot cut power at {what}: exact flash cuts need the simulated board",
                            self.board
                        )));
                    }
                }
            };
            match status {
                Some(CUT_EXIT_CODE) => return Ok(()),
                Some(code) => {
                    return Err(StepError::Firmware(format!(
                        "board exited with code {code} before {what}"
                    )));
                }
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::Firmware(format!(
                        "trigger never fired: {what} (the board never reached it)"
                    )));
                }
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    fn offered_image_len(&self) -> StepResult<u64> {
        let release = self.server()?.offered().ok_or_else(|| {
            StepError::Firmware("a byte-based trigger needs an offered release".into())
        })?;
        Ok(release.size)
    }

    /// Arms an `http: { bytes_sent }` cut one step early. A download that starts while the
    /// previous step is still waiting (the board checks in right after booting) is then
    /// caught at its exact byte instead of racing the rig's install of the rule.
    fn arm_next_byte_trigger(&mut self, index: usize, next: Option<&Action>) -> StepResult<()> {
        let Some(Action::Cut(cut)) = next else {
            return Ok(());
        };
        let Some(h) = &cut.when.http else {
            return Ok(());
        };
        let Some(amount) = h.bytes_sent else {
            return Ok(());
        };
        if self.server()?.offered().is_none() {
            // Nothing offered yet (a later step publishes): arm when the step itself runs.
            return Ok(());
        }
        let glob = h.path.clone().unwrap_or_else(|| "/v1/images/*".into());
        let at = amount.resolve(self.offered_image_len()?);
        self.armed = Some(ArmedBytes {
            step: index,
            at,
            glob,
            from: self.log.cursor(),
        });
        self.install_faults()
    }

    /// Puts the scenario's rules on the server, behind an armed one-shot `stall_after`
    /// trigger when there is one (it is rule 0, so its fault events are recognisable).
    fn install_faults(&self) -> StepResult<()> {
        let mut rules = Vec::with_capacity(self.base_faults.len() + 1);
        if let Some(a) = &self.armed {
            let yaml = format!(
                "faults:\n  - match: {{ path: \"{}\", method: GET }}\n    stall_after: {}\n    for: 60s\n    times: 1\n",
                a.glob, a.at
            );
            rules.extend(
                fake_server::faults::parse_faults_yaml(&yaml, "<trigger>")
                    .map_err(StepError::infra)?,
            );
        }
        rules.extend(self.base_faults.iter().cloned());
        self.server()?.set_faults(rules);
        Ok(())
    }

    /// Stops the server at exactly `amount` body bytes of the next matching download (a
    /// one-shot `stall_after`, armed when the previous step began) and returns when the stall
    /// begins: byte-exact and repeatable.
    async fn cut_at_bytes(
        &mut self,
        step: usize,
        glob: &str,
        amount: crate::scenario::Amount,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let total = self.offered_image_len()?;
        if self.armed.as_ref().is_none_or(|a| a.step != step) {
            self.armed = Some(ArmedBytes {
                step,
                at: amount.resolve(total),
                glob: glob.to_string(),
                from: self.log.cursor(),
            });
            self.install_faults()?;
        }
        let (at, from) = match &self.armed {
            Some(a) => (a.at, a.from),
            None => return Err(StepError::Infra("byte trigger not armed".into())),
        };
        let found = self
            .log
            .wait_for(from, deadline, |e| {
                matches!(&e.kind, ServerKind::Fault { rule: 0, bytes_sent, .. } if *bytes_sent == at)
            })
            .await;
        self.armed = None;
        self.install_faults()?;
        found.ok_or_else(|| {
            StepError::Firmware(format!("the board never downloaded {at} bytes of {glob}"))
        })?;
        Ok(format!(
            "at exactly {at} of {total} image bytes ({amount}) of {glob}"
        ))
    }

    /// Waits for a server event: any since the start when it must be present (it may already
    /// have happened), only new ones when it must be absent.
    async fn wait_server(
        &self,
        present: bool,
        deadline: tokio::time::Instant,
        pred: impl FnMut(&fake_server::ServerEvent) -> bool,
    ) -> bool {
        let from = if present {
            self.log_from
        } else {
            self.log.cursor()
        };
        self.log.wait_for(from, deadline, pred).await.is_some()
    }

    async fn expect(&mut self, e: &Expectation, present: bool) -> StepResult<()> {
        let deadline = tokio::time::Instant::now() + e.within.0;
        let what;
        let found = if let Some(p) = &e.console {
            what = format!("console /{p}/");
            let board = Arc::clone(&self.board);
            // Search from the last power-on so output printed before the step began counts.
            let from = if present {
                self.last_power_on
            } else {
                self.timeline.cursor()
            };
            self.timeline
                .wait_for(from, deadline, |ev| {
                    ev.board.as_deref() == Some(&*board)
                        && matches!(&ev.kind, EventKind::Console { line } if p.regex.is_match(line))
                })
                .await
                .map(|(c, _)| {
                    // Later console expectations start after this match.
                    self.last_power_on = Cursor(c.0 + 1);
                })
                .is_some()
        } else if let Some(h) = &e.http {
            what = format!("HTTP request {}", describe_http(h));
            self.wait_server(present, deadline, |ev| http_matches(h, ev))
                .await
        } else if let Some(d) = &e.device {
            what = format!("check-in {}", describe_device(d));
            self.wait_server(present, deadline, |ev| device_matches(d, ev))
                .await
        } else {
            return Err(StepError::Infra("empty expectation".into()));
        };
        match (present, found) {
            (true, true) | (false, false) => Ok(()),
            (true, false) => Err(StepError::Firmware(format!(
                "expected {what} within {}, not seen",
                e.within
            ))),
            (false, true) => Err(StepError::Firmware(format!(
                "{what} happened within {} but must not",
                e.within
            ))),
        }
    }

    /// After the last step: the board must settle on a confirmed image; classify the outcome
    /// and check the invariants every scenario carries.
    async fn settle(&mut self) -> StepResult<Outcome> {
        if self.with_power(|p| p.state()).await? == crate::board::PowerState::Off {
            self.power_on(self.sc.steps.len().saturating_sub(1)).await?;
        }
        let deadline = tokio::time::Instant::now() + self.ctx.settle;
        let from = self.log.cursor();
        let device = self.device_id.clone();
        let settled = self
            .log
            .wait_for(from, deadline, |e| {
                matches!(&e.kind, ServerKind::Checkin { device: d, state, command, .. }
                    if *d == device && matches!(state, DeviceState::Confirmed | DeviceState::Reverted) && *command == Command::None)
            })
            .await;
        let given = self.version_of(&self.sc.given.firmware)?;
        let forbidden = self.forbidden_versions();
        let lines = self.console_lines();
        let facts = ConsoleFacts::read(lines.iter().map(String::as_str));
        if let Some(why) = facts.broken(given, &forbidden) {
            return Err(StepError::Firmware(format!("{why}{}", self.evidence())));
        }
        let Some((_, e)) = settled else {
            return Err(StepError::Firmware(format!(
                "bricked: no check-in on a confirmed image within {:?} after the last step{}",
                self.ctx.settle,
                self.evidence()
            )));
        };
        let ServerKind::Checkin {
            version,
            last_error,
            ..
        } = &e.kind
        else {
            return Err(StepError::Infra("unexpected server event".into()));
        };
        let final_version: Version = version.parse().map_err(|_| {
            StepError::Firmware(format!("board reported a bad version `{version}`"))
        })?;
        match last_error {
            // Why the board stayed where it is, as it reported it.
            Some(cause) => self.note(format!("settled on {final_version} (last error: {cause})")),
            None => self.note(format!("settled on {final_version}")),
        }
        let outcome = facts.outcome(given, final_version);
        match self.sc.skip_final_cycle.clone() {
            Some(why) => self.note(format!("final power cycle skipped: {why}")),
            None => self.final_cycle(final_version).await?,
        }
        Ok(outcome)
    }

    fn version_of(&self, image: &str) -> StepResult<Version> {
        self.sc
            .images
            .get(image)
            .map(|d| d.version.0)
            .ok_or_else(|| StepError::Infra(format!("unknown image {image}")))
    }

    /// Versions of images used here that a correct board must never run.
    fn forbidden_versions(&self) -> Vec<Version> {
        let mut used: Vec<&str> = vec![self.sc.given.firmware.as_str()];
        used.extend(self.sc.release.as_deref());
        for s in &self.sc.steps {
            if let Action::Publish(n) = &s.action {
                used.push(n);
            }
        }
        let defs: Vec<_> = used.iter().filter_map(|n| self.sc.images.get(*n)).collect();
        defs.iter()
            .filter(|d| d.must_not_run())
            .map(|d| d.version.0)
            .filter(|v| !defs.iter().any(|g| !g.must_not_run() && g.version.0 == *v))
            .collect()
    }

    fn console_lines(&self) -> Vec<String> {
        self.timeline
            .since(self.scenario_from)
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Console { line } if e.board.as_deref() == Some(&*self.board) => {
                    Some(line)
                }
                _ => None,
            })
            .collect()
    }

    /// The last console lines, for failure messages.
    fn evidence(&self) -> String {
        let lines = self.console_lines();
        let tail: Vec<_> = lines.iter().rev().take(12).rev().collect();
        if tail.is_empty() {
            return "\n  (the board printed nothing)".into();
        }
        let mut out = String::from("\n  last console lines:");
        for l in tail {
            out.push_str("\n    ");
            out.push_str(l);
        }
        out
    }

    /// Restores a hardware board after a bad outcome, with the server still up: its probe
    /// writes the golden image of the scenario's starting firmware; without a probe, a power
    /// cycle. Either way the board must then check in on a confirmed image, or it is taken
    /// out of the run (the reason is on the timeline and in every later result on it).
    async fn restore(&mut self) {
        let Some(b) = &self.bench else { return };
        let probe = b.probe.clone();
        let button = b.button.is_some();
        self.note(format!(
            "restore: board {} after a bad outcome ({})",
            self.board,
            match (&probe, button) {
                (Some(_), _) => "probe reflash of the golden image",
                (None, true) => "factory-reset drill",
                (None, false) => "power cycle",
            }
        ));
        if let Ok(server) = self.server() {
            // Nothing may distract the board while it comes back.
            let _ = server.offer(None);
            server.set_faults(Vec::new());
            let mut r = server.rollout();
            r.paused = false;
            server.set_rollout(r);
        }
        let result: StepResult<(String, String)> = async {
            self.power_off().await?;
            match probe {
                Some(probe) => {
                    let factory = self.image(&self.sc.given.firmware)?;
                    let (golden, base) = self.store().golden(&factory).map_err(StepError::infra)?;
                    self.probe_flash(probe, golden, base, "restore").await?;
                    self.power_off().await?;
                }
                None if button => return self.factory_reset_drill("restore").await,
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.boot_and_check_in("restore").await
        }
        .await;
        let verdict = match result {
            Ok((version, state)) if state == "confirmed" => Ok(format!(
                "restored: board {} checks in on {version} (confirmed)",
                self.board
            )),
            Ok((version, state)) => Err(format!(
                "after restore the board checks in on {version} in state {state}, not a confirmed image"
            )),
            Err(StepError::Infra(m) | StepError::Firmware(m)) => Err(m),
        };
        match verdict {
            Ok(done) => self.note(done),
            Err(why) => {
                let why = format!("restore failed: {why}");
                self.note(format!("board {} taken out of the run: {why}", self.board));
                warn!(board = %self.board, "{why}");
                if let Some(b) = self.bench.as_deref_mut() {
                    b.out_of_run = Some(why);
                }
            }
        }
    }

    async fn teardown(&mut self, restore: bool) {
        if restore && self.bench.is_some() && self.server.is_some() {
            self.restore().await;
        }
        if let Some(power) = self.power.take() {
            let res = tokio::task::spawn_blocking(move || {
                let mut p = power.lock().unwrap_or_else(|e| e.into_inner());
                p.off().map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            if let Err(e) = res {
                warn!("powering the board off failed: {e}");
            }
        }
        if let Some(console) = self.console.take() {
            let _ = tokio::task::spawn_blocking(move || console.stop()).await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(f) = self.forwarder.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), f).await;
        }
    }
}

fn http_matches(h: &HttpExpect, ev: &fake_server::ServerEvent) -> bool {
    let ServerKind::Request {
        method,
        path,
        range,
        status,
        ..
    } = &ev.kind
    else {
        return false;
    };
    h.path.as_deref().is_none_or(|g| glob_match(g, path))
        && h.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
        && h.status.is_none_or(|s| s == *status)
        && h.range_from
            .is_none_or(|c| c.matches(range_start(range.as_deref())))
}

fn device_matches(d: &DeviceExpect, ev: &fake_server::ServerEvent) -> bool {
    let ServerKind::Checkin {
        version,
        state,
        last_error,
        ..
    } = &ev.kind
    else {
        return false;
    };
    d.version
        .is_none_or(|v| version.parse::<Version>().is_ok_and(|got| got == v.0))
        && d.state.as_deref().is_none_or(|s| s == state.as_str())
        && d.last_error
            .as_ref()
            .is_none_or(|p| last_error.as_deref().is_some_and(|e| p.regex.is_match(e)))
}

fn describe_http(h: &HttpExpect) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &h.method {
        parts.push(m.clone());
    }
    parts.push(h.path.clone().unwrap_or_else(|| "*".into()));
    if let Some(s) = h.status {
        parts.push(format!("status {s}"));
    }
    if let Some(r) = h.range_from {
        parts.push(format!("range start {r:?}"));
    }
    parts.join(" ")
}

fn describe_device(d: &DeviceExpect) -> String {
    let mut parts = Vec::new();
    if let Some(v) = d.version {
        parts.push(format!("version={}", v.0));
    }
    if let Some(s) = &d.state {
        parts.push(format!("state={s}"));
    }
    if let Some(e) = &d.last_error {
        parts.push(format!("last_error=/{e}/"));
    }
    parts.join(" ")
}

/// One line describing a step, for the timeline and messages.
pub fn describe(a: &Action) -> String {
    match a {
        Action::Power(p) => format!("power {p:?}").to_lowercase(),
        Action::Cut(c) => format!("cut power {}", describe_trigger(&c.when)),
        Action::Expect(e) => format!("expect {}", describe_expect(e)),
        Action::Absent(e) => format!("expect no {}", describe_expect(e)),
        Action::Wait(d) => format!("wait {d}"),
        Action::Publish(n) => format!("publish {n}"),
        Action::Withdraw(_) => "withdraw the offered release".into(),
        Action::Rollout(r) => format!("rollout {r:?}"),
        Action::Command(c) => format!("command {c:?}").to_lowercase(),
        Action::Faults(f) => format!("set {} fault rule(s)", f.len()),
    }
}

fn describe_expect(e: &Expectation) -> String {
    let what = if let Some(p) = &e.console {
        format!("console /{p}/")
    } else if let Some(h) = &e.http {
        format!("http {}", describe_http(h))
    } else if let Some(d) = &e.device {
        format!("device {}", describe_device(d))
    } else {
        String::new()
    };
    format!("{what} within {}", e.within)
}

fn describe_trigger(t: &Trigger) -> String {
    if let Some(p) = &t.console {
        format!("on console /{p}/")
    } else if let Some(h) = &t.http {
        match (h.bytes_sent, h.request) {
            (Some(b), _) => format!("at {b} of {}", h.path.as_deref().unwrap_or("/v1/images/*")),
            (_, Some(n)) => format!("at request #{n}"),
            _ => "on http".into(),
        }
    } else if let Some(f) = &t.flash {
        match (f.op, f.slot_write) {
            (Some(op), _) => format!("at flash op {op}"),
            (_, Some(a)) => format!("during the inactive-slot write at {a}"),
            _ => "on flash".into(),
        }
    } else if let Some(b) = &t.breakpoint {
        format!("at breakpoint `{}` (hit {})", b.symbol, b.hit)
    } else if let Some(a) = t.after {
        format!("after {a}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("/v1/images/*", "/v1/images/v2.bin"));
        assert!(glob_match("*", ""));
        assert!(glob_match("/a/*/c", "/a/b/x/c"));
        assert!(!glob_match("/v1/images/*", "/v1/manifest/v2"));
        assert!(!glob_match("/a", "/ab"));
    }

    #[test]
    fn range_starts() {
        assert_eq!(range_start(Some("bytes=4096-")), 4096);
        assert_eq!(range_start(Some("bytes=0-99")), 0);
        assert_eq!(range_start(None), 0);
        assert_eq!(range_start(Some("bytes=-500")), 0);
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(attempt_seed(7, "a", 1), attempt_seed(7, "a", 1));
        assert_ne!(attempt_seed(7, "a", 1), attempt_seed(7, "a", 2));
        assert_ne!(attempt_seed(7, "a", 1), attempt_seed(8, "a", 1));
    }
}
