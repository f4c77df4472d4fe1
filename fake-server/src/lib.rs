//! # fake-server
//!
//! The otarig update server: a small, correct OTA update API (check-in, signed manifests,
//! ranged image downloads, staged rollout, forced commands) that misbehaves on purpose when
//! told to by [`faults`] rules. Used in-process by the rig ([`start`] → [`ServerHandle`]) and
//! standalone (`fake-server --images DIR`) for runbook drills with real devices.
//!
//! Handlers only route; fault logic lives in [`faults`] (rules, the per-request
//! [`faults::plan::Plan`] and the streaming body [`faults::adapters`]). Every request, every
//! applied fault and every finished body is a [`ServerEvent`].

mod cli;
pub mod faults;
mod routes;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use ota_core::Version;
use ota_core::checkin::Command;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use cli::main_with_args;
use faults::adapters::{EventSink, Tag};
use faults::{Action, FaultRule, RequestInfo, RuleState};

/// Errors from the server library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to listen on {0} without a token: a non-loopback server needs --token so that its control API is not open to the network"
    )]
    NeedsToken(SocketAddr),
    #[error("image directory {path}: {source}")]
    Images {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image `{0}` not found in the image directory")]
    NoSuchImage(String),
    #[error("unknown release `{0}`")]
    NoSuchRelease(String),
    #[error("publishing needs a signing key (--key)")]
    NoKey,
    #[error("cannot build the manifest of `{file}`: {reason}")]
    Manifest { file: String, reason: String },
    /// A release name that is not 1 to [`MAX_RELEASE_NAME`] of `A-Z a-z 0-9 . _ -` with no
    /// leading dot (names appear in URLs and in reports).
    #[error(
        "release name {name:?}: {reason} (a release name is 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot)"
    )]
    BadReleaseName { name: String, reason: &'static str },
    /// [`ServerHandle::publish_image`]: the file's image header does not parse.
    #[error(
        "`{file}` is not a firmware image: {reason} (publish an image built by `rig image build` or signed by `rig image sign`)"
    )]
    NotAnImage { file: String, reason: String },
    /// A fault file or body problem: `file:line:col: message` with a snippet.
    #[error("{0}")]
    Faults(String),
}

/// Server settings.
pub struct Config {
    /// Directory the images are served from (nothing outside it is ever served).
    pub images: PathBuf,
    /// Default `127.0.0.1:0` (ephemeral port).
    pub listen: SocketAddr,
    /// Bearer token for the control API; required when `listen` is not loopback.
    pub token: Option<String>,
    pub faults: Vec<FaultRule>,
    /// Signs manifests of published releases.
    pub signing_key: Option<ota_core::keys::SigningKey>,
    /// Chunk size in manifests.
    pub chunk_size: u32,
    /// Where event times come from: the wall clock (default) or a simulation's clock.
    pub clock: Clock,
    /// Most events kept for [`ServerHandle::events`] (the oldest are dropped first); every
    /// event still goes to subscribers.
    pub event_history: usize,
}

/// The server's idea of "now", in microseconds.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Time since the server started.
    #[default]
    Wall,
    /// A simulated clock the caller advances (a fleet simulation's hours run in seconds).
    Manual(Arc<AtomicU64>),
}

impl Config {
    pub fn new(images: impl Into<PathBuf>) -> Self {
        Self {
            images: images.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            faults: Vec::new(),
            signing_key: None,
            chunk_size: 4096,
            clock: Clock::Wall,
            event_history: usize::MAX,
        }
    }
}

/// A published release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseInfo {
    pub name: String,
    pub file: String,
    pub version: String,
    pub rollback_counter: u32,
    /// Image size in bytes.
    pub size: u64,
    pub sha256: String,
    pub chunk_size: u32,
    pub chunks: u32,
}

struct Release {
    info: ReleaseInfo,
    version: Version,
    manifest: Bytes,
}

