//! Hardware boards (the bench strategy): bringing a board to the scenario's starting firmware
//! before it runs, and back to a known state after a bad outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ota_core::checkin::DeviceState;
use ota_core::console::Line;
use tracing::warn;

use super::bench_boards::{BenchBoard, SharedProbe};
use super::strategy::BoardKind;
use super::{AttemptRun, StepError, StepResult};
use crate::timeline::{BoardLane, EventKind};

impl AttemptRun<'_> {
    fn bench(&self) -> Option<&BenchBoard> {
        match &self.kind {
            BoardKind::Bench(b) => Some(b),
            BoardKind::Sim => None,
        }
    }

    fn bench_mut(&mut self) -> Option<&mut BenchBoard> {
        match &mut self.kind {
            BoardKind::Bench(b) => Some(b),
            BoardKind::Sim => None,
        }
    }

    /// Brings a hardware board to the scenario's starting firmware, powered off: its probe
    /// writes the golden image; without a probe, the board must already run that firmware
    /// (a board cannot be downgraded over the air, by design).
    pub(super) async fn provision(&mut self, factory: &str) -> StepResult<()> {
        let BoardKind::Bench(b) = &self.kind else {
            return Err(StepError::Infra("no bench board".into()));
        };
        if let Some(why) = &b.out_of_run {
            return Err(StepError::Infra(format!(
                "board {} is out of the run: {why}",
                b.name
            )));
        }
        self.power = Some(Arc::clone(&b.power));
        self.flash_file = b.flash_file.clone();
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
                let runs_given = |(v, st): &(String, DeviceState)| {
                    *v == given.to_string() && *st == DeviceState::Confirmed
                };
                // With a recovery button every scenario starts from the factory state (no
                // refused release or error remembered from the previous scenario).
                let has_button = self.bench().is_some_and(|b| b.button.is_some());
                let found = if has_button {
                    self.factory_reset_drill("provision").await
                } else {
                    self.boot_and_check_in("provision").await
                };
                self.power_off().await?;
                let (version, state) = found?;
                if !runs_given(&(version.clone(), state)) {
                    let why = format!(
                        "board {} runs {version} ({}) but the scenario starts from {given}, and {}: flash it by hand, or give the board a probe in the bench file",
                        self.board,
                        state.as_str(),
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
    pub(super) async fn factory_reset_drill(
        &mut self,
        why: &str,
    ) -> StepResult<(String, DeviceState)> {
        self.note(format!(
            "{why}: factory-reset drill: recovery button held through a power cycle"
        ));
        let hold = |b: &mut BenchBoard, held: bool| match &mut b.button {
            Some(button) if held => button.hold(),
            Some(button) => button.release(),
            None => Ok(()),
        };
        self.power_off().await?;
        if let Some(b) = self.bench_mut() {
            hold(b, true).map_err(StepError::infra)?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let found = self.boot_and_check_in(why).await;
        if let Some(b) = self.bench_mut() {
            hold(b, false).map_err(StepError::infra)?;
        }
        found
    }

    /// Powers the board and notes which image it boots before the probe overwrites it (the
    /// state the previous scenario left, on the timeline), waiting at most a second for its
    /// boot line: a blank board prints none.
    pub(super) async fn note_what_the_board_runs(&mut self) -> StepResult<()> {
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
    pub(super) async fn probe_flash(
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

    /// Restores a hardware board after a bad outcome, with the server still up: its probe
    /// writes the golden image of the scenario's starting firmware; without a probe, a power
    /// cycle. Either way the board must then check in on a confirmed image: `Ok` says how it
    /// came back, `Err` why it did not.
    pub(super) async fn restore(&mut self) -> Result<String, String> {
        let Some(b) = self.bench() else {
            return Err("no bench board".into());
        };
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
        let result: StepResult<(String, DeviceState)> = async {
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
        match result {
            Ok((version, DeviceState::Confirmed)) => Ok(format!(
                "restored: board {} checks in on {version} (confirmed)",
                self.board
            )),
            Ok((version, state)) => Err(format!(
                "after restore the board checks in on {version} in state {}, not a confirmed image",
                state.as_str()
            )),
            Err(StepError::Infra(m) | StepError::Firmware(m)) => Err(m),
        }
    }

    /// Takes a bench board out of the run: the reason is on the timeline and in every later
    /// result on it.
    pub(super) fn retire(&mut self, why: String) {
        self.note(format!("board {} taken out of the run: {why}", self.board));
        warn!(board = %self.board, "{why}");
        if let Some(b) = self.bench_mut() {
            b.out_of_run = Some(why);
        }
    }
}
