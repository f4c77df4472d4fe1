//! Power: every switch of the board's supply goes through here (off the async threads), with
//! the exact flash cut armed for the power-on that needs it.

use std::time::Duration;

use fake_server::EventKind as ServerKind;
use ota_core::checkin::DeviceState;

use super::strategy::BoardStatus;
use super::{AttemptRun, StepError, StepResult};
use crate::backend::sim::{CutPoint, ExactCut};
use crate::board::PowerSwitch;
use crate::scenario::{Action, TriggerOn};
use tracing::warn;

impl AttemptRun<'_> {
    /// Runs a blocking power operation off the async threads.
    pub(super) async fn with_power<T: Send + 'static>(
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
    pub(super) fn exact_cut_after(&self, step: usize) -> Option<ExactCut> {
        for s in &self.sc.steps[step + 1..] {
            match &s.action {
                Action::Power(_) => return None,
                Action::Cut(c) => {
                    let at = match &c.when.on {
                        TriggerOn::FlashOp(op) => CutPoint::FlashOp(*op),
                        TriggerOn::SlotWrite(amount) => {
                            let len = self.offered_image_len().ok()?;
                            CutPoint::SlotOffset(u32::try_from(amount.resolve(len)).ok()?)
                        }
                        _ => return None,
                    };
                    return Some(ExactCut { at, torn: c.torn });
                }
                _ => {}
            }
        }
        None
    }

    pub(super) async fn power_on(&mut self, step: usize) -> StepResult<()> {
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

    pub(super) async fn power_off(&self) -> StepResult<()> {
        self.with_power(|p| p.off())
            .await?
            .map_err(StepError::infra)
    }

    /// The board's first check-in after `from` in the server log, waiting up to the settle
    /// time from now.
    pub(super) async fn first_checkin(&self, from: usize) -> Option<ServerKind> {
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
    pub(super) async fn boot_and_check_in(
        &mut self,
        why: &str,
    ) -> StepResult<(String, DeviceState)> {
        let from = self.log.cursor();
        self.with_power(|p| p.on())
            .await?
            .map_err(StepError::infra)?;
        match self.first_checkin(from).await {
            Some(ServerKind::Checkin { version, state, .. }) => Ok((version, state)),
            _ => Err(StepError::Infra(format!(
                "{why}: board {} (device {}) did not check in within {:?} of power-on{}",
                self.board,
                self.device_id,
                self.ctx.settle,
                self.evidence()
            ))),
        }
    }

    /// Ends the attempt: a broken board that outlives it is restored (with the server still
    /// up), then power off, console, server and log forwarder stop, in that order.
    pub(super) async fn teardown(&mut self) {
        if self.status == BoardStatus::Broken
            && self.kind.outlives_attempt()
            && self.server.is_some()
            && let Err(e) = self.transition(BoardStatus::Ready).await
        {
            warn!("board {}: {e:?}", self.board);
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
