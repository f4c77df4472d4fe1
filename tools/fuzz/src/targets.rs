//! The fuzz targets: one parser each, with the properties that are cheap to check on every
//! input. A target returns whether the parser accepted the input, or `Err` when a property
//! does not hold; a panic is caught by the engine.

use std::path::Path;

use crate::dicts::{BINARY_DICT, CONSOLE_DICT, HTTP_DICT, JSON_DICT, YAML_DICT};
use ota_core::http::{ContentRange, MAX_HEAD, ResponseHead};
use ota_core::state::{BootState, RECORD_LEN};

/// What the parser made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
    /// The input hits a known, reported problem (named): counted and shown, not a failure.
    Known(&'static str),
}

/// What a target's run returns: `Err` is a broken property (a failure, like a panic). Its
/// first line names the property (failures are grouped by it), the rest gives details.
pub type Outcome = Result<Verdict, String>;

/// A broken property: `what` (one line, the group) and the details.
fn broken(what: &str, details: impl std::fmt::Display) -> String {
    format!("{what}\n{details}")
}

/// One fuzz target.
#[derive(Debug)]
pub struct Target {
    /// The name on the command line and the corpus folder's name.
    pub name: &'static str,
    pub about: &'static str,
    /// A text format: line edits, number rewrites and a dictionary harvested from the seeds.
    pub text: bool,
    /// Inputs are cut to this many bytes.
    pub max_len: usize,
    /// Tokens to insert besides the harvested ones.
    pub dict: &'static [&'static [u8]],
    pub run: fn(&[u8]) -> Outcome,
    /// Applied to half of the mutated inputs: repairs a checksum so the fields behind it get
    /// fuzzed too.
    pub fixup: Option<fn(&mut [u8])>,
}

/// The file name YAML loaders are given (it must show in their errors).
const FILE: &str = "fuzz.yaml";
/// The longest error message a loader may print: errors clip echoed values (issue 15 item 5).
const MAX_ERROR_LEN: usize = 4096;

/// Every target, in the order a run visits them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "scenario-yaml",
        about: "rig::scenario::parse (scenario files)",
        text: true,
        max_len: 64 * 1024,
        dict: YAML_DICT,
        run: scenario_yaml,
        fixup: None,
    },
    Target {
        name: "runbook-yaml",
        about: "rig::rollout::runbook::parse (rollout runbooks)",
        text: true,
        max_len: 64 * 1024,
        dict: YAML_DICT,
        run: runbook_yaml,
        fixup: None,
    },
    Target {
        name: "bench-yaml",
        about: "rig::bench::parse (bench files)",
        text: true,
        max_len: 64 * 1024,
        dict: YAML_DICT,
        run: bench_yaml,
        fixup: None,
    },
    Target {
        name: "fault-rules-yaml",
        about: "fake_server::faults::parse_faults_yaml (--faults files, POST /_control/faults)",
        text: true,
        max_len: 64 * 1024,
        dict: YAML_DICT,
        run: fault_rules_yaml,
        fixup: None,
    },
    Target {
        name: "manifest",
        about: "ota_core::manifest::Manifest::parse (signed release manifests)",
        text: false,
        max_len: ota_core::manifest::MAX_LEN + 64,
        dict: BINARY_DICT,
        run: manifest,
        fixup: None,
    },
    Target {
        name: "image-header",
        about: "ota_core::image::ImageHeader::parse (signed image headers)",
        text: false,
        max_len: 1024,
        dict: BINARY_DICT,
        run: image_header,
        fixup: None,
    },
    Target {
        name: "state-record",
        about: "ota_core::state::BootState::decode (persisted boot state records)",
        text: false,
        max_len: 512,
        dict: BINARY_DICT,
        run: state_record,
        fixup: Some(fix_state_crc),
    },
    Target {
        name: "http-head",
        about: "ota_core::http::{head_end, parse_head} (every board's HTTP client)",
        text: true,
        max_len: 2 * MAX_HEAD,
        dict: HTTP_DICT,
        run: http_head,
        fixup: None,
    },
    Target {
        name: "console-line",
        about: "ota_core::console::parse (the console protocol the rig reads)",
        text: true,
        max_len: 1024,
        dict: CONSOLE_DICT,
        run: console_line,
        fixup: None,
    },
    Target {
        name: "checkin",
        about: "ota_core::checkin::{CheckinRequest, CheckinResponse}::decode (check-in JSON)",
        text: true,
        max_len: 2048,
        dict: JSON_DICT,
        run: checkin,
        fixup: None,
    },
    Target {
        name: "payload",
        about: "ota_core::payload::parse (the sim board's app header)",
        text: false,
        max_len: 1024,
        dict: BINARY_DICT,
        run: payload,
        fixup: None,
    },
];

