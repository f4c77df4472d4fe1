//! embassy-time's driver on the Cortex-M SysTick: a 1 kHz tick (25 MHz core clock / 25,000)
//! counted in RAM, and embassy's timer queue checked at every tick.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// Core clock of the MPS2 AN385.
const CORE_HZ: u32 = 25_000_000;
/// embassy-time's tick rate (feature `tick-hz-1_000`).
const TICK_HZ: u32 = 1000;

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    /// The tick at which the queue next needs attention.
    next: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    next: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl SysTickDriver {
    fn expire(&self, cs: CriticalSection<'_>, now: u64) {
        let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
        self.next.borrow(cs).set(next);
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            if self.queue.borrow_ref_mut(cs).schedule_wake(at, waker) {
                // Wakes `waker` at once if `at` has passed.
                self.expire(cs, self.ticks.borrow(cs).get());
            }
        });
    }
}

/// Starts the tick.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let now = DRIVER.ticks.borrow(cs).get() + 1;
        DRIVER.ticks.borrow(cs).set(now);
        if now >= DRIVER.next.borrow(cs).get() {
            DRIVER.expire(cs, now);
        }
    });
}
