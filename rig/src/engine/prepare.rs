//! Preparation: the update server, the scenario's images and its rollout, up to (not
//! including) the first power-on.

use std::sync::Arc;

use super::strategy::BoardStatus;
use super::{AttemptRun, StepError, StepResult, serverlog};
use crate::images;

impl AttemptRun<'_> {
    /// Images, server, board, console: everything up to (not including) power-on.
    pub(super) async fn prepare(&mut self) -> StepResult<()> {
        let sc = self.sc;
        // Built before anything starts: a bad image definition fails here, not half-way.
        self.image(&sc.given.firmware)?;
        let cfg = fake_server::Config {
            faults: sc.faults.clone(),
            signing_key: Some(self.store().signing_key().clone()),
            ..fake_server::Config::new(self.store().dir())
        };
        let server = self.kind.start_server(cfg).await?;
        self.forwarder = Some(serverlog::spawn_forwarder(
            server.subscribe(),
            Arc::clone(&self.log),
            Arc::clone(&self.timeline),
            Arc::clone(&self.board),
        ));
        self.server = Some(server);
        self.transition(BoardStatus::Ready).await?;
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
    pub(super) fn store(&self) -> &images::ImageStore {
        self.kind.images(&self.ctx.images)
    }

    /// Publishes the scenario's image `name` (every variant the board kind needs) and offers it.
    pub(super) fn publish(&self, name: &str) -> StepResult<()> {
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
    pub(super) fn image(&self, name: &str) -> StepResult<String> {
        let def = self
            .sc
            .images
            .get(name)
            .ok_or_else(|| StepError::Infra(format!("unknown image {name}")))?;
        self.store().get(name, def).map_err(StepError::infra)
    }

    pub(super) fn apply_rollout(&self, r: &crate::scenario::RolloutDef) -> StepResult<()> {
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
}
