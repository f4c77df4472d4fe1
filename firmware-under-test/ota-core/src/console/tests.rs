use std::collections::BTreeSet;

use super::*;

const V1: Version = Version::new(1, 0, 0);
const V2: Version = Version::new(2, 0, 0);

/// Exact text → variant → the same text.
fn check(text: &str, line: Line<'_>) {
    assert_eq!(parse(text), Some(line), "parse of `{text}`");
    assert_eq!(line.to_string(), text);
}

#[test]
fn boot_banner() {
    check(
        "boot: otarig-boot board=sim device=dev-1 reset=power-on",
        Line::BootBanner {
            board: "sim",
            device: "dev-1",
            reset: Reset::PowerOn,
        },
    );
    check(
        "boot: otarig-boot board=pico-w device=e6614103e7 reset=watchdog",
        Line::BootBanner {
            board: "pico-w",
            device: "e6614103e7",
            reset: Reset::Watchdog,
        },
    );
}

#[test]
fn boot_trial() {
    check(
        "boot: trial version=2.0.0 attempt=1/3",
        Line::BootTrial {
            version: V2,
            attempt: 1,
            max: 3,
        },
    );
}

#[test]
fn boot_revert() {
    check(
        "boot: revert to=1.0.0 reason=trial-exhausted",
        Line::BootRevert {
            to: V1,
            reason: RevertReason::TrialExhausted,
        },
    );
    check(
        "boot: revert to=1.0.0 reason=bad-image",
        Line::BootRevert {
            to: V1,
            reason: RevertReason::BadImage,
        },
    );
}

#[test]
fn boot_slot() {
    check(
        "boot: slot=a version=1.0.0 state=confirmed",
        Line::BootSlot {
            slot: 0,
            version: V1,
            state: SlotState::Confirmed,
        },
    );
    check(
        "boot: slot=b version=2.0.0 state=trial",
        Line::BootSlot {
            slot: 1,
            version: V2,
            state: SlotState::Trial,
        },
    );
}

#[test]
fn boot_refuse() {
    check(
        "boot: refuse slot=b reason=missing-entry-point",
        Line::BootRefuse {
            slot: 1,
            reason: Reason::MissingEntryPoint,
        },
    );
}

#[test]
fn boot_fatal() {
    check(
        "boot: FATAL no bootable image",
        Line::BootFatal {
            why: Fatal::NoBootableImage,
        },
    );
    // The Pico W bootloader's own FATAL texts are FATAL too.
    check(
        "boot: FATAL flash error",
        Line::BootFatal {
            why: Fatal::Other("flash error"),
        },
    );
    assert_eq!(parse("boot: FATAL"), None);
    assert_eq!(parse("boot: FATAL "), None);
}

#[test]
fn factory_reset() {
    check(
        "boot: factory reset version=1.0.0",
        Line::FactoryReset { version: V1 },
    );
}

#[test]
fn factory_reset_failed() {
    check(
        "boot: factory reset failed reason=bad-header",
        Line::FactoryResetFailed {
            reason: Reason::BadHeader,
        },
    );
}

#[test]
fn app_starting() {
    check(
        "app: v2.0.0 starting drill=none",
        Line::AppStarting {
            version: V2,
            drill: Drill::None,
        },
    );
    check(
        "app: v2.0.0 starting drill=slow-boot",
        Line::AppStarting {
            version: V2,
            drill: Drill::SlowBoot,
        },
    );
}

#[test]
fn app_network_up() {
    check("app: v2.0.0 network up", Line::AppNetworkUp { version: V2 });
}

#[test]
fn app_running() {
    check("app: v1.0.0 running", Line::AppRunning { version: V1 });
}

#[test]
fn app_confirmed() {
    check("app: v2.0.0 confirmed", Line::AppConfirmed { version: V2 });
}

#[test]
fn app_crash_in_init() {
    check(
        "app: v2.0.0 crash in init (drill)",
        Line::AppCrashInInit { version: V2 },
    );
}

#[test]
fn app_crash() {
    check(
        "app: v2.0.0 crash: no app at the entry point",
        Line::AppCrash {
            version: V2,
            why: "no app at the entry point",
        },
    );
}

