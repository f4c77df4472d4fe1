//! The server's rollout bookkeeping, with no I/O: releases, the offered release, the rollout
//! policy ([`crate::policy`]), per-device records, per-wave counters, queued commands, and
//! halting. HTTP handlers decode a request, call one method here, and encode the answer.
//!
//! A check-in ([`Registry::checkin`]) does, in order: expire in-progress offers past the
//! policy's timeout (`TIMED_OUT`); update the device's record; count a failure of a release it
//! was offered (a revert, or a refusal that blames the release after it downloaded it; retried
//! when the policy allows); count an update (running the offered release, confirmed); pick the
//! answer (a queued command, nothing while paused, or the release when the policy admits the
//! device); let the policy judge every wave whose counters changed, which may halt the
//! rollout.

mod record;

use std::collections::{BTreeMap, HashMap, VecDeque};

use ota_core::checkin::{CheckinRequest, CheckinResponse, Command, DeviceState};

pub use record::{DeviceRecord, Release, ReleaseInfo};

use crate::policy::{
    FailureKind, Halt, PhaseStats, PolicyConfig, PolicyStatus, Rollout, RolloutPolicy,
};

/// What a device fetched.
#[derive(Debug, Clone, Copy)]
pub enum DownloadOf<'a> {
    /// `GET /v1/manifest/{release}`.
    Release(&'a str),
    /// `GET /v1/images/{file}`.
    File(&'a str),
}

/// The answer to one check-in.
#[derive(Debug, Clone)]
pub struct Answered {
    pub response: CheckinResponse,
    /// The rollout halted because of this check-in.
    pub halt: Option<Halt>,
}

/// Everything the server remembers about releases, devices and the rollout.
#[derive(Debug)]
pub struct Registry {
    releases: BTreeMap<String, Release>,
    offered: Option<String>,
    config: PolicyConfig,
    policy: Box<dyn RolloutPolicy>,
    paused: bool,
    halted: Option<Halt>,
    commands: HashMap<String, Queued>,
    /// Hashed: a fleet of 100,000 looks its record up on every request (a B-tree's string
    /// compares were a tenth of a drill's time); [`Registry::devices`] iterates in id order.
    devices: HashMap<String, DeviceRecord>,
    /// Per release, per wave.
    stats: BTreeMap<String, Vec<PhaseStats>>,
    /// Offers still in progress, in offer order: (deadline, device, release).
    in_progress: VecDeque<(u64, String, String)>,
    /// Versions withdrawn by the kill switch: a device that checks in running one is told to
    /// roll back (it may have finished installing after the switch).
    killed: Vec<ota_core::Version>,
    /// Judge waves at [`Registry::judge_pending`] only, not at each check-in.
    defer_judging: bool,
    /// Waves a check-in gave the policy something new to judge, waiting for the next
    /// [`Registry::judge_pending`] (with `defer_judging`).
    pending: Vec<(String, u8)>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(PolicyConfig::default())
    }
}

impl Registry {
    pub fn new(config: PolicyConfig) -> Self {
        let mut r = Self {
            releases: BTreeMap::new(),
            offered: None,
            policy: config.build(),
            config: PolicyConfig::default(),
            paused: false,
            halted: None,
            commands: HashMap::new(),
            devices: HashMap::new(),
            stats: BTreeMap::new(),
            in_progress: VecDeque::new(),
            killed: Vec::new(),
            defer_judging: false,
            pending: Vec::new(),
        };
        r.set_policy(config);
        r
    }

