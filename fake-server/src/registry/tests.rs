//! The registry without HTTP: check-ins in, answers and counters out, on a hand-driven clock.

use std::collections::BTreeMap;

use bytes::Bytes;
use ota_core::Version;
use ota_core::checkin::{CheckinRequest, Command, DeviceState, Slot, bounded};

use super::*;
use crate::policy::{
    AbortCriterion, Batch, BatchesConfig, ExponentialRate, FailureType, Group, GroupsConfig,
    HaltPolicy, RateConfig,
};

const MIN: u64 = 60_000_000;

fn registry(policy: PolicyConfig) -> Registry {
    let mut r = Registry::new(policy);
    r.publish(Release {
        info: ReleaseInfo {
            name: "v2".into(),
            file: "v2.bin".into(),
            version: "2.0.0".into(),
            rollback_counter: 1,
            size: 100,
            sha256: String::new(),
            chunk_size: 4096,
            chunks: 1,
        },
        version: Version::new(2, 0, 0),
        manifest: Bytes::new(),
    });
    r
}

fn ci(device: &str, version: &str, state: DeviceState, err: Option<&str>) -> CheckinRequest {
    CheckinRequest {
        device: bounded(device),
        version: bounded(version),
        slot: Slot::A,
        state,
        boot_count: 1,
        last_error: err.map(bounded),
    }
}

/// Checks in on v1; returns the command.
fn on_v1(r: &mut Registry, d: &str, now: u64) -> Command {
    r.checkin(&ci(d, "1.0.0", DeviceState::Confirmed, None), now)
        .response
        .command
}

fn updated(r: &mut Registry, d: &str, now: u64) -> Option<Halt> {
    r.checkin(&ci(d, "2.0.0", DeviceState::Confirmed, None), now)
        .halt
}

fn reverted(r: &mut Registry, d: &str, now: u64) -> Option<Halt> {
    r.checkin(
        &ci(d, "1.0.0", DeviceState::Reverted, Some("trial-exhausted")),
        now,
    )
    .halt
}

fn rejected(r: &mut Registry, d: &str, now: u64) -> Option<Halt> {
    r.note_download(d, DownloadOf::Release("v2"));
    r.checkin(
        &ci(d, "1.0.0", DeviceState::Confirmed, Some("bad-signature")),
        now,
    )
    .halt
}

fn assignment(groups: &[usize]) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    let mut n = 0;
    for (g, size) in groups.iter().enumerate() {
        for _ in 0..*size {
            out.insert(format!("d{n}"), g as u8);
            n += 1;
        }
    }
    out
}

#[test]
fn records_carry_ota_core_enums() {
    let mut r = registry(PolicyConfig::default());
    assert_eq!(on_v1(&mut r, "d0", 0), Command::Update);
    let d = r.device("d0").expect("recorded");
    assert_eq!(
        (d.state, d.slot, d.last_command),
        (DeviceState::Confirmed, Slot::A, Command::Update)
    );
    r.queue("d0", Command::Rollback);
    assert_eq!(on_v1(&mut r, "d0", 1), Command::Rollback);
    assert_eq!(r.device("d0").expect("d0").last_command, Command::Rollback);
}

/// Phases that halt once 30% of at least 5 offered devices failed.
fn halting_at_30_percent_of_5() -> Registry {
    registry(PolicyConfig::Phases(Rollout {
        halt: Some(HaltPolicy {
            error_rate: 0.3,
            min_sample: 5,
            max_rollbacks: None,
        }),
        ..Rollout::default()
    }))
}

#[test]
fn phases_halt_on_the_error_rate_and_stop_offering() {
    let mut r = halting_at_30_percent_of_5();
    for i in 0..5 {
        assert_eq!(on_v1(&mut r, &format!("d{i}"), 0), Command::Update);
    }
    assert!(reverted(&mut r, "d0", 1).is_none(), "1 of 5 = 20% < 30%");
    let s = r.phase_stats("v2")[4];
    assert_eq!((s.offered, s.failed, s.rolled_back), (5, 1, 1));
    assert!(
        reverted(&mut r, "d0", 2).is_none(),
        "the same failure counts once"
    );
    let halt = rejected(&mut r, "d1", 3).expect("2 of 5 = 40% >= 30%");
    assert_eq!((halt.phase, halt.failed, halt.offered), (4, 2, 5));
    assert!(r.rollout().paused && r.halted().is_some());
    assert_eq!(on_v1(&mut r, "d9", 2), Command::None, "paused: no offers");
}