#[test]
fn app_network_disabled() {
    check(
        "app: v2.0.0 network disabled (drill)",
        Line::AppNetworkDisabled { version: V2 },
    );
}

#[test]
fn app_hang() {
    check("app: v2.0.0 hang (drill)", Line::AppHang { version: V2 });
}

#[test]
fn checkin_answered() {
    check(
        "checkin: version=2.0.0 state=trial -> command=none",
        Line::Checkin {
            version: V2,
            state: DeviceState::Trial,
            command: Command::None,
        },
    );
    check(
        "checkin: version=1.0.0 state=confirmed -> command=rollback",
        Line::Checkin {
            version: V1,
            state: DeviceState::Confirmed,
            command: Command::Rollback,
        },
    );
}

#[test]
fn checkin_failed() {
    check(
        "checkin: failed reason=status-503",
        Line::CheckinFailed {
            why: CheckinFailure::Why(Why::status(503)),
        },
    );
    check(
        "checkin: failed reason=timeout",
        Line::CheckinFailed {
            why: CheckinFailure::Why(Why::new(Reason::Timeout)),
        },
    );
    check(
        "checkin: failed reason=malformed",
        Line::CheckinFailed {
            why: CheckinFailure::Malformed,
        },
    );
}

#[test]
fn update_offered() {
    check(
        "update: offered manifest=/v1/manifest/2.0.0",
        Line::UpdateOffered {
            manifest: "/v1/manifest/2.0.0",
        },
    );
}

#[test]
fn update_manifest() {
    check(
        "update: manifest version=2.0.0 size=131328 chunks=33 chunk_size=4096",
        Line::UpdateManifest {
            version: V2,
            size: 131_328,
            chunks: 33,
            chunk_size: 4096,
        },
    );
}

#[test]
fn update_refused() {
    check(
        "update: refused version=3.0.0 reason=rollback-counter",
        Line::UpdateRefused {
            version: Some(Version::new(3, 0, 0)),
            reason: Reason::RollbackCounter,
        },
    );
    check(
        "update: refused version=unknown reason=bad-manifest-signature",
        Line::UpdateRefused {
            version: None,
            reason: Reason::BadManifestSignature,
        },
    );
}

#[test]
fn download_start() {
    check(
        "download: start offset=0 total=131328",
        Line::DownloadStart { total: 131_328 },
    );
    assert_eq!(parse("download: start offset=5 total=131328"), None);
}

#[test]
fn download_resume() {
    check(
        "download: resume offset=5120 chunk=5/10",
        Line::DownloadResume {
            offset: 5120,
            chunk: 5,
            chunks: 10,
        },
    );
}

#[test]
fn download_progress() {
    check(
        "download: progress 3/10",
        Line::DownloadProgress {
            chunk: 3,
            chunks: 10,
        },
    );
}

#[test]
fn download_error() {
    check(
        "download: error reason=status-503 retry=1/8 in=2000ms",
        Line::DownloadError {
            why: Why::status(503),
            retry: 1,
            max: 8,
            in_ms: 2000,
        },
    );
    check(
        "download: error reason=ignored-range retry=3/8 in=200ms",
        Line::DownloadError {
            why: Why::new(Reason::IgnoredRange),
            retry: 3,
            max: 8,
            in_ms: 200,
        },
    );
}

#[test]
fn download_complete() {
    check(
        "download: complete bytes=131328",
        Line::DownloadComplete { bytes: 131_328 },
    );
}

#[test]
fn verify_ok() {
    check("verify: ok version=2.0.0", Line::VerifyOk { version: V2 });
}

#[test]
fn verify_failed() {
    check(
        "verify: failed reason=bad-signature",
        Line::VerifyFailed {
            reason: Reason::BadSignature,
        },
    );
}

#[test]
fn update_staged() {
    check(
        "update: staged version=2.0.0",
        Line::UpdateStaged { version: V2 },
    );
}

#[test]
fn manifest_unavailable() {
    check(
        "update: manifest unavailable reason=status-404",
        Line::ManifestUnavailable {
            why: Why::status(404),
        },
    );
    check(
        "update: manifest unavailable reason=connect",
        Line::ManifestUnavailable {
            why: Why::new(Reason::Connect),
        },
    );
}

