//! The board-independent half of the app's HTTP/1.1 client: parsing a response head, and the
//! manifest URL of a release variant. The head is reported as the server sent it; whether to
//! trust it is `ota_core::device::check_response`'s decision.

use ota_core::Reason;

/// Longest Content-Range value kept; a longer one is malformed anyway.
pub const MAX_CONTENT_RANGE: usize = 64;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<u64>,
    /// `Some("")` when the header was present but too long to be valid.
    pub content_range: Option<heapless::String<MAX_CONTENT_RANGE>>,
    /// Seconds.
    pub retry_after: Option<u64>,
}

/// Where the head ends in `buf`: the index of the blank line's `\r\n\r\n`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses a response head (status line and headers, without the final blank line), as the
/// simulated board's client does: the status code is the second word of the first line;
/// header names are case-insensitive; the last of a repeated header wins; an unparsable
/// Content-Length or Retry-After counts as absent.
pub fn parse_head(head: &[u8]) -> Result<Head, Reason> {
    let text = core::str::from_utf8(head).map_err(|_| Reason::BadContentLength)?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(Reason::Status)?;
    let mut out = Head {
        status,
        content_length: None,
        content_range: None,
        retry_after: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            out.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("content-range") {
            let mut cr = heapless::String::new();
            if cr.push_str(value).is_err() {
                cr.clear();
            }
            out.content_range = Some(cr);
        } else if name.eq_ignore_ascii_case("retry-after") {
            out.retry_after = value.parse().ok();
        }
    }
    Ok(out)
}

/// Longest variant manifest URL.
pub const MAX_VARIANT_URL: usize = ota_core::checkin::MAX_URL_LEN + 2;

/// The manifest of the variant of a release linked for `slot`: the offered manifest URL with
/// `-a` or `-b` appended (`/v1/manifest/v2` → `/v1/manifest/v2-b`). An execute-in-place board
/// cannot run an image linked for the other slot, so every release is published twice, once
/// per slot (README.md), and the board asks for the variant of the slot it will write.
pub fn variant_url(offered: &str, slot: u8) -> heapless::String<MAX_VARIANT_URL> {
    let mut url = heapless::String::new();
    for c in offered.chars().take(ota_core::checkin::MAX_URL_LEN) {
        let _ = url.push(c);
    }
    let _ = url.push_str(if slot & 1 == 0 { "-a" } else { "-b" });
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::device::check_response;

    #[test]
    fn heads_parse_like_the_sim_boards() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nAccept-Ranges: bytes\r\ncontent-LENGTH: 50\r\nContent-Range: bytes 50-99/100\r\n\r\nBODY";
        let end = head_end(raw).expect("complete head");
        assert_eq!(&raw[end + 4..], b"BODY");
        let h = parse_head(&raw[..end]).expect("valid");
        assert_eq!(h.status, 206);
        assert_eq!(h.content_length, Some(50));
        assert_eq!(h.content_range.as_deref(), Some("bytes 50-99/100"));
        assert_eq!(
            check_response(
                50,
                50,
                100,
                h.status,
                h.content_length,
                h.content_range.as_deref()
            ),
            Ok(())
        );

        let h =
            parse_head(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: x")
                .expect("valid");
        assert_eq!(
            (h.status, h.retry_after, h.content_length),
            (503, Some(3), None)
        );
        assert_eq!(parse_head(b"garbage"), Err(Reason::Status));
        assert_eq!(parse_head(b"HTTP/1.1 abc OK"), Err(Reason::Status));
        assert_eq!(parse_head(&[0xFF, 0xFE]), Err(Reason::BadContentLength));
        assert!(head_end(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n").is_none());
    }

    #[test]
    fn an_overlong_content_range_is_kept_as_invalid() {
        let mut raw = std::string::String::from("HTTP/1.1 206 OK\r\nContent-Range: bytes 0-1/2");
        raw.push_str(&"0".repeat(100));
        let h = parse_head(raw.as_bytes()).expect("valid head");
        assert_eq!(h.content_range.as_deref(), Some(""));
        assert_eq!(
            check_response(0, 2, 2, 206, Some(2), h.content_range.as_deref()),
            Err(Reason::BadContentRange)
        );
    }

    #[test]
    fn variants_name_the_slot() {
        assert_eq!(
            variant_url("/v1/manifest/v2", 1).as_str(),
            "/v1/manifest/v2-b"
        );
        assert_eq!(
            variant_url("/v1/manifest/v2", 0).as_str(),
            "/v1/manifest/v2-a"
        );
        let long = "x".repeat(ota_core::checkin::MAX_URL_LEN);
        assert!(variant_url(&long, 0).ends_with("-a"));
    }
}
