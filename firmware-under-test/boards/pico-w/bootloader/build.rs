//! Links the bootloader at the start of flash: boot2 in the first 256 bytes, then the
//! bootloader itself, which must end before the key region at 0x10010000.

const MEMORY_X: &str = "\
MEMORY
{
    /* Stage-2 loader, first 256 bytes of flash (checksummed by the boot ROM). */
    BOOT2 : ORIGIN = 0x10000000, LENGTH = 0x100
    /* The bootloader: up to the key region at 0x10010000. */
    FLASH : ORIGIN = 0x10000100, LENGTH = 0x10000 - 0x100
    RAM   : ORIGIN = 0x20000000, LENGTH = 256K
}
";

fn main() {
    otarig_board_build::link(&otarig_board_build::out_dir(), MEMORY_X, &["link-rp.x"]);
}
