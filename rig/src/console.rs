//! Console lines: splitting raw bytes from any [`ConsolePort`] into lines, stamping them, and
//! putting them on the timeline from a reader thread that starts before power-on.
//!
//! Backends do raw byte I/O only; everything about lines lives here, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::board::console::{ConsolePort, Error};
use crate::timeline::{BoardLane, EventKind};

/// Longest line kept; longer lines are cut with a marker.
pub const MAX_LINE: usize = 4096;

/// Turns a byte stream into lines: `\n`, `\r\n` and lone `\r` end a line; partial lines wait
/// for the rest; invalid UTF-8 is replaced; control bytes are shown escaped.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    last_was_cr: bool,
}

impl LineSplitter {
    /// Feeds bytes; returns the lines they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.last_was_cr => {}
                b'\n' | b'\r' => lines.push(self.take()),
                _ if self.partial.len() < MAX_LINE => self.partial.push(b),
                _ => {}
            }
            self.last_was_cr = b == b'\r';
        }
        lines
    }

    /// The unfinished last line, if any (at end of stream).
    pub fn flush(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let truncated = self.partial.len() >= MAX_LINE;
        let text = String::from_utf8_lossy(&self.partial);
        let mut line: String = text
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect();
        if truncated {
            line.push_str(" …[line cut]");
        }
        self.partial.clear();
        line
    }
}

/// A running console reader. Stop it with [`ConsoleReader::stop`] (also on drop).
pub struct ConsoleReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts reading `port` on its own thread, pushing every line to `lane`.
pub fn spawn_reader(mut port: Box<dyn ConsolePort>, lane: BoardLane) -> ConsoleReader {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 8192];
        let mut disconnected = false;
        let lines = |l: Vec<String>| l.into_iter().map(|line| EventKind::Console { line });
        while !flag.load(Ordering::Acquire) {
            match port.read(&mut buf, Duration::from_millis(20)) {
                Ok(0) => {}
                Ok(n) => {
                    disconnected = false;
                    lane.push_all(lines(splitter.feed(&buf[..n])));
                }
                Err(Error::Disconnected { port: name }) => {
                    if !disconnected {
                        lane.push(EventKind::Rig {
                            detail: format!("console {name} disconnected; reopening"),
                        });
                        disconnected = true;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    lane.push(EventKind::Rig {
                        detail: format!("console error: {e}"),
                    });
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // Drain what is already there, then the last partial line.
        while let Ok(n) = port.read(&mut buf, Duration::from_millis(5)) {
            if n == 0 {
                break;
            }
            lane.push_all(lines(splitter.feed(&buf[..n])));
        }
        if let Some(line) = splitter.flush() {
            lane.push(EventKind::Console { line });
        }
    });
    ConsoleReader {
        stop,
        thread: Some(thread),
    }
}

impl ConsoleReader {
    /// Stops the thread and waits for it (flushing a final partial line).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ConsoleReader {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::timeline::Timeline;

    #[test]
    fn splits_partial_lines_line_endings_and_noise() {
        let mut s = LineSplitter::default();
        assert!(s.feed(b"boot: sl").is_empty());
        assert_eq!(
            s.feed(b"ot=a\r\napp: v1\nx\ry"),
            vec!["boot: slot=a", "app: v1", "x"]
        );
        assert_eq!(s.feed(b"\n"), vec!["y"]);
        let noisy = s.feed(b"\x00\xff\xfebin\x07\n");
        assert_eq!(noisy.len(), 1);
        assert!(noisy[0].contains("bin"));
        assert!(!noisy[0].contains('\0'));
        s.feed(&vec![b'a'; MAX_LINE + 100]);
        let long = s.feed(b"\n");
        assert!(long[0].ends_with("[line cut]"));
        s.feed(b"tail");
        assert_eq!(s.flush().as_deref(), Some("tail"));
    }

    struct Script(VecDeque<Result<Vec<u8>, ()>>);

    impl ConsolePort for Script {
        fn read(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<usize, Error> {
            match self.0.pop_front() {
                Some(Ok(b)) => {
                    buf[..b.len()].copy_from_slice(&b);
                    Ok(b.len())
                }
                Some(Err(())) => Err(Error::Disconnected {
                    port: "script".into(),
                }),
                None => {
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(0)
                }
            }
        }
        fn name(&self) -> &str {
            "script"
        }
    }

    #[tokio::test]
    async fn reader_loses_nothing_across_chunks_and_disconnects() {
        let tl = Timeline::new();
        let start = tl.cursor();
        let script = Script(VecDeque::from([
            Ok(b"boot: otarig".to_vec()),
            Ok(b"-boot\napp: v1.0.0 sta".to_vec()),
            Err(()),
            Ok(b"rting\napp: v1.0.0 running\npartial".to_vec()),
        ]));
        let reader = spawn_reader(
            Box::new(script),
            crate::timeline::BoardLane::fixed(Arc::clone(&tl), Arc::from("b")),
        );
        let re = regex::Regex::new("running").expect("regex");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let hit = tl
            .wait_for(
                start,
                deadline,
                |e| matches!(&e.kind, EventKind::Console { line } if re.is_match(line)),
            )
            .await;
        assert!(hit.is_some());
        reader.stop();
        let lines: Vec<String> = tl
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Console { line } => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                "boot: otarig-boot",
                "app: v1.0.0 starting",
                "app: v1.0.0 running",
                "partial"
            ]
        );
        assert!(tl.snapshot().iter().any(
            |e| matches!(&e.kind, EventKind::Rig { detail } if detail.contains("disconnected"))
        ));
    }
}
