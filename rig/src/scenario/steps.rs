//! The steps of a scenario: actions, the triggers a power cut waits for, and expectations.
//!
//! Files are read into `Raw*` shapes (every key optional, as written) and converted into
//! enums while parsing, so "exactly one of" rules are checked once, here, and the engine
//! matches on variants instead of re-checking five `Option`s.

use std::fmt;

use serde::Deserialize;

use super::units::{Amount, Compare, Dur};
use super::values;
use super::{FaultRule, RolloutDef, VersionField};

/// The default path glob of HTTP triggers: image downloads.
pub const IMAGE_PATHS: &str = "/v1/images/*";

/// One step of a scenario.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    /// 1-based line of the step in its file.
    pub line: u64,
}

/// What a step does.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// `power: on | off | cycle`.
    Power(PowerAction),
    /// Wait for a trigger, cut power, hold, restore.
    Cut(Cut),
    /// Something must happen within a time.
    Expect(Expectation),
    /// Something must NOT happen within a time.
    Absent(Expectation),
    /// Let time pass.
    Wait(Dur),
    /// Publish an image as a release and offer it.
    Publish(String),
    /// Offer nothing from now on (`withdraw: true`; `false` is refused).
    #[serde(deserialize_with = "values::withdraw")]
    Withdraw(bool),
    /// Change the rollout (phase, pause, engineering list).
    Rollout(RolloutDef),
    /// Queue a command for the board's next check-in (`rollback`).
    Command(CommandName),
    /// Replace the server's fault rules.
    Faults(Vec<FaultRule>),
    /// Change the board's flash while it is off: bit rot, a physical attack.
    Tamper(Tamper),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    On,
    Off,
    Cycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    Rollback,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    pub when: Trigger,
    /// How long power stays off (default 200ms).
    #[serde(default)]
    pub hold: Option<Dur>,
    /// Leave the interrupted flash operation half-done (exact flash triggers on the sim).
    #[serde(default)]
    pub torn: bool,
}

/// When a power cut happens: one event, an optional delay after it, and how long to wait.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawTrigger")]
pub struct Trigger {
    pub on: TriggerOn,
    /// Extra delay after the trigger fires.
    pub delay: Option<Dur>,
    /// Give up (a scenario failure) if the trigger has not fired by then (default 30s).
    pub within: Option<Dur>,
}

/// The event a trigger waits for.
#[derive(Debug, Clone)]
pub enum TriggerOn {
    /// A console line matches.
    Console(Pattern),
    /// Exactly this many body bytes of a matching download have been sent.
    BytesSent { path: String, amount: Amount },
    /// The n-th matching request (1-based) arrives.
    Request { path: String, nth: u32 },
    /// The exact flash operation with this index since the last power-on (0-based).
    FlashOp(u64),
    /// The first program into the inactive slot at this fraction of the image.
    SlotWrite(Amount),
    /// The firmware reaches a function (boards with a debug probe).
    Breakpoint(BreakpointTrigger),
    /// Time since the step started.
    After(Dur),
}

impl TriggerOn {
    /// Whether the board itself must stop at a flash operation (armed at power-on).
    pub fn is_flash(&self) -> bool {
        matches!(self, Self::FlashOp(_) | Self::SlotWrite(_))
    }
}

/// A trigger as written: exactly one of `console`, `http`, `flash`, `breakpoint`, `after`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    #[serde(default)]
    console: Option<Pattern>,
    #[serde(default)]
    http: Option<RawHttpTrigger>,
    #[serde(default)]
    flash: Option<RawFlashTrigger>,
    /// Hardware boards with a debug probe: the firmware reaches a function.
    #[serde(default)]
    breakpoint: Option<BreakpointTrigger>,
    #[serde(default)]
    after: Option<Dur>,
    #[serde(default)]
    delay: Option<Dur>,
    #[serde(default)]
    within: Option<Dur>,
}

/// Fires while the server sends a response body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    /// Path glob (default `/v1/images/*`).
    #[serde(default)]
    path: Option<String>,
    /// Exactly when this many body bytes have been sent (`1000` or `50%` of the body).
    #[serde(default)]
    bytes_sent: Option<Amount>,
    /// When the n-th matching request arrives (1-based).
    #[serde(default, deserialize_with = "values::request")]
    request: Option<u32>,
}