/// Staged rollout state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Index into `percents` (0 = engineering list only).
    pub phase: u8,
    #[serde(default = "default_percents")]
    pub percents: Vec<u8>,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub engineering: Vec<String>,
    /// Pause the rollout by itself when a phase crosses a threshold (hawkBit's error
    /// threshold).
    #[serde(default)]
    pub halt: Option<HaltPolicy>,
    /// Set by the server when it halted the rollout, and why.
    #[serde(default)]
    pub halted: Option<Halt>,
}

/// When the server halts a rollout on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaltPolicy {
    /// Failed devices / devices offered in the current phase at or above this (0.0..=1.0).
    pub error_rate: f64,
    /// Judge the error rate only once this many devices were offered in the phase.
    #[serde(default = "default_min_sample")]
    pub min_sample: u32,
    /// Halt when this many devices of the phase rolled back by themselves (trial failed).
    #[serde(default)]
    pub max_rollbacks: Option<u32>,
}

fn default_min_sample() -> u32 {
    10
}

/// Why and when the server halted a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    pub release: String,
    pub phase: u8,
    pub reason: String,
    pub failed: u32,
    pub rolled_back: u32,
    pub offered: u32,
    /// Server clock, microseconds.
    pub at_us: u64,
}

/// What happened to one release in one rollout phase, as the server saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PhaseStats {
    /// Devices first offered the release during this phase.
    pub offered: u32,
    /// Of those, devices that checked in running it, confirmed.
    pub updated: u32,
    /// Of those, devices that failed it (reverted, or refused it for a release reason).
    pub failed: u32,
    /// Of the failed, those whose trial boot failed and reverted by themselves.
    pub rolled_back: u32,
}

fn default_percents() -> Vec<u8> {
    vec![0, 1, 10, 50, 100]
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            phase: 4,
            percents: default_percents(),
            paused: false,
            engineering: Vec::new(),
            halt: None,
            halted: None,
        }
    }
}

impl Rollout {
    /// Checks the phase against the percentage table.
    pub fn validate(&self) -> Result<(), String> {
        if usize::from(self.phase) >= self.percents.len() {
            return Err(format!(
                "phase {} is past the percentage table {:?} (phases 0..={})",
                self.phase,
                self.percents,
                self.percents.len().saturating_sub(1)
            ));
        }
        if let Some(p) = self.percents.iter().find(|&&p| p > 100) {
            return Err(format!("percentage {p} is above 100"));
        }
        if let Some(h) = &self.halt
            && !(0.0..=1.0).contains(&h.error_rate)
        {
            return Err(format!(
                "halt.error_rate {} must be a fraction between 0 and 1",
                h.error_rate
            ));
        }
        Ok(())
    }

    /// Is `device` in the current phase? (A phase past the table counts as 100%.)
    pub fn includes(&self, device: &str) -> bool {
        if self.engineering.iter().any(|d| d == device) {
            return true;
        }
        let pct = self
            .percents
            .get(usize::from(self.phase))
            .copied()
            .unwrap_or(100);
        cohort(device) < u32::from(pct)
    }
}

/// A device's stable cohort, 0..100 (FNV-1a of its id).
pub fn cohort(device: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in device.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % 100
}

/// What the server knows about a device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceRecord {
    pub device: String,
    pub version: String,
    pub slot: String,
    pub state: String,
    pub boot_count: u32,
    pub last_error: Option<String>,
    pub checkins: u64,
    pub last_command: String,
    /// Releases offered to this device.
    pub offered: Vec<String>,
    /// Releases whose manifest or image this device fetched (`X-Otarig-Device` header).
    pub downloaded: Vec<String>,
    /// Releases this device failed (came back `reverted`, or reported an error after
    /// downloading while still below them); never offered again.
    pub failed: Vec<String>,
    /// The rollout phase in which the current release was first offered to this device.
    pub offered_in_phase: Option<u8>,
    /// Counted as updated to the current release already.
    #[serde(skip)]
    pub counted_updated: bool,
    /// Server clock (microseconds) of the last check-in.
    pub last_checkin_us: u64,
    /// Server clock when the current release was first offered to this device.
    pub offered_at_us: Option<u64>,
    /// Server clock when the device first checked in running it, confirmed.
    pub updated_at_us: Option<u64>,
}

