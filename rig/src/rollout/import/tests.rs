//! The importers on the shipped examples and on definitions they must refuse, each refusal
//! naming the JSON path.

use std::path::{Path, PathBuf};

use fake_server::PolicyConfig;

use super::*;
use crate::rollout::runbook::Trouble;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/runbooks/imported")
        .join(name)
}

fn fleet(n: u32) -> Vec<FleetDevice> {
    (0..n)
        .map(|i| FleetDevice {
            id: crate::rollout::device_id(i),
            trouble: match i % 20 {
                0 => Some(Trouble::RevB),
                1 | 2 => Some(Trouble::BadWifi),
                _ => None,
            },
        })
        .collect()
}

/// The error for `json` as `backend`: (JSON path, message).
fn refused(backend: Backend, json: &str) -> (String, String) {
    match parse(backend, json, Path::new("d.json")) {
        Err(Error::Import { path, message, .. }) => (path, message),
        Err(other) => panic!("expected an import error, got {other}"),
        Ok(_) => panic!("accepted: {json}"),
    }
}

#[test]
fn the_examples_import_with_their_drills() {
    for (backend, file, waves) in [
        (Backend::Hawkbit, "hawkbit-rollout.json", 4),
        (Backend::AwsIotJob, "aws-iot-job.json", 1),
        (Backend::Mender, "mender-deployment.json", 3),
    ] {
        let books = load(backend, &example(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(books.len(), 2, "{file}: a good and a bad drill");
        for rb in &books {
            let imp = rb.imported.as_ref().expect("imported");
            assert_eq!(imp.backend, backend);
            assert_eq!(rb.phases.len(), waves, "{file}");
            let built = imp
                .build(&fleet(1000))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(built.targeted, 1000, "{file}: every device is a target");
            assert_eq!(built.sizes.iter().sum::<u32>(), 1000, "{file}");
            built
                .policy
                .validate()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

#[test]
fn hawkbit_groups_take_their_share_of_the_remaining_matching_targets() {
    let books = load(Backend::Hawkbit, &example("hawkbit-rollout.json")).expect("example");
    let imp = books[0].imported.as_ref().expect("imported");
    let built = imp.build(&fleet(1000)).expect("build");
    // canary: 2% of the 850 good devices (ceil); early: 10% of the rest; wide: 50% of what
    // is left; everyone: the rest.
    assert_eq!(built.sizes, vec![17, 99, 442, 442]);
    let PolicyConfig::HawkbitGroups(g) = &built.policy else {
        panic!("hawkBit groups")
    };
    assert!(
        g.assignment.iter().filter(|(_, w)| **w == 0).all(|(d, _)| {
            let i: u32 = d.trim_start_matches("fleet-").parse().expect("id");
            i % 20 > 2
        }),
        "the canary group holds only good devices"
    );
    assert_eq!(g.groups[0].success_threshold, 0.95);
    assert_eq!(g.groups[1].error_threshold, Some(0.03));
    // Groups that leave targets out are refused, as hawkBit does.
    let imp = parse(
        Backend::Hawkbit,
        r#"{"name":"r","distributionSetId":1,"targetFilterQuery":"name==*","groups":[{"name":"a","targetPercentage":50}]}"#,
        Path::new("d.json"),
    )
    .expect("parses");
    let e = imp
        .build(&fleet(10))
        .expect_err("half the targets in no group");
    assert!(
        e.to_string()
            .contains("d.json: $.groups: the groups leave 5 of 10"),
        "{e}"
    );
}

#[test]
fn unsupported_fields_are_refused_with_their_json_path() {
    const HB: &str = r#""name":"r","distributionSetId":1,"targetFilterQuery":"name==*""#;
    for (backend, json, path, says) in [
        (Backend::Hawkbit, format!("{{{HB},\"amountGroups\":2,\"startAt\":1}}"), "$.startAt", "cannot be honoured"),
        (Backend::Hawkbit, format!("{{{HB},\"amountGroups\":2,\"colour\":1}}"), "$.colour", "unknown or unsupported field"),
        (Backend::Hawkbit, format!("{{{HB},\"groups\":[{{\"name\":\"a\",\"successAction\":{{\"action\":\"PAUSE\"}}}}]}}"), "$.groups[0].successAction.action", "NEXTGROUP"),
        (Backend::Hawkbit, format!("{{{HB},\"amountGroups\":2,\"errorCondition\":{{\"condition\":\"RATIO\",\"expression\":\"5\"}}}}"), "$.errorCondition.condition", "THRESHOLD"),
        (Backend::Hawkbit, r#"{"name":"r","distributionSetId":1,"targetFilterQuery":"attribute.os==linux","amountGroups":2}"#.to_string(), "$.targetFilterQuery", "does not map onto the simulated fleet"),
        (Backend::Hawkbit, format!("{{{HB},\"amountGroups\":2,\"dynamic\":true}}"), "$.dynamic", "never grows"),
        (Backend::AwsIotJob, r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/fleet"],"document":"{}","presignedUrlConfig":{}}"#.to_string(), "$.presignedUrlConfig", "cannot be honoured"),
        (Backend::AwsIotJob, r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/fleet"],"document":"{}","abortConfig":{"criteriaList":[{"failureType":"FAILED","action":"STOP","thresholdPercentage":5,"minNumberOfExecutedThings":1}]}}"#.to_string(), "$.abortConfig.criteriaList[0].action", "CANCEL"),
        (Backend::AwsIotJob, r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/fleet"],"document":"{}","jobExecutionsRolloutConfig":{"exponentialRate":{"baseRatePerMinute":1,"incrementFactor":2,"rateIncreaseCriteria":{}}}}"#.to_string(), "$.jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria", "exactly one"),
        (Backend::AwsIotJob, r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/gateways"],"document":"{}"}"#.to_string(), "$.targets[0]", "does not map onto the simulated fleet"),
        (Backend::AwsIotJob, r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/fleet"],"document":"{}","jobExecutionsRetryConfig":{"criteriaList":[{"failureType":"REJECTED","numberOfRetries":1}]}}"#.to_string(), "$.jobExecutionsRetryConfig.criteriaList[0].failureType", "not allowed"),
        (Backend::Mender, r#"{"name":"d","artifact_name":"a","all_devices":true,"update_control_map":{}}"#.to_string(), "$.update_control_map", "cannot be honoured"),
        (Backend::Mender, r#"{"name":"d","artifact_name":"a","all_devices":true,"phases":[{"batch_size":50,"start_ts":"2026-01-01T00:00:00Z"},{"start_ts":"yesterday"}]}"#.to_string(), "$.phases[1].start_ts", "RFC 3339"),
        (Backend::Mender, r#"{"name":"d","artifact_name":"a","all_devices":true,"phases":[{"batch_size":50,"start_ts":"2026-01-01T00:00:00Z"},{"batch_size":20,"start_ts":"2026-01-01T01:00:00Z"}]}"#.to_string(), "$.phases", "add up to 70%"),
        (Backend::Mender, r#"{"name":"d","artifact_name":"a","all_devices":true,"phases":[{"batch_size":50,"start_ts":"2026-01-02T00:00:00Z"},{"start_ts":"2026-01-01T00:00:00Z"}]}"#.to_string(), "$.phases[1]", "before the previous"),
    ] {
        let (p, message) = refused(backend, &json);
        assert_eq!(p, path, "{json}: {message}");
        assert!(message.contains(says), "{json}: {message}");
    }
    match parse(Backend::Mender, "{\n  \"name\": ,\n}", Path::new("d.json")) {
        Err(Error::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn mender_timestamps_and_batches() {
    let node_for = |s: &str| serde_json::Value::String(s.into());
    let ts = |s: &str| {
        let v = node_for(s);
        mender::timestamp(&json::Node {
            file: Path::new("d.json"),
            path: "$".into(),
            value: &v,
        })
        .expect(s)
    };
    assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
    assert_eq!(ts("2020-07-06T15:04:49.114+0000"), 1_594_047_889_114);
    assert_eq!(ts("2020-07-06T17:04:49.114+02:00"), 1_594_047_889_114);
    let books = load(Backend::Mender, &example("mender-deployment.json")).expect("example");
    let built = books[0]
        .imported
        .as_ref()
        .expect("imported")
        .build(&fleet(1000))
        .expect("build");
    assert_eq!(built.sizes, vec![50, 250, 700]);
    let PolicyConfig::MenderBatches(b) = &built.policy else {
        panic!("batches")
    };
    let hours: Vec<u64> = b
        .batches
        .iter()
        .map(|b| b.start_us / 3_600_000_000)
        .collect();
    assert_eq!(hours, vec![0, 6, 24]);
    assert_eq!(b.retries, 1);
    assert!(
        b.abort.is_some(),
        "the sidecar's halt is the release manager's abort"
    );
}

#[test]
fn a_sidecar_cannot_override_the_backends_own_halt() {
    let imp = parse(
        Backend::AwsIotJob,
        r#"{"jobId":"j","targets":["arn:aws:iot:r:1:thinggroup/fleet"],"document":"{}"}"#,
        Path::new("j.json"),
    )
    .expect("job");
    let e = sidecar::parse(
        "halt: { error_rate: 2% }\ndrills:\n  - { name: a, release: { from: v1, to: v2 }, expect: { outcome: completed } }\n",
        Path::new("j.rig.yaml"),
        &imp,
    )
    .expect_err("AWS decides its own aborts");
    assert!(e.to_string().starts_with("j.rig.yaml:1:"), "{e}");
    assert!(e.to_string().contains("abortConfig"), "{e}");
    let e = sidecar::parse(
        "drills:\n  - { name: a, release: { from: v1, to: v2 }, expect: { outcome: halted, halted_in: [nope] } }\n",
        Path::new("j.rig.yaml"),
        &imp,
    )
    .expect_err("no such wave");
    assert!(e.to_string().contains("no wave named `nope`"), "{e}");
}
