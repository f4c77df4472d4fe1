//! Why the device refused, failed or reverted something. Printed on the console
//! (`firmware-under-test/CONSOLE.md`), reported at check-in, and persisted (as a code).

use core::fmt;

/// A failure cause. The numeric value is the persisted code: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    Downgrade = 1,
    RollbackCounter = 2,
    SameVersion = 3,
    BadManifest = 4,
    BadManifestSignature = 5,
    TooLarge = 6,
    BadHeader = 7,
    MissingEntryPoint = 8,
    BadSignature = 9,
    BadHash = 10,
    WrongBoard = 11,
    ChunkHash = 12,
    ShortBody = 13,
    LongBody = 14,
    BadContentLength = 15,
    IgnoredRange = 16,
    BadContentRange = 17,
    Status = 18,
    Timeout = 19,
    Connect = 20,
    RetriesExhausted = 21,
    TrialExhausted = 22,
    PreviouslyRejected = 23,
    NoPrevious = 24,
    Flash = 25,
}

impl Reason {
    const ALL: [Self; 25] = [
        Self::Downgrade,
        Self::RollbackCounter,
        Self::SameVersion,
        Self::BadManifest,
        Self::BadManifestSignature,
        Self::TooLarge,
        Self::BadHeader,
        Self::MissingEntryPoint,
        Self::BadSignature,
        Self::BadHash,
        Self::WrongBoard,
        Self::ChunkHash,
        Self::ShortBody,
        Self::LongBody,
        Self::BadContentLength,
        Self::IgnoredRange,
        Self::BadContentRange,
        Self::Status,
        Self::Timeout,
        Self::Connect,
        Self::RetriesExhausted,
        Self::TrialExhausted,
        Self::PreviouslyRejected,
        Self::NoPrevious,
        Self::Flash,
    ];

    /// The persisted code back to a reason (`None` for 0 or unknown codes).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u8 == code)
    }

    /// The reason with this wire name (`bad-signature`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Downgrade => "downgrade",
            Self::RollbackCounter => "rollback-counter",
            Self::SameVersion => "same-version",
            Self::BadManifest => "bad-manifest",
            Self::BadManifestSignature => "bad-manifest-signature",
            Self::TooLarge => "too-large",
            Self::BadHeader => "bad-header",
            Self::MissingEntryPoint => "missing-entry-point",
            Self::BadSignature => "bad-signature",
            Self::BadHash => "bad-hash",
            Self::WrongBoard => "wrong-board",
            Self::ChunkHash => "chunk-hash",
            Self::ShortBody => "short-body",
            Self::LongBody => "long-body",
            Self::BadContentLength => "bad-content-length",
            Self::IgnoredRange => "ignored-range",
            Self::BadContentRange => "bad-content-range",
            Self::Status => "status",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::RetriesExhausted => "retries-exhausted",
            Self::TrialExhausted => "trial-exhausted",
            Self::PreviouslyRejected => "previously-rejected",
            Self::NoPrevious => "no-previous",
            Self::Flash => "flash",
        }
    }

    /// Failures that count against the release when a device reports them at check-in (a
    /// refusal for good, or bytes that never matched their signed hashes however often they
    /// were fetched), as opposed to network trouble.
    pub fn blames_release(self) -> bool {
        self.rejects_release() || self == Self::ChunkHash
    }

    /// Errors that refuse a release for good (it is never retried).
    pub fn rejects_release(self) -> bool {
        matches!(
            self,
            Self::Downgrade
                | Self::RollbackCounter
                | Self::TooLarge
                | Self::BadHeader
                | Self::MissingEntryPoint
                | Self::BadSignature
                | Self::BadHash
                | Self::WrongBoard
                | Self::TrialExhausted
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_release_itself_causes_counts_against_it() {
        use Reason::*;
        let refused_for_good = [
            Downgrade,
            RollbackCounter,
            TooLarge,
            BadHeader,
            MissingEntryPoint,
            BadSignature,
            BadHash,
            WrongBoard,
            TrialExhausted,
        ];
        for r in Reason::ALL {
            assert_eq!(r.rejects_release(), refused_for_good.contains(&r), "{r}");
            // Bytes that never match their signed chunk hashes blame the release too; network
            // trouble, a manifest that is not the release's (forged or garbled), and refusals
            // that say nothing about the release (same version, no previous) do not.
            assert_eq!(
                r.blames_release(),
                refused_for_good.contains(&r) || r == ChunkHash,
                "{r}"
            );
        }
    }

    #[test]
    fn codes_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r as u8), Some(r));
        }
        assert_eq!(Reason::from_code(0), None);
        assert_eq!(Reason::from_code(200), None);
    }
}