/// Fires at a flash operation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlashTrigger {
    #[serde(default)]
    op: Option<u64>,
    #[serde(default)]
    slot_write: Option<Amount>,
}

impl TryFrom<RawTrigger> for Trigger {
    type Error = String;

    fn try_from(t: RawTrigger) -> Result<Self, String> {
        let mut kinds: Vec<Result<TriggerOn, String>> = Vec::with_capacity(1);
        if let Some(p) = t.console {
            kinds.push(Ok(TriggerOn::Console(p)));
        }
        if let Some(h) = t.http {
            let path = h.path.unwrap_or_else(|| IMAGE_PATHS.into());
            kinds.push(match (h.bytes_sent, h.request) {
                (Some(amount), None) => Ok(TriggerOn::BytesSent { path, amount }),
                (None, Some(nth)) => Ok(TriggerOn::Request { path, nth }),
                _ => Err("cut.when.http: give exactly one of bytes_sent or request".into()),
            });
        }
        if let Some(f) = t.flash {
            kinds.push(match (f.op, f.slot_write) {
                (Some(op), None) => Ok(TriggerOn::FlashOp(op)),
                (None, Some(amount)) => Ok(TriggerOn::SlotWrite(amount)),
                _ => Err("cut.when.flash: give exactly one of op or slot_write".into()),
            });
        }
        if let Some(b) = t.breakpoint {
            kinds.push(if b.hit == 0 || b.symbol.trim().is_empty() {
                Err("cut.when.breakpoint: give a symbol and a hit count of 1 or more".into())
            } else {
                Ok(TriggerOn::Breakpoint(b))
            });
        }
        if let Some(after) = t.after {
            kinds.push(Ok(TriggerOn::After(after)));
        }
        let [on] = <[_; 1]>::try_from(kinds).map_err(|_| {
            "cut.when: give exactly one trigger: console, http, flash, breakpoint or after"
                .to_string()
        })?;
        Ok(Self {
            on: on?,
            delay: t.delay,
            within: t.within,
        })
    }
}

/// Fires when the running firmware reaches `symbol` for the `hit`-th time after the step
/// starts: the debug probe halts the core there, so power is cut at exactly that instruction
/// (hardware boards with a probe-rs probe; the symbol is looked up in the board's app ELFs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakpointTrigger {
    pub symbol: String,
    #[serde(default = "one")]
    pub hit: u32,
}

fn one() -> u32 {
    1
}

/// A regular expression, checked when the file is read.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub regex: regex::Regex,
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        values::regex(&text)
            .map(|regex| Self { regex })
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.regex.as_str())
    }
}

/// Something observable, and how long it may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawExpectation")]
pub struct Expectation {
    pub what: Expected,
    pub within: Dur,
}

/// What an expectation looks for.
#[derive(Debug, Clone)]
pub enum Expected {
    /// A console line of the board.
    Console(Pattern),
    /// A request the update server answered.
    Http(HttpExpect),
    /// What the board reported at a check-in.
    Device(DeviceExpect),
    /// The firmware refused something at a given stage, as its console said.
    Refused(RefusalExpect),
}

/// A refusal at a stage of the update path, and optionally why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalExpect {
    pub stage: RefusalStage,
    #[serde(default, deserialize_with = "reason")]
    pub reason: Option<ota_core::Reason>,
}

/// Where on the update path a refusal happens; each stage has its own console line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalStage {
    /// `update: refused`: before anything is downloaded.
    Manifest,
    /// `verify: failed`: downloaded, nothing activated.
    Verify,
    /// `boot: refuse`: the bootloader will not run a slot.
    Boot,
    /// `rollback: refused`: a rollback command cannot be obeyed.
    Rollback,
}

impl RefusalStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Verify => "verify",
            Self::Boot => "boot",
            Self::Rollback => "rollback",
        }
    }

    /// The refusal a console line reports at this stage, if it is one.
    pub fn refusal_in(self, line: &ota_core::console::Line) -> Option<ota_core::Reason> {
        use ota_core::console::Line;
        match (self, line) {
            (Self::Manifest, Line::UpdateRefused { reason, .. })
            | (Self::Verify, Line::VerifyFailed { reason })
            | (Self::Boot, Line::BootRefuse { reason, .. })
            | (Self::Rollback, Line::RollbackRefused { reason }) => Some(*reason),
            _ => None,
        }
    }
}

