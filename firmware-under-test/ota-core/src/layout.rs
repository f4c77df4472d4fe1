//! Where things live in flash.
//!
//! The simulated board copies the Raspberry Pi Pico's 2 MiB flash with 4 KiB sectors and 256 B
//! pages:
//!
//! | offset     | size    | region                                                     |
//! |-----------:|--------:|------------------------------------------------------------|
//! | `0x000000` | 64 KiB  | bootloader (code on a real board; unused by the sim)       |
//! | `0x010000` | 4 KiB   | OTP: trusted public key, written once at the factory       |
//! | `0x011000` | 4 KiB   | state record copy 0                                        |
//! | `0x012000` | 4 KiB   | state record copy 1                                        |
//! | `0x020000` | 512 KiB | slot A                                                     |
//! | `0x0A0000` | 512 KiB | slot B                                                     |
//! | `0x120000` | 512 KiB | factory image: written once at the factory, read by a factory reset |
//!
//! An image (header + body) starts at the beginning of its slot (and of the factory region).

/// A flash map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub flash_size: u32,
    pub sector: u32,
    pub page: u32,
    pub otp: u32,
    pub state: [u32; 2],
    pub slots: [u32; 2],
    pub slot_size: u32,
    /// The factory image (`slot_size` bytes): never written by an update; a factory reset
    /// copies it back into slot A.
    pub factory: u32,
}

/// The simulated board's (and the Pico W's) flash map.
pub const SIM: Layout = Layout {
    flash_size: 2 * 1024 * 1024,
    sector: 4096,
    page: 256,
    otp: 0x01_0000,
    state: [0x01_1000, 0x01_2000],
    slots: [0x02_0000, 0x0A_0000],
    slot_size: 512 * 1024,
    factory: 0x12_0000,
};

impl Layout {
    /// Start of a slot (0 = A, 1 = B).
    pub fn slot(&self, index: u8) -> u32 {
        self.slots[usize::from(index & 1)]
    }

    /// Which slot contains `addr`, if any.
    pub fn slot_of(&self, addr: u32) -> Option<u8> {
        (0..2u8).find(|&i| addr >= self.slot(i) && addr < self.slot(i) + self.slot_size)
    }
}

/// Slot name as printed on the console.
pub fn slot_name(index: u8) -> &'static str {
    if index & 1 == 0 { "a" } else { "b" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_belongs_to_the_slot_holding_it() {
        let l = SIM;
        let [a, b] = l.slots;
        assert_eq!((l.slot(0), l.slot(1), l.slot(2)), (a, b, a));
        assert_eq!(l.slot_of(0), None, "the bootloader");
        assert_eq!(l.slot_of(a - 1), None);
        assert_eq!(l.slot_of(a), Some(0));
        assert_eq!(l.slot_of(a + l.slot_size - 1), Some(0));
        assert_eq!(l.slot_of(b), Some(1));
        assert_eq!(l.slot_of(b + l.slot_size - 1), Some(1));
        assert_eq!(l.slot_of(b + l.slot_size), None, "the factory image");
        assert_eq!(l.slot_of(l.factory + 10), None);
        assert_eq!((slot_name(0), slot_name(1), slot_name(2)), ("a", "b", "a"));
    }
}
