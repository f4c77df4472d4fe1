//! Runs scenarios: prepares the board and the update server, executes steps, watches the
//! timeline, and turns what happened into an [`Attempt`] with an observed [`Outcome`].
//!
//! Board preparation follows labgrid's strategy idea: off → console attached → factory image
//! provisioned → on. Every step runs in a `tracing` span; any failure names the step and its
//! line in the scenario file.

pub mod bench_boards;
mod expectations;
mod final_cycle;
mod power;
mod prepare;
mod provision;
pub mod serverlog;
mod settle;
mod strategy;
mod tamper;
mod triggers;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, info, info_span};

use crate::images;
use crate::scenario::{Action, CommandName, PowerAction, Scenario};
use crate::timeline::{Cursor, EventKind, Timeline};
use crate::verdict::{Attempt, Outcome, Status};
use bench_boards::{BenchBoard, SharedPower};
use serverlog::ServerLog;
use strategy::{BoardKind, BoardStatus};
use triggers::ArmedBytes;

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
    let kind = match bench {
        Some(b) => BoardKind::Bench(b),
        None => BoardKind::Sim,
    };
    let (board, device_id) = kind.identity(sc, index, seed);
    kind.attach(&timeline);
    let mut run = AttemptRun {
        ctx,
        sc,
        timeline: Arc::clone(&timeline),
        board,
        device_id,
        kind,
        status: BoardStatus::Unknown,
        flash_file: None,
        seed,
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
    let limit = run.scaled(sc.timeout.0);
    let result = tokio::time::timeout(limit, run.execute().instrument(span)).await;
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
                "scenario timed out after {}{} (raise `timeout:` if the board is just slow){}",
                sc.timeout,
                if limit == sc.timeout.0 {
                    String::new()
                } else {
                    format!(" ({limit:?} with the board's time_scale)")
                },
                run.evidence()
            )),
        ),
    };
    // The board's state is unknown or broken after these outcomes.
    let restore = matches!(status, Status::InfraError)
        || matches!(
            observed,
            None | Some(Outcome::Bricked | Outcome::InfraError)
        );
    if restore {
        run.status = BoardStatus::Broken;
    }
    run.teardown().await;
    if let Some(r) = &reason {
        timeline.push(
            None,
            EventKind::Rig {
                detail: format!("verdict: {r}"),
            },
        );
    }
    run.kind.detach();
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

struct AttemptRun<'a> {
    ctx: &'a RunContext,
    sc: &'a Scenario,
    timeline: Arc<Timeline>,
    board: Arc<str>,
    device_id: String,
    /// What kind of board runs the attempt, and how far it is on the way to the start.
    kind: BoardKind<'a>,
    status: BoardStatus,
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
    /// The board's flash file, when the rig can reach its flash directly (a sim board).
    flash_file: Option<PathBuf>,
    /// The attempt's seed (bit positions of tamper steps).
    seed: u64,
    /// A byte-exact download trigger installed ahead of its step.
    armed: Option<ArmedBytes>,
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
            self.note(format!("step {n} (line {}): {}", step.line, step.action));
            let res = match self.arm_next_byte_trigger(i + 1, steps.get(i + 1).map(|s| &s.action)) {
                Ok(()) => self.step(i, &step.action).instrument(span).await,
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                let prefix = format!(
                    "step {n} ({}:{}: {})",
                    self.sc.file.display(),
                    step.line,
                    step.action
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
            Action::Tamper(t) => self.tamper(i, t).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(attempt_seed(7, "a", 1), attempt_seed(7, "a", 1));
        assert_ne!(attempt_seed(7, "a", 1), attempt_seed(7, "a", 2));
        assert_ne!(attempt_seed(7, "a", 1), attempt_seed(8, "a", 1));
    }
}