/// A hidden target for the engine's own tests (not listed, not run by default): it aborts
/// the process, hangs or panics on an input holding `ABORT`, `HANG` or `PANIC`.
pub const SELF_TEST: Target = Target {
    name: "selftest",
    about: "the engine's self-test: aborts, hangs or panics on ABORT, HANG, PANIC",
    text: true,
    max_len: 64,
    dict: &[],
    run: self_test,
    fixup: None,
};

fn self_test(input: &[u8]) -> Outcome {
    let has = |word: &[u8]| input.windows(word.len()).any(|w| w == word);
    if has(b"ABORT") {
        std::process::abort();
    }
    if has(b"HANG") {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    if has(b"PANIC") {
        panic!("self-test panic");
    }
    Ok(Verdict::Rejected)
}

/// The target named `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().chain([&SELF_TEST]).find(|t| t.name == name)
}

/// An error from a YAML loader: it must name the file and stay short.
fn loader_error(message: String) -> Outcome {
    if !message.starts_with(FILE) {
        return Err(broken(
            "loader error does not start with the file name",
            format!("{message:?}"),
        ));
    }
    // The snippet shows at most 120 characters of a line; its caret stays under them.
    let wide_caret = message
        .lines()
        .filter(|l| l.starts_with("     | ") && l[7..].trim() == "^")
        .any(|l| l.chars().count() > 7 + 122);
    if wide_caret {
        return Err(broken(
            "snippet caret past the line shown",
            format!("{:?}…", clip(&message, 300)),
        ));
    }
    if message.len() > MAX_ERROR_LEN {
        return Err(broken(
            &format!("loader error longer than {MAX_ERROR_LEN} bytes"),
            format!("{} bytes: {:?}…", message.len(), clip(&message, 300)),
        ));
    }
    Ok(Verdict::Rejected)
}

