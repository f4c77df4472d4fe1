//! HTTP/1.1 response heads, read without allocation and without I/O.
//!
//! Every board's HTTP client uses this module: the simulated board (`sim-board`, over a
//! `TcpStream`), the Raspberry Pi Pico W app (over an embassy-net socket) and the fleet
//! simulator. A client reads into its own buffer until [`head_end`] finds the blank line (or
//! gives up once [`MAX_HEAD`] bytes have arrived without one: [`HeadError::TooLong`]), calls
//! [`parse_head`] on `&buf[..end]`, and the body starts at `end`. The head is reported as the
//! server sent it; whether a download may use it is decided by
//! [`crate::download::Download::check_head`] and [`crate::device::check_response`].
//!
//! What is read (RFC 9112 §4 and §5, RFC 9110):
//!
//! | Part | Accepted | Otherwise |
//! |---|---|---|
//! | status line | `HTTP/1.x NNN [reason]`, `NNN` in `100..=599` (words split on SP or HTAB) | [`HeadError::NotHttp`], [`HeadError::BadStatus`] |
//! | lines | end in CRLF; no bare CR, LF or NUL; a header line has a colon | [`HeadError::Malformed`] |
//! | header names | tokens, case-insensitive; SP/HTAB before the colon is tolerated | [`HeadError::Malformed`] |
//! | header values | trimmed of SP/HTAB; an obsolete line fold (CRLF then SP/HTAB) counts as SP | bytes other headers hold are never looked at, UTF-8 or not |
//! | `Content-Length` | digits only, fits `u64`; repeats only with the same value (RFC 9110 §8.6) | [`HeadError::BadContentLength`] |
//! | `Content-Range` | `bytes first-last/total`, `first <= last < total`, all `u32` | [`ContentRange::Unparsed`] (also when repeated with different values) |
//! | `Retry-After` | delta-seconds (digits; saturates at `u64::MAX`); the last one counts | `None` (an HTTP-date, garbage) |
//! | `Connection` | a list of tokens: `close`; on HTTP/1.0 also `keep-alive` | HTTP/1.1 keeps the connection, HTTP/1.0 closes it |
//!
//! Nothing here panics, whatever the bytes.

use core::fmt;

use crate::Reason;

/// Longest response head a board accepts (status line + headers + blank line).
pub const MAX_HEAD: usize = 8 * 1024;

/// A `Content-Range` header's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/total` (inclusive last); all three fit u32 (images are < 4 GiB).
    Bytes { first: u32, last: u32, total: u32 },
    /// Present but not of that form (e.g. `bytes 0-9/*`, `bytes */100`, garbage, numbers
    /// overflowing u32, last < first, total <= last), or repeated with different values.
    Unparsed,
}

/// What a board needs from a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseHead {
    pub status: u16,
    /// None when absent; a malformed or duplicated-but-different value is an error
    /// ([`HeadError::BadContentLength`]).
    pub content_length: Option<u64>,
    pub content_range: Option<ContentRange>,
    /// Retry-After in seconds (delta-seconds form only; an HTTP-date or garbage is None).
    pub retry_after_s: Option<u64>,
    /// The server said `Connection: close` (or the response is HTTP/1.0 without keep-alive).
    pub close: bool,
}

/// Why a response head was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The first line is not `HTTP/1.x ...`.
    NotHttp,
    /// The status code is not three digits in `100..=599`.
    BadStatus,
    /// Content-Length is not digits only, overflows u64, or is repeated with another value.
    BadContentLength,
    /// The head is longer than [`MAX_HEAD`].
    TooLong,
    /// A header line without a colon or with a bad name, a bare CR/LF/NUL, or a continuation
    /// line right after the status line.
    Malformed,
}

impl HeadError {
    /// The failure cause a board reports (console, check-in) for this error.
    pub fn reason(self) -> Reason {
        match self {
            Self::NotHttp | Self::BadStatus | Self::Malformed => Reason::Status,
            Self::BadContentLength | Self::TooLong => Reason::BadContentLength,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHttp => "response does not start with HTTP/1.x",
            Self::BadStatus => "response status is not a code in 100..=599",
            Self::BadContentLength => "bad or conflicting Content-Length",
            Self::TooLong => "response head longer than 8 KiB",
            Self::Malformed => "malformed response header line",
        })
    }
}

