//! What a board is given when it is provisioned and what names it: the trusted release key in
//! the key region, ota-core's settings for the board, the device id reported at check-in.

use embedded_storage::nor_flash::ReadNorFlash;
use ota_core::device::{Config, Quirks};
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

/// ota-core settings for `board` on `layout`, trusting `public_key`.
pub fn config(board: &'static str, layout: Layout, public_key: [u8; 32]) -> Config<'static> {
    Config {
        layout,
        public_key,
        board,
        max_attempts: ota_core::device::DEFAULT_MAX_ATTEMPTS,
        quirks: Quirks::default(),
    }
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
