//! Power through a relay on a GPIO line.
//!
//! Layered like labgrid's drivers: [`DigitalOutput`] is one line (an rppal pin on a Pi, or
//! [`FakeOutput`] in tests); [`RelaySwitch`] adds polarity (`active_low`), a minimum off time
//! (`min_off`: relays and brown-out detectors need one) and a safe state that is applied on
//! drop, on panic and on Ctrl-C/SIGTERM (through [`SafeStates`]). A new relay kind is one
//! `DigitalOutput` implementation.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::board::power::{Error, PowerState, PowerSwitch};
use crate::timeline::{BoardLane, EventKind};

/// One digital output line.
pub trait DigitalOutput: Send {
    /// Drives the line high (`true`) or low.
    fn set(&mut self, high: bool) -> Result<(), Error>;
}

/// The state a board is left in when the rig stops or crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SafeState {
    Off,
    On,
}

/// Relay settings (from bench.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// The relay closes (board powered) when the line is low.
    pub active_low: bool,
    pub min_off: Duration,
    pub safe: SafeState,
}

type SharedOutput = Arc<Mutex<Box<dyn DigitalOutput>>>;

/// A relay power switch.
pub struct RelaySwitch {
    out: SharedOutput,
    cfg: RelayConfig,
    state: PowerState,
    last_off: Option<Instant>,
    lane: BoardLane,
    safe_id: Option<usize>,
}

fn level(cfg: &RelayConfig, on: bool) -> bool {
    on != cfg.active_low
}

impl RelaySwitch {
    /// Takes the line and drives it to the safe state at once (a switch never starts in an
    /// unknown state), and registers it for safe state on panic and signals.
    pub fn new(out: Box<dyn DigitalOutput>, cfg: RelayConfig) -> Result<Self, Error> {
        let out: SharedOutput = Arc::new(Mutex::new(out));
        let on = cfg.safe == SafeState::On;
        lock(&out).set(level(&cfg, on))?;
        let safe_id = Some(SafeStates::global().register(Arc::clone(&out), level(&cfg, on)));
        Ok(Self {
            out,
            cfg,
            state: if on { PowerState::On } else { PowerState::Off },
            last_off: (!on).then(Instant::now),
            lane: BoardLane::default(),
            safe_id,
        })
    }

    /// Reports every switch, and every `min_off` wait, to `lane`.
    pub fn with_lane(mut self, lane: BoardLane) -> Self {
        self.lane = lane;
        self
    }

    fn report(&self, on: bool, detail: String) {
        self.lane.push(EventKind::Power { on, detail });
    }

    fn line_text(&self, on: bool) -> &'static str {
        if level(&self.cfg, on) { "high" } else { "low" }
    }

    fn drive(&mut self, on: bool) -> Result<(), Error> {
        lock(&self.out).set(level(&self.cfg, on))
    }
}

fn lock(out: &SharedOutput) -> std::sync::MutexGuard<'_, Box<dyn DigitalOutput>> {
    out.lock().unwrap_or_else(|e| e.into_inner())
}

impl PowerSwitch for RelaySwitch {
    fn on(&mut self) -> Result<(), Error> {
        if self.state == PowerState::On {
            return Ok(());
        }
        if let Some(off_at) = self.last_off {
            let since = off_at.elapsed();
            if since < self.cfg.min_off {
                let wait = self.cfg.min_off - since;
                self.report(
                    false,
                    format!(
                        "waiting {} ms for the relay's min_off before power on",
                        wait.as_millis()
                    ),
                );
                std::thread::sleep(wait);
            }
        }
        self.drive(true)?;
        self.state = PowerState::On;
        self.report(
            true,
            format!("power on (relay line {})", self.line_text(true)),
        );
        Ok(())
    }

    fn off(&mut self) -> Result<(), Error> {
        if self.state == PowerState::Off {
            return Ok(());
        }
        self.drive(false)?;
        self.state = PowerState::Off;
        self.last_off = Some(Instant::now());
        self.report(
            false,
            format!("power off (relay line {})", self.line_text(false)),
        );
        Ok(())
    }

    fn state(&self) -> PowerState {
        self.state
    }
}

impl Drop for RelaySwitch {
    fn drop(&mut self) {
        let on = self.cfg.safe == SafeState::On;
        if let Err(e) = self.drive(on) {
            tracing::error!("relay: cannot apply the safe state on drop: {e}");
        }
        if let Some(id) = self.safe_id.take() {
            SafeStates::global().unregister(id);
        }
    }
}

/// Every live relay's safe level, applied on panic and on Ctrl-C/SIGTERM.
///
/// This is the one process-wide registry in the rig: a panic hook and a signal handler have
/// no other way to reach the relays.
pub struct SafeStates {
    entries: Mutex<Vec<Option<(SharedOutput, bool)>>>,
}

