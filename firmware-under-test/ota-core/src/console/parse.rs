//! Reading a console line back into a [`Line`]: strict, the exact inverse of printing it.

use super::*;

/// Reads one console line (without its `\n`; one trailing `\r` is ignored). `None` for any
/// line that is not exactly one of CONSOLE.md's lines.
pub fn parse(line: &str) -> Option<Line<'_>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    // Console lines are printable text: a control character (another CR, a NUL from a noisy
    // UART) makes the line no event, so free text can never smuggle a line ending through.
    if line.bytes().any(|b| b < 0x20 || b == 0x7F) {
        return None;
    }
    let (stage, rest) = line.split_once(": ")?;
    let mut w = Words::new(rest);
    let parsed = match stage {
        "boot" => boot(&mut w)?,
        "app" => app(&mut w)?,
        "checkin" => checkin(&mut w)?,
        "update" => update(&mut w)?,
        "download" => download(&mut w)?,
        "verify" => match w.word()? {
            "ok" => Line::VerifyOk {
                version: w.field("version", version)?,
            },
            "failed" => Line::VerifyFailed {
                reason: w.field("reason", Reason::from_name)?,
            },
            _ => return None,
        },
        "rollback" => match w.word()? {
            "refused" => Line::RollbackRefused {
                reason: w.field("reason", Reason::from_name)?,
            },
            "command" => {
                w.expect("received")?;
                Line::RollbackReceived {
                    to: w.field("to", version)?,
                }
            }
            _ => return None,
        },
        "watchdog" => {
            w.expect("expired")?;
            Line::WatchdogExpired
        }
        _ => return None,
    };
    w.end()?;
    Some(parsed)
}

fn boot<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    let first = w.word()?;
    if let Some(s) = first.strip_prefix("slot=") {
        return Some(Line::BootSlot {
            slot: slot(s)?,
            version: w.field("version", version)?,
            state: w.field("state", SlotState::from_name)?,
        });
    }
    Some(match first {
        "otarig-boot" => Line::BootBanner {
            board: w.field("board", Some)?,
            device: w.field("device", Some)?,
            reset: w.field("reset", reset)?,
        },
        "trial" => {
            let version = w.field("version", version)?;
            let (attempt, max) = w.field("attempt", ratio)?;
            Line::BootTrial {
                version,
                attempt,
                max,
            }
        }
        "revert" => Line::BootRevert {
            to: w.field("to", version)?,
            reason: w.field("reason", RevertReason::from_name)?,
        },
        "refuse" => Line::BootRefuse {
            slot: w.field("slot", slot)?,
            reason: w.field("reason", Reason::from_name)?,
        },
        "FATAL" => Line::BootFatal {
            why: match w.tail()? {
                Fatal::NO_BOOTABLE_IMAGE => Fatal::NoBootableImage,
                other => Fatal::Other(other),
            },
        },
        "factory" => {
            w.expect("reset")?;
            if w.peek_is("failed") {
                w.expect("failed")?;
                Line::FactoryResetFailed {
                    reason: w.field("reason", Reason::from_name)?,
                }
            } else {
                Line::FactoryReset {
                    version: w.field("version", version)?,
                }
            }
        }
        _ => return None,
    })
}

fn app<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    let v = version(w.word()?.strip_prefix('v')?)?;
    Some(match w.word()? {
        "starting" => Line::AppStarting {
            version: v,
            drill: w.field("drill", Drill::from_name)?,
        },
        "network" => match w.word()? {
            "up" => Line::AppNetworkUp { version: v },
            "disabled" => {
                w.expect("(drill)")?;
                Line::AppNetworkDisabled { version: v }
            }
            _ => return None,
        },
        "running" => Line::AppRunning { version: v },
        "confirmed" => Line::AppConfirmed { version: v },
        "crash" => {
            for word in ["in", "init", "(drill)"] {
                w.expect(word)?;
            }
            Line::AppCrashInInit { version: v }
        }
        "crash:" => Line::AppCrash {
            version: v,
            why: w.tail()?,
        },
        "hang" => {
            w.expect("(drill)")?;
            Line::AppHang { version: v }
        }
        _ => return None,
    })
}

fn checkin<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    if w.peek_is("failed") {
        w.expect("failed")?;
        return Some(Line::CheckinFailed {
            why: w.field("reason", CheckinFailure::parse)?,
        });
    }
    let version = w.field("version", version)?;
    let state = w.field("state", device_state)?;
    w.expect("->")?;
    Some(Line::Checkin {
        version,
        state,
        command: w.field("command", command)?,
    })
}

fn update<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    Some(match w.word()? {
        "offered" => Line::UpdateOffered {
            manifest: w.field("manifest", Some)?,
        },
        "manifest" if w.peek_is("unavailable") => {
            w.expect("unavailable")?;
            Line::ManifestUnavailable {
                why: w.field("reason", Why::parse)?,
            }
        }
        "manifest" => Line::UpdateManifest {
            version: w.field("version", version)?,
            size: w.field("size", number)?,
            chunks: w.field("chunks", number)?,
            chunk_size: w.field("chunk_size", number)?,
        },
        "refused" => Line::UpdateRefused {
            version: w.field("version", |s| match s {
                "unknown" => Some(None),
                s => version(s).map(Some),
            })?,
            reason: w.field("reason", Reason::from_name)?,
        },
        "staged" => Line::UpdateStaged {
            version: w.field("version", version)?,
        },
        "failed" => {
            w.expect("reason=retries-exhausted")?;
            Line::UpdateGaveUp
        }
        _ => return None,
    })
}

