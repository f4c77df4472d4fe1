//! `tamper` steps: the rig changes a powered-off board's flash ([`crate::tamper`]) through
//! the board's flash file (the simulated board; hardware has no such access and skips these
//! scenarios).

use super::{AttemptRun, StepError, StepResult, attempt_seed};
use crate::board::PowerState;
use crate::images::write_atomic;
use crate::scenario::Tamper;

impl AttemptRun<'_> {
    pub(super) async fn tamper(&mut self, step: usize, t: &Tamper) -> StepResult<()> {
        if self.with_power(|p| p.state()).await? != PowerState::Off {
            return Err(StepError::Infra(
                "tamper: the board is powered; add `power: off` before a tamper step".into(),
            ));
        }
        let file = self.flash_file.clone().ok_or_else(|| {
            StepError::Infra(format!(
                "board {}: tamper needs the board's flash file (the simulated board)",
                self.board
            ))
        })?;
        let mut flash = std::fs::read(&file).map_err(|e| {
            StepError::Infra(format!(
                "tamper: {} (has the board been powered on yet?): {e}",
                file.display()
            ))
        })?;
        let seed = attempt_seed(self.seed, &self.sc.name, step as u32);
        let layout = ota_core::layout::SIM;
        let done = crate::tamper::apply(&mut flash, &layout, t, seed)
            .map_err(|e| StepError::Infra(format!("tamper: {e}")))?;
        write_atomic(&file, &flash).map_err(StepError::infra)?;
        self.note(format!("tamper: {done}"));
        self.resolved
            .push(format!("step {}: tamper: {done}", step + 1));
        Ok(())
    }
}
