//! The invariant every scenario ends with: the state a board settled in must survive one more
//! power cycle. After the board settles, the rig cuts its power once more (a plain cycle, no
//! cut point armed) and the board must come back on the same image, from the same slot,
//! confirmed, without a single bootloader decision (trial count, revert, refusal) and without
//! any update activity — then check in on that version. A firmware that reverts in RAM but
//! leaves the failed slot active in flash passes every scenario that ends on a revert, and
//! fails here.

use std::time::Duration;

use fake_server::EventKind as ServerKind;
use ota_core::Version;
use ota_core::checkin::DeviceState;
use ota_core::console::{Line, SlotState};

use super::{AttemptRun, StepError, StepResult};
use crate::timeline::EventKind;

/// What a board printed after the final power-on, judged: `Err` names the first line that
/// shows the settled state did not survive the cycle.
pub fn judge<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    version: Version,
    slot: Option<u8>,
) -> Result<(), String> {
    let mut banners = 0;
    let mut came_back = false;
    for text in lines {
        let Some(line) = ota_core::console::parse(text) else {
            // Board-specific lines (network, diagnostics) say nothing about the state.
            continue;
        };
        let bad = match line {
            Line::BootBanner { .. } => {
                banners += 1;
                banners > 1
            }
            Line::BootSlot {
                slot: s,
                version: v,
                state,
            } => {
                came_back = true;
                v != version || state != SlotState::Confirmed || slot.is_some_and(|b| b != s)
            }
            // Network trouble is not a change of state.
            Line::CheckinFailed { .. }
            | Line::Checkin { .. }
            | Line::AppStarting { .. }
            | Line::AppNetworkUp { .. }
            | Line::AppRunning { .. }
            | Line::AppNetworkDisabled { .. } => false,
            _ => true,
        };
        if bad {
            let what = if banners > 1 {
                "the board reset again"
            } else {
                "the settled state did not survive a power cycle"
            };
            return Err(format!(
                "final power cycle: {what}: `{text}` (expected v{version} confirmed{})",
                slot.map(|s| format!(" from slot {}", ota_core::layout::slot_name(s)))
                    .unwrap_or_default()
            ));
        }
    }
    if !came_back {
        return Err(format!(
            "final power cycle: the board never said it boots v{version} again"
        ));
    }
    Ok(())
}

/// The slot of the last `boot: slot=` line: where the board settled.
pub fn settled_slot<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<u8> {
    lines
        .into_iter()
        .filter_map(ota_core::console::parse)
        .filter_map(|l| match l {
            Line::BootSlot { slot, .. } => Some(slot),
            _ => None,
        })
        .last()
}

