//! The download policy every board follows, without I/O: where a download starts or resumes,
//! how failures are retried (at most [`MAX_RETRIES`], exponential backoff, a server's
//! `Retry-After` honoured up to 2 s), when the full body of a server that ignores `Range` is
//! accepted, and the console lines of each step. A board brings the HTTP requests, the waiting
//! and the chunk writes ([`crate::device::Device::write_chunk`]); the decisions and the lines
//! are the same on the simulated board and on the Pico W.

use crate::Reason;
use crate::console::{Console, Line, Why};
use crate::http::ResponseHead;
use crate::manifest::Manifest;

/// Failed fetches tolerated in one update before it is given up.
pub const MAX_RETRIES: u32 = 8;

/// A download in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    next: u32,
    chunks: u32,
    chunk_size: u32,
    size: u32,
    failures: u32,
    ignored_range: u32,
}

/// What to do after a failed fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Wait this many milliseconds, call [`Download::resumed`], fetch again.
    After(u64),
    /// Retries are exhausted: the update is abandoned (already said on the console).
    GiveUp,
}

impl Download {
    /// Starts at chunk `next` (from `Device::begin_download`) and says so.
    pub fn start(m: &Manifest<'_>, next: u32, out: &mut dyn Console) -> Self {
        let d = Self {
            next,
            chunks: m.chunk_count(),
            chunk_size: m.chunk_size(),
            size: m.size(),
            failures: 0,
            ignored_range: 0,
        };
        if next == 0 {
            out.line(&Line::DownloadStart { total: d.size });
        } else {
            d.resumed(out);
        }
        d
    }

    /// The next chunk to fetch.
    pub fn next(&self) -> u32 {
        self.next
    }

    /// The byte the next request starts at: the image's size once every chunk is in (the
    /// last chunk may be shorter than the others).
    pub fn offset(&self) -> u32 {
        (self.next * self.chunk_size).min(self.size)
    }

    /// Bytes in the whole image.
    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn done(&self) -> bool {
        self.next >= self.chunks
    }

    /// The server ignored `Range` before: take its full body and skip what is already here.
    pub fn accept_full_body(&self) -> bool {
        self.ignored_range > 0
    }

    /// Checks the head of the response to the ranged request for the next chunk: `Ok(n)`, the
    /// body starts `n` bytes before the data wanted (0 normally; the bytes already here when a
    /// server that ignored `Range` before sends the full body again, which is then accepted and
    /// skipped), or why the response cannot be used.
    pub fn check_head(&self, m: &Manifest<'_>, head: &ResponseHead) -> Result<u64, Reason> {
        let start = self.offset();
        let total = m.size();
        match crate::device::check_response(start, total - start, total, head) {
            Ok(()) => Ok(0),
            Err(Reason::IgnoredRange)
                if self.accept_full_body() && head.content_length == Some(u64::from(self.size)) =>
            {
                Ok(u64::from(self.offset()))
            }
            Err(r) => Err(r),
        }
    }

    /// One more chunk is verified and written; says so at every quarter.
    pub fn chunk_written(&mut self, out: &mut dyn Console) {
        self.next += 1;
        let quarter = self.chunks.div_ceil(4).max(1);
        if self.next.is_multiple_of(quarter) || self.next == self.chunks {
            out.line(&Line::DownloadProgress {
                chunk: self.next,
                chunks: self.chunks,
            });
        }
    }

    /// A fetch failed for `reason` (with the response's `Retry-After` seconds and status when
    /// there was a response): says so, and decides.
    pub fn failed(
        &mut self,
        reason: Reason,
        retry_after: Option<u64>,
        status: u16,
        out: &mut dyn Console,
    ) -> Retry {
        if reason == Reason::IgnoredRange {
            self.ignored_range += 1;
        }
        self.failures += 1;
        let why = match reason {
            Reason::Status => Why::status(status),
            r => Why::new(r),
        };
        let failures = self.failures;
        let error = |in_ms| Line::DownloadError {
            why,
            retry: failures,
            max: MAX_RETRIES,
            in_ms,
        };
        if failures > MAX_RETRIES {
            out.line(&error(0));
            out.line(&Line::UpdateGaveUp);
            return Retry::GiveUp;
        }
        let wait = retry_after.map_or(25u64 << failures.min(5), |s| s.min(2) * 1000);
        out.line(&error(wait));
        Retry::After(wait)
    }

