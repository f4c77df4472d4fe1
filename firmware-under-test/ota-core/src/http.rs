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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(head: &[u8]) -> ResponseHead {
        match parse_head(head) {
            Ok(h) => h,
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(head)),
        }
    }

    #[test]
    fn full_body() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: fake-server\r\nContent-Type: application/octet-stream\r\nContent-Length: 10240\r\n\r\nBODY";
        let end = head_end(raw).expect("complete head");
        assert_eq!(raw.get(end..), Some(&b"BODY"[..]));
        assert_eq!(
            ok(&raw[..end]),
            ResponseHead {
                status: 200,
                content_length: Some(10240),
                ..ResponseHead::default()
            }
        );
        // The body after the blank line is ignored, and so is a missing blank line.
        assert_eq!(ok(raw), ok(&raw[..end]));
        assert_eq!(ok(&raw[..end - 2]), ok(&raw[..end]));
        assert_eq!(ok(&raw[..end - 4]), ok(&raw[..end]));
    }

    #[test]
    fn partial_content() {
        let h = ok(b"HTTP/1.1 206 Partial Content\r\nAccept-Ranges: bytes\r\nContent-Length: 5120\r\nContent-Range: bytes 5120-10239/10240\r\n\r\n");
        assert_eq!(h.status, 206);
        assert_eq!(h.content_length, Some(5120));
        assert_eq!(
            h.content_range,
            Some(ContentRange::Bytes {
                first: 5120,
                last: 10239,
                total: 10240
            })
        );
        assert!(!h.close);
    }

    #[test]
    fn content_ranges_of_other_forms_are_unparsed() {
        let range = |v: &str| {
            ok(format!("HTTP/1.1 206 OK\r\nContent-Range: {v}\r\n\r\n").as_bytes()).content_range
        };
        let bytes = |first, last, total| Some(ContentRange::Bytes { first, last, total });
        assert_eq!(range("bytes 0-9/10"), bytes(0, 9, 10));
        assert_eq!(range("BYTES  0-0/1"), bytes(0, 0, 1));
        assert_eq!(range("bytes\t7-7/4294967295"), bytes(7, 7, u32::MAX));
        for bad in [
            "bytes 0-9/*",
            "bytes */100",
            "bytes 0-9",
            "bytes0-9/10",
            "bytes=0-9/10",
            "items 0-9/10",
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes 0-9/4294967296",
            "bytes 0-4294967296/4294967297",
            "bytes -0-9/10",
            "bytes +0-9/10",
            "bytes 0 - 9/10",
            "bytes 0-9/10, bytes 0-9/10",
            "garbage",
            "",
        ] {
            assert_eq!(range(bad), Some(ContentRange::Unparsed), "{bad:?}");
        }
        // Repeated: the same range is kept, different ones are not trusted.
        let h = ok(
            b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-9/10\r\ncontent-range: bytes 0-9/10\r\n",
        );
        assert_eq!(h.content_range, bytes(0, 9, 10));
        let h = ok(
            b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-9/10\r\nContent-Range: bytes 0-9/11\r\n",
        );
        assert_eq!(h.content_range, Some(ContentRange::Unparsed));
    }

    #[test]
    fn retry_after() {
        let h =
            ok(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            h,
            ResponseHead {
                status: 503,
                content_length: Some(0),
                retry_after_s: Some(7),
                ..ResponseHead::default()
            }
        );
        let retry = |v: &str| {
            ok(format!("HTTP/1.1 503 x\r\nRetry-After:{v}\r\n\r\n").as_bytes()).retry_after_s
        };
        assert_eq!(retry(" Fri, 31 Dec 1999 23:59:59 GMT"), None);
        assert_eq!(retry(" soon"), None);
        assert_eq!(retry(" -1"), None);
        assert_eq!(retry(" 1.5"), None);
        assert_eq!(retry(""), None);
        assert_eq!(retry("0"), Some(0));
        assert_eq!(retry(" \t120\t "), Some(120));
        assert_eq!(retry(" 99999999999999999999999"), Some(u64::MAX));
        // The last one counts.
        let h = ok(b"HTTP/1.1 429 x\r\nRetry-After: 1\r\nRetry-After: 2\r\n");
        assert_eq!(h.retry_after_s, Some(2));
    }

    #[test]
    fn names_are_case_insensitive_and_values_trimmed() {
        let h = ok(b"HTTP/1.1 206 OK\r\ncontent-length:\t 10 \t\r\nCONTENT-RANGE:bytes 0-9/20\r\nrEtRy-AfTeR:   3\r\nconnection :  Close\r\n\r\n");
        assert_eq!(
            h,
            ResponseHead {
                status: 206,
                content_length: Some(10),
                content_range: Some(ContentRange::Bytes {
                    first: 0,
                    last: 9,
                    total: 20
                }),
                retry_after_s: Some(3),
                close: true,
            }
        );
    }

    #[test]
    fn folded_lines_count_as_spaces() {
        let h =
            ok(b"HTTP/1.1 200 OK\r\nContent-Length:\r\n  42\r\nX-Long: first\r\n\tsecond\r\n\r\n");
        assert_eq!(h.content_length, Some(42));
        let h = ok(b"HTTP/1.1 206 OK\r\nContent-Range: bytes\r\n 0-9/10\r\nConnection: keep-alive,\r\n\tclose\r\n");
        assert_eq!(
            h.content_range,
            Some(ContentRange::Bytes {
                first: 0,
                last: 9,
                total: 10
            })
        );
        assert!(h.close);
        // A fold inside the number is a space inside it.
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n 2\r\n"),
            Err(HeadError::BadContentLength)
        );
        // Nothing to continue.
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\n Content-Length: 42\r\n\r\n"),
            Err(HeadError::Malformed)
        );
    }

    #[test]
    fn connection() {
        let close = |head: &[u8]| ok(head).close;
        assert!(!close(b"HTTP/1.1 200 OK\r\n\r\n"));
        assert!(!close(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(close(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\n\r\n"
        ));
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n"
        ));
        assert!(!close(b"HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n"));
        assert!(!close(b"HTTP/1.1 200 OK\r\nX-Connection: close\r\n\r\n"));
        // HTTP/1.0 closes unless the server keeps the connection.
        assert!(close(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"));
        assert!(!close(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(close(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        assert_eq!(ok(b"HTTP/1.0 404 Not Found\r\n\r\n").status, 404);
    }

    #[test]
    fn status_lines() {
        for (line, status) in [
            ("HTTP/1.1 200 OK", 200),
            ("HTTP/1.1 100 Continue", 100),
            ("HTTP/1.1 599 x", 599),
            ("HTTP/1.1 204", 204),
            ("HTTP/1.1 204 ", 204),
            ("HTTP/1.1 500 Internal Server Error", 500),
            ("HTTP/1.1  302\tFound", 302),
            ("HTTP/1.9 200 OK", 200),
        ] {
            assert_eq!(
                parse_head(line.as_bytes()).map(|h| h.status),
                Ok(status),
                "{line:?}"
            );
        }
        for (line, err) in [
            ("", HeadError::NotHttp),
            ("garbage", HeadError::NotHttp),
            ("\r\nHTTP/1.1 200 OK", HeadError::NotHttp),
            ("http/1.1 200 OK", HeadError::NotHttp),
            ("HTTP/2 200 OK", HeadError::NotHttp),
            ("HTTP/1.x 200 OK", HeadError::NotHttp),
            ("HTTP/1.10 200 OK", HeadError::NotHttp),
            ("HTTP/1.", HeadError::NotHttp),
            ("ICY 200 OK", HeadError::NotHttp),
            ("HTTP/1.1", HeadError::BadStatus),
            ("HTTP/1.1 ", HeadError::BadStatus),
            ("HTTP/1.1 20 OK", HeadError::BadStatus),
            ("HTTP/1.1 2000 OK", HeadError::BadStatus),
            ("HTTP/1.1 200OK", HeadError::BadStatus),
            ("HTTP/1.1 099 x", HeadError::BadStatus),
            ("HTTP/1.1 600 x", HeadError::BadStatus),
            ("HTTP/1.1 +20 x", HeadError::BadStatus),
            ("HTTP/1.1 abc OK", HeadError::BadStatus),
            ("HTTP/1.1 200 O\rK", HeadError::Malformed),
            ("HTTP/1.1 200 O\nK", HeadError::Malformed),
        ] {
            assert_eq!(parse_head(line.as_bytes()), Err(err), "{line:?}");
        }
        // A reason phrase is not read, UTF-8 or not.
        assert_eq!(ok(b"HTTP/1.1 200 \xFF\xFE\x80").status, 200);
    }

    #[test]
    fn content_length() {
        let cl = |v: &str| {
            parse_head(format!("HTTP/1.1 200 OK\r\nContent-Length:{v}\r\n\r\n").as_bytes())
                .map(|h| h.content_length)
        };
        assert_eq!(cl(" 0"), Ok(Some(0)));
        assert_eq!(cl("007"), Ok(Some(7)));
        assert_eq!(cl(" 18446744073709551615 "), Ok(Some(u64::MAX)));
        for bad in [
            "",
            " ",
            " 18446744073709551616",
            " +5",
            " -5",
            " 5 0",
            " 5,5",
            " 5, 5",
            " 0x10",
            " 1e3",
            " five",
            " \u{b2}",
        ] {
            assert_eq!(cl(bad), Err(HeadError::BadContentLength), "{bad:?}");
        }
        // Repeats: equal values are one length, different ones are an error.
        let h = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n");
        assert_eq!(h.content_length, Some(5));
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            Err(HeadError::BadContentLength)
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: x\r\n\r\n"),
            Err(HeadError::BadContentLength)
        );
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\n\r\n").content_length, None);
    }

    #[test]
    fn malformed_lines() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad\xFFName: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
        ] {
            assert_eq!(
                parse_head(head),
                Err(HeadError::Malformed),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn values_not_needed_may_be_any_bytes() {
        let h = ok(b"HTTP/1.1 200 OK\r\nX-Junk: \xFF\xFE\x80 \x01\x7F\r\nETag: \"\xC3\x28\"\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.content_length, Some(3));
    }

    #[test]
    fn too_long() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
        let fill = MAX_HEAD - head.len() - 4;
        head.resize(head.len() + fill, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), MAX_HEAD);
        assert_eq!(parse_head(&head).map(|h| h.status), Ok(200));
        // The body after an 8 KiB head does not count.
        head.extend_from_slice(&[0xAB; 100]);
        assert_eq!(parse_head(&head).map(|h| h.status), Ok(200));
        // One byte more is too long, with or without the blank line.
        let base = &head[..MAX_HEAD - 4];
        let with = |tail: &[u8]| parse_head(&[base, tail].concat()).map(|h| h.status);
        assert_eq!(
            with(b"aaaa"),
            Ok(200),
            "exactly MAX_HEAD without the blank line"
        );
        assert_eq!(with(b"aaaaa"), Err(HeadError::TooLong));
        assert_eq!(with(b"a\r\n\r\n"), Err(HeadError::TooLong));
        assert_eq!(parse_head(&[b'a'; 100_000]), Err(HeadError::TooLong));
        assert_eq!(HeadError::TooLong.reason(), Reason::BadContentLength);
    }

    #[test]
    fn reasons() {
        assert_eq!(HeadError::NotHttp.reason(), Reason::Status);
        assert_eq!(HeadError::BadStatus.reason(), Reason::Status);
        assert_eq!(HeadError::Malformed.reason(), Reason::Status);
        assert_eq!(
            HeadError::BadContentLength.reason(),
            Reason::BadContentLength
        );
        assert_eq!(HeadError::TooLong.reason(), Reason::BadContentLength);
    }

    #[test]
    fn head_end_on_split_buffers() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let end = raw.len() - 2;
        assert_eq!(head_end(raw), Some(end));
        // As the bytes arrive: no end until the whole blank line is there.
        for n in 0..raw.len() {
            let want = (n >= end).then_some(end);
            assert_eq!(head_end(&raw[..n]), want, "first {n} bytes");
        }
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\r\n\r"), None);
        assert_eq!(head_end(b"\r\n\r\n"), Some(4));
        assert_eq!(head_end(b"a\n\n\r\n\n\r\n\r\nb"), Some(10));
        // The first blank line ends the head, even if the body has another.
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\n\r\n\r\n"), Some(19));
    }

    /// A whitespace run for odd-but-valid heads.
    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(""),
            Just(" "),
            Just("\t"),
            Just("  \t "),
            Just("\r\n "),
            Just("\r\n\t")
        ]
    }

    fn case(name: &str, upper: &[bool]) -> String {
        name.chars()
            .zip(upper.iter().cycle())
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = head_end(&bytes);
            let _ = parse_head(&bytes);
            let mut http = b"HTTP/1.1 200 OK\r\n".to_vec();
            http.extend_from_slice(&bytes);
            let _ = parse_head(&http);
        }

        #[test]
        fn header_lines_of_arbitrary_bytes_never_panic(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![Just(b':'), Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(b'-'), Just(b'/'), any::<u8>()],
                    0..40,
                ),
                0..8,
            )
        ) {
            let mut head = b"HTTP/1.0 206 Partial Content".to_vec();
            for line in &lines {
                head.extend_from_slice(b"\r\n");
                head.extend_from_slice(line);
            }
            let _ = parse_head(&head);
        }

        #[test]
        fn valid_heads_round_trip(
            minor in 0u8..=1,
            status in 100u16..=599,
            content_length in proptest::option::of(any::<u64>()),
            repeat_length in any::<bool>(),
            range in proptest::option::of((any::<u32>(), any::<u32>(), any::<u32>())),
            retry_after in proptest::option::of(any::<u64>()),
            connection in 0u8..3,
            extra in proptest::collection::vec(
                proptest::collection::vec(any::<u8>().prop_filter("no CR/LF/NUL", |&b| !matches!(b, b'\r' | b'\n' | 0)), 0..20),
                0..4,
            ),
            upper in proptest::collection::vec(any::<bool>(), 1..8),
            pad in proptest::collection::vec(ws(), 8),
            sep in ws().prop_filter("a separator", |s| !s.is_empty()),
            blank in any::<bool>(),
        ) {
            let range = range.and_then(|(a, b, c)| {
                let mut v = [a, b, c];
                v.sort_unstable();
                let [first, last, total] = v;
                (last < total).then_some((first, last, total))
            });
            let mut head = format!("HTTP/1.{minor} {status} Whatever It Says\r\n").into_bytes();
            let mut field = |name: &str, value: &str, pad: &[&str]| {
                head.extend_from_slice(format!("{}:{}{value}{}\r\n", case(name, &upper), pad[0], pad[1]).as_bytes());
            };
            if let Some(n) = content_length {
                field("Content-Length", &n.to_string(), &pad[0..2]);
                if repeat_length {
                    field("content-length", &n.to_string(), &pad[2..4]);
                }
            }
            if let Some((first, last, total)) = range {
                field("Content-Range", &format!("bytes{sep}{first}-{last}/{total}"), &pad[2..4]);
            }
            if let Some(s) = retry_after {
                field("Retry-After", &s.to_string(), &pad[4..6]);
            }
            match connection {
                1 => field("Connection", "close", &pad[6..8]),
                2 => field("Connection", "keep-alive", &pad[6..8]),
                _ => {}
            }
            for value in &extra {
                head.extend_from_slice(b"X-Extra:");
                head.extend_from_slice(value);
                head.extend_from_slice(b"\r\n");
            }
            if blank {
                head.extend_from_slice(b"\r\n");
            }
            let want = ResponseHead {
                status,
                content_length,
                content_range: range.map(|(first, last, total)| ContentRange::Bytes { first, last, total }),
                retry_after_s: retry_after,
                close: connection == 1 || (minor == 0 && connection != 2),
            };
            prop_assert_eq!(parse_head(&head), Ok(want));
            if blank {
                prop_assert_eq!(head_end(&head), Some(head.len()));
            }
        }
    }
}