impl SafeStates {
    pub fn global() -> &'static SafeStates {
        static GLOBAL: OnceLock<SafeStates> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                SafeStates::global().apply_all();
                prev(info);
            }));
            SafeStates {
                entries: Mutex::new(Vec::new()),
            }
        })
    }

    fn register(&self, out: SharedOutput, safe_level: bool) -> usize {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.push(Some((out, safe_level)));
        e.len() - 1
    }

    fn unregister(&self, id: usize) {
        if let Some(slot) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            *slot = None;
        }
    }

    /// Drives every live relay to its safe level (best effort, never panics).
    pub fn apply_all(&self) {
        let entries = match self.entries.try_lock() {
            Ok(e) => e,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        for (out, level) in entries.iter().flatten() {
            if let Ok(mut o) = out.try_lock() {
                let _ = o.set(*level);
            }
        }
    }

    /// On Ctrl-C or SIGTERM: apply every safe state, then run `then` with the signal's name
    /// (write what the run has so far, end the process: the caller decides how). Spawned on
    /// the current tokio runtime.
    pub fn on_signals(then: impl FnOnce(&'static str) + Send + 'static) {
        tokio::spawn(async move {
            #[cfg(unix)]
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            let name = tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term => "SIGTERM",
            };
            SafeStates::global().apply_all();
            then(name);
        });
    }
}

/// A fake line that records every level it is driven to, with times (tests and dry runs).
#[derive(Clone, Default)]
pub struct FakeOutput {
    levels: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl FakeOutput {
    /// Every level set so far.
    pub fn levels(&self) -> Vec<(Instant, bool)> {
        self.levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn last(&self) -> Option<bool> {
        self.levels().last().map(|(_, l)| *l)
    }
}

impl DigitalOutput for FakeOutput {
    fn set(&mut self, high: bool) -> Result<(), Error> {
        self.levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), high));
        Ok(())
    }
}

/// A Raspberry Pi GPIO pin through rppal.
#[cfg(feature = "hardware")]
pub struct GpioOutput {
    pin: rppal::gpio::OutputPin,
}

#[cfg(feature = "hardware")]
impl GpioOutput {
    /// Opens BCM pin `pin` as an output.
    pub fn open(pin: u8) -> Result<Self, Error> {
        let gpio_err = |e: rppal::gpio::Error| {
            let text = e.to_string();
            let hint = if text.contains("ermission") {
                "add the user to the `gpio` group (or a udev rule for /dev/gpiomem) and log in again"
            } else if text.contains("in use") || text.contains("busy") {
                "another process (or the kernel) holds this pin; free it or pick another"
            } else if text.contains("model") || text.contains("No such file") {
                "this is not a Raspberry Pi (no /dev/gpiomem): relay power needs a Pi"
            } else {
                "check the pin number (BCM numbering) in bench.yaml"
            };
            Error::Gpio {
                pin,
                reason: text,
                hint,
            }
        };
        let gpio = rppal::gpio::Gpio::new().map_err(gpio_err)?;
        let pin = gpio.get(pin).map_err(gpio_err)?.into_output();
        Ok(Self { pin })
    }
}

#[cfg(feature = "hardware")]
impl DigitalOutput for GpioOutput {
    fn set(&mut self, high: bool) -> Result<(), Error> {
        if high {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(active_low: bool, min_off_ms: u64, safe: SafeState) -> (RelaySwitch, FakeOutput) {
        let fake = FakeOutput::default();
        let cfg = RelayConfig {
            active_low,
            min_off: Duration::from_millis(min_off_ms),
            safe,
        };
        (
            RelaySwitch::new(Box::new(fake.clone()), cfg).expect("relay"),
            fake,
        )
    }

    #[test]
    fn polarity_and_idempotence() {
        let (mut r, fake) = relay(true, 0, SafeState::Off);
        assert_eq!(fake.last(), Some(true), "active-low off is high");
        r.on().expect("on");
        assert_eq!(fake.last(), Some(false), "active-low on is low");
        let n = fake.levels().len();
        r.on().expect("on again");
        assert_eq!(fake.levels().len(), n, "idempotent");
        let (mut r, fake) = relay(false, 0, SafeState::Off);
        r.on().expect("on");
        assert_eq!(fake.last(), Some(true));
        assert_eq!(r.state(), PowerState::On);
    }

    #[test]
    fn min_off_is_waited_and_noted() {
        let (r, fake) = relay(false, 150, SafeState::Off);
        let timeline = crate::timeline::Timeline::new();
        let lane = BoardLane::fixed(Arc::clone(&timeline), Arc::from("b"));
        let mut r = r.with_lane(lane);
        r.on().expect("on");
        r.off().expect("off");
        let off_at = Instant::now();
        r.on().expect("on");
        assert!(off_at.elapsed() >= Duration::from_millis(140));
        let levels = fake.levels();
        let (t_off, t_on) = (levels[levels.len() - 2].0, levels[levels.len() - 1].0);
        assert!(
            t_on - t_off >= Duration::from_millis(140),
            "{:?}",
            t_on - t_off
        );
        let power: Vec<(bool, String)> = timeline
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Power { on, detail } => Some((on, detail)),
                _ => None,
            })
            .collect();
        // A new switch starts off (its safe state), so the first on waits out min_off too.
        assert_eq!(power.len(), 5, "wait, on, off, wait, on: {power:?}");
        assert!(power[3].1.contains("min_off"), "{power:?}");
        assert!(power[4].0 && power[4].1.contains("line high"), "{power:?}");
    }

    #[test]
    fn safe_state_on_drop() {
        let (mut r, fake) = relay(false, 0, SafeState::Off);
        r.on().expect("on");
        drop(r);
        assert_eq!(fake.last(), Some(false), "off after drop");
        let (_r, fake) = relay(false, 0, SafeState::On);
        assert_eq!(fake.last(), Some(true), "a safe-on relay starts on");
    }
}