    /// After the wait of a retry: says where the download resumes (nothing before chunk 1).
    pub fn resumed(&self, out: &mut dyn Console) {
        if self.next > 0 {
            out.line(&Line::DownloadResume {
                offset: self.offset(),
                chunk: self.next,
                chunks: self.chunks,
            });
        }
    }

    /// Every chunk is in: says so.
    pub fn complete(&self, out: &mut dyn Console) {
        out.line(&Line::DownloadComplete { bytes: self.size });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Lines;
    use crate::sweep::Setup;

    #[test]
    fn start_progress_retries_and_giving_up() {
        let setup = Setup::new(10 * 1024 - 256, 1024);
        let m = Manifest::parse(&setup.manifest).expect("manifest");
        assert_eq!(m.chunk_count(), 10);
        let mut out = Lines(Vec::new());
        let mut d = Download::start(&m, 0, &mut out);
        for _ in 0..5 {
            d.chunk_written(&mut out);
        }
        assert_eq!(d.offset(), 5 * 1024);
        // A 503 with Retry-After: 7 waits 2 s at most; without one the backoff doubles from 50 ms.
        assert_eq!(
            d.failed(Reason::Status, Some(7), 503, &mut out),
            Retry::After(2000)
        );
        d.resumed(&mut out);
        assert_eq!(
            d.failed(Reason::Timeout, None, 0, &mut out),
            Retry::After(100)
        );
        assert!(!d.accept_full_body());
        assert_eq!(
            d.failed(Reason::IgnoredRange, None, 200, &mut out),
            Retry::After(200)
        );
        assert!(d.accept_full_body());
        for _ in 4..=MAX_RETRIES {
            assert!(matches!(
                d.failed(Reason::Timeout, None, 0, &mut out),
                Retry::After(_)
            ));
        }
        assert_eq!(d.failed(Reason::Timeout, None, 0, &mut out), Retry::GiveUp);
        let expected_head = [
            format!("download: start offset=0 total={}", m.size()),
            "download: progress 3/10".to_string(),
            "download: error reason=status-503 retry=1/8 in=2000ms".to_string(),
            "download: resume offset=5120 chunk=5/10".to_string(),
            "download: error reason=timeout retry=2/8 in=100ms".to_string(),
            "download: error reason=ignored-range retry=3/8 in=200ms".to_string(),
        ];
        assert_eq!(out.0[..6], expected_head);
        assert_eq!(
            out.0[out.0.len() - 2..],
            [
                "download: error reason=timeout retry=9/8 in=0ms",
                "update: failed reason=retries-exhausted"
            ]
        );
        // Response heads of a download resumed at chunk 5 (byte 5120 of 10240).
        let mut out = Lines(Vec::new());
        let mut d = Download::start(&m, 5, &mut out);
        let head = |text: &str| crate::http::parse_head(text.as_bytes()).expect("head");
        let partial = head(
            "HTTP/1.1 206 P\r\nContent-Length: 5120\r\nContent-Range: bytes 5120-10239/10240\r\n\r\n",
        );
        let full = |n: u32| head(&format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n"));
        assert_eq!(d.check_head(&m, &partial), Ok(0));
        assert_eq!(d.check_head(&m, &full(10240)), Err(Reason::IgnoredRange));
        d.failed(Reason::IgnoredRange, None, 200, &mut out);
        assert_eq!(
            d.check_head(&m, &full(10240)),
            Ok(5120),
            "full body accepted, the first 5120 bytes skipped"
        );
        assert_eq!(
            d.check_head(&m, &full(9000)),
            Err(Reason::IgnoredRange),
            "but only a full body"
        );
        // A resumed download says where it resumes.
        let mut out = Lines(Vec::new());
        let d = Download::start(&m, 4, &mut out);
        assert_eq!(out.0, ["download: resume offset=4096 chunk=4/10"]);
        assert!(!d.done());
    }
}
