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

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept words in memory; a power-on clears them.
    #[derive(Default)]
    struct Words {
        reason: u32,
        boots: u32,
    }

    impl KeptWords for Words {
        fn reason_word(&mut self) -> u32 {
            self.reason
        }
        fn set_reason_word(&mut self, word: u32) {
            self.reason = word;
        }
        fn boots_word(&mut self) -> u32 {
            self.boots
        }
        fn set_boots_word(&mut self, boots: u32) {
            self.boots = boots;
        }
    }

    #[test]
    fn a_recorded_reason_is_read_back_once_and_the_boots_are_counted() {
        let mut words = Words::default();
        assert_eq!(take(&mut words, Cause::PowerOn), Reset::PowerOn);
        assert_eq!(boots(&mut words), 1);
        // Every reason, through its code (`code` matches every variant).
        for why in (1..=6).map(from_code) {
            let before = words.boots;
            words.set_reason_word(word(why));
            assert!(is_recorded(words.reason));
            assert_eq!(take(&mut words, Cause::Recorded), why);
            assert_eq!(words.reason, 0, "the reason is cleared");
            // A recorded power-on starts the count again, like a real one.
            let counted = if why == Reset::PowerOn { 1 } else { before + 1 };
            assert_eq!(boots(&mut words), counted);
            // Nothing recorded since: an unexplained reset.
            assert_eq!(take(&mut words, Cause::Recorded), Reset::Reboot);
            assert_eq!(boots(&mut words), counted + 1);
        }
    }

    #[test]
    fn the_hardware_wins_over_the_recorded_word() {
        let mut words = Words {
            reason: word(Reset::Update),
            boots: 7,
        };
        assert_eq!(take(&mut words, Cause::WatchdogTimeout), Reset::Watchdog);
        assert_eq!(words.boots, 8);
        words.reason = word(Reset::Panic);
        assert_eq!(take(&mut words, Cause::PowerOn), Reset::PowerOn);
        assert_eq!((words.reason, words.boots), (0, 1));
    }

    #[test]
    fn untagged_words_are_no_reason() {
        for w in [0, 3, 0xFFFF_FFFF, 0x07A1_7003] {
            assert!(!is_recorded(w));
            let mut words = Words {
                reason: w,
                boots: 1,
            };
            assert_eq!(take(&mut words, Cause::Recorded), Reset::Reboot);
        }
        // The boot count saturates instead of wrapping to a power-on's 1.
        let mut words = Words {
            reason: 0,
            boots: u32::MAX,
        };
        take(&mut words, Cause::Recorded);
        assert_eq!(words.boots, u32::MAX);
    }
}
