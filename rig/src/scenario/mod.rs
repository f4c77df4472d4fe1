//! Scenario files: one failure case each, in YAML.
//!
//! ```yaml
//! name: power-cut-during-download        # optional, defaults to the file stem
//! about: Power fails half-way through the download; v1 must boot and the download resume.
//! given: { firmware: v1 }                # image the board runs before the scenario
//! release: v2                            # release the server offers from the start
//! images:                                # optional: define or override images by name
//!   v2: { version: 2.0.0, drill: crash-in-init }
//! faults: []                             # fake-server fault rules (same format as --faults)
//! steps:
//!   - power: on
//!   - expect: { console: "app: v1.0.0 running", within: 10s }
//!   - cut: { when: { http: { bytes_sent: 50% } }, hold: 300ms }
//!   - expect: { http: { range_from: ">0" }, within: 20s }
//!   - expect: { console: "app: v2.0.0 confirmed", within: 30s }
//! outcome: updated                       # updated | rolled-back | unchanged
//! ```
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and every error names
//! `file:line:col` with the offending snippet. See `docs/scenarios.md` for the full reference.

mod steps;
pub mod units;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ota_core::Version;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

pub use fake_server::faults::FaultRule;
pub use steps::{
    Action, BreakpointTrigger, CommandName, Cut, DeviceExpect, Expectation, Expected, FlashRegion,
    HttpExpect, ImagePart, Pattern, PowerAction, RefusalExpect, RefusalStage, Step, Tamper,
    Trigger, TriggerOn,
};
pub use units::{Amount, Compare, Dur};

use crate::verdict::Outcome;

/// A parsed and validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub about: String,
    pub file: PathBuf,
    pub given: Given,
    pub release: Option<String>,
    /// Every image the scenario may use, by name: the default catalogue plus `images:`.
    pub images: BTreeMap<String, ImageDef>,
    pub faults: Vec<FaultRule>,
    pub rollout: Option<RolloutDef>,
    pub steps: Vec<Step>,
    pub outcome: Outcome,
    pub repeat: u32,
    /// Upper bound for the whole scenario.
    pub timeout: Dur,
    /// Skipped unless `--ignored` is given.
    pub ignore: bool,
    /// Board kinds the scenario applies to (default: any).
    pub boards: Vec<String>,
    /// Why this scenario skips the final power cycle after settling (`None`: it runs, as it
    /// should almost everywhere).
    pub skip_final_cycle: Option<String>,
}

/// `final_cycle: { skip: "why" }`: a scenario that cannot afford the final power cycle (e.g. on
/// hardware where a cycle takes minutes) says why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FinalCycle {
    #[serde(deserialize_with = "values::text")]
    skip: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Image name (from `images:` or the catalogue) flashed as the factory image.
    pub firmware: String,
}

/// How an image is built for a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDef {
    pub version: VersionField,
    #[serde(default)]
    pub drill: Drill,
    /// Break the image after building it.
    #[serde(default)]
    pub corrupt: Option<Corruption>,
    /// Body size in bytes (default 192 KiB; at most [`values::MAX_IMAGE_BODY`], a slot).
    #[serde(default, deserialize_with = "values::image_size")]
    pub size: Option<u32>,
    #[serde(default)]
    pub rollback_counter: Option<u32>,
}

impl ImageDef {
    pub fn good(version: Version) -> Self {
        Self {
            version: VersionField(version),
            drill: Drill::None,
            corrupt: None,
            size: None,
            rollback_counter: None,
        }
    }

    /// True when a correct device must never run this image.
    pub fn must_not_run(&self) -> bool {
        self.corrupt.is_some()
    }
}

/// A version in YAML: `2.0.0`, `2`, or `v2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VersionField(pub Version);

impl<'de> Deserialize<'de> for VersionField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u16),
            F(f64),
            S(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string(),
            Raw::F(f) => f.to_string(),
            Raw::S(s) => s,
        };
        text.parse()
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("version `{text}`: {e}")))
    }
}

/// A behaviour the firmware plays, chosen when its image is built.
pub use ota_core::payload::Drill;

/// A deliberate defect applied to a built image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corruption {
    /// Break the header magic.
    Header,
    /// Entry point outside the body (validly signed).
    Entry,
    /// Signed with a key the device does not trust.
    Signature,
    /// Flip body bytes (the header hash no longer matches).
    Body,
}

