//! Why a board reset, as it carries the reason across the reset: a tagged code in a word the
//! reset keeps (the Pico W: a watchdog scratch register; the QEMU board: a word of RAM no
//! linked section covers), next to a count of the boots since power-on.
//!
//! The board says where the words live ([`KeptWords`]) and what its hardware knows about the
//! reset ([`Cause`]); the bootloader's [`take`] decides the [`Reset`] the same way on both.

pub use ota_core::device::Reset;

/// Tag in the top 24 bits of the reason word; the reason's code is the low byte.
const TAG: u32 = 0x07A1_6000;

/// Two words that survive a reset (not a power-on) of the board.
pub trait KeptWords {
    /// The recorded reason (`0` or an untagged word: none).
    fn reason_word(&mut self) -> u32;
    fn set_reason_word(&mut self, word: u32);
    /// Boots since power-on.
    fn boots_word(&mut self) -> u32;
    fn set_boots_word(&mut self, boots: u32);
}

/// What the board's hardware says about the reset that just happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Power-on: the kept words mean nothing.
    PowerOn,
    /// The watchdog ran out (the hardware knows it without a recorded reason).
    WatchdogTimeout,
    /// A reset the board cannot tell apart: the recorded reason says, or else `reboot`.
    Recorded,
}

/// A reason's code in the low byte of the reason word.
fn code(r: Reset) -> u32 {
    match r {
        Reset::PowerOn => 1,
        Reset::Watchdog => 2,
        Reset::Panic => 3,
        Reset::Update => 4,
        Reset::Rollback => 5,
        Reset::Reboot => 6,
    }
}

fn from_code(code: u32) -> Reset {
    match code {
        1 => Reset::PowerOn,
        2 => Reset::Watchdog,
        3 => Reset::Panic,
        4 => Reset::Update,
        5 => Reset::Rollback,
        _ => Reset::Reboot,
    }
}

/// The reason word that records `why` for the next boot.
pub fn word(why: Reset) -> u32 {
    TAG | code(why)
}

/// `word` records a reason (it carries the tag).
pub fn is_recorded(word: u32) -> bool {
    word & !0xFF == TAG
}

/// Bootloader: why this boot happened. Clears the recorded reason (so a later unexplained
/// reset is not mistaken for it) and counts the boot.
pub fn take(words: &mut impl KeptWords, cause: Cause) -> Reset {
    let reason = match cause {
        Cause::PowerOn => Reset::PowerOn,
        Cause::WatchdogTimeout => Reset::Watchdog,
        Cause::Recorded => {
            let word = words.reason_word();
            if is_recorded(word) {
                from_code(word & 0xFF)
            } else {
                Reset::Reboot
            }
        }
    };
    words.set_reason_word(0);
    let boots = if reason == Reset::PowerOn {
        1
    } else {
        words.boots_word().saturating_add(1)
    };
    words.set_boots_word(boots);
    reason
}

/// Boots since power-on, this one included (counted by the bootloader).
pub fn boots(words: &mut impl KeptWords) -> u32 {
    words.boots_word().max(1)
}
