//! Runbook files (`scenarios/runbooks/*.yaml`): a staged rollout as a release manager would
//! write it down, plus what a drill of it must show.
//!
//! ```yaml
//! name: good-release
//! about: A good release reaches every device.
//! release: { from: v1, to: v2 }          # images: the scenario catalogue plus `images:`
//! phases:                                # default: engineering (5 devices), 1%, 10%, 50%, 100%
//!   - { name: engineering, devices: 5, soak: 2h }
//!   - { name: 1%, percent: 1, soak: 6h }
//! success: { updated: 95%, within: 4h }  # a phase passes when this share updated in time
//! halt: { error_rate: 2%, min_sample: 10, rollbacks: 20, missing_checkins: 20% }
//! on_halt: { kill_switch: true }         # the halt itself always pauses the rollout
//! fleet: { checkin_interval: 1h, mix: { bad-wifi: 10%, power-cut: 5%, rev-b: 5%, offline: 2% } }
//! events:                                # things the release manager or the world does
//!   - { at: 10h, pause: true }
//!   - { at: 14h, outage: { for: 6h, devices: 100% } }
//! faults:                                # fake-server fault rules, the scenarios' format
//!   - { match: { path: /v1/images/*, method: GET }, ignore_range: true }
//!   - { match: { path: /v1/images/*, method: GET }, status: 503, retry_after: 1, share: 20% }
//! expect: { outcome: completed, bricked: 0, failed: 0 }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};

use crate::scenario::values;
use crate::scenario::{Dur, Error, FaultRule, ImageDef};

/// A parsed and validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub name: String,
    pub about: String,
    pub file: PathBuf,
    pub from: String,
    pub to: String,
    pub images: BTreeMap<String, ImageDef>,
    pub phases: Vec<Phase>,
    pub success: Success,
    pub halt: HaltDef,
    pub on_halt: OnHalt,
    pub fleet: FleetDef,
    pub events: Vec<TimedEvent>,
    /// Fault rules installed on the fake-server for the whole drill (every device meets them).
    pub faults: Vec<FaultRule>,
    pub expect: Expect,
    /// A backend's own definition (`rig rollout --from`): the server plays its policy, and its
    /// waves are the phases.
    pub imported: Option<super::import::Imported>,
}

/// One rollout phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Unique among the runbook's phases, not empty.
    #[serde(deserialize_with = "values::text")]
    pub name: String,
    /// Share of the fleet (by stable cohort) offered the release in this phase.
    #[serde(default)]
    pub percent: Option<u8>,
    /// An engineering phase: this many named devices (on a bench: the bench's boards).
    #[serde(default)]
    pub devices: Option<u32>,
    /// How long the phase runs before it is judged.
    pub soak: Dur,
}

/// When a phase passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Success {
    /// Share of the phase's reachable devices that must run the release, confirmed.
    #[serde(default = "default_updated")]
    pub updated: Percent,
    /// ... within this long of being offered it.
    #[serde(default = "default_within", deserialize_with = "values::positive_dur")]
    pub within: Dur,
}

fn default_updated() -> Percent {
    Percent(0.95)
}

fn default_within() -> Dur {
    Dur(std::time::Duration::from_secs(4 * 3600))
}

impl Default for Success {
    fn default() -> Self {
        Self {
            updated: default_updated(),
            within: default_within(),
        }
    }
}

/// When the server halts the rollout by itself, and when a phase is held.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltDef {
    /// Failed / offered in a phase at or above this halts the rollout (server side).
    #[serde(default = "default_error_rate")]
    pub error_rate: Percent,
    #[serde(default = "default_min_sample")]
    pub min_sample: u32,
    /// Devices of a phase that rolled back by themselves before the server halts.
    #[serde(default)]
    pub rollbacks: Option<u32>,
    /// Offered devices silent for two check-in intervals above this share hold the phase
    /// (it does not advance) without blaming the release.
    #[serde(default = "default_missing")]
    pub missing_checkins: Percent,
}

