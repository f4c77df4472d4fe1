//! Board kinds: the one place where a simulated board and a bench board differ (labgrid's
//! strategies: a status and one `transition` that drives the board towards it).

use std::sync::{Arc, Mutex};

use super::bench_boards::{BenchBoard, SharedProbe};
use super::{AttemptRun, ConsoleMode, StepError, StepResult, slug};
use crate::backend::sim::{SimPower, SimSpec};
use crate::images::ImageStore;
use crate::scenario::Scenario;
use crate::timeline::{BoardLane, Timeline};

/// What kind of board an attempt runs on.
pub(super) enum BoardKind<'a> {
    /// A simulated board started for this attempt (fresh flash) and dropped after it.
    Sim,
    /// A bench board lent to the attempt: provisioned to the scenario's starting firmware
    /// first, restored after a bad outcome, kept for the next attempt.
    Bench(&'a mut BenchBoard),
}

/// How far a board is on its way to the scenario's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BoardStatus {
    /// Nothing known yet: before preparation.
    Unknown,
    /// Runs the scenario's starting firmware, console attached, powered off: steps may run.
    Ready,
    /// After a bad outcome (bricked, timed out, infrastructure error): its state is unknown
    /// or broken, and a board that outlives the attempt must be restored.
    Broken,
    /// A bench board whose restore failed: it is out of the run.
    Retired,
}

impl BoardKind<'_> {
    /// The board's name on the timeline and the device id it checks in with.
    pub(super) fn identity(&self, sc: &Scenario, index: u32, seed: u64) -> (Arc<str>, String) {
        match self {
            Self::Bench(b) => (Arc::clone(&b.name), b.device_id.clone()),
            Self::Sim => (
                Arc::from(format!("sim-{index}")),
                format!("sim-{}-{:08x}", slug(&sc.name), seed as u32),
            ),
        }
    }

    /// Sends a bench board's own events (its console reader, relay) to this attempt's timeline.
    pub(super) fn attach(&self, timeline: &Arc<Timeline>) {
        if let Self::Bench(b) = self {
            b.lane.attach(Arc::clone(timeline), Arc::clone(&b.name));
        }
    }

    pub(super) fn detach(&self) {
        if let Self::Bench(b) = self {
            b.lane.detach();
        }
    }

    /// Where the attempt's images come from: a bench board's own store (a Pico W's firmware
    /// builds, its key), else the run's.
    pub(super) fn images<'s>(&'s self, run: &'s ImageStore) -> &'s ImageStore {
        match self {
            Self::Bench(b) => b.images.as_ref().unwrap_or(run),
            Self::Sim => run,
        }
    }

    /// Starts the attempt's update server: on an ephemeral loopback port for a sim board
    /// (told the URL at start), on the bench board's own listening socket (its firmware has
    /// the address built in) with the control API locked.
    pub(super) async fn start_server(
        &self,
        cfg: fake_server::Config,
    ) -> StepResult<fake_server::ServerHandle> {
        match self {
            Self::Sim => fake_server::start(cfg).await,
            Self::Bench(b) => {
                let socket = b.listener.try_clone().map_err(|e| {
                    StepError::Infra(format!("board {}: server socket: {e}", b.name))
                })?;
                let token = Some(format!(
                    "{:016x}{:016x}",
                    rand::random::<u64>(),
                    rand::random::<u64>()
                ));
                fake_server::start_on(fake_server::Config { token, ..cfg }, socket).await
            }
        }
        .map_err(StepError::infra)
    }

    /// The board's debug probe, if it has one.
    pub(super) fn probe(&self) -> Option<SharedProbe> {
        match self {
            Self::Bench(b) => b.probe.clone(),
            Self::Sim => None,
        }
    }

    /// Whether the board outlives the attempt (and so must be left in a known state).
    pub(super) fn outlives_attempt(&self) -> bool {
        matches!(self, Self::Bench(_))
    }
}

impl AttemptRun<'_> {
    /// Drives the board towards `to`. `Ready` from `Unknown` prepares it for the first time
    /// (a sim board is created with the factory image; a bench board is provisioned);
    /// `Ready` from `Broken` restores a bench board, or retires it when that fails.
    pub(super) async fn transition(&mut self, to: BoardStatus) -> StepResult<()> {
        match (self.status, to, &self.kind) {
            (from, to, _) if from == to => Ok(()),
            (BoardStatus::Unknown, BoardStatus::Ready, BoardKind::Sim) => {
                let factory = self.image(&self.sc.given.firmware)?;
                self.start_sim_board(&factory)?;
                self.status = BoardStatus::Ready;
                Ok(())
            }
            (BoardStatus::Unknown, BoardStatus::Ready, BoardKind::Bench(_)) => {
                let factory = self.image(&self.sc.given.firmware)?;
                self.provision(&factory).await?;
                self.server()?.forget_devices();
                self.status = BoardStatus::Ready;
                Ok(())
            }
            (BoardStatus::Broken, BoardStatus::Ready, BoardKind::Bench(_)) => {
                match self.restore().await {
                    Ok(done) => {
                        self.note(done);
                        self.status = BoardStatus::Ready;
                    }
                    Err(why) => {
                        self.retire(format!("restore failed: {why}"));
                        self.status = BoardStatus::Retired;
                    }
                }
                Ok(())
            }
            (from, to, _) => Err(StepError::Infra(format!(
                "board {}: no way from {from:?} to {to:?}",
                self.board
            ))),
        }
    }

    /// A fresh simulated board for this attempt, provisioned with `factory`, powered off.
    pub(super) fn start_sim_board(&mut self, factory: &str) -> StepResult<()> {
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
        self.flash_file = Some(flash.clone());
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
}