#[test]
fn update_gave_up() {
    check(
        "update: failed reason=retries-exhausted",
        Line::UpdateGaveUp,
    );
    assert_eq!(parse("update: failed reason=timeout"), None);
}

#[test]
fn rollback_refused() {
    check(
        "rollback: refused reason=no-previous",
        Line::RollbackRefused {
            reason: Reason::NoPrevious,
        },
    );
}

#[test]
fn rollback_received() {
    check(
        "rollback: command received to=1.0.0",
        Line::RollbackReceived { to: V1 },
    );
}

#[test]
fn watchdog_expired() {
    check("watchdog: expired", Line::WatchdogExpired);
}

#[test]
fn stages() {
    for line in samples(V2, 3, 8, 250, 1, "x") {
        assert!(
            line.to_string().starts_with(&format!("{}: ", line.stage())),
            "{line}"
        );
    }
}

#[test]
fn strict() {
    for bad in [
        "",
        "boot:",
        // Control characters: free text cannot carry a line ending or noise.
        "boot: FATAL x\r\r",
        "boot: FATAL x\0y",
        "app: v1.0.0 crash: a\u{7f}",
        "boot: slot=c version=1.0.0 state=trial",
        "boot: slot=a version=1.0 state=trial",
        "boot: slot=a version=01.0.0 state=trial",
        "boot: slot=a version=1.0.0 state=trial ",
        "boot: slot=a  version=1.0.0 state=trial",
        "boot: slot=a version=1.0.0 state=trial extra",
        "boot: slot=a version=1.0.0",
        "boot: otarig-boot board= device=x reset=power-on",
        "boot: otarig-boot board=sim device=x reset=brownout",
        "app: 2.0.0 running",
        "app: v2.0.0 runnin",
        "app: v2.0.0 crash: ",
        "checkin: failed reason=status",
        "checkin: failed reason=status-+5",
        "checkin: failed reason=status-70000",
        "download: progress +3/10",
        "download: error reason=timeout retry=1/8 in=20",
        "rollback: command received",
        "rollback: refused reason=whatever",
        "watchdog: expired!",
        "Boot: slot=a version=1.0.0 state=trial",
        "sim-board: power cut at flash op 3",
    ] {
        assert_eq!(parse(bad), None, "`{bad}` must not parse");
    }
    // One trailing carriage return is tolerated.
    assert_eq!(
        parse("app: v1.0.0 running\r"),
        Some(Line::AppRunning { version: V1 })
    );
}

#[test]
fn why_round_trips() {
    assert_eq!(Why::status(503).to_string(), "status-503");
    assert_eq!(Why::new(Reason::Timeout).to_string(), "timeout");
    assert_eq!(Why::parse("status"), None);
    assert_eq!(Why::parse("status-0"), Some(Why::status(0)));
}

/// A variant's position, by an exhaustive match: a new variant must be added here, which
/// the coverage tests then ask for in `samples` and in CONSOLE.md.
fn variant(line: &Line<'_>) -> usize {
    match line {
        Line::BootBanner { .. } => 0,
        Line::BootTrial { .. } => 1,
        Line::BootRevert { .. } => 2,
        Line::BootSlot { .. } => 3,
        Line::BootRefuse { .. } => 4,
        Line::BootFatal { .. } => 5,
        Line::FactoryReset { .. } => 6,
        Line::FactoryResetFailed { .. } => 7,
        Line::AppStarting { .. } => 8,
        Line::AppNetworkUp { .. } => 9,
        Line::AppRunning { .. } => 10,
        Line::AppConfirmed { .. } => 11,
        Line::AppCrashInInit { .. } => 12,
        Line::AppCrash { .. } => 13,
        Line::AppNetworkDisabled { .. } => 14,
        Line::AppHang { .. } => 15,
        Line::Checkin { .. } => 16,
        Line::CheckinFailed { .. } => 17,
        Line::UpdateOffered { .. } => 18,
        Line::UpdateManifest { .. } => 19,
        Line::UpdateRefused { .. } => 20,
        Line::DownloadStart { .. } => 21,
        Line::DownloadResume { .. } => 22,
        Line::DownloadProgress { .. } => 23,
        Line::DownloadError { .. } => 24,
        Line::DownloadComplete { .. } => 25,
        Line::VerifyOk { .. } => 26,
        Line::VerifyFailed { .. } => 27,
        Line::UpdateStaged { .. } => 28,
        Line::ManifestUnavailable { .. } => 29,
        Line::UpdateGaveUp => 30,
        Line::RollbackRefused { .. } => 31,
        Line::RollbackReceived { .. } => 32,
        Line::WatchdogExpired => 33,
    }
}
const VARIANTS: usize = 34;