fn default_error_rate() -> Percent {
    Percent(0.02)
}
fn default_min_sample() -> u32 {
    10
}
fn default_missing() -> Percent {
    Percent(0.2)
}

impl Default for HaltDef {
    fn default() -> Self {
        Self {
            error_rate: default_error_rate(),
            min_sample: default_min_sample(),
            rollbacks: None,
            missing_checkins: default_missing(),
        }
    }
}

/// What happens after the server halts a rollout (it is always paused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnHalt {
    /// Force every device running the release back to the previous one.
    #[serde(default)]
    pub kill_switch: bool,
}

/// The simulated fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetDef {
    /// Fleet size when `rig rollout` is not given `--fleet N` (which overrides it).
    #[serde(default)]
    pub devices: Option<u32>,
    /// At least [`values::MIN_CHECKIN_INTERVAL`]: simulated time advances by check-ins.
    #[serde(
        default = "default_interval",
        deserialize_with = "values::checkin_interval"
    )]
    pub checkin_interval: Dur,
    /// How long a trial image has to check in before the watchdog resets it.
    #[serde(default = "default_trial", deserialize_with = "values::positive_dur")]
    pub trial_window: Dur,
    /// Share of devices per trouble: `bad-wifi`, `power-cut`, `rev-b`, `offline`.
    #[serde(default)]
    pub mix: BTreeMap<Trouble, Percent>,
    /// Image body size for the fleet (small, so ten thousand flashes fit in memory; at most
    /// [`values::MAX_IMAGE_BODY`], a slot).
    #[serde(
        default = "default_image_size",
        deserialize_with = "values::fleet_image_size"
    )]
    pub image_size: u32,
}

fn default_interval() -> Dur {
    Dur(std::time::Duration::from_secs(3600))
}
fn default_trial() -> Dur {
    Dur(std::time::Duration::from_secs(30 * 60))
}
fn default_image_size() -> u32 {
    8 * 1024
}

impl Default for FleetDef {
    fn default() -> Self {
        Self {
            devices: None,
            checkin_interval: default_interval(),
            trial_window: default_trial(),
            mix: BTreeMap::new(),
            image_size: default_image_size(),
        }
    }
}

/// What a device of the fleet suffers from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Trouble {
    /// Slow, dropping Wi-Fi: a third of its requests fail, downloads drop part-way.
    BadWifi,
    /// Its power fails at a random moment of the update (and it comes back a while later).
    PowerCut,
    /// Hardware revision B: a release with the `crash-on-rev-b` drill crashes on it.
    RevB,
    /// Offline for a while (a phase's worth) at a random time.
    Offline,
}

impl Trouble {
    pub const ALL: [Self; 4] = [Self::BadWifi, Self::PowerCut, Self::RevB, Self::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadWifi => "bad-wifi",
            Self::PowerCut => "power-cut",
            Self::RevB => "rev-b",
            Self::Offline => "offline",
        }
    }
}

/// Something that happens at a point of simulated time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedEvent {
    pub at: Dur,
    /// Set (`true`) or clear (`false`) the rollout's pause flag.
    #[serde(default)]
    pub pause: Option<bool>,
    /// The network is down for a share of the fleet.
    #[serde(default)]
    pub outage: Option<Outage>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(rename = "for")]
    pub duration: Dur,
    #[serde(default = "all")]
    pub devices: Percent,
}

fn all() -> Percent {
    Percent(1.0)
}

/// How the drill ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutOutcome {
    /// Every phase passed.
    Completed,
    /// The server halted the rollout.
    Halted,
    /// A phase never passed (held or short of updates) before the time ran out.
    Stalled,
}

/// What the drill must show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: RolloutOutcome,
    /// The halt must fire in one of these phases.
    #[serde(default)]
    pub halted_in: Vec<String>,
    /// Bricked devices allowed (a bricked device is never acceptable: default 0).
    #[serde(default)]
    pub bricked: u32,
    /// Devices allowed to fail the release, by the server's count over every phase (came back
    /// reverted, or refused it for a reason that blames it). Not checked when absent.
    #[serde(default)]
    pub failed: Option<u32>,
    /// After the kill switch every device that got the release runs the previous one again.
    #[serde(default)]
    pub affected_restored: bool,
    /// At least one phase was held for missing check-ins (and that is not a halt).
    #[serde(default)]
    pub held: bool,
    /// No device is offered the release while the rollout is paused.
    #[serde(default)]
    pub no_offers_while_paused: bool,
}

