//! Links the bootloader at address 0 (SSRAM1, where QEMU's `-kernel` loads it and the core
//! fetches its vector table), below the app's RAM copy at 0x0010_0000.

const MEMORY_X: &str = "\
MEMORY
{
    /* The bootloader's code: up to the app's copy at 0x00100000. */
    FLASH : ORIGIN = 0x00000000, LENGTH = 1M
    /* SSRAM2/3, less the last 256 bytes kept across resets (otarig_qemu::reset). */
    RAM   : ORIGIN = 0x20000000, LENGTH = 4M - 256
}
";

fn main() {
    otarig_board_build::link(&otarig_board_build::out_dir(), MEMORY_X, &[]);
}