impl Corruption {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Entry => "entry",
            Self::Signature => "signature",
            Self::Body => "body",
        }
    }
}

/// Rollout state on the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutDef {
    /// A phase of the server's percentage table (0..=4).
    #[serde(default, deserialize_with = "values::rollout_phase")]
    pub phase: Option<u8>,
    #[serde(default)]
    pub paused: Option<bool>,
    /// Device ids in the engineering phase (`$device` = this board's device id).
    #[serde(default)]
    pub engineering: Option<Vec<String>>,
}

/// The file as written: converted to [`Scenario`] after validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default, deserialize_with = "values::name")]
    name: Option<String>,
    #[serde(deserialize_with = "values::text")]
    about: String,
    given: Given,
    #[serde(default)]
    release: Option<Spanned<String>>,
    #[serde(default)]
    images: BTreeMap<String, ImageDef>,
    #[serde(default)]
    faults: Vec<FaultRule>,
    #[serde(default)]
    rollout: Option<RolloutDef>,
    steps: Vec<Spanned<Action>>,
    outcome: Spanned<Outcome>,
    #[serde(default, deserialize_with = "values::repeat")]
    repeat: Option<u32>,
    #[serde(default, deserialize_with = "values::opt_positive_dur")]
    timeout: Option<Dur>,
    #[serde(default)]
    ignore: bool,
    #[serde(default)]
    boards: Vec<String>,
    #[serde(default)]
    final_cycle: Option<FinalCycle>,
}

/// A scenario file problem, with its location.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `file:line:col: message` followed by the snippet.
    #[error("{file}:{line}:{column}: {message}{snippet}")]
    Invalid {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
        snippet: String,
    },
    #[error("{0}: no scenario files (*.yaml) found")]
    NoScenarios(PathBuf),
    #[error(
        "{file}: larger than {limit} bytes, the most the rig reads of a YAML file (is it the right file?)"
    )]
    TooLarge { file: PathBuf, limit: u64 },
}

impl Error {
    /// A problem at `loc` of `text` (the file `path`): `file:line:col: message` and a snippet,
    /// the message clipped so that a huge value is never echoed whole.
    pub(crate) fn at(path: &Path, text: &str, loc: Location, message: &str) -> Self {
        Self::Invalid {
            file: path.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            snippet: snippet(text, loc.line(), loc.column()),
            message: values::clip(message, 400),
        }
    }
}

/// The images every scenario can use without defining them.
pub fn default_catalogue() -> BTreeMap<String, ImageDef> {
    [
        ("v0", Version::new(0, 9, 0)),
        ("v1", Version::new(1, 0, 0)),
        ("v2", Version::new(2, 0, 0)),
        ("v3", Version::new(3, 0, 0)),
    ]
    .into_iter()
    .map(|(name, v)| (name.to_string(), ImageDef::good(v)))
    .collect()
}

/// Reads and validates one scenario file.
pub fn load(path: &Path) -> Result<Scenario, Error> {
    parse(&read_text(path)?, path)
}

/// Reads a YAML file (scenario, runbook, bench) of at most [`values::MAX_FILE_LEN`] bytes:
/// a larger file (or `/dev/zero`) is refused after reading one byte past the limit.
pub fn read_text(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let read_err = |source| Error::Read {
        file: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(values::MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > values::MAX_FILE_LEN {
        return Err(Error::TooLarge {
            file: path.to_path_buf(),
            limit: values::MAX_FILE_LEN,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })
}

/// Files named `bench*.yaml` are bench configs, not scenarios.
pub fn is_bench_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("bench"))
}

/// Parses and validates scenario text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, Error> {
    let raw: RawScenario = serde_saphyr::from_str(text).map_err(|e| yaml_error(&e, text, path))?;
    let invalid = |loc: Location, message: String| Error::at(path, text, loc, &message);
    let mut images = default_catalogue();
    images.extend(raw.images);
    if !images.contains_key(&raw.given.firmware) {
        return Err(invalid(
            Location::UNKNOWN,
            format!("given.firmware: unknown image `{}`", raw.given.firmware),
        ));
    }
    let known = |name: &str| images.contains_key(name);
    if let Some(r) = &raw.release
        && !known(&r.value)
    {
        return Err(invalid(
            r.referenced,
            format!("release: unknown image `{}`", r.value),
        ));
    }
    for step in &raw.steps {
        validate_step(&step.value, &known).map_err(|m| invalid(step.referenced, m))?;
    }
    if !matches!(
        raw.outcome.value,
        Outcome::Updated | Outcome::RolledBack | Outcome::Unchanged
    ) {
        return Err(invalid(
            raw.outcome.referenced,
            "outcome: must be updated, rolled-back or unchanged".into(),
        ));
    }
    let name = raw.name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into())
    });
    Ok(Scenario {
        name,
        about: raw.about.trim().to_string(),
        file: path.to_path_buf(),
        given: raw.given,
        release: raw.release.map(|r| r.value),
        images,
        faults: raw.faults,
        rollout: raw.rollout,
        steps: raw
            .steps
            .into_iter()
            .map(|s| Step {
                line: s.referenced.line(),
                action: s.value,
            })
            .collect(),
        outcome: raw.outcome.value,
        repeat: raw.repeat.unwrap_or(1),
        timeout: raw
            .timeout
            .unwrap_or(Dur(std::time::Duration::from_secs(60))),
        ignore: raw.ignore,
        boards: raw.boards,
        skip_final_cycle: raw.final_cycle.map(|f| f.skip),
    })
}