fn clip(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn scenario_yaml(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match rig::scenario::parse(&text, Path::new(FILE)) {
        Ok(s) => {
            std::hint::black_box(format!("{s:?}"));
            Ok(Verdict::Accepted)
        }
        Err(e) => loader_error(e.to_string()),
    }
}

fn runbook_yaml(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match rig::rollout::runbook::parse(&text, Path::new(FILE)) {
        Ok(r) => {
            std::hint::black_box(format!("{r:?}"));
            Ok(Verdict::Accepted)
        }
        Err(e) => loader_error(e.to_string()),
    }
}

fn bench_yaml(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    match rig::bench::parse(&text, Path::new(FILE)) {
        Ok(b) => {
            std::hint::black_box(format!("{b:?}"));
            Ok(Verdict::Accepted)
        }
        Err(e) => loader_error(e.to_string()),
    }
}

fn fault_rules_yaml(input: &[u8]) -> Outcome {
    use fake_server::faults::{FaultRule, RequestInfo, RuleState};
    let text = String::from_utf8_lossy(input);
    let rules = match fake_server::faults::parse_faults_yaml(&text, FILE) {
        Ok(rules) => rules,
        Err(e) => return loader_error(e.to_string()),
    };
    let requests = [
        RequestInfo {
            method: "GET",
            path: "/v1/images/v2",
            device: Some("sim-1"),
            version: Some("1.0.0"),
        },
        RequestInfo {
            method: "POST",
            path: "/v1/checkin",
            device: None,
            version: None,
        },
        RequestInfo {
            method: "get",
            path: "",
            device: Some(""),
            version: Some("2.0.0"),
        },
    ];
    for rule in &rules {
        std::hint::black_box(rule.to_string());
        let mut state = RuleState::default();
        for req in requests.iter().cycle().take(9) {
            if rule.matches(req) {
                rule.fire(req, &mut state);
            }
        }
        // The control API answers with the rules as JSON; they must read back the same.
        let json = serde_json::to_string(rule)
            .map_err(|e| broken("fault rule does not serialize", format!("{rule:?}: {e}")))?;
        let back: FaultRule = serde_json::from_str(&json).map_err(|e| {
            broken(
                "fault rule does not read back from its JSON",
                format!("{rule:?} -> {json}: {e}"),
            )
        })?;
        if &back != rule {
            return Err(broken(
                "fault rule changed by its JSON round trip",
                format!("{rule:?} -> {json} -> {back:?}"),
            ));
        }
    }
    Ok(Verdict::Accepted)
}

/// The key the binary seeds are signed with (deterministic, so the corpus is too).
pub fn seed_key() -> ota_core::keys::SigningKey {
    ota_core::keys::SigningKey::from_bytes(&[0x5a; 32])
}

fn manifest(input: &[u8]) -> Outcome {
    use ota_core::manifest::Manifest;
    let Ok(m) = Manifest::parse(input) else {
        return Ok(Verdict::Rejected);
    };
    std::hint::black_box((m.version(), m.rollback_counter(), m.sha256(), m.url()));
    std::hint::black_box(m.verify_signature(&seed_key().verifying_key().to_bytes()));
    // The chunks tile the image exactly, and each has a hash.
    let mut next = 0u32;
    for i in 0..m.chunk_count() {
        let (start, end) = m
            .chunk_range(i)
            .ok_or_else(|| broken("manifest chunk without a range", i))?;
        if start != next || end <= start || end - start > m.chunk_size() {
            return Err(broken(
                "manifest chunks do not tile the image",
                format!("chunk {i}: range {start}..{end} after {next}"),
            ));
        }
        m.chunk_hash(i)
            .ok_or_else(|| broken("manifest chunk without a hash", i))?;
        next = end;
    }
    if next != m.size() {
        return Err(broken(
            "manifest chunks do not cover the image",
            format!("{next} of {} bytes", m.size()),
        ));
    }
    if m.chunk_range(m.chunk_count()).is_some() || m.chunk_hash(m.chunk_count()).is_some() {
        return Err(broken("manifest has a chunk past the last one", ""));
    }
    Ok(Verdict::Accepted)
}

fn image_header(input: &[u8]) -> Outcome {
    use ota_core::image::{HEADER_LEN, ImageHeader};
    let Ok(h) = ImageHeader::parse(input) else {
        return Ok(Verdict::Rejected);
    };
    std::hint::black_box((h.board_kind(), h.image_len()));
    std::hint::black_box(h.verify_signature(&seed_key().verifying_key().to_bytes()));
    // Every accepted header is canonical: it re-encodes to the same bytes.
    if h.to_bytes()[..] != input[..HEADER_LEN] {
        return Err(broken(
            "accepted header re-encodes differently",
            format!("{h:?}"),
        ));
    }
    Ok(Verdict::Accepted)
}

/// Makes the CRC of a record valid (and sometimes the magic), so decoding reaches the fields.
fn fix_state_crc(input: &mut [u8]) {
    if input.len() >= RECORD_LEN {
        if input[0] & 1 == 1 {
            input[..4].copy_from_slice(b"OTAS");
        }
        let crc = ota_core::state::crc32(&input[..92]);
        input[92..96].copy_from_slice(&crc.to_le_bytes());
    }
}

fn state_record(input: &[u8]) -> Outcome {
    let checked = BootState::decode(input);
    let unchecked = BootState::decode_checked(input, false);
    if checked.is_some() && checked != unchecked {
        return Err(broken(
            "state record decodes differently without the CRC check",
            format!("{checked:?} / {unchecked:?}"),
        ));
    }
    for s in [&checked, &unchecked].into_iter().flatten() {
        let again = BootState::decode(&s.encode());
        if again.as_ref() != Some(s) {
            return Err(broken(
                "state record changed by encode/decode",
                format!("{s:?} -> {again:?}"),
            ));
        }
    }
    Ok(if checked.is_some() {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    })
}

fn http_head(input: &[u8]) -> Outcome {
    use ota_core::http::{head_end, parse_head};
    let parsed = parse_head(input);
    // A client parses `&buf[..head_end(buf)]`; the bytes after the blank line (the body)
    // must change nothing.
    if let Some(end) = head_end(input).filter(|&e| e <= MAX_HEAD) {
        let head_only = parse_head(&input[..end]);
        if head_only != parsed {
            return Err(broken(
                "parse_head(buf) differs from parse_head(&buf[..head_end(buf)])",
                format!("{parsed:?} / {head_only:?}"),
            ));
        }
        let mut with_body = input[..end].to_vec();
        with_body.extend_from_slice(b"HTTP/1.1 500 X\r\nContent-Length: 1\r\n\r\n\x00");
        let again = parse_head(&with_body);
        if again != parsed {
            return Err(broken(
                "a body after the head changed parse_head",
                format!("{parsed:?} -> {again:?}"),
            ));
        }
    }
    match parsed {
        Ok(head) => {
            check_head(&head)?;
            Ok(Verdict::Accepted)
        }
        Err(e) => {
            std::hint::black_box((e.to_string(), e.reason()));
            Ok(Verdict::Rejected)
        }
    }
}

fn check_head(head: &ResponseHead) -> Result<(), String> {
    if !(100..=599).contains(&head.status) {
        return Err(broken("status outside 100..=599 accepted", head.status));
    }
    if let Some(ContentRange::Bytes { first, last, total }) = head.content_range
        && !(first <= last && last < total)
    {
        return Err(broken(
            "impossible Content-Range accepted",
            format!("{first}-{last}/{total}"),
        ));
    }
    for (start, len, total) in [(0, 4096, 4096), (1024, 1024, 4096), (4095, 1, 4096)] {
        std::hint::black_box(ota_core::device::check_response(start, len, total, head)).ok();
    }
    Ok(())
}

fn console_line(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    std::hint::black_box(rig::backend::sim::parse_flash_line(&text));
    let Some(line) = ota_core::console::parse(&text) else {
        return Ok(Verdict::Rejected);
    };
    // What the board prints must read back as the same line.
    let printed = line.to_string();
    match ota_core::console::parse(&printed) {
        Some(back) if back == line => {}
        back => {
            let variant: String = format!("{line:?}")
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            return Err(broken(
                &format!("console line changed by print/parse ({variant})"),
                format!("{text:?} parses as {line:?}, printed {printed:?}, parses as {back:?}"),
            ));
        }
    }
    if !text.starts_with(line.stage()) {
        return Err(broken(
            "console line parsed as another stage",
            format!("{text:?} parsed as a `{}` line", line.stage()),
        ));
    }
    Ok(Verdict::Accepted)
}

fn checkin(input: &[u8]) -> Outcome {
    use ota_core::checkin::{CheckinRequest, CheckinResponse};
    let mut buf = [0u8; 4096];
    let mut verdict = Verdict::Rejected;
    if let Ok(req) = CheckinRequest::decode(input) {
        verdict = Verdict::Accepted;
        let n = req.encode(&mut buf).map_err(|e| {
            broken(
                "decoded check-in request does not encode",
                format!("{e}: {req:?}"),
            )
        })?;
        let back = CheckinRequest::decode(&buf[..n]);
        if back.as_ref() != Ok(&req) {
            return Err(broken(
                "check-in request changed by encode/decode",
                format!(
                    "{req:?} -> {:?} -> {back:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
            ));
        }
    }
    if let Ok(resp) = CheckinResponse::decode(input) {
        verdict = Verdict::Accepted;
        let n = resp.encode(&mut buf).map_err(|e| {
            broken(
                "decoded check-in response does not encode",
                format!("{e}: {resp:?}"),
            )
        })?;
        let back = CheckinResponse::decode(&buf[..n]);
        if back.as_ref() != Ok(&resp) {
            return Err(broken(
                "check-in response changed by encode/decode",
                format!(
                    "{resp:?} -> {:?} -> {back:?}",
                    String::from_utf8_lossy(&buf[..n])
                ),
            ));
        }
    }
    Ok(verdict)
}

fn payload(input: &[u8]) -> Outcome {
    Ok(match ota_core::payload::parse(input) {
        Ok(info) => {
            std::hint::black_box(info);
            Verdict::Accepted
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
            Verdict::Rejected
        }
    })
}