    /// Adds (or replaces) a release and offers it.
    pub fn publish(&mut self, release: Release) {
        self.offered = Some(release.info.name.clone());
        self.releases.insert(release.info.name.clone(), release);
    }

    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.get(name)
    }

    pub fn releases(&self) -> impl Iterator<Item = &Release> {
        self.releases.values()
    }

    /// Chooses the release check-ins offer; `Err` names an unknown release.
    pub fn offer(&mut self, release: Option<&str>) -> Result<(), String> {
        if let Some(r) = release
            && !self.releases.contains_key(r)
        {
            return Err(r.to_string());
        }
        self.offered = release.map(str::to_string);
        Ok(())
    }

    pub fn offered(&self) -> Option<&Release> {
        self.releases.get(self.offered.as_ref()?)
    }

    /// Judge the rollout policy (a wave's halt threshold) only when [`Registry::judge_pending`]
    /// is called, not within each check-in. A simulated fleet's check-ins within one tick of
    /// its clock arrive in whatever order its threads run them; judging once per tick, as a
    /// backend's periodic rollout check does, makes what a tick's devices are told independent
    /// of that order, so a seeded drill replays exactly.
    pub fn defer_judging(&mut self, on: bool) {
        self.defer_judging = on;
    }

    /// Judges every wave a check-in changed since the last call (in release and wave order);
    /// the halt, if the policy halts the rollout.
    pub fn judge_pending(&mut self, now_us: u64) -> Option<Halt> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        pending.dedup();
        let mut halt = None;
        for (release, wave) in pending {
            if halt.is_none() {
                halt = self.judge(&release, wave, now_us);
            }
        }
        halt
    }

    /// Installs a rollout policy; a [`Rollout`] also brings its pause flag and halt.
    pub fn set_policy(&mut self, config: PolicyConfig) {
        if let PolicyConfig::Phases(r) = &config {
            self.paused = r.paused;
            self.halted = r.halted.clone();
        } else {
            self.halted = None;
        }
        self.policy = config.build();
        self.config = config;
    }

    pub fn policy(&self) -> &PolicyConfig {
        &self.config
    }

    pub fn policy_status(&self, now_us: u64) -> PolicyStatus {
        self.policy.status(now_us)
    }

    /// The phased rollout, or (under another policy) its pause flag and halt.
    pub fn rollout(&self) -> Rollout {
        let base = match &self.config {
            PolicyConfig::Phases(r) => r.clone(),
            _ => Rollout {
                phase: 0,
                percents: Vec::new(),
                paused: false,
                engineering: Vec::new(),
                halt: None,
                halted: None,
            },
        };
        Rollout {
            paused: self.paused,
            halted: self.halted.clone(),
            ..base
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    pub fn queue(&mut self, device: &str, cmd: Command) {
        self.commands.insert(device.to_string(), Queued::new(cmd));
    }

    pub fn device(&self, id: &str) -> Option<&DeviceRecord> {
        self.devices.get(id)
    }

    /// Every device record, in id order.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceRecord> {
        let mut all: Vec<&DeviceRecord> = self.devices.values().collect();
        all.sort_unstable_by(|a, b| a.device.cmp(&b.device));
        all.into_iter()
    }

    pub fn phase_stats(&self, release: &str) -> &[PhaseStats] {
        self.stats.get(release).map_or(&[], Vec::as_slice)
    }

    /// Forgets every device, pending command and counter.
    pub fn forget_devices(&mut self) {
        self.devices.clear();
        self.commands.clear();
        self.stats.clear();
        self.in_progress.clear();
    }

    fn record(&mut self, device: &str) -> &mut DeviceRecord {
        if !self.devices.contains_key(device) {
            self.devices
                .insert(device.to_string(), DeviceRecord::new(device));
        }
        self.devices
            .get_mut(device)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Notes that `device` fetched a release's manifest or image: an error that blames the
    /// release, reported after this, is a failure of the release.
    pub fn note_download(&mut self, device: &str, what: DownloadOf<'_>) {
        let names: Vec<String> = self
            .releases
            .values()
            .filter(|r| match what {
                DownloadOf::Release(name) => r.info.name == name,
                DownloadOf::File(file) => r.info.file == file,
            })
            .map(|r| r.info.name.clone())
            .collect();
        if names.is_empty() {
            return;
        }
        let rec = self.record(device);
        rec.awaiting_retry = false;
        for name in names {
            if !rec.downloaded.contains(&name) {
                rec.downloaded.push(name);
            }
        }
    }

    /// The kill switch: pauses the rollout, marks `release` failed for every device it was
    /// offered to, and queues a rollback for every device running it. Returns those devices.
    pub fn kill_switch(&mut self, release: &str) -> Result<Vec<String>, String> {
        let rel = self
            .releases
            .get(release)
            .ok_or_else(|| release.to_string())?;
        let version = rel.info.version.clone();
        if !self.killed.contains(&rel.version) {
            self.killed.push(rel.version);
        }
        self.paused = true;
        let mut told = Vec::new();
        for rec in self.devices.values_mut() {
            if rec.offered.iter().any(|r| r == release) && !rec.failed.iter().any(|r| r == release)
            {
                rec.failed.push(release.to_string());
            }
            if rec.version == version {
                self.commands
                    .insert(rec.device.clone(), Queued::new(Command::Rollback));
                told.push(rec.device.clone());
            }
        }
        told.sort_unstable();
        Ok(told)
    }

    /// One device's check-in at `now_us` (see the module doc for the order of things).
    pub fn checkin(&mut self, ci: &CheckinRequest, now_us: u64) -> Answered {
        let mut judged: Vec<(String, u8)> = Vec::new();
        self.expire(now_us, &mut judged);
        let device = ci.device.as_str();
        let running: Option<ota_core::Version> = ci.version.parse().ok();
        let last_error = ci.last_error.as_ref().map(|e| e.as_str().to_string());
        let blames_release = last_error
            .as_deref()
            .and_then(ota_core::Reason::from_name)
            .is_some_and(ota_core::Reason::blames_release);
        let reverted = ci.state == DeviceState::Reverted;
        let rec = self.record(device);
        rec.version.clear();
        rec.version.push_str(ci.version.as_str());
        rec.slot = ci.slot;
        rec.state = ci.state;
        rec.boot_count = ci.boot_count;
        rec.last_error = last_error;
        rec.checkins += 1;
        rec.last_checkin_us = now_us;

        // Failures of releases it was offered (like hawkBit's failed action): never offered
        // again, unless the policy retries them. Network trouble is not a failure.
        let rec = self
            .devices
            .get_mut(device)
            .unwrap_or_else(|| unreachable!("recorded above"));
        for i in 0..rec.offered.len() {
            let name = &rec.offered[i];
            let Some(rel) = self.releases.get(name) else {
                continue;
            };
            let errored = blames_release && rec.downloaded.contains(name);
            if running.is_none_or(|v| v >= rel.version)
                || !(reverted || errored)
                || rec.awaiting_retry
                || rec.failed.contains(name)
            {
                continue;
            }
            let kind = if reverted {
                FailureKind::Failed
            } else {
                FailureKind::Rejected
            };
            let name = name.clone();
            let slot = phase_slot(&mut self.stats, &name, rec.offered_in_phase);
            if rec.retries < self.policy.retries(kind) {
                rec.retries += 1;
                rec.awaiting_retry = true;
                rec.downloaded.retain(|d| *d != name);
                if let Some(s) = slot {
                    s.retried += 1;
                }
                continue;
            }
            rec.failed.push(name.clone());
            if let Some(s) = slot {
                s.failed += 1;
                s.rolled_back += u32::from(kind == FailureKind::Failed);
                s.rejected += u32::from(kind == FailureKind::Rejected);
                if let Some(p) = rec.offered_in_phase {
                    judged.push((name, p));
                }
            }
        }
        // Running the offered release, confirmed: updated.
        if let Some(name) = &self.offered
            && let Some(rel) = self.releases.get(name)
            && running.is_some_and(|v| v == rel.version)
            && ci.state == DeviceState::Confirmed
            && rec.offered.contains(name)
            && !rec.counted_updated
        {
            rec.counted_updated = true;
            rec.updated_at_us = Some(now_us);
            if let Some(s) = phase_slot(&mut self.stats, name, rec.offered_in_phase) {
                s.updated += 1;
                if let Some(p) = rec.offered_in_phase {
                    judged.push((name.clone(), p));
                }
            }
        }
        let queued = match self.commands.get_mut(device) {
            Some(q) => {
                let cmd = q.deliver(ci.version.as_str(), ci.state);
                if cmd.is_none() {
                    self.commands.remove(device);
                }
                cmd
            }
            None => None,
        };
        let command = if let Some(cmd) = queued {
            CheckinResponse {
                command: cmd,
                manifest_url: None,
            }
        } else if running.is_some_and(|v| self.killed.contains(&v)) {
            // Still (or newly) on a withdrawn release: back to the previous one.
            CheckinResponse {
                command: Command::Rollback,
                manifest_url: None,
            }
        } else if self.paused {
            CheckinResponse::NONE
        } else {
            match self.offered.as_ref().and_then(|n| self.releases.get(n)) {
                Some(rel)
                    if running.is_some_and(|v| v < rel.version)
                        && !rec.failed.contains(&rel.info.name) =>
                {
                    let name = &rel.info.name;
                    let admitted = if rec.offered.contains(name) {
                        self.policy.admit(device, true, now_us).is_some()
                    } else if let Some(wave) = self.policy.admit(device, false, now_us) {
                        rec.offered.push(name.clone());
                        rec.offered_in_phase = Some(wave);
                        rec.offered_at_us = Some(now_us);
                        rec.updated_at_us = None;
                        rec.counted_updated = false;
                        rec.timed_out = false;
                        rec.retries = 0;
                        if let Some(s) = phase_slot(&mut self.stats, name, Some(wave)) {
                            s.offered += 1;
                        }
                        if let Some(t) = self.policy.timeout_us() {
                            self.in_progress.push_back((
                                now_us.saturating_add(t),
                                device.to_string(),
                                name.clone(),
                            ));
                        }
                        // A wave that already has failures may cross the threshold once it
                        // has enough devices to judge.
                        judged.push((name.clone(), wave));
                        true
                    } else {
                        false
                    };
                    if admitted {
                        CheckinResponse {
                            command: Command::Update,
                            manifest_url: heapless::String::try_from(
                                format!("/v1/manifest/{name}").as_str(),
                            )
                            .ok(),
                        }
                    } else {
                        CheckinResponse::NONE
                    }
                }
                _ => CheckinResponse::NONE,
            }
        };
        rec.last_command = command.command;
        self.pending.extend(judged);
        let halt = if self.defer_judging {
            None
        } else {
            self.judge_pending(now_us)
        };
        Answered {
            response: command,
            halt,
        }
    }

    /// Offers past the policy's in-progress timeout that neither updated nor failed: timed out.
    fn expire(&mut self, now_us: u64, judged: &mut Vec<(String, u8)>) {
        while self.in_progress.front().is_some_and(|(t, ..)| *t <= now_us) {
            let Some((_, device, release)) = self.in_progress.pop_front() else {
                break;
            };
            let Some(rec) = self.devices.get_mut(&device) else {
                continue;
            };
            if rec.counted_updated || rec.timed_out || rec.failed.contains(&release) {
                continue;
            }
            rec.timed_out = true;
            if let Some(s) = phase_slot(&mut self.stats, &release, rec.offered_in_phase) {
                s.timed_out += 1;
                if let Some(p) = rec.offered_in_phase {
                    judged.push((release, p));
                }
            }
        }
    }

    /// Lets the policy judge `wave` of the offered release; halts (pauses) on its word.
    fn judge(&mut self, release: &str, wave: u8, now_us: u64) -> Option<Halt> {
        if self.paused || self.halted.is_some() || self.offered.as_deref() != Some(release) {
            return None;
        }
        let stats = self.stats.get(release)?;
        let reason = self.policy.judge(wave, stats, now_us)?;
        let s = stats.get(usize::from(wave)).copied().unwrap_or_default();
        let halt = Halt {
            release: release.to_string(),
            phase: wave,
            reason,
            failed: s.failed,
            rolled_back: s.rolled_back,
            offered: s.offered,
            at_us: now_us,
        };
        self.paused = true;
        self.halted = Some(halt.clone());
        Some(halt)
    }
}

/// A command queued for one device, delivered at least once: an answer can be lost on the
/// way (the device times out and never sees it), so it is sent again at the device's next
/// check-in unless that check-in shows it was acted on (the device reports another version
/// or state than when it was sent). A device that refuses it (a rollback with nothing to go
/// back to) reports the same as before, so it is told at most [`Queued::MAX_SENDS`] times.
#[derive(Debug, Clone)]
struct Queued {
    cmd: Command,
    sends: u8,
    /// What the device reported at the check-in the command was last sent to.
    sent_at: Option<(String, DeviceState)>,
}

impl Queued {
    const MAX_SENDS: u8 = 3;

    fn new(cmd: Command) -> Self {
        Self {
            cmd,
            sends: 0,
            sent_at: None,
        }
    }

    /// The command to send to a check-in reporting (`version`, `state`); `None` once it was
    /// acted on or sent [`Queued::MAX_SENDS`] times (the caller drops it).
    fn deliver(&mut self, version: &str, state: DeviceState) -> Option<Command> {
        let acted = self
            .sent_at
            .as_ref()
            .is_some_and(|(v, s)| v != version || *s != state);
        if acted || self.sends >= Self::MAX_SENDS {
            return None;
        }
        self.sends += 1;
        self.sent_at = Some((version.to_string(), state));
        Some(self.cmd)
    }
}

/// The counters of `release` in `wave`, growing the table as needed.
fn phase_slot<'a>(
    stats: &'a mut BTreeMap<String, Vec<PhaseStats>>,
    release: &str,
    wave: Option<u8>,
) -> Option<&'a mut PhaseStats> {
    let wave = usize::from(wave?);
    if !stats.contains_key(release) {
        stats.insert(release.to_string(), Vec::new());
    }
    let v = stats.get_mut(release)?;
    if v.len() <= wave {
        v.resize(wave + 1, PhaseStats::default());
    }
    v.get_mut(wave)
}

#[cfg(test)]
mod tests;
