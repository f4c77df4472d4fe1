//! Starting the server and the handle a caller keeps: its address, control methods (releases,
//! rollout policy, commands, kill switch, faults), device records, events, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use ota_core::checkin::Command;
use tokio::sync::broadcast;

use crate::events::{EventKind, ServerEvent};
use crate::faults::{self, FaultRule, RuleState};
use crate::policy::{Halt, PhaseStats, PolicyConfig, PolicyStatus, Rollout};
use crate::registry::{DeviceRecord, Registry, ReleaseInfo};
use crate::shared::{Faults, Shared};
use crate::{Config, Error, routes};

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
        inline_file_checks: cfg.inline_file_checks,
        registry: Mutex::new({
            let mut r = Registry::default();
            r.defer_judging(cfg.judge_at_ticks);
            r
        }),
        faults: Mutex::new(Faults {
            rules: cfg.faults,
            states: vec![RuleState::default(); n],
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

    /// A connector for in-process connections to this server (see [`InProcess`]). Refused
    /// while an installed fault rule acts on the socket itself
    /// ([`FaultRule::needs_socket`](crate::faults::FaultRule::needs_socket)).
    pub fn in_process(&self) -> Result<InProcess, Error> {
        let connector = InProcess {
            shared: Arc::clone(&self.shared),
        };
        connector.check_faults()?;
        Ok(connector)
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
        self.shared
            .registry()
            .offer(release)
            .map_err(Error::NoSuchRelease)
    }

    /// The release check-ins currently offer.
    pub fn offered(&self) -> Option<ReleaseInfo> {
        self.shared.registry().offered().map(|r| r.info.clone())
    }

    pub fn releases(&self) -> Vec<ReleaseInfo> {
        self.shared
            .registry()
            .releases()
            .map(|r| r.info.clone())
            .collect()
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.shared.set_faults(rules);
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults().rules.clone()
    }

    /// What each fault rule did since it was installed, in rule order.
    pub fn fault_counts(&self) -> Vec<faults::RuleCounts> {
        self.shared
            .faults()
            .states
            .iter()
            .map(RuleState::counts)
            .collect()
    }

    /// Installs otarig's phased rollout (with its pause flag and halt).
    pub fn set_rollout(&self, rollout: Rollout) {
        self.set_policy(PolicyConfig::Phases(rollout));
    }

    /// Installs a rollout policy: phases, hawkBit groups, an AWS IoT rate, Mender batches.
    pub fn set_policy(&self, policy: PolicyConfig) {
        let now = self.shared.now_us();
        let mut reg = self.shared.registry();
        reg.set_policy(policy);
        let detail = format!(
            "rollout policy: {}, paused {}",
            reg.policy_status(now).detail,
            reg.rollout().paused
        );
        drop(reg);
        self.shared.emit(EventKind::Control { detail });
    }

    /// The phased rollout, or under another policy its pause flag and halt.
    pub fn rollout(&self) -> Rollout {
        self.shared.registry().rollout()
    }

    pub fn policy(&self) -> PolicyConfig {
        self.shared.registry().policy().clone()
    }

    /// Where the rollout policy stands now, in its backend's words.
    pub fn policy_status(&self) -> PolicyStatus {
        let now = self.shared.now_us();
        self.shared.registry().policy_status(now)
    }

    /// Sets or clears the rollout's pause flag (the release manager's pause button).
    pub fn pause(&self, paused: bool) {
        self.shared.registry().set_paused(paused);
        self.shared.emit(EventKind::Control {
            detail: format!("rollout paused {paused}"),
        });
    }

    /// Judges what check-ins changed since the last call (with [`Config::judge_at_ticks`]);
    /// a halt is reported as one at a check-in is.
    pub fn judge_pending(&self) -> Option<Halt> {
        let now = self.shared.now_us();
        let halt = self.shared.registry().judge_pending(now);
        if let Some(h) = &halt {
            self.shared.halted(h.clone());
        }
        halt
    }

    /// Why the server halted the rollout, if it did.
    pub fn halted(&self) -> Option<Halt> {
        self.shared.registry().halted().cloned()
    }

    /// Queues a command for the device's next check-in (sent again if that check-in's answer
    /// was lost: see the registry's `Queued`).
    pub fn command(&self, device: &str, cmd: Command) {
        self.shared.registry().queue(device, cmd);
        self.shared.emit(EventKind::Control {
            detail: format!("command {} queued for {device}", cmd.as_str()),
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

    /// What happened to `release` in each rollout wave so far.
    pub fn phase_stats(&self, release: &str) -> Vec<PhaseStats> {
        self.shared.registry().phase_stats(release).to_vec()
    }

    /// The kill switch: stops offering `release` (pauses the rollout and marks it failed for
    /// every device it was offered to) and queues a forced rollback for every device that
    /// reported running it. Returns the devices told to roll back.
    pub fn kill_switch(&self, release: &str) -> Result<Vec<String>, Error> {
        self.shared.kill_switch(release)
    }

    pub fn device(&self, id: &str) -> Option<DeviceRecord> {
        self.shared.registry().device(id).cloned()
    }

    pub fn devices(&self) -> Vec<DeviceRecord> {
        self.shared.registry().devices().cloned().collect()
    }

    /// Calls `f` with every device record, without copying them (for large fleets).
    pub fn with_devices<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = &DeviceRecord>) -> T,
    ) -> T {
        let reg = self.shared.registry();
        let mut it = reg.devices();
        f(&mut it)
    }

    /// Forgets every device, its pending commands and the rollout statistics (what a rig saw
    /// while it brought a board to its starting firmware is not part of the test).
    pub fn forget_devices(&self) {
        self.shared.registry().forget_devices();
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

/// Bytes an in-process pipe buffers in each direction (a TCP socket's default buffer is of
/// the same order).
const PIPE_BUFFER: usize = 64 * 1024;

/// Opens connections to the server that are in-memory pipes instead of TCP sockets: the
/// same HTTP/1.1 connection handling (hyper), routes, policies and fault adapters, served on
/// the runtime of whoever connects, without the kernel's loopback TCP and its thread
/// hand-offs. What a pipe cannot do is what acts on a socket (an RST, writing past HTTP
/// framing): while such a rule is installed, [`connect`](Self::connect) refuses.
#[derive(Clone)]
pub struct InProcess {
    shared: Arc<Shared>,
}

impl InProcess {
    /// A new connection, served by a task on the current Tokio runtime; the caller holds the
    /// client end. Dropping it closes the connection.
    pub fn connect(&self) -> Result<tokio::io::DuplexStream, Error> {
        self.check_faults()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        rt.spawn(routes::connection(server, Arc::clone(&self.shared), None));
        Ok(client)
    }

    fn check_faults(&self) -> Result<(), Error> {
        match self.shared.faults().rules.iter().find(|r| r.needs_socket()) {
            Some(rule) => Err(Error::NeedsSocket(rule.to_string())),
            None => Ok(()),
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
