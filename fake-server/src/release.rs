//! Release names and the image directory: what may be published and served.

use std::path::PathBuf;

use crate::Error;

/// Longest release name.
pub const MAX_RELEASE_NAME: usize = 64;

/// Checks a release name: 1 to [`MAX_RELEASE_NAME`] of `A-Z a-z 0-9 . _ -`, no leading dot.
///
/// ```
/// assert!(fake_server::check_release_name("v2.1-rc_1").is_ok());
/// assert!(fake_server::check_release_name("..").is_err());
/// assert!(fake_server::check_release_name("v2/../x").is_err());
/// ```
pub fn check_release_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_RELEASE_NAME {
        "longer than 64 bytes"
    } else if name.starts_with('.') {
        "starts with a dot"
    } else if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        "has a character other than A-Z a-z 0-9 . _ -"
    } else {
        return Ok(());
    };
    // A hostile name is shown shortened (the error may travel back in a response).
    let mut shown: String = name.chars().take(MAX_RELEASE_NAME).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    Err(Error::BadReleaseName {
        name: shown,
        reason,
    })
}

/// Resolves an image file name to a regular file inside `root`, or `None`: no separators, no
/// dot files, no NUL, and no symlink that leads out of the directory.
pub(crate) fn resolve_image(root: &std::path::Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.starts_with('.') {
        return None;
    }
    let root = std::fs::canonicalize(root).ok()?;
    let path = std::fs::canonicalize(root.join(name)).ok()?;
    (path.starts_with(&root) && path.is_file()).then_some(path)
}
