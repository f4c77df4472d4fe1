//! What a board is given when it is provisioned and what names it: the trusted release key in
//! the key region, the device id reported at check-in.

use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::layout::Layout;

/// Marker in front of the trusted key in the key region.
pub const KEY_MAGIC: [u8; 4] = *b"OTPK";

/// Reads the trusted release key from the key region of `layout` (`OTPK` and 32 key bytes).
/// `None` when the region holds no key.
pub fn read_trusted_key<F: ReadNorFlash>(flash: &mut F, layout: &Layout) -> Option<[u8; 32]> {
    let mut buf = [0u8; 36];
    flash.read(layout.otp, &mut buf).ok()?;
    if buf[..4] != KEY_MAGIC {
        return None;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&buf[4..]);
    Some(key)
}

/// A device id: `prefix`, then `bytes` in lowercase hex (what does not fit is left out).
pub fn hex_id(prefix: &str, bytes: &[u8]) -> heapless::String<24> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = heapless::String::new();
    let _ = id.push_str(prefix);
    for b in bytes {
        let _ = id.push(char::from(HEX[usize::from(b >> 4)]));
        let _ = id.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use embedded_storage::nor_flash::{ErrorType, NorFlashErrorKind};
    use ota_core::layout::SIM;

    use super::*;

    /// A read-only flash of `len` bytes of 0xFF with `at` written at `offset`.
    struct Rom(std::vec::Vec<u8>);

    impl Rom {
        fn new(offset: u32, at: &[u8]) -> Self {
            let mut bytes = std::vec![0xFF; SIM.flash_size as usize];
            bytes[offset as usize..offset as usize + at.len()].copy_from_slice(at);
            Self(bytes)
        }
    }

    impl ErrorType for Rom {
        type Error = NorFlashErrorKind;
    }

    impl ReadNorFlash for Rom {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
            let start = offset as usize;
            let src = self
                .0
                .get(start..start + bytes.len())
                .ok_or(NorFlashErrorKind::OutOfBounds)?;
            bytes.copy_from_slice(src);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn the_key_follows_its_marker_in_the_key_region() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut region = std::vec::Vec::from(KEY_MAGIC);
        region.extend_from_slice(&key);
        assert_eq!(
            read_trusted_key(&mut Rom::new(SIM.otp, &region), &SIM),
            Some(key)
        );
        // Erased, or the key without its marker: no key.
        assert_eq!(read_trusted_key(&mut Rom::new(SIM.otp, &[]), &SIM), None);
        assert_eq!(read_trusted_key(&mut Rom::new(SIM.otp, &key), &SIM), None);
    }

    #[test]
    fn a_device_id_is_its_prefix_and_lowercase_hex() {
        assert_eq!(
            hex_id("pico-", &[0x00, 0x00, 0x00, 0x00, 0xC0, 0xFF, 0xEE, 0x01]).as_str(),
            "pico-00000000c0ffee01"
        );
        assert_eq!(
            hex_id("qemu-", &[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]).as_str(),
            "qemu-525400123456"
        );
        assert_eq!(hex_id("pico-unknown", &[]).as_str(), "pico-unknown");
    }
}