/// A share written `2%` or `2.5%`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let n = text
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| (0.0..=100.0).contains(n))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a percentage between 0% and 100% (e.g. 2%, 12.5%)"
                ))
            })?;
        Ok(Self(n / 100.0))
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", (self.0 * 1000.0).round() / 10.0)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    #[serde(default, deserialize_with = "values::name")]
    name: Option<String>,
    #[serde(default, deserialize_with = "values::opt_text")]
    about: Option<String>,
    release: Spanned<RawRelease>,
    #[serde(default)]
    images: BTreeMap<String, ImageDef>,
    #[serde(default)]
    phases: Option<Spanned<Vec<Spanned<Phase>>>>,
    #[serde(default)]
    success: Success,
    #[serde(default)]
    halt: HaltDef,
    #[serde(default)]
    on_halt: OnHalt,
    #[serde(default)]
    fleet: Option<Spanned<FleetDef>>,
    #[serde(default)]
    events: Vec<Spanned<TimedEvent>>,
    #[serde(default)]
    faults: Vec<FaultRule>,
    expect: Spanned<Expect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    from: String,
    to: String,
}

/// The largest simulated fleet (`fleet.devices`, `--fleet`).
pub const MAX_FLEET: u32 = 1_000_000;

/// The default phases: engineering, then 1%, 10%, 50% and 100% of the fleet.
pub fn default_phases() -> Vec<Phase> {
    let h = |n: u64| Dur(std::time::Duration::from_secs(n * 3600));
    let phase = |name: &str, percent: Option<u8>, devices: Option<u32>, soak| Phase {
        name: name.to_string(),
        percent,
        devices,
        soak,
    };
    vec![
        phase("engineering", None, Some(5), h(2)),
        phase("1%", Some(1), None, h(6)),
        phase("10%", Some(10), None, h(8)),
        phase("50%", Some(50), None, h(8)),
        phase("100%", Some(100), None, h(8)),
    ]
}

