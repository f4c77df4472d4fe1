//! A board console on a serial port (USB-CDC, UART adapter), through `serialport` with default
//! features off (no libudev).
//!
//! When the device vanishes (a USB-CDC board re-enumerates on reset), a read reports
//! [`Error::Disconnected`] once; later reads try to reopen the same path every 100 ms and
//! return `Ok(0)` meanwhile, so the console reader (started before power-on) never stops and
//! the gap is on the timeline.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::board::console::{ConsolePort, Error};

/// How often a vanished port is retried.
const REOPEN_EVERY: Duration = Duration::from_millis(100);

pub struct SerialConsole {
    path: String,
    baud: u32,
    port: Option<Box<dyn serialport::SerialPort>>,
    last_try: Option<Instant>,
}

fn open(path: &str, baud: u32) -> Result<Box<dyn serialport::SerialPort>, std::io::Error> {
    serialport::new(path, baud)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(std::io::Error::from)
}

impl SerialConsole {
    /// A new pseudo-terminal whose slave side this backend reads, exactly as a real board's
    /// USB-UART would be read; the master is the board's side (a simulated board's or QEMU's
    /// stdout).
    pub fn pty() -> Result<(std::os::fd::OwnedFd, Self), String> {
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| format!("cannot create a pseudo-terminal: {e}"))?;
        let path = nix::unistd::ttyname(&pty.slave)
            .map_err(|e| format!("pseudo-terminal has no name: {e}"))?;
        let console = Self::open(&path.to_string_lossy(), 115_200).map_err(|e| e.to_string())?;
        // The rig's own handle on the slave is no longer needed: the serial backend has it open.
        drop(pty.slave);
        Ok((pty.master, console))
    }

    /// Opens `path` at `baud`.
    pub fn open(path: &str, baud: u32) -> Result<Self, Error> {
        let port = open(path, baud).map_err(|source| Error::Open {
            port: path.to_string(),
            hint: if source.kind() == std::io::ErrorKind::PermissionDenied {
                "add the user to the `dialout` group and log in again"
            } else {
                "check the port path; prefer the stable /dev/serial/by-id/... name"
            },
            source,
        })?;
        Ok(Self {
            path: path.to_string(),
            baud,
            port: Some(port),
            last_try: None,
        })
    }

    fn vanished(e: &std::io::Error) -> bool {
        use std::io::ErrorKind::*;
        matches!(
            e.kind(),
            BrokenPipe | NotFound | UnexpectedEof | NotConnected
        ) || matches!(
            e.raw_os_error(),
            Some(libc::EIO | libc::ENXIO | libc::ENODEV | libc::EBADF)
        )
    }
}

impl ConsolePort for SerialConsole {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error> {
        let Some(port) = &mut self.port else {
            if self.last_try.is_none_or(|t| t.elapsed() >= REOPEN_EVERY) {
                self.last_try = Some(Instant::now());
                if let Ok(p) = open(&self.path, self.baud) {
                    tracing::info!(port = %self.path, "serial console reopened");
                    self.port = Some(p);
                    return Ok(0);
                }
            }
            std::thread::sleep(timeout.min(REOPEN_EVERY));
            return Ok(0);
        };
        let _ = port.set_timeout(timeout.max(Duration::from_millis(1)));
        match port.read(buf) {
            // A pty whose other side closed reads 0 forever: that is a disconnect too.
            Ok(0) => {
                self.port = None;
                Err(Error::Disconnected {
                    port: self.path.clone(),
                })
            }
            Ok(n) => Ok(n),
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(0)
            }
            Err(e) if Self::vanished(&e) => {
                self.port = None;
                self.last_try = Some(Instant::now());
                Err(Error::Disconnected {
                    port: self.path.clone(),
                })
            }
            Err(source) => Err(Error::Read {
                port: self.path.clone(),
                source,
            }),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        use std::io::Write;
        let port = self.port.as_mut().ok_or_else(|| Error::Disconnected {
            port: self.path.clone(),
        })?;
        port.write_all(bytes).map_err(|source| Error::Read {
            port: self.path.clone(),
            source,
        })
    }

    fn name(&self) -> &str {
        &self.path
    }
}