/// One line of every variant, built from the given values.
fn samples<'a>(v: Version, k: u32, n: u32, ms: u64, slot: u8, text: &'a str) -> Vec<Line<'a>> {
    let why = if k.is_multiple_of(2) {
        Why::status(n as u16)
    } else {
        Why::new(Reason::ChunkHash)
    };
    vec![
        Line::BootBanner {
            board: text,
            device: text,
            reset: Reset::Rollback,
        },
        Line::BootTrial {
            version: v,
            attempt: k,
            max: n,
        },
        Line::BootRevert {
            to: v,
            reason: RevertReason::BadImage,
        },
        Line::BootSlot {
            slot,
            version: v,
            state: SlotState::Trial,
        },
        Line::BootRefuse {
            slot,
            reason: Reason::BadHash,
        },
        Line::BootFatal {
            why: Fatal::Other(text),
        },
        Line::FactoryReset { version: v },
        Line::FactoryResetFailed {
            reason: Reason::BadHeader,
        },
        Line::AppStarting {
            version: v,
            drill: Drill::CrashOnRevB,
        },
        Line::AppNetworkUp { version: v },
        Line::AppRunning { version: v },
        Line::AppConfirmed { version: v },
        Line::AppCrashInInit { version: v },
        Line::AppCrash {
            version: v,
            why: text,
        },
        Line::AppNetworkDisabled { version: v },
        Line::AppHang { version: v },
        Line::Checkin {
            version: v,
            state: DeviceState::Updating,
            command: Command::Update,
        },
        Line::CheckinFailed {
            why: CheckinFailure::Why(why),
        },
        Line::UpdateOffered { manifest: text },
        Line::UpdateManifest {
            version: v,
            size: k,
            chunks: n,
            chunk_size: k,
        },
        Line::UpdateRefused {
            version: Some(v),
            reason: Reason::Downgrade,
        },
        Line::DownloadStart { total: n },
        Line::DownloadResume {
            offset: k,
            chunk: k,
            chunks: n,
        },
        Line::DownloadProgress {
            chunk: k,
            chunks: n,
        },
        Line::DownloadError {
            why,
            retry: k,
            max: n,
            in_ms: ms,
        },
        Line::DownloadComplete { bytes: n },
        Line::VerifyOk { version: v },
        Line::VerifyFailed {
            reason: Reason::WrongBoard,
        },
        Line::UpdateStaged { version: v },
        Line::ManifestUnavailable { why },
        Line::UpdateGaveUp,
        Line::RollbackRefused {
            reason: Reason::Flash,
        },
        Line::RollbackReceived { to: v },
        Line::WatchdogExpired,
    ]
}

#[test]
fn samples_cover_every_variant() {
    let seen: BTreeSet<usize> = samples(V1, 1, 2, 3, 0, "x").iter().map(variant).collect();
    assert_eq!(seen, (0..VARIANTS).collect());
}

/// The backticked line patterns of CONSOLE.md's two tables (`\|` unescaped).
fn documented_patterns() -> Vec<String> {
    let doc = include_str!("../../../CONSOLE.md");
    let mut patterns = Vec::new();
    let mut in_tables = false;
    for row in doc.lines() {
        if row.starts_with("## ") {
            in_tables = row.starts_with("## Bootloader") || row.starts_with("## Application");
            continue;
        }
        let Some(cell) = row.strip_prefix("| `").filter(|_| in_tables) else {
            continue;
        };
        let end = cell.find("` |").expect("a backticked first cell");
        patterns.push(cell[..end].replace("\\|", "|"));
    }
    patterns
}

