//! An app's crash on a real board: the `crash-in-init` drill (a real panic, so the board resets
//! with `reset=panic`) and the panic handler's line, `app: v<ver> crash: <why>`
//! (`firmware-under-test/CONSOLE.md`), which the drill's own line replaces.

use core::cell::Cell;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use critical_section::Mutex;
use ota_core::Version;

use crate::console::LineOut;

/// The running version, for the panic handler's line.
static VERSION: Mutex<Cell<Version>> = Mutex::new(Cell::new(Version::new(0, 0, 0)));
/// The crash drill announced itself already: the panic handler adds no line.
static DRILL_PANIC: AtomicBool = AtomicBool::new(false);

/// The app runs `version` (as soon as its header is read).
pub fn set_version(version: Version) {
    critical_section::with(|cs| VERSION.borrow(cs).set(version));
}

/// The `crash-in-init` drill: a real panic, so the board resets with `reset=panic`.
pub fn drill() -> ! {
    DRILL_PANIC.store(true, Ordering::Relaxed);
    panic!("drill: crash in app init");
}

/// The panic handler's line (none for the drill's panic, which announced itself).
pub fn report<O: LineOut>(info: &PanicInfo<'_>) {
    if !DRILL_PANIC.load(Ordering::Relaxed) {
        let v = critical_section::with(|cs| VERSION.borrow(cs).get());
        O::panic_line(format_args!("app: v{v} crash: {}", info.message()));
    }
}
