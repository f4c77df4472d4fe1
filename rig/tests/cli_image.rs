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
            Some(2),
            "{mode} must not verify: {}",
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
