//! probe-rs errors → [`crate::board::probe::Error`], with what to fix.
//!
//! probe-rs nests its errors (a flash error wraps a core error wraps an ARM error wraps a probe
//! error…): the mapping walks the whole `source()` chain for the few causes the rig can give
//! advice about, and otherwise keeps the chain as text.

use std::error::Error as StdError;
use std::path::Path;

use probe_rs::architecture::arm::ArmError;
use probe_rs::config::RegistryError;
use probe_rs::flashing::FileDownloadError;
use probe_rs::probe::{DebugProbeError, ProbeCreationError};

use super::select::ProbeSelector;
use crate::board::probe::Error;

/// What the failing operation was about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub op: &'static str,
    pub selector: &'a ProbeSelector,
    pub chip: &'a str,
    /// The image being flashed, for `flash`.
    pub image: Option<&'a Path>,
}

/// Maps any error of probe-rs (or one wrapping it) to the rig's probe error.
pub(crate) fn map(ctx: Context<'_>, err: &(dyn StdError + 'static)) -> Error {
    let detail = chain(err);
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(mapped) = classify(ctx, e, &detail) {
            return mapped;
        }
        cause = e.source();
    }
    Error::Failed { op: ctx.op, detail }
}

/// One link of the chain, if it is a cause the rig knows advice for.
fn classify(ctx: Context<'_>, e: &(dyn StdError + 'static), detail: &str) -> Option<Error> {
    let detail = detail.to_string();
    if let Some(r) = e.downcast_ref::<RegistryError>() {
        return match r {
            RegistryError::ChipNotFound(_) | RegistryError::ChipNotUnique(..) => {
                Some(Error::UnknownChip {
                    chip: ctx.chip.to_string(),
                    detail,
                })
            }
            _ => None,
        };
    }
    if let Some(f) = e.downcast_ref::<FileDownloadError>() {
        // Problems with the file itself; a flash failure (`Flash`, `Other`) walks on.
        return match f {
            FileDownloadError::Flash(_) | FileDownloadError::Other(_) => None,
            _ => Some(Error::Image {
                path: ctx.image.unwrap_or(Path::new("the image")).to_path_buf(),
                reason: detail,
            }),
        };
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return (io.kind() == std::io::ErrorKind::PermissionDenied)
            .then(|| permission_denied(ctx, detail));
    }
    if let Some(p) = e.downcast_ref::<DebugProbeError>() {
        return match p {
            DebugProbeError::Timeout => Some(target_timeout(ctx, detail)),
            DebugProbeError::TargetNotFound => Some(Error::TargetNotFound {
                chip: ctx.chip.to_string(),
                detail,
            }),
            DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::NotFound) => {
                Some(Error::NotFound {
                    selector: ctx.selector.to_string(),
                    vid: ctx.selector.vid,
                    pid: ctx.selector.pid,
                    seen: format!("; probe-rs: {detail}"),
                })
            }
            DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::CouldNotOpen) => {
                Some(permission_denied(ctx, detail))
            }
            _ => None,
        };
    }
    if let Some(probe_rs::Error::Timeout) = e.downcast_ref::<probe_rs::Error>() {
        return Some(target_timeout(ctx, detail));
    }
    if let Some(ArmError::Timeout) = e.downcast_ref::<ArmError>() {
        return Some(target_timeout(ctx, detail));
    }
    None
}

fn permission_denied(ctx: Context<'_>, detail: String) -> Error {
    Error::PermissionDenied {
        selector: ctx.selector.to_string(),
        vid: ctx.selector.vid,
        pid: ctx.selector.pid,
        detail,
    }
}

fn target_timeout(ctx: Context<'_>, detail: String) -> Error {
    Error::TargetTimeout { op: ctx.op, detail }
}

