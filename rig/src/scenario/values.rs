//! Values no one should be able to write: the bounds scenario and runbook files are held to.
//!
//! Each check runs while the file is parsed (a `deserialize_with` function, or a bounded
//! `Deserialize` impl), so a refused value is reported at its own `file:line:col`, by
//! `rig check`, before anything runs. A value is refused when it would fail later (an image
//! larger than a slot, a phase past the server's table, a check-in interval of zero that never
//! lets simulated time advance) or makes no sense (`withdraw: false`, `repeat: 0`, a device
//! state the firmware never reports).

use std::time::Duration;

use ota_core::checkin::DeviceState;
use serde::{Deserialize, Deserializer, de::Error as _};

use super::Dur;

/// The most a scenario, runbook or bench file may hold: real ones are a few KiB.
pub const MAX_FILE_LEN: u64 = 4 * 1024 * 1024;

/// The longest regular expression a scenario may give (console lines are short).
pub const MAX_PATTERN_LEN: usize = 4096;

/// The compiled size a regular expression may reach (`regex::RegexBuilder::size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 1024 * 1024;

/// The longest scenario or runbook `name` (it names report folders).
pub const MAX_NAME_LEN: usize = 100;

/// The largest image body a slot holds: the slot minus the image header.
pub const MAX_IMAGE_BODY: u32 =
    ota_core::layout::SIM.slot_size - ota_core::image::HEADER_LEN as u32;

/// The shortest fleet check-in interval: the simulation advances in check-ins, and a
/// shorter interval would only make a drill run (nearly) forever.
pub const MIN_CHECKIN_INTERVAL: Duration = Duration::from_secs(1);

/// `text` cut to at most `max` characters, with `…` when it was cut: errors never echo a huge
/// value whole.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// Why `name` cannot name a scenario or runbook, if it cannot.
pub fn check_name(field: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!(
            "{field}: must not be empty (leave it out to use the file name)"
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "{field}: `{}` is longer than {MAX_NAME_LEN} characters",
            clip(name, 40)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '/' | '\\'))
    {
        return Err(format!(
            "{field}: `{}` contains {c:?}; a name names report folders, so it cannot hold a path separator or a control character",
            clip(name, 40).escape_debug()
        ));
    }
    Ok(())
}

/// Why an image body of `size` bytes cannot be built, if it cannot.
pub fn check_image_size(field: &str, size: u32) -> Result<(), String> {
    if size > MAX_IMAGE_BODY {
        return Err(format!(
            "{field}: {size} bytes does not fit a slot: an image body is at most {MAX_IMAGE_BODY} bytes (the {} KiB slot minus the {}-byte header)",
            ota_core::layout::SIM.slot_size / 1024,
            ota_core::image::HEADER_LEN
        ));
    }
    Ok(())
}

/// Compiles a regular expression with bounded length and compiled size; the error never
/// echoes a long pattern whole.
pub fn regex(text: &str) -> Result<regex::Regex, String> {
    if text.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "regular expression `{}` is {} bytes, more than the {MAX_PATTERN_LEN}-byte limit",
            clip(text, 40),
            text.len()
        ));
    }
    regex::RegexBuilder::new(text)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let shown = e.to_string();
            if text.chars().count() <= 80 {
                format!("bad regular expression: {shown}")
            } else {
                // The parse error repeats the pattern with a caret; keep only its last line.
                let why = shown.lines().last().unwrap_or_default().trim();
                format!("bad regular expression `{}`: {why}", clip(text, 40))
            }
        })
}

/// A required text that is not blank (`about`).
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    Ok(s)
}

/// An optional text that, when given, is not blank.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d).map(Some)
}

/// An optional `name`: see [`check_name`].
pub fn name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_name("name", &s).map_err(D::Error::custom)?;
    Ok(Some(s))
}

fn from_one<'de, D: Deserializer<'de>>(d: D, why: &str) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(d)? {
        Some(0) => Err(D::Error::custom(why)),
        n => Ok(n),
    }
}

/// `http: { request: N }`: the N-th request, counted from 1.
pub fn request<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    from_one(
        d,
        "request: requests are counted from 1 (the first is `request: 1`)",
    )
}

/// `repeat: N`: at least one attempt.
pub fn repeat<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    from_one(d, "repeat: 0 would run nothing: give 1 or more")
}