fn download<'a>(w: &mut Words<'a>) -> Option<Line<'a>> {
    Some(match w.word()? {
        "start" => {
            w.expect("offset=0")?;
            Line::DownloadStart {
                total: w.field("total", number)?,
            }
        }
        "resume" => {
            let offset = w.field("offset", number)?;
            let (chunk, chunks) = w.field("chunk", ratio)?;
            Line::DownloadResume {
                offset,
                chunk,
                chunks,
            }
        }
        "progress" => {
            let (chunk, chunks) = ratio(w.word()?)?;
            Line::DownloadProgress { chunk, chunks }
        }
        "error" => {
            let why = w.field("reason", Why::parse)?;
            let (retry, max) = w.field("retry", ratio)?;
            let in_ms = w.field("in", |s| number(s.strip_suffix("ms")?))?;
            Line::DownloadError {
                why,
                retry,
                max,
                in_ms,
            }
        }
        "complete" => Line::DownloadComplete {
            bytes: w.field("bytes", number)?,
        },
        _ => return None,
    })
}

/// The words of a line after its stage, separated by exactly one space.
struct Words<'a> {
    /// `None` once the last word was taken.
    rest: Option<&'a str>,
}

impl<'a> Words<'a> {
    fn new(rest: &'a str) -> Self {
        Self { rest: Some(rest) }
    }

    /// The next word (never empty).
    fn word(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let word = match s.split_once(' ') {
            Some((word, rest)) => {
                self.rest = Some(rest);
                word
            }
            None => {
                self.rest = None;
                s
            }
        };
        (!word.is_empty()).then_some(word)
    }

    fn peek_is(&self, word: &str) -> bool {
        self.rest.is_some_and(|s| s.split(' ').next() == Some(word))
    }

    fn expect(&mut self, word: &str) -> Option<()> {
        (self.word()? == word).then_some(())
    }

    /// The next word as `key=<value>`, the value read with `read`.
    fn field<T>(&mut self, key: &str, read: impl FnOnce(&'a str) -> Option<T>) -> Option<T> {
        let value = self.word()?.strip_prefix(key)?.strip_prefix('=')?;
        if value.is_empty() {
            return None;
        }
        read(value)
    }

    /// Everything left (free text, never empty).
    fn tail(&mut self) -> Option<&'a str> {
        self.rest.take().filter(|s| !s.is_empty())
    }

    fn end(&self) -> Option<()> {
        self.rest.is_none().then_some(())
    }
}

/// A canonical decimal number: digits only, no sign, no leading zero.
pub(super) fn number<T: core::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// `<k>/<n>`.
fn ratio(s: &str) -> Option<(u32, u32)> {
    let (k, n) = s.split_once('/')?;
    Some((number(k)?, number(n)?))
}

/// Exactly `major.minor.patch`.
fn version(s: &str) -> Option<Version> {
    let mut parts = s.split('.');
    let v = Version::new(
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    parts.next().is_none().then_some(v)
}

fn slot(s: &str) -> Option<u8> {
    (0..2u8).find(|&i| slot_name(i) == s)
}

// The reverse of `as_str` for closed sets defined elsewhere. Beside each list, an exhaustive
// match: a new variant there stops this file compiling, as a reminder to list it.

fn reset(s: &str) -> Option<Reset> {
    const ALL: [Reset; 6] = [
        Reset::PowerOn,
        Reset::Watchdog,
        Reset::Panic,
        Reset::Update,
        Reset::Rollback,
        Reset::Reboot,
    ];
    let _listed = |r: Reset| match r {
        Reset::PowerOn
        | Reset::Watchdog
        | Reset::Panic
        | Reset::Update
        | Reset::Rollback
        | Reset::Reboot => (),
    };
    ALL.into_iter().find(|r| r.as_str() == s)
}

fn device_state(s: &str) -> Option<DeviceState> {
    const ALL: [DeviceState; 4] = [
        DeviceState::Confirmed,
        DeviceState::Trial,
        DeviceState::Updating,
        DeviceState::Reverted,
    ];
    let _listed = |d: DeviceState| match d {
        DeviceState::Confirmed
        | DeviceState::Trial
        | DeviceState::Updating
        | DeviceState::Reverted => (),
    };
    ALL.into_iter().find(|d| d.as_str() == s)
}

fn command(s: &str) -> Option<Command> {
    const ALL: [Command; 3] = [Command::None, Command::Update, Command::Rollback];
    let _listed = |c: Command| match c {
        Command::None | Command::Update | Command::Rollback => (),
    };
    ALL.into_iter().find(|c| c.as_str() == s)
}