/// The error and its causes on one line, skipping a cause its parent already spells out.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut last = out.clone();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(op: &'static str, selector: &'a ProbeSelector) -> Context<'a> {
        Context {
            op,
            selector,
            chip: "RP2041",
            image: Some(Path::new("fw.elf")),
        }
    }

    fn sel() -> ProbeSelector {
        "2e8a:000c".parse().expect("valid")
    }

    #[test]
    fn unknown_chip_says_run_chip_list() {
        let s = sel();
        let e = probe_rs::Error::ChipNotFound(RegistryError::ChipNotFound("RP2041".into()));
        let m = map(ctx("attach", &s), &e);
        assert!(matches!(m, Error::UnknownChip { .. }), "{m}");
        assert!(
            m.to_string()
                .starts_with("unknown chip `RP2041`; run `probe-rs chip list`"),
            "{m}"
        );
    }

    #[test]
    fn unknown_chip_from_the_real_registry() {
        // The registry probe-rs uses at attach: loads the built-in targets (≈21 MB), so only
        // here and in the worker.
        let registry = probe_rs::config::Registry::from_builtin_families();
        let err = registry
            .get_target_by_name("NOT-A-CHIP-9000")
            .expect_err("unknown");
        let s = sel();
        let m = map(ctx("attach", &s), &err);
        assert!(matches!(m, Error::UnknownChip { .. }), "{m}");
        assert!(registry.get_target_by_name("RP2040").is_ok());
    }

    #[test]
    fn probe_not_found_names_the_selector_and_udev() {
        let s = sel();
        let e = DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::NotFound);
        let m = map(ctx("open", &s), &e).to_string();
        assert!(
            m.starts_with("no debug probe found matching 2e8a:000c"),
            "{m}"
        );
        assert!(m.contains("udev rule for 2e8a:000c"), "{m}");
    }

    #[test]
    fn permission_denied_anywhere_in_the_chain() {
        let s = sel();
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = probe_rs::Error::Probe(DebugProbeError::Usb(io));
        let m = map(ctx("open", &s), &e);
        assert!(matches!(m, Error::PermissionDenied { .. }), "{m}");
        assert!(m.to_string().contains("plugdev"), "{m}");
        let e = DebugProbeError::ProbeCouldNotBeCreated(ProbeCreationError::CouldNotOpen);
        assert!(matches!(
            map(ctx("open", &s), &e),
            Error::PermissionDenied { .. }
        ));
    }

    #[test]
    fn timeouts_at_any_level_are_target_timeouts() {
        let s = sel();
        for e in [
            probe_rs::Error::Timeout,
            probe_rs::Error::Probe(DebugProbeError::Timeout),
            probe_rs::Error::Arm(ArmError::Timeout),
        ] {
            let m = map(ctx("halt", &s), &e);
            assert!(matches!(m, Error::TargetTimeout { op: "halt", .. }), "{m}");
        }
    }

    #[test]
    fn target_not_found_says_check_wiring() {
        let s = sel();
        let e = probe_rs::Error::Probe(DebugProbeError::TargetNotFound);
        let m = map(ctx("attach", &s), &e).to_string();
        assert!(m.contains("SWD wiring") && m.contains("RP2041"), "{m}");
    }

    #[test]
    fn image_problems_name_the_file_but_flash_failures_walk_on() {
        let s = sel();
        let e = FileDownloadError::NoLoadableSegments;
        let m = map(ctx("flash", &s), &e);
        assert!(matches!(m, Error::Image { .. }), "{m}");
        assert!(m.to_string().starts_with("cannot flash fw.elf"), "{m}");
        let e = FileDownloadError::Other(probe_rs::Error::Timeout);
        assert!(matches!(
            map(ctx("flash", &s), &e),
            Error::TargetTimeout { .. }
        ));
    }

    #[test]
    fn anything_else_keeps_its_text_and_op() {
        let s = sel();
        let e = probe_rs::Error::Other("the moon is wrong".into());
        let m = map(ctx("reset", &s), &e);
        assert!(matches!(m, Error::Failed { op: "reset", .. }), "{m}");
        assert!(m.to_string().contains("the moon is wrong"), "{m}");
    }
}