/// An HTTP status code, 100..=599.
pub fn http_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match Option::<u16>::deserialize(d)? {
        Some(s) if !(100..=599).contains(&s) => Err(D::Error::custom(format!(
            "status {s} is not an HTTP status code (100 to 599)"
        ))),
        s => Ok(s),
    }
}

/// A state the firmware reports at check-in (`ota_core::checkin::DeviceState`).
pub fn device_state<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DeviceState>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let known = [
        DeviceState::Confirmed,
        DeviceState::Trial,
        DeviceState::Updating,
        DeviceState::Reverted,
    ];
    if let Some(state) = known.iter().find(|k| k.as_str() == s) {
        Ok(Some(*state))
    } else {
        Err(D::Error::custom(format!(
            "state `{}` is not one a device reports: use {}",
            clip(&s, 40),
            known.map(DeviceState::as_str).join(", ")
        )))
    }
}

/// A scenario image's body size (`size:`).
pub fn image_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let size = Option::<u32>::deserialize(d)?;
    if let Some(n) = size {
        check_image_size("size", n).map_err(D::Error::custom)?;
    }
    Ok(size)
}

/// A runbook fleet's image body size (`fleet.image_size`).
pub fn fleet_image_size<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    check_image_size("image_size", n).map_err(D::Error::custom)?;
    Ok(n)
}

/// `withdraw: true`: the only meaningful value.
pub fn withdraw<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    if bool::deserialize(d)? {
        Ok(true)
    } else {
        Err(D::Error::custom(
            "withdraw: false would still withdraw the release: write `withdraw: true`, or leave the step out",
        ))
    }
}

/// A rollout phase of the server's percentage table (`rollout.phase`).
pub fn rollout_phase<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let phase = Option::<u8>::deserialize(d)?;
    if let Some(p) = phase {
        fake_server::Rollout {
            phase: p,
            ..fake_server::Rollout::default()
        }
        .validate()
        .map_err(D::Error::custom)?;
    }
    Ok(phase)
}

fn positive(d: Dur) -> Result<Dur, String> {
    if d.0 < Duration::from_millis(1) {
        Err(format!("{d} is no time at all: give at least 1ms"))
    } else {
        Ok(d)
    }
}

/// A duration of at least a millisecond (`timeout`, `trial_window`, `success.within`).
pub fn positive_dur<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    positive(Dur::deserialize(d)?).map_err(D::Error::custom)
}

/// An optional [`positive_dur`].
pub fn opt_positive_dur<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
    positive_dur(d).map(Some)
}

/// A fleet's check-in interval: at least [`MIN_CHECKIN_INTERVAL`].
pub fn checkin_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let dur = Dur::deserialize(d)?;
    if dur.0 < MIN_CHECKIN_INTERVAL {
        return Err(D::Error::custom(format!(
            "checkin_interval {dur} is too short: simulated time advances by check-ins, give at least {}",
            Dur(MIN_CHECKIN_INTERVAL)
        )));
    }
    Ok(dur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééééé", 2), "éé…");
    }

    #[test]
    fn names() {
        assert!(check_name("name", "power-cut 50%").is_ok());
        for bad in [
            "",
            "  ",
            "../x",
            "a\\b",
            "a\nb",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn image_sizes_stop_at_the_slot() {
        assert!(check_image_size("size", MAX_IMAGE_BODY).is_ok());
        assert_eq!(MAX_IMAGE_BODY, 512 * 1024 - 256);
        for bad in [MAX_IMAGE_BODY + 1, 16 * 1024 * 1024 + 1, u32::MAX] {
            let e = check_image_size("size", bad).expect_err("too big");
            assert!(e.contains("does not fit a slot"), "{e}");
        }
    }

    #[test]
    fn regexes_are_bounded_and_errors_short() {
        assert!(regex("^app: v1\\.0\\.0 running").is_ok());
        let huge = "a".repeat(10 * 1024 * 1024);
        let t = std::time::Instant::now();
        let e = regex(&huge).expect_err("too long");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(
            e.len() < 200 && e.contains("more than the 4096-byte limit"),
            "{e}"
        );
        // Short, but compiles to more than the size limit.
        let e = regex("\\w{200}{200}").expect_err("too big compiled");
        assert!(e.contains("size limit"), "{e}");
        // A long pattern with a syntax error: the pattern is not echoed whole.
        let long = format!("({}", "b".repeat(3000));
        let e = regex(&long).expect_err("unclosed group");
        assert!(e.len() < 200 && e.contains("unclosed group"), "{e}");
    }
}
