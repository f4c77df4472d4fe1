//! The server library's errors.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors from the server library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to listen on {0} without a token: a non-loopback server needs --token so that its control API is not open to the network"
    )]
    NeedsToken(SocketAddr),
    #[error("image directory {path}: {source}")]
    Images {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image `{0}` not found in the image directory")]
    NoSuchImage(String),
    #[error("unknown release `{0}`")]
    NoSuchRelease(String),
    #[error("publishing needs a signing key (--key)")]
    NoKey,
    #[error("cannot build the manifest of `{file}`: {reason}")]
    Manifest { file: String, reason: String },
    /// A release name that is not 1 to [`MAX_RELEASE_NAME`] of `A-Z a-z 0-9 . _ -` with no
    /// leading dot (names appear in URLs and in reports).
    #[error(
        "release name {name:?}: {reason} (a release name is 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot)"
    )]
    BadReleaseName { name: String, reason: &'static str },
    /// [`ServerHandle::publish_image`]: the file's image header does not parse.
    #[error(
        "`{file}` is not a firmware image: {reason} (publish an image built by `rig image build` or signed by `rig image sign`)"
    )]
    NotAnImage { file: String, reason: String },
    /// An in-process connection was asked for while a fault rule acts on the socket itself
    /// (see [`crate::faults::FaultRule::needs_socket`]): serve over TCP instead.
    #[error(
        "fault rule `{0}` acts on the connection's socket (an RST, or bytes written past HTTP framing): an in-process connection cannot express it, use TCP"
    )]
    NeedsSocket(String),
    /// [`crate::InProcess::connect`] outside a Tokio runtime.
    #[error("an in-process connection needs a Tokio runtime to serve it on")]
    NoRuntime,
    /// A fault file or body problem: `file:line:col: message` with a snippet.
    #[error("{0}")]
    Faults(String),
}