/// One thing the server did. In JSON, `at` is microseconds since the server started:
/// `{"at":1234,"event":"fault","id":3,"rule":0,"action":"stall_after=100 for 5s","bytes_sent":100}`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerEvent {
    /// When it happened (the rig maps this onto its timeline).
    #[serde(skip)]
    pub at: Instant,
    /// The same moment in microseconds since the server started.
    #[serde(rename = "at")]
    pub t_us: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// A response head was sent.
    Request {
        id: u64,
        method: String,
        path: String,
        device: Option<String>,
        range: Option<String>,
        status: u16,
        declared_len: Option<u64>,
    },
    /// A fault took effect (at this body position).
    Fault {
        id: u64,
        rule: usize,
        action: String,
        bytes_sent: u64,
    },
    /// A response body ended (`aborted`: not every declared byte was sent).
    Complete {
        id: u64,
        bytes_sent: u64,
        aborted: bool,
    },
    /// A device checked in and got a command.
    Checkin {
        device: String,
        version: String,
        state: String,
        boot_count: u32,
        last_error: Option<String>,
        command: String,
    },
    /// Something changed through the API.
    Control { detail: String },
    /// The server halted the rollout by itself.
    Halt {
        release: String,
        phase: u8,
        reason: String,
        failed: u32,
        offered: u32,
    },
}

pub(crate) struct State {
    releases: BTreeMap<String, Release>,
    offered: Option<String>,
    faults: Vec<FaultRule>,
    rule_states: Vec<RuleState>,
    rollout: Rollout,
    commands: HashMap<String, Command>,
    devices: BTreeMap<String, DeviceRecord>,
    /// Per release, per rollout phase.
    stats: BTreeMap<String, Vec<PhaseStats>>,
}

/// A cached image file.
#[derive(Clone)]
struct CachedFile {
    data: Bytes,
    etag: String,
    modified: Option<std::time::SystemTime>,
}

/// An image ready to serve: from the cache, or (too large to cache) from disk.
pub(crate) struct Loaded {
    pub(crate) content: faults::plan::Source,
    pub(crate) etag: String,
    pub(crate) size: u64,
}

/// State shared by every connection.
pub(crate) struct Shared {
    images: PathBuf,
    token: Option<String>,
    key: Option<ota_core::keys::SigningKey>,
    chunk_size: u32,
    start: Instant,
    clock: Clock,
    state: Mutex<State>,
    files: Mutex<HashMap<PathBuf, CachedFile>>,
    events: Mutex<std::collections::VecDeque<ServerEvent>>,
    event_history: usize,
    tx: broadcast::Sender<ServerEvent>,
    next_id: AtomicU64,
}

/// Largest image kept in memory; larger ones are streamed from disk in 64 KiB reads.
pub const MAX_IMAGE: u64 = 64 * 1024 * 1024;
/// Most image bytes kept in the cache at once.
pub const MAX_CACHE: u64 = 256 * 1024 * 1024;

/// Longest release name.
pub const MAX_RELEASE_NAME: usize = 64;

/// Checks a release name: 1 to [`MAX_RELEASE_NAME`] of `A-Z a-z 0-9 . _ -`, no leading dot.
///
/// ```
/// assert!(fake_server::check_release_name("v2.1-rc_1").is_ok());
/// assert!(fake_server::check_release_name("..").is_err());
/// assert!(fake_server::check_release_name("v2/../x").is_err());
/// ```
pub fn check_release_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_RELEASE_NAME {
        "longer than 64 bytes"
    } else if name.starts_with('.') {
        "starts with a dot"
    } else if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        "has a character other than A-Z a-z 0-9 . _ -"
    } else {
        return Ok(());
    };
    // A hostile name is shown shortened (the error may travel back in a response).
    let mut shown: String = name.chars().take(MAX_RELEASE_NAME).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    Err(Error::BadReleaseName {
        name: shown,
        reason,
    })
}

