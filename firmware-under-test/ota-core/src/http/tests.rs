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
    let h =
        ok(b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-9/10\r\ncontent-range: bytes 0-9/10\r\n");
    assert_eq!(h.content_range, bytes(0, 9, 10));
    let h =
        ok(b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-9/10\r\nContent-Range: bytes 0-9/11\r\n");
    assert_eq!(h.content_range, Some(ContentRange::Unparsed));
}

#[test]
fn retry_after() {
    let h = ok(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        h,
        ResponseHead {
            status: 503,
            content_length: Some(0),
            retry_after_s: Some(7),
            ..ResponseHead::default()
        }
    );
    let retry =
        |v: &str| ok(format!("HTTP/1.1 503 x\r\nRetry-After:{v}\r\n\r\n").as_bytes()).retry_after_s;
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
    let h = ok(b"HTTP/1.1 200 OK\r\nContent-Length:\r\n  42\r\nX-Long: first\r\n\tsecond\r\n\r\n");
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
    // As long a head as common servers send (nginx and Apache cap theirs at 8 KiB) is read.
    assert_eq!(head.len(), 8 * 1024);
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