/// Where the head ends in `buf`: the index just past the first "\r\n\r\n", if it is there.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a head (the bytes up to and including the blank line, or without it). Bytes after
/// the first blank line (the start of the body) are ignored and do not count towards
/// [`MAX_HEAD`].
pub fn parse_head(head: &[u8]) -> Result<ResponseHead, HeadError> {
    let end = match head_end(head.get(..MAX_HEAD).unwrap_or(head)) {
        Some(end) => end,
        None if head.len() <= MAX_HEAD => head.len(),
        None => return Err(HeadError::TooLong),
    };
    let head = head.get(..end).unwrap_or(head);
    let mut lines = Lines { buf: head, pos: 0 };

    let status_line = lines
        .next()
        .and_then(|(start, end)| head.get(start..end))
        .unwrap_or_default();
    let (http10, status) = status_line_parts(status_line)?;
    clean(status_line)?;

    let mut fields = Fields {
        out: ResponseHead {
            status,
            ..ResponseHead::default()
        },
        keep_alive: false,
    };
    // The field being read: where its line starts, where its colon is, where its last
    // (continuation) line ends.
    let mut pending: Option<(usize, usize, usize)> = None;
    for (start, end) in lines {
        let line = head.get(start..end).unwrap_or_default();
        if line.is_empty() {
            break;
        }
        clean(line)?;
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // obs-fold: the line continues the previous field's value.
            let field = pending.as_mut().ok_or(HeadError::Malformed)?;
            field.2 = end;
            continue;
        }
        if let Some(field) = pending.take() {
            fields.add(head, field)?;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HeadError::Malformed)?;
        pending = Some((start, start + colon, end));
    }
    if let Some(field) = pending {
        fields.add(head, field)?;
    }

    let mut out = fields.out;
    if http10 && !fields.keep_alive {
        out.close = true;
    }
    Ok(out)
}

/// The lines of a head as `(start, end)` offsets, without their CRLF.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(len) => {
                self.pos = start + len + 2;
                Some((start, start + len))
            }
            None => {
                self.pos = self.buf.len();
                Some((start, self.buf.len()))
            }
        }
    }
}

/// The header fields read so far.
struct Fields {
    out: ResponseHead,
    /// A `Connection: keep-alive` was seen (it keeps an HTTP/1.0 connection open).
    keep_alive: bool,
}

impl Fields {
    /// Reads the field `head[start..end]` whose name ends at `colon`.
    fn add(
        &mut self,
        head: &[u8],
        (start, colon, end): (usize, usize, usize),
    ) -> Result<(), HeadError> {
        let name = head.get(start..colon).map(trim).unwrap_or_default();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HeadError::Malformed);
        }
        let value = head.get(colon + 1..end).map(trim).unwrap_or_default();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = digits(value).ok_or(HeadError::BadContentLength)?;
            if self.out.content_length.is_some_and(|seen| seen != n) {
                return Err(HeadError::BadContentLength);
            }
            self.out.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"content-range") {
            let range = content_range(value).unwrap_or(ContentRange::Unparsed);
            self.out.content_range = match self.out.content_range {
                Some(seen) if seen != range => Some(ContentRange::Unparsed),
                _ => Some(range),
            };
        } else if name.eq_ignore_ascii_case(b"retry-after") {
            self.out.retry_after_s = delta_seconds(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                if option.eq_ignore_ascii_case(b"close") {
                    self.out.close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        }
        Ok(())
    }
}

/// `(is HTTP/1.0, status)` of a status line.
fn status_line_parts(line: &[u8]) -> Result<(bool, u16), HeadError> {
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(HeadError::NotHttp)?;
    let (&minor, rest) = rest.split_first().ok_or(HeadError::NotHttp)?;
    if !minor.is_ascii_digit() {
        return Err(HeadError::NotHttp);
    }
    match rest.first() {
        None => return Err(HeadError::BadStatus),
        Some(&b) if is_ws(b) => {}
        Some(_) => return Err(HeadError::NotHttp),
    }
    let rest = trim_start(rest);
    let (code, after) = rest.split_at_checked(3).ok_or(HeadError::BadStatus)?;
    if after.first().is_some_and(|&b| !is_ws(b)) {
        return Err(HeadError::BadStatus);
    }
    let status = digits(code)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..=599).contains(n))
        .ok_or(HeadError::BadStatus)?;
    Ok((minor == b'0', status))
}

/// `Content-Range: bytes first-last/total`, if the value is of that form.
fn content_range(value: &[u8]) -> Option<ContentRange> {
    let (unit, rest) = value.split_at_checked(5)?;
    if !unit.eq_ignore_ascii_case(b"bytes") || !rest.first().is_some_and(|&b| is_ws(b)) {
        return None;
    }
    let (first, rest) = split_once(trim_start(rest), b'-')?;
    let (last, total) = split_once(rest, b'/')?;
    let num = |v: &[u8]| digits(v).and_then(|n| u32::try_from(n).ok());
    let (first, last, total) = (num(first)?, num(last)?, num(total)?);
    (first <= last && last < total).then_some(ContentRange::Bytes { first, last, total })
}

/// `Retry-After` in delta-seconds form (a very large number saturates).
fn delta_seconds(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// A non-empty run of ASCII digits that fits u64.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

fn split_once(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == sep)?;
    Some((bytes.get(..at)?, bytes.get(at + 1..)?))
}

/// Rejects a bare CR, LF or NUL in a line (RFC 9110 §5.5).
fn clean(line: &[u8]) -> Result<(), HeadError> {
    if line.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(HeadError::Malformed)
    } else {
        Ok(())
    }
}

/// Whitespace in a value: SP and HTAB, and the CRLF of an obs-fold (which counts as SP;
/// [`clean`] has rejected every other CR or LF).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_start(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ws(*first) {
            break;
        }
        bytes = rest;
    }
    bytes
}

fn trim(bytes: &[u8]) -> &[u8] {
    let mut bytes = trim_start(bytes);
    while let [rest @ .., last] = bytes {
        if !is_ws(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// A byte of a header name (RFC 9110 §5.6.2 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