/// Resolves an image file name to a regular file inside `root`, or `None`: no separators, no
/// dot files, no NUL, and no symlink that leads out of the directory.
fn resolve_image(root: &std::path::Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.starts_with('.') {
        return None;
    }
    let root = std::fs::canonicalize(root).ok()?;
    let path = std::fs::canonicalize(root.join(name)).ok()?;
    (path.starts_with(&root) && path.is_file()).then_some(path)
}

/// What a device fetched.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DownloadOf<'a> {
    /// `GET /v1/manifest/{release}`.
    Release(&'a str),
    /// `GET /v1/images/{file}`.
    File(&'a str),
}

/// Reports one request's body events.
pub(crate) struct RequestSink {
    shared: Arc<Shared>,
    id: u64,
}

impl RequestSink {
    pub(crate) fn new(shared: Arc<Shared>, id: u64) -> Self {
        Self { shared, id }
    }
}

impl EventSink for RequestSink {
    fn fault(&self, tag: &Tag, bytes_sent: u64) {
        tracing::debug!(id = self.id, rule = tag.rule, action = %tag.label, bytes_sent, "fault");
        if let Some(rs) = self.shared.state().rule_states.get_mut(tag.rule) {
            rs.took_effect += 1;
        }
        self.shared.emit(EventKind::Fault {
            id: self.id,
            rule: tag.rule,
            action: tag.label.clone(),
            bytes_sent,
        });
    }

    fn complete(&self, bytes_sent: u64, aborted: bool) {
        self.shared.emit(EventKind::Complete {
            id: self.id,
            bytes_sent,
            aborted,
        });
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now on the server's clock, in microseconds.
    pub(crate) fn now_us(&self) -> u64 {
        match &self.clock {
            Clock::Wall => u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    fn emit(&self, kind: EventKind) {
        let event = ServerEvent {
            at: Instant::now(),
            t_us: self.now_us(),
            kind,
        };
        if self.event_history > 0 {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if events.len() >= self.event_history {
                events.pop_front();
            }
            events.push_back(event.clone());
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts the request against every rule and returns the actions that fire, in rule order.
    fn fire_rules(&self, req: &RequestInfo<'_>) -> Vec<(usize, Action)> {
        let mut st = self.state();
        let st = &mut *st;
        let mut fired = Vec::new();
        for (i, (rule, rs)) in st.faults.iter().zip(st.rule_states.iter_mut()).enumerate() {
            if rule.matches(req) && rule.fire(req, rs) {
                fired.push((i, rule.action.clone()));
            }
        }
        fired
    }

    /// Resolves an image file name to a path inside the image directory, or `None`.
    async fn image_path(&self, name: &str) -> Option<PathBuf> {
        let root = self.images.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || resolve_image(&root, &name))
            .await
            .ok()
            .flatten()
    }

    /// The file's bytes, from the cache when unchanged; a file larger than [`MAX_IMAGE`] is
    /// streamed from disk instead (ETag from its size and modification time).
    async fn load(&self, path: &std::path::Path) -> std::io::Result<Loaded> {
        let meta = tokio::fs::metadata(path).await?;
        let modified = meta.modified().ok();
        if meta.len() > MAX_IMAGE {
            let stamp = modified
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            return Ok(Loaded {
                content: faults::plan::Source::Disk {
                    path: path.to_path_buf(),
                    start: 0,
                    len: meta.len(),
                },
                etag: format!("\"{:x}-{stamp:x}\"", meta.len()),
                size: meta.len(),
            });
        }
        let hit = self
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .filter(|c| c.modified == modified && c.data.len() as u64 == meta.len())
            .cloned();
        let file = match hit {
            Some(c) => c,
            None => self.cache(path, modified).await?,
        };
        Ok(Loaded {
            size: file.data.len() as u64,
            content: faults::plan::Source::Memory(file.data),
            etag: file.etag,
        })
    }

    async fn cache(
        &self,
        path: &std::path::Path,
        modified: Option<std::time::SystemTime>,
    ) -> std::io::Result<CachedFile> {
        let data = Bytes::from(tokio::fs::read(path).await?);
        let digest = ota_core::sha256(&data);
        let file = CachedFile {
            etag: format!("\"{}-{}\"", hex::encode(&digest[..8]), data.len()),
            data,
            modified,
        };
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let cached: u64 = files.values().map(|f| f.data.len() as u64).sum();
        if cached + file.data.len() as u64 > MAX_CACHE {
            // Keep memory bounded: start over (bodies in flight keep their own `Bytes`).
            files.clear();
        }
        files.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }

    /// Publishes `file` as `release`; with `image_only`, a file whose image header does not
    /// parse is refused (the rig publishes broken images on purpose; people do so by mistake).
    fn publish(&self, release: &str, file: &str, image_only: bool) -> Result<ReleaseInfo, Error> {
        check_release_name(release)?;
        let key = self.key.as_ref().ok_or(Error::NoKey)?;
        let path = resolve_image(&self.images, file)
            .ok_or_else(|| Error::NoSuchImage(file.to_string()))?;
        let data = std::fs::read(&path).map_err(|source| Error::Images {
            path: path.clone(),
            source,
        })?;
        if image_only && let Err(e) = ota_core::image::ImageHeader::parse(&data) {
            return Err(Error::NotAnImage {
                file: file.to_string(),
                reason: e.to_string(),
            });
        }
        let url = format!("/v1/images/{file}");
        let manifest =
            ota_core::manifest::build(&data, self.chunk_size, &url, key).map_err(|e| {
                Error::Manifest {
                    file: file.to_string(),
                    reason: e.to_string(),
                }
            })?;
        let parsed =
            ota_core::manifest::Manifest::parse(&manifest).map_err(|e| Error::Manifest {
                file: file.to_string(),
                reason: e.to_string(),
            })?;
        let info = ReleaseInfo {
            name: release.to_string(),
            file: file.to_string(),
            version: parsed.version().to_string(),
            rollback_counter: parsed.rollback_counter(),
            size: u64::from(parsed.size()),
            sha256: hex::encode(parsed.sha256()),
            chunk_size: parsed.chunk_size(),
            chunks: parsed.chunk_count(),
        };
        let version = parsed.version();
        let manifest = Bytes::from(manifest);
        let mut st = self.state();
        st.releases.insert(
            release.to_string(),
            Release {
                info: info.clone(),
                version,
                manifest,
            },
        );
        st.offered = Some(release.to_string());
        drop(st);
        self.emit(EventKind::Control {
            detail: format!("published {release} = {file} (version {})", info.version),
        });
        Ok(info)
    }

    /// Notes that `device` fetched a release's manifest or image (for the failed-release
    /// logic: an error reported after that is a failure of the release).
    fn note_download(&self, device: &str, what: DownloadOf<'_>) {
        let mut st = self.state();
        let st = &mut *st;
        let names: Vec<String> = st
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
        let rec = st
            .devices
            .entry(device.to_string())
            .or_insert_with(|| DeviceRecord {
                device: device.to_string(),
                ..DeviceRecord::default()
            });
        for name in names {
            if !rec.downloaded.contains(&name) {
                rec.downloaded.push(name);
            }
        }
    }

    fn set_faults(&self, rules: Vec<FaultRule>) {
        let n = rules.len();
        let mut st = self.state();
        st.rule_states = vec![RuleState::default(); n];
        st.faults = rules;
        drop(st);
        self.emit(EventKind::Control {
            detail: format!("{n} fault rule(s) installed"),
        });
    }

    fn authorized(&self, header: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(t) => header
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|given| constant_time_eq(given.as_bytes(), t.as_bytes())),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// See [`ServerHandle::kill_switch`].
pub(crate) fn kill_switch(shared: &Shared, release: &str) -> Result<Vec<String>, Error> {
    let mut guard = shared.state();
    let st = &mut *guard;
    let version = st
        .releases
        .get(release)
        .ok_or_else(|| Error::NoSuchRelease(release.to_string()))?
        .info
        .version
        .clone();
    st.rollout.paused = true;
    let mut told = Vec::new();
    for rec in st.devices.values_mut() {
        if rec.offered.iter().any(|r| r == release) && !rec.failed.iter().any(|r| r == release) {
            rec.failed.push(release.to_string());
        }
        if rec.version == version {
            st.commands.insert(rec.device.clone(), Command::Rollback);
            told.push(rec.device.clone());
        }
    }
    drop(guard);
    shared.emit(EventKind::Control {
        detail: format!(
            "kill switch: {release} withdrawn, rollback queued for {} device(s)",
            told.len()
        ),
    });
    Ok(told)
}

/// After a failure of `release` by a device offered it in `phase` (a failure can arrive after
/// the rollout moved on; it still counts against the phase that shipped it): halts the rollout
/// when that phase crosses the policy's threshold. Returns the halt to announce.
pub(crate) fn check_halt(st: &mut State, release: &str, phase: u8, now_us: u64) -> Option<Halt> {
    let policy = st.rollout.halt.clone()?;
    if st.rollout.paused || st.rollout.halted.is_some() || st.offered.as_deref() != Some(release) {
        return None;
    }
    let s = st.stats.get(release)?.get(usize::from(phase)).copied()?;
    let rate = f64::from(s.failed) / f64::from(s.offered.max(1));
    let reason = if s.offered >= policy.min_sample && s.failed > 0 && rate >= policy.error_rate {
        format!(
            "error rate {:.1}% ({} failed of {} offered) reached the threshold {:.1}%",
            rate * 100.0,
            s.failed,
            s.offered,
            policy.error_rate * 100.0
        )
    } else if let Some(max) = policy.max_rollbacks
        && s.rolled_back >= max
    {
        format!("{} devices rolled back (threshold {max})", s.rolled_back)
    } else {
        return None;
    };
    let halt = Halt {
        release: release.to_string(),
        phase,
        reason,
        failed: s.failed,
        rolled_back: s.rolled_back,
        offered: s.offered,
        at_us: now_us,
    };
    st.rollout.paused = true;
    st.rollout.halted = Some(halt.clone());
    Some(halt)
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Binds and starts the server; returns once it accepts connections.
pub async fn start(cfg: Config) -> Result<ServerHandle, Error> {
    if !cfg.listen.ip().is_loopback() && cfg.token.is_none() {
        return Err(Error::NeedsToken(cfg.listen));
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: cfg.listen,
            source,
        })?;
    serve_on(cfg, listener)
}

/// Starts the server on a socket the caller bound already (`cfg.listen` is ignored). A bench
/// keeps one listening socket per board for a whole run and serves each scenario on a clone
/// of it, because a real board's server address is fixed when its firmware is built.
pub async fn start_on(cfg: Config, listener: std::net::TcpListener) -> Result<ServerHandle, Error> {
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: cfg.listen,
        source,
    })?;
    if !addr.ip().is_loopback() && cfg.token.is_none() {
        return Err(Error::NeedsToken(addr));
    }
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
        .map_err(|source| Error::Bind { addr, source })?;
    serve_on(cfg, listener)
}

fn serve_on(cfg: Config, listener: tokio::net::TcpListener) -> Result<ServerHandle, Error> {
    std::fs::read_dir(&cfg.images).map_err(|source| Error::Images {
        path: cfg.images.clone(),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: cfg.listen,
        source,
    })?;
    // Subscribers drain continuously; a slow one is told how many events it missed.
    let (tx, _) = broadcast::channel(1024);
    let n = cfg.faults.len();
    let shared = Arc::new(Shared {
        images: cfg.images,
        token: cfg.token,
        key: cfg.signing_key,
        chunk_size: cfg.chunk_size,
        start: Instant::now(),
        clock: cfg.clock,
        event_history: cfg.event_history,
        state: Mutex::new(State {
            releases: BTreeMap::new(),
            offered: None,
            faults: cfg.faults,
            rule_states: vec![RuleState::default(); n],
            rollout: Rollout::default(),
            commands: HashMap::new(),
            devices: BTreeMap::new(),
            stats: BTreeMap::new(),
        }),
        files: Mutex::new(HashMap::new()),
        events: Mutex::new(std::collections::VecDeque::new()),
        tx,
        next_id: AtomicU64::new(1),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(routes::serve(listener, Arc::clone(&shared), stop_rx));
    tracing::info!(%addr, "fake-server listening");
    Ok(ServerHandle {
        shared,
        addr,
        shutdown: Some(stop_tx),
        task: Some(task),
    })
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes `image_file` (a name in the image directory) as `release` and offers it. The
    /// file may be a deliberately broken image (scenarios serve those); see
    /// [`publish_image`](Self::publish_image).
    pub fn publish(&self, release: &str, image_file: &str) -> Result<ReleaseInfo, Error> {
        self.shared.publish(release, image_file, false)
    }

    /// Like [`publish`](Self::publish), but refuses a file whose image header does not parse
    /// ([`Error::NotAnImage`]): what `--publish` and `POST /_control/releases` do.
    pub fn publish_image(&self, release: &str, image_file: &str) -> Result<ReleaseInfo, Error> {
        self.shared.publish(release, image_file, true)
    }

    /// Chooses which release check-ins offer (`None`: nothing).
    pub fn offer(&self, release: Option<&str>) -> Result<(), Error> {
        let mut st = self.shared.state();
        if let Some(r) = release
            && !st.releases.contains_key(r)
        {
            return Err(Error::NoSuchRelease(r.to_string()));
        }
        st.offered = release.map(str::to_string);
        Ok(())
    }

    /// The release check-ins currently offer.
    pub fn offered(&self) -> Option<ReleaseInfo> {
        let st = self.shared.state();
        let name = st.offered.as_ref()?;
        st.releases.get(name).map(|r| r.info.clone())
    }

    pub fn releases(&self) -> Vec<ReleaseInfo> {
        self.shared
            .state()
            .releases
            .values()
            .map(|r| r.info.clone())
            .collect()
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.shared.set_faults(rules);
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.state().faults.clone()
    }

    /// What each fault rule did since it was installed, in rule order.
    pub fn fault_counts(&self) -> Vec<faults::RuleCounts> {
        self.shared
            .state()
            .rule_states
            .iter()
            .map(RuleState::counts)
            .collect()
    }

    pub fn set_rollout(&self, rollout: Rollout) {
        let detail = format!(
            "rollout: phase {} ({}%), paused {}",
            rollout.phase,
            rollout
                .percents
                .get(usize::from(rollout.phase))
                .copied()
                .unwrap_or(100),
            rollout.paused
        );
        self.shared.state().rollout = rollout;
        self.shared.emit(EventKind::Control { detail });
    }

    pub fn rollout(&self) -> Rollout {
        self.shared.state().rollout.clone()
    }

    /// Queues a one-shot command for the device's next check-in.
    pub fn command(&self, device: &str, cmd: Command) {
        self.shared.state().commands.insert(device.to_string(), cmd);
        self.shared.emit(EventKind::Control {
            detail: format!("command {cmd:?} queued for {device}").to_lowercase(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.shared.tx.subscribe()
    }

    pub fn events(&self) -> Vec<ServerEvent> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// What happened to `release` in each rollout phase so far.
    pub fn phase_stats(&self, release: &str) -> Vec<PhaseStats> {
        self.shared
            .state()
            .stats
            .get(release)
            .cloned()
            .unwrap_or_default()
    }

    /// The kill switch: stops offering `release` (pauses the rollout and marks it failed for
    /// every device it was offered to) and queues a forced rollback for every device that
    /// reported running it. Returns the devices told to roll back.
    pub fn kill_switch(&self, release: &str) -> Result<Vec<String>, Error> {
        kill_switch(&self.shared, release)
    }

    pub fn device(&self, id: &str) -> Option<DeviceRecord> {
        self.shared.state().devices.get(id).cloned()
    }

    pub fn devices(&self) -> Vec<DeviceRecord> {
        self.shared.state().devices.values().cloned().collect()
    }

    /// Forgets every device, its pending commands and the rollout statistics (what a rig saw
    /// while it brought a board to its starting firmware is not part of the test).
    pub fn forget_devices(&self) {
        let mut st = self.shared.state();
        st.devices.clear();
        st.commands.clear();
        st.stats.clear();
    }

    /// Stops accepting, lets in-flight requests end, and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
