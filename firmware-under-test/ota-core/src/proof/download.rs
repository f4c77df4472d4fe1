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

#[test]
fn a_download_resumed_with_every_chunk_in_resumes_at_the_image_end_not_past_it() {
    // A cut after the last chunk is written and before the image is staged: at the next boot
    // every chunk is intact. The last chunk is short, so chunk_count * chunk_size is past the
    // end of the image.
    use crate::console::Console;
    use crate::download::Download;
    use crate::manifest::Manifest;
    let setup = Setup::new(3 * 4096 + 300, 4096);
    let m = Manifest::parse(&setup.manifest).expect("manifest");
    let (n, size) = (m.chunk_count(), m.size());
    assert!(n * m.chunk_size() > size);
    let mut out = super::bench::Lines::default();
    let d = Download::start(&m, n, &mut out as &mut dyn Console);
    assert!(d.done());
    assert_eq!(d.offset(), size);
    assert_eq!(
        out.0,
        [format!("download: resume offset={size} chunk={n}/{n}")]
    );
    // The same through the machine: the cut lands between the last chunk and the stage.
    let (clean, log) = crate::sweep::clean_run(&setup, Script::Update);
    assert_eq!(clean.end, End::Updated);
    let last_write = log
        .iter()
        .rposition(|p| p.phase == crate::sweep::Phase::SlotWrite)
        .expect("slot writes");
    let cut = crate::nor::Cut {
        at: log[last_write].op.index + 1,
        torn: None,
    };
    let r = crate::sweep::run_point(&setup, Script::Update, &[cut], None);
    assert_eq!(r.end, End::Updated, "{}", r.detail);
    let resumes: Vec<&String> = r
        .console_tail
        .iter()
        .filter(|l| l.starts_with("download: resume"))
        .collect();
    assert_eq!(
        resumes,
        [&format!("download: resume offset={size} chunk={n}/{n}")],
        "{:?}",
        r.console_tail
    );
}