fn validate_step(action: &Action, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
    match action {
        Action::Cut(cut) if cut.torn && !matches!(cut.when.on, TriggerOn::FlashOp(_)) => {
            Err("cut.torn: only an exact flash trigger (flash: { op: N }) can tear a write".into())
        }
        Action::Publish(name) if !known(name) => Err(format!("publish: unknown image `{name}`")),
        _ => Ok(()),
    }
}

/// A serde-saphyr error as `file:line:col: message` with a snippet.
pub(crate) fn yaml_error(e: &serde_saphyr::Error, text: &str, path: &Path) -> Error {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let rendered = e.to_string();
    // serde-saphyr renders `error: line L column C: message` then a snippet; keep the message.
    let first = rendered.lines().next().unwrap_or_default();
    let message = first
        .split_once(": ")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once(": ").map(|(_, m)| m))
        .unwrap_or(first);
    Error::Invalid {
        file: path.to_path_buf(),
        line,
        column,
        snippet: snippet(text, line, column),
        message: values::clip(message, 400),
    }
}

/// Two lines of context and a caret under the column. Long lines are shown as a window of
/// [`SNIPPET_WIDTH`] characters around the column.
pub(crate) fn snippet(text: &str, line: u64, column: u64) -> String {
    if line == 0 {
        return String::new();
    }
    let idx = (line as usize).saturating_sub(1);
    let mut out = String::from("\n");
    for (i, l) in text
        .lines()
        .enumerate()
        .take(idx + 2)
        .skip(idx.saturating_sub(2))
    {
        let col = if i == idx {
            column.saturating_sub(1) as usize
        } else {
            0
        };
        let (shown, caret) = window(l, col);
        out.push_str(&format!("{:>4} | {shown}\n", i + 1));
        if i == idx {
            out.push_str(&format!("     | {}^\n", " ".repeat(caret)));
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// The widest snippet line shown.
const SNIPPET_WIDTH: usize = 120;

/// At most [`SNIPPET_WIDTH`] characters of `line` around the 0-based character `col`, and where
/// `col` lands in what is shown.
fn window(line: &str, col: usize) -> (String, usize) {
    let len = line.chars().count();
    // The parser may count line breaks `str::lines` does not (a lone CR): the caret never
    // goes past the end of the line shown.
    let col = col.min(len);
    if len <= SNIPPET_WIDTH {
        return (line.to_string(), col);
    }
    let start = col
        .saturating_sub(SNIPPET_WIDTH / 2)
        .min(len - SNIPPET_WIDTH);
    let mut shown: String = line.chars().skip(start).take(SNIPPET_WIDTH).collect();
    let mut caret = col - start.min(col);
    if start > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if start + SNIPPET_WIDTH < len {
        shown.push('…');
    }
    (shown, caret)
}

/// Expands paths (files or directories, non-recursive for `*.yaml`) into scenario files,
/// sorted. Files named `bench*.yaml` are bench configs, not scenarios, and are skipped when a
/// directory is expanded.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| Error::Read {
                file: p.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| {
                    f.extension().is_some_and(|x| x == "yaml" || x == "yml") && !is_bench_file(f)
                })
                .collect();
            if found.is_empty() {
                return Err(Error::NoScenarios(p.clone()));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