/// Deferred judging (a simulated fleet's ticks): check-ins of one tick are answered as if
/// none of them had been judged, whatever their order; the tick's judgement halts.
#[test]
fn deferred_judging_halts_at_the_tick_not_within_it() {
    let mut r = halting_at_30_percent_of_5();
    r.defer_judging(true);
    for i in 0..5 {
        assert_eq!(on_v1(&mut r, &format!("d{i}"), 0), Command::Update);
    }
    assert!(reverted(&mut r, "d0", 1).is_none());
    assert!(
        rejected(&mut r, "d1", 1).is_none(),
        "not judged within the tick"
    );
    assert_eq!(
        on_v1(&mut r, "d5", 1),
        Command::Update,
        "the tick's later check-ins are not told about a halt nobody has judged yet"
    );
    let halt = r.judge_pending(1).expect("2 of 6 = 33% >= 30%");
    assert_eq!((halt.phase, halt.failed, halt.offered), (4, 2, 6));
    assert!(r.rollout().paused);
    assert_eq!(on_v1(&mut r, "d9", 2), Command::None, "paused: no offers");
    assert!(r.judge_pending(2).is_none(), "nothing new to judge");
}

#[test]
fn hawkbit_groups_start_on_success_and_pause_on_errors() {
    let cfg = GroupsConfig {
        groups: vec![
            Group {
                name: "canary".into(),
                size: 2,
                success_threshold: 1.0,
                error_threshold: Some(0.5),
            },
            Group {
                name: "rest".into(),
                size: 4,
                success_threshold: 0.9,
                error_threshold: Some(0.5),
            },
        ],
        assignment: assignment(&[2, 4]),
    };
    let mut r = registry(PolicyConfig::HawkbitGroups(cfg));
    assert_eq!(on_v1(&mut r, "d2", 0), Command::None, "group 2 not started");
    assert_eq!(on_v1(&mut r, "d0", 0), Command::Update);
    assert_eq!(on_v1(&mut r, "d1", 0), Command::Update);
    assert!(updated(&mut r, "d0", 1).is_none());
    assert_eq!(on_v1(&mut r, "d2", 1), Command::None, "1 of 2 < 100%");
    assert!(updated(&mut r, "d1", 2).is_none());
    assert_eq!(r.policy_status(2).wave, 1, "NEXTGROUP");
    assert_eq!(on_v1(&mut r, "d2", 3), Command::Update);
    assert_eq!(on_v1(&mut r, "d3", 3), Command::Update);
    assert!(reverted(&mut r, "d2", 4).is_none(), "1 of 4 < 50%");
    let halt = rejected(&mut r, "d3", 5).expect("2 of 4 in error");
    assert!(
        halt.reason.contains("group `rest`") && halt.reason.contains("PAUSE"),
        "{}",
        halt.reason
    );
    let s = r.phase_stats("v2")[1];
    assert_eq!((s.failed, s.rolled_back, s.rejected), (2, 1, 1));
    assert_eq!(on_v1(&mut r, "d4", 6), Command::None, "paused");
}

#[test]
fn aws_rate_limits_notifications_per_minute_and_aborts() {
    let cfg = RateConfig {
        maximum_per_minute: 8,
        exponential: Some(ExponentialRate {
            base_per_minute: 2,
            increment_factor: 2.0,
            notified: Some(4),
            succeeded: None,
        }),
        abort: vec![AbortCriterion {
            failure_type: FailureType::Rejected,
            min_executed: 6,
            threshold_percent: 10.0,
        }],
        in_progress_timeout_us: None,
        retries: Vec::new(),
        targets: None,
    };
    let mut r = registry(PolicyConfig::AwsIotRate(cfg));
    let offered = |r: &mut Registry, from: usize, to: usize, now: u64| {
        (from..to)
            .filter(|i| on_v1(r, &format!("d{i}"), now) == Command::Update)
            .count()
    };
    assert_eq!(offered(&mut r, 0, 10, 0), 2, "base rate 2/min");
    // The 4th notification doubles the rate at once: 2 more this minute.
    assert_eq!(offered(&mut r, 10, 20, MIN), 4, "2 + 2 after the increase");
    // 8 notified: 8/min (maximumPerMinute) from the 2nd of this minute.
    assert_eq!(
        offered(&mut r, 20, 30, 2 * MIN),
        8,
        "up to maximumPerMinute"
    );
    assert_eq!(offered(&mut r, 30, 40, 3 * MIN), 8, "capped");
    assert_eq!(
        on_v1(&mut r, "d0", 2 * MIN + 1),
        Command::Update,
        "already notified: no budget needed"
    );
    assert!(rejected(&mut r, "d0", 4 * MIN).is_none(), "1 of 22 < 10%");
    assert!(
        reverted(&mut r, "d1", 4 * MIN).is_none(),
        "FAILED is not REJECTED"
    );
    assert!(rejected(&mut r, "d10", 4 * MIN).is_none(), "2 of 22 < 10%");
    let halt = rejected(&mut r, "d11", 4 * MIN).expect("3 of 22 >= 10%");
    assert!(halt.reason.contains("REJECTED"), "{}", halt.reason);
}