/// Sample text for a placeholder: one per choice of a closed set (`<a|b>`), else one value.
fn fill(name: &str) -> Vec<String> {
    if name.contains('|') {
        return name
            .split('|')
            .filter(|c| *c != "...")
            .map(String::from)
            .collect();
    }
    let sample = match name {
        "kind" => "sim",
        "id" => "dev-7",
        "ver" => "2.1.3",
        "n" | "k" | "max" => "3",
        "bytes" => "4096",
        "ms" => "250",
        "url" => "/v1/manifest/2.1.3",
        "why" => "bad-header",
        "code" => "503",
        other => panic!("CONSOLE.md has a new placeholder <{other}>: give it a sample here"),
    };
    vec![sample.to_string()]
}

/// Every line a pattern stands for (each choice of every closed set).
fn instances(pattern: &str) -> Vec<String> {
    let Some(open) = pattern.find('<') else {
        return vec![pattern.to_string()];
    };
    let close = open + pattern[open..].find('>').expect("a closed placeholder");
    let mut out = Vec::new();
    for value in fill(&pattern[open + 1..close]) {
        for rest in instances(&pattern[close + 1..]) {
            out.push(format!("{}{value}{rest}", &pattern[..open]));
        }
    }
    out
}

#[test]
fn every_documented_line_has_a_variant() {
    let patterns = documented_patterns();
    assert_eq!(
        patterns.len(),
        VARIANTS,
        "CONSOLE.md table rows: {patterns:#?}"
    );
    let mut seen = BTreeSet::new();
    for pattern in &patterns {
        let mut kinds = BTreeSet::new();
        for text in instances(pattern) {
            let line = parse(&text)
                .unwrap_or_else(|| panic!("`{text}` (CONSOLE.md `{pattern}`) has no variant"));
            assert_eq!(line.to_string(), text);
            kinds.insert(variant(&line));
        }
        assert_eq!(kinds.len(), 1, "`{pattern}` parses as several variants");
        assert!(
            seen.insert(kinds.into_iter().next().unwrap_or_default()),
            "`{pattern}` parses as the variant of another row"
        );
    }
    assert_eq!(
        seen,
        (0..VARIANTS).collect(),
        "a variant without a CONSOLE.md row"
    );
}

#[test]
fn every_documented_reason_parses() {
    let doc = include_str!("../../../CONSOLE.md");
    let list = doc
        .split_once("Reasons used in")
        .expect("the reasons paragraph")
        .1
        .split_once(":\n")
        .expect("the reasons list")
        .1
        .split("\n\n")
        .next()
        .unwrap_or_default();
    let names: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        for text in instances(name) {
            assert!(Why::parse(&text).is_some(), "reason `{text}`");
            let line = format!("download: error reason={text} retry=1/8 in=25ms");
            assert!(parse(&line).is_some(), "{line}");
        }
    }
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(s in "\\PC*") {
        let _ = parse(&s);
    }

    /// Line-shaped noise: whatever parses displays as exactly its input.
    #[test]
    fn whatever_parses_displays_as_its_input(
        s in "(boot|app|checkin|update|download|verify|rollback|watchdog): [a-z0-9v=./>:() -]{0,60}\r?"
    ) {
        if let Some(line) = parse(&s) {
            proptest::prop_assert_eq!(line.to_string(), s.strip_suffix('\r').unwrap_or(&s));
        }
    }

    #[test]
    fn every_variant_round_trips(
        (major, minor, patch) in proptest::arbitrary::any::<(u16, u16, u16)>(),
        k in proptest::arbitrary::any::<u32>(),
        n in proptest::arbitrary::any::<u32>(),
        ms in proptest::arbitrary::any::<u64>(),
        slot in 0u8..2,
        text in "[!-~]{1,20}",
    ) {
        let v = Version::new(major, minor, patch);
        for line in samples(v, k, n, ms, slot, &text) {
            let printed = line.to_string();
            proptest::prop_assert_eq!(parse(&printed), Some(line));
        }
    }
}
