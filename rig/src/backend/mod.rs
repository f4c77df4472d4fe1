//! Implementations of the board seams (`crate::board`): one file per backend.
//!
//! | backend    | seam                     | where it runs                    |
//! |------------|--------------------------|----------------------------------|
//! | `sim`      | power + console          | everywhere (sim-board process)   |
//! | `relay`    | power (GPIO relay)       | Raspberry Pi (rppal)             |
//! | `serial`   | console (serial port)    | any host with a serial port/pty  |
//! | `probe_rs` | probe (SWD debug probe)  | host with a CMSIS-DAP v2 probe   |
//! | `button`   | recovery button (GPIO)   | Raspberry Pi (rppal)             |
//! | `emulated` | relay line + probe       | everywhere (sim board as "hardware") |
//! | `qemu`     | power + probe (gdbstub)  | host with `qemu-system-arm`, `socat` |

pub mod button;
pub mod emulated;
pub mod gdb_remote;
pub mod probe_rs;
pub mod qemu;
pub mod relay;
pub mod serial;
pub mod sim;
