//! The HTML report in a real browser: headless Debian Chromium renders a real run's report,
//! shows every scenario, and its script runs without errors.

use std::path::Path;
use std::process::Command;

fn chromium() -> Option<String> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(str::to_string)
}

#[test]
fn report_renders_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("OTARIG_REQUIRE_CHROMIUM").is_none(),
            "OTARIG_REQUIRE_CHROMIUM is set but chromium is not installed (apt-get install chromium)"
        );
        println!("SKIPPED: chromium not installed (apt-get install chromium)");
        return;
    };
    // A real run: two passing scenarios and one failing (a drill expected to update).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::tempdir().expect("tempdir");
    let failing = work.path().join("expect-wrong.yaml");
    std::fs::write(
        &failing,
        "about: 'Deliberately wrong expectation <script>x</script>'\ngiven: { firmware: v1 }\nrelease: v2\nimages:\n  v2: { version: 2.0.0, drill: crash-in-init }\nsteps:\n  - power: on\n  - expect: { console: 'boot: revert', within: 10s }\noutcome: updated\n",
    )
    .expect("scenario");
    let reports = work.path().join("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(&root)
        .args([
            "run",
            "scenarios/happy-path.yaml",
            "scenarios/truncated-image.yaml",
        ])
        .arg(&failing)
        .arg("--reports")
        .arg(&reports)
        .output()
        .expect("run rig");
    assert_eq!(
        out.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let html = reports.join("latest/report.html");
    assert!(html.is_file());

    let profile = work.path().join("profile");
    let shot = work.path().join("shot.png");
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--dump-dom")
        .arg(format!(
            "file://{}",
            html.canonicalize().expect("path").display()
        ))
        .output()
        .expect("run chromium");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let stderr = String::from_utf8_lossy(&dom.stderr);
    assert!(
        dom_text.contains("data-ok=\"1\""),
        "the page script did not finish: {stderr}"
    );
    assert!(
        !dom_text.contains("data-errors"),
        "script errors: {dom_text}"
    );
    assert!(dom_text.contains("data-scenarios=\"3\""), "{dom_text}");
    for name in ["happy-path", "truncated-image", "expect-wrong"] {
        assert!(
            dom_text.contains(name),
            "{name} missing from the rendered page"
        );
    }
    assert!(
        !dom_text.contains("<script>x</script>"),
        "scenario text must be escaped"
    );
    assert!(!stderr.contains("Uncaught"), "console errors: {stderr}");
    if let Ok(dir) = std::env::var("OTARIG_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("report.png"));
    }
}
