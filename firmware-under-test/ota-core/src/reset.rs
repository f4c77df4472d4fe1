//! Why a board (re)started: the bootloader prints it, the app asks for it.

/// Why a board (re)started, as its first boot line says it
/// (`boot: otarig-boot ... reset=<why>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    PowerOn,
    Watchdog,
    Panic,
    Update,
    Rollback,
    /// A forced reset that did not say why.
    Reboot,
}

impl Reset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PowerOn => "power-on",
            Self::Watchdog => "watchdog",
            Self::Panic => "panic",
            Self::Update => "update",
            Self::Rollback => "rollback",
            Self::Reboot => "reboot",
        }
    }
}
