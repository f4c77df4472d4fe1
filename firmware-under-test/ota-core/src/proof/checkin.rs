//! What a board tells the server at check-in: the slot it runs from, its state (trial,
//! confirmed, reverted), the trial attempt or the boots since power-on, and its last error.
//! The server's rollout decisions (and the fleet's health figures) rest on these.

use super::bench::{Board, image, record, v};
use crate::Reason;
use crate::checkin::{DeviceState, Slot};
use crate::keys;
use crate::state::Mode;

#[test]
fn a_check_in_reports_slot_state_count_and_last_error_as_booted() {
    let key = keys::generate();
    let mut b = Board::new(&key);
    b.put_slot(0, &image(&key, v(1), 1));
    b.put_slot(1, &image(&key, v(2), 1));
    // A trial of v2 in slot B, second attempt.
    let mut st = record(5, 1, 1);
    st.mode = Mode::Trial;
    st.attempts = 1;
    st.previous = Some(0);
    b.put_record(1, &st);
    let boot = b.boot().0.expect("boots");
    let req = boot.checkin_request("dev-1", 17);
    assert_eq!(req.slot, Slot::B);
    assert_eq!(req.state, DeviceState::Trial);
    assert_eq!(req.boot_count, 2, "during a trial: the attempt");
    assert_eq!(req.version.as_str(), "2.0.0");
    assert_eq!(req.device.as_str(), "dev-1");
    assert_eq!(req.last_error, None);
    // Confirmed v1 in slot A after a revert, with an error to report.
    let mut st = record(9, 0, 1);
    st.reverted = true;
    st.last_error = Some(Reason::TrialExhausted);
    b.put_record(0, &st);
    b.put_record(1, &record(8, 1, 1));
    let boot = b.boot().0.expect("boots");
    let req = boot.checkin_request("dev-1", 17);
    assert_eq!(req.slot, Slot::A);
    assert_eq!(req.state, DeviceState::Reverted);
    assert_eq!(
        req.boot_count, 17,
        "outside a trial: the boots since power-on"
    );
    assert_eq!(req.last_error.as_deref(), Some("trial-exhausted"));
    // Confirmed and never reverted.
    b.put_record(1, &record(10, 1, 1));
    let boot = b.boot().0.expect("boots");
    let req = boot.checkin_request("dev-1", 3);
    assert_eq!(
        (req.slot, req.state, req.boot_count),
        (Slot::B, DeviceState::Confirmed, 3)
    );
}
