//! The end of an attempt: the board must settle on a confirmed image; the outcome is read from
//! what it reported, checked against the invariants every scenario carries, and the settled
//! state must survive one more power cycle ([`super::final_cycle`]).

use fake_server::EventKind as ServerKind;
use ota_core::Version;
use ota_core::checkin::{Command, DeviceState};

use super::{AttemptRun, StepError, StepResult};
use crate::scenario::Action;
use crate::timeline::EventKind;
use crate::verdict::{ConsoleFacts, Outcome};

impl AttemptRun<'_> {
    /// After the last step: the board must settle on a confirmed image; classify the outcome
    /// and check the invariants every scenario carries.
    pub(super) async fn settle(&mut self) -> StepResult<Outcome> {
        if self.with_power(|p| p.state()).await? == crate::board::PowerState::Off {
            self.power_on(self.sc.steps.len().saturating_sub(1)).await?;
        }
        let deadline = tokio::time::Instant::now() + self.scaled(self.ctx.settle);
        let from = self.log.cursor();
        let device = self.device_id.clone();
        let settled = self
            .log
            .wait_for(from, deadline, |e| {
                matches!(&e.kind, ServerKind::Checkin { device: d, state, command, .. }
                    if *d == device
                        && matches!(state, DeviceState::Confirmed | DeviceState::Reverted)
                        && *command == Command::None)
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
                self.scaled(self.ctx.settle),
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

    pub(super) fn version_of(&self, image: &str) -> StepResult<Version> {
        self.sc
            .images
            .get(image)
            .map(|d| d.version.0)
            .ok_or_else(|| StepError::Infra(format!("unknown image {image}")))
    }

    /// Versions of images used here that a correct board must never run.
    pub(super) fn forbidden_versions(&self) -> Vec<Version> {
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

    pub(super) fn console_lines(&self) -> Vec<String> {
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
    pub(super) fn evidence(&self) -> String {
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
}