fn reason<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ota_core::Reason>, D::Error> {
    let name = String::deserialize(d)?;
    ota_core::Reason::from_name(&name).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{}` is not a refusal reason (CONSOLE.md lists them: bad-signature, bad-hash, downgrade, ...)",
            values::clip(&name, 64)
        ))
    })
}

/// An expectation as written: exactly one of `console`, `http`, `device`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectation {
    #[serde(default)]
    console: Option<Pattern>,
    #[serde(default)]
    http: Option<HttpExpect>,
    #[serde(default)]
    device: Option<DeviceExpect>,
    #[serde(default)]
    refused: Option<RefusalExpect>,
    within: Dur,
}

impl TryFrom<RawExpectation> for Expectation {
    type Error = String;

    fn try_from(e: RawExpectation) -> Result<Self, String> {
        let what = match (e.console, e.http, e.device, e.refused) {
            (Some(p), None, None, None) => Expected::Console(p),
            (None, Some(h), None, None) => Expected::Http(h),
            (None, None, Some(d), None) => Expected::Device(d),
            (None, None, None, Some(r)) => Expected::Refused(r),
            _ => {
                return Err("expect: give exactly one of console, http, device or refused".into());
            }
        };
        Ok(Self {
            what,
            within: e.within,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default, deserialize_with = "values::http_status")]
    pub status: Option<u16>,
    /// First byte of the requested range (`0` = no Range or from 0).
    #[serde(default)]
    pub range_from: Option<Compare>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceExpect {
    #[serde(default)]
    pub version: Option<VersionField>,
    /// `confirmed`, `trial`, `updating` or `reverted` (`ota_core::checkin::DeviceState`).
    #[serde(default, deserialize_with = "values::device_state")]
    pub state: Option<ota_core::checkin::DeviceState>,
    #[serde(default)]
    pub last_error: Option<Pattern>,
}

/// What a `tamper` step does to the flash of a powered-off board.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTamper")]
pub enum Tamper {
    /// Flip this many bits (distinct, chosen from the attempt's seed) in a region.
    FlipBits {
        region: FlashRegion,
        part: ImagePart,
        bits: u32,
    },
    /// Put the older of the two state records in place of the newer one: a valid record,
    /// just not the latest (a replayed or restored-from-backup record).
    RewindState,
}

/// Where a `tamper` step flips bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlashRegion {
    SlotA,
    SlotB,
    /// The slot the newest state record says runs.
    Active,
    /// The other slot.
    Inactive,
    /// The factory image.
    Factory,
    /// The copy of the state record with the higher sequence number.
    StateNewest,
    /// The other copy.
    StateOlder,
    /// Both copies.
    StateBoth,
}

impl FlashRegion {
    /// The region's name in a scenario file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SlotA => "slot-a",
            Self::SlotB => "slot-b",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Factory => "factory",
            Self::StateNewest => "state-newest",
            Self::StateOlder => "state-older",
            Self::StateBoth => "state-both",
        }
    }

    pub fn is_state(self) -> bool {
        matches!(self, Self::StateNewest | Self::StateOlder | Self::StateBoth)
    }
}

/// Which part of an image in a slot or the factory region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImagePart {
    /// The 256-byte signed header.
    Header,
    /// The body the header's hash covers.
    Body,
    /// Header and body.
    #[default]
    Anywhere,
}

/// A `tamper` step as written: `{ flip_bits: N, in: REGION, part: PART }` or
/// `{ rewind_state: true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTamper {
    #[serde(default)]
    flip_bits: Option<u32>,
    #[serde(default, rename = "in")]
    region: Option<FlashRegion>,
    #[serde(default)]
    part: Option<ImagePart>,
    #[serde(default)]
    rewind_state: bool,
}

/// Most bits one step flips: enough for any bit-rot story, and it keeps a typo (`flip_bits:
/// 100000`) from wiping a region silently.
pub const MAX_FLIP_BITS: u32 = 4096;

impl TryFrom<RawTamper> for Tamper {
    type Error = String;

    fn try_from(t: RawTamper) -> Result<Self, String> {
        match (t.flip_bits, t.region, t.rewind_state) {
            (None, None, true) if t.part.is_none() => Ok(Self::RewindState),
            (Some(bits), Some(region), false) => {
                if !(1..=MAX_FLIP_BITS).contains(&bits) {
                    return Err(format!(
                        "tamper.flip_bits: {bits}: flip between 1 and {MAX_FLIP_BITS} bits"
                    ));
                }
                if region.is_state() && t.part.is_some() {
                    return Err(
                        "tamper.part: a state record has no header or body (drop `part`)".into(),
                    );
                }
                Ok(Self::FlipBits {
                    region,
                    part: t.part.unwrap_or_default(),
                    bits,
                })
            }
            _ => Err(
                "tamper: give `flip_bits: N` with `in: REGION` (and optionally `part`), or `rewind_state: true`"
                    .into(),
            ),
        }
    }
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FlipBits { region, part, bits } => {
                write!(f, "flip {bits} bit(s) in {}", region.as_str())?;
                match part {
                    ImagePart::Header => f.write_str(" (header)"),
                    ImagePart::Body => f.write_str(" (body)"),
                    ImagePart::Anywhere => Ok(()),
                }
            }
            Self::RewindState => f.write_str("the older state record replaces the newer"),
        }
    }
}

