//! `junit.xml`: one testcase per scenario. Firmware failures are `<failure>`, rig or hardware
//! problems are `<error>` (never blamed on the firmware), repeats report their pass rate.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Error, event_text};
use crate::verdict::{RunReport, Status};

pub fn render(report: &RunReport) -> Result<Vec<u8>, Error> {
    let mut suite = TestSuite::new("otarig");
    suite.set_time(report.duration);
    for sc in &report.scenarios {
        let (passed, total) = sc.pass_rate();
        let worst = sc.attempts.iter().find(|a| a.status != Status::Passed);
        let status = match (sc.status(), worst) {
            (Status::Passed, _) => TestCaseStatus::success(),
            (Status::Skipped, _) => {
                let mut st = TestCaseStatus::skipped();
                if let Some(why) = &sc.skipped {
                    st.set_message(why.clone());
                }
                st
            }
            (s, a) => {
                let kind = if s == Status::InfraError {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut st = TestCaseStatus::non_success(kind);
                let reason = a.and_then(|a| a.reason.clone()).unwrap_or_default();
                let first = reason.lines().next().unwrap_or_default().to_string();
                st.set_message(format!("{passed}/{total} attempts passed: {first}"));
                st.set_type(if s == Status::InfraError {
                    "infra-error"
                } else {
                    "firmware-failure"
                });
                if let Some(a) = a {
                    let tail: Vec<String> = a
                        .events
                        .iter()
                        .rev()
                        .take(30)
                        .rev()
                        .map(|e| format!("{:9.3}s {}", e.t.as_secs_f64(), event_text(&e.kind)))
                        .collect();
                    st.set_description(format!(
                        "{reason}\n\nreplay: {}\nresolved: {}\n\ntimeline tail:\n{}",
                        a.replay,
                        a.resolved.join("; "),
                        tail.join("\n")
                    ));
                }
                st
            }
        };
        let mut case = TestCase::new(sc.name.clone(), status);
        case.set_classname(format!("otarig.{}", sc.board));
        case.set_time(sc.duration());
        let attempts: Vec<String> = sc
            .attempts
            .iter()
            .map(|a| {
                format!(
                    "attempt {}: {:?} observed={} in {:.2}s seed={}",
                    a.index,
                    a.status,
                    a.observed.map_or("-".to_string(), |o| o.to_string()),
                    a.duration.as_secs_f64(),
                    a.seed
                )
            })
            .collect();
        case.set_system_out(format!(
            "expected {}; {}\n{}",
            sc.expected,
            sc.about,
            attempts.join("\n")
        ));
        suite.add_test_case(case);
    }
    let mut out = Report::new("otarig");
    out.set_time(report.duration);
    out.add_test_suite(suite);
    out.to_string()
        .map(String::into_bytes)
        .map_err(|e| Error::Encode {
            what: "junit.xml",
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_errors_and_passes_are_kept_apart() {
        let xml = String::from_utf8(render(&crate::report::sample::report()).expect("xml"))
            .expect("utf8");
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert_eq!(xml.matches("<error").count(), 1, "{xml}");
        assert!(xml.contains("firmware-failure"));
        assert!(xml.contains("replay: cargo run"));
    }
}
