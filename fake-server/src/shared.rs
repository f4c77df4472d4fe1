//! State shared by every connection: the [`Registry`] (rollout bookkeeping, no I/O), the
//! fault rules and their counters, the image cache, the event history and the clock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::events::{EventKind, ServerEvent};
use crate::faults::{self, Action, FaultRule, RequestInfo, RuleState};
use crate::registry::{Registry, Release, ReleaseInfo};
use crate::release::resolve_image;
use crate::{Clock, Error, MAX_CACHE, MAX_IMAGE, check_release_name};

/// A cached image file.
#[derive(Clone)]
pub(crate) struct CachedFile {
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

/// The installed fault rules and what each did.
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) rules: Vec<FaultRule>,
    pub(crate) states: Vec<RuleState>,
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) images: PathBuf,
    pub(crate) token: Option<String>,
    pub(crate) key: Option<ota_core::keys::SigningKey>,
    pub(crate) chunk_size: u32,
    pub(crate) start: Instant,
    pub(crate) clock: Clock,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) files: Mutex<HashMap<PathBuf, CachedFile>>,
    pub(crate) events: Mutex<std::collections::VecDeque<ServerEvent>>,
    pub(crate) event_history: usize,
    /// [`crate::Config::inline_file_checks`].
    pub(crate) inline_file_checks: bool,
    pub(crate) tx: broadcast::Sender<ServerEvent>,
    pub(crate) next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now on the server's clock, in microseconds.
    pub(crate) fn now_us(&self) -> u64 {
        match &self.clock {
            Clock::Wall => u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Does anyone keep or receive events? (A fleet drill keeps none: building them is
    /// most of a check-in's cost.)
    pub(crate) fn wants_events(&self) -> bool {
        self.event_history > 0 || self.tx.receiver_count() > 0
    }

    /// Emits the event `kind()` builds, if anyone keeps or receives events.
    /// Logs and announces that the rollout policy halted the rollout.
    pub(crate) fn halted(&self, h: crate::Halt) {
        tracing::warn!(release = %h.release, phase = h.phase, reason = %h.reason, "rollout halted");
        self.emit(EventKind::Halt {
            release: h.release,
            phase: h.phase,
            reason: h.reason,
            failed: h.failed,
            offered: h.offered,
        });
    }

    pub(crate) fn emit_with(&self, kind: impl FnOnce() -> EventKind) {
        if self.wants_events() {
            self.emit(kind());
        }
    }

    pub(crate) fn emit(&self, kind: EventKind) {
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

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts the request against every rule and returns the actions that fire, in rule order.
    pub(crate) fn fire_rules(&self, req: &RequestInfo<'_>) -> Vec<(usize, Action)> {
        let mut f = self.faults();
        let f = &mut *f;
        let mut fired = Vec::new();
        for (i, (rule, rs)) in f.rules.iter().zip(f.states.iter_mut()).enumerate() {
            if rule.matches(req) && rule.fire(req, rs) {
                fired.push((i, rule.action.clone()));
            }
        }
        fired
    }

    /// Resolves an image file name to a path inside the image directory, or `None`.
    pub(crate) async fn image_path(&self, name: &str) -> Option<PathBuf> {
        if self.inline_file_checks {
            return resolve_image(&self.images, name);
        }
        let root = self.images.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || resolve_image(&root, &name))
            .await
            .ok()
            .flatten()
    }

    /// The file's bytes, from the cache when unchanged; a file larger than [`MAX_IMAGE`] is
    /// streamed from disk instead (ETag from its size and modification time).
    pub(crate) async fn load(&self, path: &std::path::Path) -> std::io::Result<Loaded> {
        let meta = if self.inline_file_checks {
            std::fs::metadata(path)?
        } else {
            tokio::fs::metadata(path).await?
        };
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
    pub(crate) fn publish(
        &self,
        release: &str,
        file: &str,
        image_only: bool,
    ) -> Result<ReleaseInfo, Error> {
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
        self.registry().publish(Release {
            info: info.clone(),
            version,
            manifest: Bytes::from(manifest),
        });
        self.emit(EventKind::Control {
            detail: format!("published {release} = {file} (version {})", info.version),
        });
        Ok(info)
    }

    pub(crate) fn set_faults(&self, rules: Vec<FaultRule>) {
        let n = rules.len();
        *self.faults() = Faults {
            states: vec![RuleState::default(); n],
            rules,
        };
        self.emit(EventKind::Control {
            detail: format!("{n} fault rule(s) installed"),
        });
    }

    pub(crate) fn authorized(&self, header: Option<&str>) -> bool {
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

impl Shared {
    /// See [`crate::ServerHandle::kill_switch`].
    pub(crate) fn kill_switch(&self, release: &str) -> Result<Vec<String>, Error> {
        let told = self
            .registry()
            .kill_switch(release)
            .map_err(Error::NoSuchRelease)?;
        self.emit(EventKind::Control {
            detail: format!(
                "kill switch: {release} withdrawn, rollback queued for {} device(s)",
                told.len()
            ),
        });
        Ok(told)
    }
}
