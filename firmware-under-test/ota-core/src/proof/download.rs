//! The download's console story, which the rig's verdicts read: where it starts, every
//! quarter of progress, where it resumes after a failure (never "resume" before a single chunk
//! is in), and its completion with the byte count.

use crate::sweep::{End, MemServer, Script, ServerFaults, Setup, drive};

fn lines(faults: ServerFaults) -> (Vec<String>, usize) {
    let setup = Setup::new(16 * 1024, 4096);
    let mut server = MemServer::new(&setup, Script::Update);
    server.faults = faults;
    let r = drive(&mut server, &[], None);
    assert_eq!(r.end, End::Updated, "{}: {:?}", r.detail, r.console_tail);
    let size = setup.v2.len();
    let from = r
        .console_tail
        .iter()
        .position(|l| l.starts_with("download: start"))
        .expect("a download");
    let story: Vec<String> = r.console_tail[from..]
        .iter()
        .filter(|l| l.starts_with("download:"))
        .cloned()
        .collect();
    (story, size)
}

#[test]
fn a_clean_download_starts_reports_each_quarter_and_completes() {
    let (story, size) = lines(ServerFaults::default());
    assert_eq!(
        story,
        [
            format!("download: start offset=0 total={size}"),
            "download: progress 2/5".to_string(),
            "download: progress 4/5".to_string(),
            "download: progress 5/5".to_string(),
            format!("download: complete bytes={size}"),
        ]
    );
}

#[test]
fn a_failure_before_the_first_chunk_retries_from_the_start_without_a_resume_line() {
    let faults = ServerFaults {
        unavailable: 1,
        retry_after_s: Some(1),
        ..ServerFaults::default()
    };
    let (story, size) = lines(faults);
    assert_eq!(story[0], format!("download: start offset=0 total={size}"));
    assert!(
        story[1].starts_with("download: error reason=status-503 retry=1/8"),
        "{story:?}"
    );
    assert!(
        !story.iter().any(|l| l.starts_with("download: resume")),
        "{story:?}"
    );
    assert_eq!(
        story.last(),
        Some(&format!("download: complete bytes={size}"))
    );
}

#[test]
fn a_failure_after_a_chunk_resumes_where_the_chunks_end() {
    let faults = ServerFaults {
        truncations: 1,
        cut_after: 6000,
        ..ServerFaults::default()
    };
    let (story, size) = lines(faults);
    assert!(
        story
            .iter()
            .any(|l| l == "download: resume offset=4096 chunk=1/5"),
        "{story:?}"
    );
    assert_eq!(
        story.last(),
        Some(&format!("download: complete bytes={size}"))
    );
}