/// One line describing a step, for the timeline and messages.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Power(PowerAction::On) => f.write_str("power on"),
            Self::Power(PowerAction::Off) => f.write_str("power off"),
            Self::Power(PowerAction::Cycle) => f.write_str("power cycle"),
            Self::Cut(c) => write!(f, "cut power {}", c.when.on),
            Self::Expect(e) => write!(f, "expect {e}"),
            Self::Absent(e) => write!(f, "expect no {e}"),
            Self::Wait(d) => write!(f, "wait {d}"),
            Self::Publish(n) => write!(f, "publish {n}"),
            Self::Withdraw(_) => f.write_str("withdraw the offered release"),
            Self::Rollout(r) => write!(f, "rollout {r:?}"),
            Self::Command(CommandName::Rollback) => f.write_str("command rollback"),
            Self::Faults(rules) => write!(f, "set {} fault rule(s)", rules.len()),
            Self::Tamper(t) => write!(f, "tamper: {t}"),
        }
    }
}

impl fmt::Display for TriggerOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Console(p) => write!(f, "on console /{p}/"),
            Self::BytesSent { path, amount } => write!(f, "at {amount} of {path}"),
            Self::Request { path, nth } => write!(f, "at request #{nth} to {path}"),
            Self::FlashOp(op) => write!(f, "at flash op {op}"),
            Self::SlotWrite(a) => write!(f, "during the inactive-slot write at {a}"),
            Self::Breakpoint(b) => write!(f, "at breakpoint `{}` (hit {})", b.symbol, b.hit),
            Self::After(d) => write!(f, "after {d}"),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} within {}", self.what, self.within)
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Console(p) => write!(f, "console /{p}/"),
            Self::Http(h) => write!(f, "HTTP request {h}"),
            Self::Device(d) => write!(f, "check-in {d}"),
            Self::Refused(r) => {
                write!(f, "a refusal at the {} stage", r.stage.as_str())?;
                match r.reason {
                    Some(reason) => write!(f, " (reason {})", reason.as_str()),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for HttpExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.method {
            write!(f, "{m} ")?;
        }
        f.write_str(self.path.as_deref().unwrap_or("*"))?;
        if let Some(s) = self.status {
            write!(f, " status {s}")?;
        }
        if let Some(r) = self.range_from {
            write!(f, " range start {r:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for DeviceExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = self.version {
            parts.push(format!("version={}", v.0));
        }
        if let Some(s) = self.state {
            parts.push(format!("state={}", s.as_str()));
        }
        if let Some(e) = &self.last_error {
            parts.push(format!("last_error=/{e}/"));
        }
        f.write_str(&parts.join(" "))
    }
}
