//! A panic anywhere in the rig drives every live relay to its safe state. (Its own test binary:
//! the panic hook is process-wide.)

use std::time::Duration;

use rig::backend::relay::{FakeOutput, RelayConfig, RelaySwitch, SafeState};
use rig::board::PowerSwitch;

#[test]
fn a_panic_applies_every_safe_state() {
    let fake = FakeOutput::default();
    let cfg = RelayConfig {
        active_low: true,
        min_off: Duration::ZERO,
        safe: SafeState::Off,
    };
    let mut relay = RelaySwitch::new(Box::new(fake.clone()), cfg).expect("relay");
    relay.on().expect("on");
    assert_eq!(fake.last(), Some(false), "active-low: on is low");
    let crashed = std::thread::spawn(|| panic!("simulated rig crash")).join();
    assert!(crashed.is_err());
    assert_eq!(
        fake.last(),
        Some(true),
        "safe off (high, active-low) after the panic"
    );
}