#[test]
fn aws_abort_waits_for_the_minimum_and_counts_timeouts() {
    let cfg = RateConfig {
        maximum_per_minute: 100,
        exponential: None,
        abort: vec![AbortCriterion {
            failure_type: FailureType::TimedOut,
            min_executed: 4,
            threshold_percent: 50.0,
        }],
        in_progress_timeout_us: Some(10 * MIN),
        retries: vec![(FailureType::Failed, 1)],
        targets: Some(["d0", "d1", "d2", "d3"].map(String::from).into()),
    };
    let mut r = registry(PolicyConfig::AwsIotRate(cfg));
    for i in 0..4 {
        assert_eq!(on_v1(&mut r, &format!("d{i}"), 0), Command::Update);
    }
    assert_eq!(
        on_v1(&mut r, "d4", 0),
        Command::None,
        "not a target of the job"
    );
    // d0 fails once: retried (offered again), not counted.
    assert!(reverted(&mut r, "d0", MIN).is_none());
    assert_eq!(r.phase_stats("v2")[0].failed, 0);
    assert_eq!(r.phase_stats("v2")[0].retried, 1);
    assert!(updated(&mut r, "d1", MIN).is_none());
    // d2, d3 stay silent; d1 checks in after the timeout: the two silent ones timed out.
    let halt = updated(&mut r, "d1", 11 * MIN).expect("2 of 4 timed out = 50%");
    assert!(halt.reason.contains("TIMED_OUT"), "{}", halt.reason);
    assert_eq!(
        r.phase_stats("v2")[0].timed_out,
        3,
        "d0 never finished either"
    );
}

#[test]
fn mender_batches_open_at_start_ts_up_to_max_devices() {
    let cfg = BatchesConfig {
        batches: vec![
            Batch {
                name: "phase 1".into(),
                start_us: 0,
                batch_size: 20,
            },
            Batch {
                name: "phase 2".into(),
                start_us: 60 * MIN,
                batch_size: 80,
            },
        ],
        assignment: assignment(&[1, 4]),
        max_devices: Some(3),
        retries: 0,
        abort: None,
    };
    let mut r = registry(PolicyConfig::MenderBatches(cfg));
    assert_eq!(
        on_v1(&mut r, "d1", 0),
        Command::None,
        "phase 2 starts later"
    );
    assert_eq!(on_v1(&mut r, "d0", 0), Command::Update);
    assert!(
        reverted(&mut r, "d0", 1).is_none(),
        "Mender never halts by itself"
    );
    assert_eq!(on_v1(&mut r, "d0", 2), Command::None, "failed, no retries");
    assert_eq!(on_v1(&mut r, "d1", 60 * MIN), Command::Update);
    assert_eq!(on_v1(&mut r, "d2", 60 * MIN), Command::Update);
    assert_eq!(
        on_v1(&mut r, "d3", 60 * MIN),
        Command::None,
        "max_devices 3"
    );
    assert!(r.policy_status(60 * MIN).all_open);
}

#[test]
fn the_kill_switch_pauses_and_rolls_back() {
    let mut r = registry(PolicyConfig::default());
    on_v1(&mut r, "d0", 0);
    updated(&mut r, "d0", 1);
    assert_eq!(r.kill_switch("v2").expect("known"), ["d0"]);
    assert!(r.rollout().paused);
    assert_eq!(
        r.checkin(&ci("d0", "2.0.0", DeviceState::Confirmed, None), 2)
            .response
            .command,
        Command::Rollback
    );
    assert!(r.kill_switch("v9").is_err());
    // A device that finished installing after the switch is sent back too.
    on_v1(&mut r, "d1", 3);
    assert_eq!(
        r.checkin(&ci("d1", "2.0.0", DeviceState::Confirmed, None), 4)
            .response
            .command,
        Command::Rollback,
        "late installer"
    );
    assert_eq!(
        on_v1(&mut r, "d1", 5),
        Command::None,
        "back on v1: nothing to do"
    );
}

/// A queued command survives a lost answer: it is sent again until a check-in shows it was
/// acted on, and a device that keeps refusing it is told a bounded number of times.
#[test]
fn a_queued_command_is_sent_until_acted_on_or_three_times() {
    let mut r = registry(PolicyConfig::Phases(Rollout {
        paused: true,
        ..Rollout::default()
    }));
    let on_v2 = |r: &mut Registry, now| {
        r.checkin(&ci("d0", "2.0.0", DeviceState::Confirmed, None), now)
            .response
            .command
    };
    r.queue("d0", Command::Rollback);
    assert_eq!(on_v2(&mut r, 1), Command::Rollback);
    assert_eq!(on_v2(&mut r, 2), Command::Rollback, "the answer was lost");
    let back = r.checkin(&ci("d0", "1.0.0", DeviceState::Reverted, None), 3);
    assert_eq!(back.response.command, Command::None, "acted on: not again");
    assert_eq!(on_v2(&mut r, 4), Command::None, "and forgotten");

    r.queue("d0", Command::Rollback);
    let sent: Vec<Command> = (5..10).map(|t| on_v2(&mut r, t)).collect();
    assert_eq!(
        sent,
        [
            Command::Rollback,
            Command::Rollback,
            Command::Rollback,
            Command::None,
            Command::None
        ],
        "a device that refuses is told three times"
    );
}