pub fn load(path: &Path) -> Result<Runbook, Error> {
    parse(&crate::scenario::read_text(path)?, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Runbook, Error> {
    let raw: RawRunbook =
        serde_saphyr::from_str(text).map_err(|e| crate::scenario::yaml_error(&e, text, path))?;
    let invalid = |loc: Location, message: String| Error::at(path, text, loc, &message);
    let mut images = crate::scenario::default_catalogue();
    images.extend(raw.images);
    let release = raw.release.value;
    for (field, name) in [("from", &release.from), ("to", &release.to)] {
        if !images.contains_key(name) {
            return Err(invalid(
                raw.release.referenced,
                format!(
                    "release.{field}: unknown image `{name}` (known: {})",
                    names(&images)
                ),
            ));
        }
    }
    if images[&release.to].version.0 <= images[&release.from].version.0 {
        return Err(invalid(
            raw.release.referenced,
            format!(
                "release: `{}` ({}) is not newer than `{}` ({})",
                release.to,
                images[&release.to].version.0,
                release.from,
                images[&release.from].version.0
            ),
        ));
    }
    let phases = match raw.phases {
        None => default_phases(),
        Some(list) => {
            if list.value.is_empty() {
                return Err(invalid(
                    list.referenced,
                    "phases: at least one phase".into(),
                ));
            }
            let mut last = 0u8;
            let mut out: Vec<Phase> = Vec::new();
            for (i, p) in list.value.into_iter().enumerate() {
                let loc = p.referenced;
                let p = p.value;
                if out.iter().any(|o| o.name == p.name) {
                    return Err(invalid(
                        loc,
                        format!(
                            "phases[{i}]: a phase named `{}` comes earlier: phase names are unique (reports and `expect.halted_in` name phases)",
                            p.name
                        ),
                    ));
                }
                match (p.percent, p.devices) {
                    (Some(_), Some(_)) | (None, None) => {
                        return Err(invalid(
                            loc,
                            format!(
                                "phases[{i}] `{}`: give exactly one of `percent` (a share of the fleet) or `devices` (an engineering list)",
                                p.name
                            ),
                        ));
                    }
                    (Some(pc), None) if pc > 100 || pc < last => {
                        return Err(invalid(
                            loc,
                            format!(
                                "phases[{i}] `{}`: percent {pc} must be 0..=100 and not below the previous phase's {last}",
                                p.name
                            ),
                        ));
                    }
                    (Some(pc), None) => last = pc,
                    (None, Some(_)) if i > 0 => {
                        return Err(invalid(
                            loc,
                            format!(
                                "phases[{i}] `{}`: an engineering phase (`devices`) can only come first",
                                p.name
                            ),
                        ));
                    }
                    (None, Some(_)) => {}
                }
                out.push(p);
            }
            out
        }
    };
    let (fleet, fleet_at) = raw
        .fleet
        .map_or((FleetDef::default(), Location::UNKNOWN), |f| {
            (f.value, f.referenced)
        });
    check_fleet(&fleet).map_err(|m| invalid(fleet_at, m))?;
    for e in &raw.events {
        if e.value.pause.is_some() == e.value.outage.is_some() {
            return Err(invalid(
                e.referenced,
                "events: each event is exactly one of `pause: true|false` or `outage: { for, devices }`"
                    .into(),
            ));
        }
    }
    for name in &raw.expect.value.halted_in {
        if !phases.iter().any(|p| &p.name == name) {
            return Err(invalid(
                raw.expect.referenced,
                format!(
                    "expect.halted_in: no phase named `{name}` (phases: {})",
                    phases
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(Runbook {
        name: raw.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        about: raw.about.unwrap_or_default(),
        file: path.to_path_buf(),
        from: release.from,
        to: release.to,
        images,
        phases,
        success: raw.success,
        halt: raw.halt,
        on_halt: raw.on_halt,
        fleet,
        events: raw.events.into_iter().map(|e| e.value).collect(),
        faults: raw.faults,
        expect: raw.expect.value,
        imported: None,
    })
}

fn names(images: &BTreeMap<String, ImageDef>) -> String {
    images.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Parses `--mix bad-wifi=10%,power-cut=5%`.
pub fn parse_mix(s: &str) -> Result<BTreeMap<Trouble, Percent>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, share) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: `{part}` is not NAME=P% (e.g. bad-wifi=10%)"))?;
        let trouble = Trouble::ALL
            .into_iter()
            .find(|t| t.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "--mix: unknown trouble `{name}` (known: {})",
                    Trouble::ALL.map(Trouble::as_str).join(", ")
                )
            })?;
        let pct = share
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| (0.0..=100.0).contains(n))
            .ok_or_else(|| format!("--mix: `{share}` is not a percentage (e.g. 10%)"))?;
        out.insert(trouble, Percent(pct / 100.0));
    }
    let total: f64 = out.values().map(|p| p.0).sum();
    if total > 1.0 + 1e-9 {
        return Err(format!(
            "--mix: the shares add up to {:.1}%, more than 100%",
            total * 100.0
        ));
    }
    Ok(out)
}

/// A fleet definition's own limits: a size the simulation takes, a mix of at most 100%.
pub(crate) fn check_fleet(fleet: &FleetDef) -> Result<(), String> {
    if let Some(n) = fleet.devices
        && !(1..=MAX_FLEET).contains(&n)
    {
        return Err(format!(
            "fleet.devices: {n} is not between 1 and {MAX_FLEET}"
        ));
    }
    let total: f64 = fleet.mix.values().map(|p| p.0).sum();
    if total > 1.0 + 1e-9 {
        return Err(format!(
            "fleet.mix: the shares add up to {:.1}%, more than 100%",
            total * 100.0
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Runbook, String> {
        parse(text, Path::new("rb.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_located_errors() {
        let rb = parse_str("release: { from: v1, to: v2 }\nexpect: { outcome: completed }\n")
            .expect("minimal runbook");
        assert_eq!(rb.phases.len(), 5);
        assert_eq!(rb.halt.error_rate, Percent(0.02));
        assert_eq!(rb.name, "rb");

        let e = parse_str("release: { from: v1, to: v9 }\nexpect: { outcome: completed }\n")
            .expect_err("unknown image");
        assert!(e.starts_with("rb.yaml:1:"), "{e}");
        assert!(e.contains("release.to: unknown image `v9`"), "{e}");

        let e = parse_str("release: { from: v2, to: v1 }\nexpect: { outcome: completed }\n")
            .expect_err("downgrade");
        assert!(e.contains("not newer"), "{e}");

        let e = parse_str(
            "release: { from: v1, to: v2 }\nphases:\n  - { name: a, percent: 10, soak: 1h }\n  - { name: b, percent: 5, soak: 1h }\nexpect: { outcome: completed }\n",
        )
        .expect_err("shrinking phase");
        assert!(e.starts_with("rb.yaml:4:"), "{e}");
        assert!(e.contains("not below the previous"), "{e}");

        let e = parse_str(
            "release: { from: v1, to: v2 }\nhalt: { error_rate: 2 }\nexpect: { outcome: completed }\n",
        )
        .expect_err("bare number");
        assert!(e.starts_with("rb.yaml:2:"), "{e}");
        assert!(e.contains("not a percentage"), "{e}");

        let e = parse_str(
            "release: { from: v1, to: v2 }\nexpect: { outcome: completed, halted_in: [5%] }\n",
        )
        .expect_err("unknown phase");
        assert!(e.contains("no phase named `5%`"), "{e}");

        let e = parse_str(
            "release: { from: v1, to: v2 }\nfleet: { mix: { bad-wifi: 60%, offline: 50% } }\nexpect: { outcome: completed }\n",
        )
        .expect_err("over 100%");
        assert!(e.contains("more than 100%"), "{e}");

        let e = parse_str("release: { from: v1, to: v2 }\nexpect: { outcome: done }\n")
            .expect_err("unknown outcome");
        assert!(e.starts_with("rb.yaml:2:"), "{e}");
    }

    #[test]
    fn faults_and_fleet_size() {
        let rb = parse_str(
            "release: { from: v1, to: v2 }\nfleet: { devices: 10000 }\nfaults:\n  - match: { path: /v1/images/*, method: GET }\n    ignore_range: true\n  - { match: { path: /v1/images/* }, status: 503, retry_after: 1, share: 20% }\nexpect: { outcome: completed, bricked: 0, failed: 0 }\n",
        )
        .expect("runbook with faults");
        assert_eq!(rb.fleet.devices, Some(10_000));
        assert_eq!(rb.expect.failed, Some(0));
        assert_eq!(rb.faults.len(), 2);
        assert_eq!(
            rb.faults[0].action,
            fake_server::faults::Action::IgnoreRange
        );
        assert_eq!(
            rb.faults[1].schedule,
            fake_server::faults::Schedule::Share {
                percent: 20.0,
                seed: 0
            }
        );
        let rb = parse_str("release: { from: v1, to: v2 }\nexpect: { outcome: completed }\n")
            .expect("no faults");
        assert!(rb.faults.is_empty() && rb.fleet.devices.is_none() && rb.expect.failed.is_none());
        let e = parse_str(
            "release: { from: v1, to: v2 }\nfleet: { devices: 0 }\nexpect: { outcome: completed }\n",
        )
        .expect_err("empty fleet");
        assert!(e.starts_with("rb.yaml:2:"), "{e}");
        assert!(e.contains("fleet.devices: 0"), "{e}");
    }

    /// A bad fault rule gets the error a scenario gives for it: same line, column, message.
    #[test]
    fn fault_errors_match_the_scenarios() {
        let located = |e: Error| match e {
            Error::Invalid {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("expected a located error, got {other}"),
        };
        for (rule, wanted) in [
            (
                "  - { ignore_range: true, status: 503 }\n",
                "exactly one action",
            ),
            (
                "  - { match: { path: /x }, ignore_range: true, colour: red }\n",
                "colour",
            ),
            (
                "  - { status: 503, share: 20 }\n",
                "share: `20` needs a % sign",
            ),
            (
                "  - { status: 503, share: 20%, every: 5 }\n",
                "at most one of",
            ),
            ("  - { stall_after: 100 }\n", "needs `for: DURATION`"),
            ("  - match: { path: /x }\n    truncate_at: 150%\n", "150%"),
        ] {
            let book = format!(
                "release: {{ from: v1, to: v2 }}\nfaults:\n{rule}expect: {{ outcome: completed }}\n"
            );
            let scenario = format!(
                "about: x\nfaults:\n{rule}given: {{ firmware: v1 }}\nsteps:\n  - power: on\noutcome: updated\n"
            );
            let path = Path::new("f.yaml");
            let b = located(parse(&book, path).expect_err(rule));
            let s = located(crate::scenario::parse(&scenario, path).expect_err(rule));
            assert_eq!(b, s, "{rule}");
            assert_eq!(b.0, 3, "{rule}: {b:?}");
            assert!(b.2.contains(wanted), "{rule}: {b:?}");
        }
    }

    /// Values no one should be able to write: refused at their own line, saying why.
    #[test]
    fn values_that_make_no_sense_are_located() {
        const BASE: &str = "release: { from: v1, to: v2 }\nexpect: { outcome: completed }\n";
        for (extra, line, says) in [
            (
                "fleet: { checkin_interval: 0s }\n",
                3,
                "checkin_interval 0s is too short",
            ),
            ("fleet: { checkin_interval: 500ms }\n", 3, "at least 1s"),
            ("fleet: { trial_window: 0s }\n", 3, "no time at all"),
            ("success: { within: 0s }\n", 3, "no time at all"),
            (
                "fleet: { image_size: 4294967295 }\n",
                3,
                "does not fit a slot",
            ),
            (
                "fleet: { image_size: 16777217 }\n",
                3,
                "does not fit a slot",
            ),
            (
                "images:\n  v2: { version: 2.0.0, size: 524033 }\n",
                4,
                "does not fit a slot",
            ),
            ("name: ''\n", 3, "must not be empty"),
            ("name: ../../x\n", 3, "path separator"),
            ("about: ''\n", 3, "must not be empty"),
            (
                "phases:\n  - { name: a, devices: 5, soak: 1h }\n  - { name: a, percent: 10, soak: 1h }\n",
                5,
                "a phase named `a` comes earlier",
            ),
            (
                "phases:\n  - { name: '', percent: 10, soak: 1h }\n",
                4,
                "must not be empty",
            ),
        ] {
            let e = parse_str(&format!("{BASE}{extra}")).expect_err(extra);
            assert!(e.starts_with(&format!("rb.yaml:{line}:")), "{extra}: {e}");
            assert!(e.contains(says), "{extra}: {e}");
        }
        let rb = parse_str(&format!(
            "{BASE}fleet: {{ checkin_interval: 1s, image_size: 524032 }}\n"
        ))
        .expect("the bounds themselves are fine");
        assert_eq!(rb.fleet.image_size, values::MAX_IMAGE_BODY);
    }

    #[test]
    fn mix_flag() {
        let m = parse_mix("bad-wifi=10%, rev-b=5%").expect("mix");
        assert_eq!(m[&Trouble::BadWifi], Percent(0.1));
        assert!(
            parse_mix("wifi=10%")
                .unwrap_err()
                .contains("unknown trouble")
        );
        assert!(
            parse_mix("rev-b=5")
                .unwrap_err()
                .contains("not a percentage")
        );
        assert!(
            parse_mix("rev-b=70%,offline=40%")
                .unwrap_err()
                .contains("more than 100%")
        );
    }
}
