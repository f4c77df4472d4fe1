//! `rig keygen` and `rig image build|sign|corrupt|inspect` on the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn rig(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rig"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run rig")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn keys_images_and_their_breakage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let o = rig(&["keygen", "--out", "keys"], d);
    assert!(o.status.success(), "{}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keys/release.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is private");
    }
    assert_eq!(
        rig(&["keygen", "--out", "keys"], d).status.code(),
        Some(2),
        "never overwrite a key"
    );

    let o = rig(
        &[
            "image",
            "build",
            "--version",
            "2.1.0",
            "--drill",
            "hang",
            "--size",
            "4096",
            "--key",
            "keys/release.key",
            "-o",
            "v2.bin",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = rig(
        &["image", "inspect", "--key", "keys/release.pub", "v2.bin"],
        d,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("version:         2.1.0")
            && t.contains("signature:       valid")
            && t.contains("matches"),
        "{t}"
    );

    for (mode, needs_key, expect) in [
        ("header", false, "header invalid"),
        ("entry", true, "entry point outside"),
        ("signature", false, "INVALID"),
        ("body", false, "MISMATCH"),
        ("truncate:100", false, "header invalid"),
    ] {
        let out = format!("bad-{}.bin", mode.replace(':', "-"));
        let mut args = vec![
            "image",
            "corrupt",
            "--mode",
            mode,
            "-o",
            out.as_str(),
            "v2.bin",
        ];
        if needs_key {
            args.extend(["--key", "keys/release.key"]);
        }
        let o = rig(&args, d);
        assert!(o.status.success(), "{mode}: {}", text(&o));
        let o = rig(
            &[
                "image",
                "inspect",
                "--key",
                "keys/release.pub",
                out.as_str(),
            ],
            d,
        );
        assert_eq!(
            o.status.code(),
            Some(101),
            "{mode} must not verify (a defective image exits 101): {}",
            text(&o)
        );
        assert!(text(&o).contains(expect), "{mode}: {}", text(&o));
    }
    // Re-signing a bad-signature image with the right key repairs it.
    let o = rig(
        &[
            "image",
            "sign",
            "--key",
            "keys/release.key",
            "-o",
            "fixed.bin",
            "bad-signature.bin",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        rig(
            &["image", "inspect", "--key", "keys/release.pub", "fixed.bin"],
            d
        )
        .status
        .success()
    );
    // Bad input names the problem.
    let o = rig(
        &[
            "image",
            "build",
            "--version",
            "two",
            "--key",
            "keys/release.key",
            "-o",
            "x.bin",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--version two"), "{}", text(&o));
    let o = rig(
        &[
            "image", "corrupt", "--mode", "entry", "-o", "x.bin", "v2.bin",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--key"), "{}", text(&o));
}

/// Issue 15 item 7: a truncated image is a defect whether or not a key is given: inspect exits
/// 101 (it exited 0 without `--key`). A key that cannot be read stays a usage error (2).
#[test]
fn inspect_fails_on_a_mismatch_without_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(rig(&["keygen", "--out", "keys"], d).status.success());
    let o = rig(
        &[
            "image",
            "build",
            "--version",
            "2.0.0",
            "--size",
            "8192",
            "--key",
            "keys/release.key",
            "-o",
            "v2.bin",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = rig(&["image", "inspect", "v2.bin"], d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("matches"), "{}", text(&o));

    let o = rig(
        &[
            "image",
            "corrupt",
            "--mode",
            "truncate:1000",
            "-o",
            "short.bin",
            "v2.bin",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = rig(&["image", "inspect", "short.bin"], d);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(101), "{t}");
    assert!(
        t.contains("MISMATCH") && t.contains("does not verify"),
        "{t}"
    );
    let o = rig(
        &["image", "inspect", "--key", "keys/missing.pub", "v2.bin"],
        d,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Issue 15 item 5: `--size` beyond a slot is refused before anything is allocated or written
/// (4294967295 aborted on allocation; 16 MiB + 1 wrote an image `inspect` rejects).
#[test]
fn build_refuses_a_size_beyond_the_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    assert!(rig(&["keygen", "--out", "keys"], d).status.success());
    for size in ["4294967295", "16777217", "524033"] {
        let o = rig(
            &[
                "image",
                "build",
                "--version",
                "2.0.0",
                "--size",
                size,
                "--key",
                "keys/release.key",
                "-o",
                "big.bin",
            ],
            d,
        );
        assert_eq!(o.status.code(), Some(2), "{size}: {}", text(&o));
        assert!(text(&o).contains("--size"), "{size}: {}", text(&o));
        assert!(!d.join("big.bin").exists(), "{size}: nothing written");
    }
    // The largest body a slot holds builds, and verifies.
    let o = rig(
        &[
            "image",
            "build",
            "--version",
            "2.0.0",
            "--size",
            "524032",
            "--key",
            "keys/release.key",
            "-o",
            "full.bin",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = rig(
        &["image", "inspect", "--key", "keys/release.pub", "full.bin"],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
}