impl AttemptRun<'_> {
    /// Cuts power once more after the board settled on `version`, restores it, and checks that
    /// the board comes back exactly as it was ([`judge`]) and checks in on that version.
    pub(super) async fn final_cycle(&mut self, version: Version) -> StepResult<()> {
        let before = self.console_lines();
        let slot = settled_slot(before.iter().map(String::as_str));
        self.note(format!(
            "final power cycle: the board must come back on v{version} confirmed, with no update activity"
        ));
        self.power_off().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let console_from = self.timeline.cursor();
        let log_from = self.log.cursor();
        self.with_power(|p| {
            if let Some(exact) = p.exact_cuts() {
                exact.arm_cut(None);
            }
            p.on()
        })
        .await?
        .map_err(StepError::infra)?;
        let answered = self.first_checkin(log_from).await;
        let deadline = tokio::time::Instant::now() + self.ctx.settle;
        // The board prints its check-in after the server answered it: once that line is on
        // the timeline, so is everything the board printed before.
        let board = self.board.clone();
        let _ = self
            .timeline
            .wait_for(console_from, deadline, |e| {
                e.board.as_deref() == Some(&*board)
                    && matches!(&e.kind, EventKind::Console { line }
                        if matches!(ota_core::console::parse(line), Some(Line::Checkin { .. })))
            })
            .await;
        let lines: Vec<String> = self
            .timeline
            .since(console_from)
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Console { line } if e.board.as_deref() == Some(&*self.board) => {
                    Some(line)
                }
                _ => None,
            })
            .collect();
        judge(lines.iter().map(String::as_str), version, slot)
            .map_err(|why| StepError::Firmware(format!("{why}{}", self.evidence())))?;
        match answered {
            Some(ServerKind::Checkin {
                version: v, state, ..
            }) if v == version.to_string()
                && matches!(state, DeviceState::Confirmed | DeviceState::Reverted) =>
            {
                self.note(format!(
                    "final power cycle: back on v{version} ({})",
                    state.as_str()
                ));
                Ok(())
            }
            Some(ServerKind::Checkin {
                version: v, state, ..
            }) => Err(StepError::Firmware(format!(
                "final power cycle: the board checked in on {v} ({}), expected v{version}{}",
                state.as_str(),
                self.evidence()
            ))),
            _ => Err(StepError::Firmware(format!(
                "final power cycle: no check-in within {:?} of power-on{}",
                self.ctx.settle,
                self.evidence()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Version = Version::new(1, 0, 0);

    fn judged(lines: &[&str]) -> Result<(), String> {
        judge(lines.iter().copied(), V1, Some(0))
    }

    #[test]
    fn a_plain_reboot_on_the_settled_image_passes() {
        let lines = [
            "boot: otarig-boot board=sim device=sim-1 reset=power-on",
            "boot: slot=a version=1.0.0 state=confirmed",
            "app: v1.0.0 starting drill=none",
            "app: v1.0.0 network up",
            "app: v1.0.0 running",
            "checkin: failed reason=connect",
            "net: address=10.0.0.7",
            "checkin: version=1.0.0 state=reverted -> command=none",
        ];
        assert_eq!(judged(&lines), Ok(()));
    }

    #[test]
    fn a_revert_kept_only_in_ram_is_caught() {
        let lines = [
            "boot: otarig-boot board=sim device=sim-1 reset=power-on",
            "boot: revert to=1.0.0 reason=trial-exhausted",
            "boot: slot=a version=1.0.0 state=confirmed",
        ];
        let why = judged(&lines).expect_err("a second revert");
        assert!(why.contains("boot: revert to=1.0.0"), "{why}");
    }

    #[test]
    fn another_slot_version_or_state_is_caught() {
        let banner = "boot: otarig-boot board=sim device=sim-1 reset=power-on";
        for slot_line in [
            "boot: slot=b version=1.0.0 state=confirmed",
            "boot: slot=a version=2.0.0 state=confirmed",
            "boot: slot=a version=1.0.0 state=trial",
        ] {
            assert!(judged(&[banner, slot_line]).is_err(), "{slot_line}");
        }
        // Without a known slot, only version and state count.
        assert_eq!(
            judge(
                [banner, "boot: slot=b version=1.0.0 state=confirmed"],
                V1,
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn update_activity_resets_and_silence_are_caught() {
        let banner = "boot: otarig-boot board=sim device=sim-1 reset=power-on";
        let slot = "boot: slot=a version=1.0.0 state=confirmed";
        for after in [
            "update: offered manifest=/v1/manifest/v2",
            "download: resume offset=4096 chunk=1/4",
            "update: refused version=2.0.0 reason=previously-rejected",
            "boot: trial version=1.0.0 attempt=1/3",
            "watchdog: expired",
            "boot: otarig-boot board=sim device=sim-1 reset=watchdog",
            "boot: FATAL no bootable image",
        ] {
            assert!(judged(&[banner, slot, after]).is_err(), "{after}");
        }
        assert!(judged(&[banner]).is_err(), "never came back");
        assert!(judged(&[]).is_err(), "printed nothing");
    }

    #[test]
    fn the_settled_slot_is_the_last_one_booted() {
        let lines = [
            "boot: slot=a version=1.0.0 state=confirmed",
            "boot: slot=b version=2.0.0 state=trial",
            "boot: revert to=1.0.0 reason=trial-exhausted",
            "boot: slot=a version=1.0.0 state=confirmed",
            "app: v1.0.0 running",
        ];
        assert_eq!(settled_slot(lines), Some(0));
        assert_eq!(settled_slot(["app: v1.0.0 running"]), None);
    }
}
