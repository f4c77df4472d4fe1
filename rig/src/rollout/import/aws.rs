//! AWS IoT Jobs: the `CreateJob` request body (IoT API version 2015-05-28): the targets, the
//! rollout rate (`jobExecutionsRolloutConfig`), abort criteria (`abortConfig`), the
//! in-progress timeout (`timeoutConfig`) and retries (`jobExecutionsRetryConfig`). There are
//! no phases: the job notifies things at a rate and cancels itself on its abort criteria.

use std::collections::BTreeSet;
use std::path::Path;

use fake_server::PolicyConfig;
use fake_server::policy::{AbortCriterion, ExponentialRate, FailureType, RateConfig};

use super::json::{Node, Obj};
use super::targets::{FleetDevice, LABELS, Select, known_label};
use super::{Built, Imported, Term, Wave};
use crate::rollout::error::Result;

pub const API: &str = "AWS IoT CreateJob request (IoT API version 2015-05-28)";

const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<Select>,
    pub rate: RateConfig,
}

/// `arn:aws:iot:REGION:ACCOUNT:thing/NAME` (a fleet device id) or `...:thinggroup/NAME` (`fleet`
/// for every device, or a fleet label).
fn target(n: &Node<'_>) -> Result<Select> {
    let arn = n.str()?;
    let resource = arn
        .strip_prefix("arn:")
        .and_then(|r| r.splitn(5, ':').nth(4))
        .filter(|_| arn.starts_with("arn:aws"))
        .ok_or_else(|| n.error(format!("`{arn}` is not an IoT thing or thing group ARN")))?;
    if let Some(thing) = resource.strip_prefix("thing/") {
        return Ok(Select::Id {
            glob: thing.to_string(),
            equal: true,
        });
    }
    if let Some(group) = resource.strip_prefix("thinggroup/") {
        if group == "fleet" {
            return Ok(Select::All);
        }
        if known_label(group) {
            return Ok(Select::Label {
                label: group.to_string(),
                equal: true,
            });
        }
        return Err(n.error(format!(
            "thing group `{group}` does not map onto the simulated fleet (use `fleet` for every device, or a label: {LABELS})"
        )));
    }
    Err(n.error(format!(
        "`{resource}`: a job targets things (thing/NAME) or thing groups (thinggroup/NAME)"
    )))
}

fn failure_type(n: &Node<'_>, allowed: &[FailureType]) -> Result<FailureType> {
    let t = match n.str()? {
        "ALL" => FailureType::All,
        "FAILED" => FailureType::Failed,
        "REJECTED" => FailureType::Rejected,
        "TIMED_OUT" => FailureType::TimedOut,
        other => return Err(n.error(format!("`{other}` is not a failureType"))),
    };
    if !allowed.contains(&t) {
        return Err(n.error(format!("`{}` is not allowed here", t.as_str())));
    }
    Ok(t)
}

pub fn parse(root: &Obj<'_>) -> Result<Imported> {
    let name = root.req("jobId")?.str()?.to_string();
    if let Some(d) = root.opt("description") {
        d.str()?;
    }
    let mut targets = Vec::new();
    for t in root.req("targets")?.array()? {
        targets.push(target(&t)?);
    }
    if targets.is_empty() {
        return Err(root.error("targets", "at least one target"));
    }
    // The job document is what a device would run; the drill's devices run the sidecar's
    // release. Either form is accepted (and must be well formed).
    match (root.opt("document"), root.opt("documentSource")) {
        (Some(d), None) => {
            d.str()?;
        }
        (None, Some(d)) => {
            d.str()?;
        }
        (Some(d), Some(_)) => return Err(d.error("give document or documentSource, not both")),
        (None, None) => {
            return Err(root.error("document", "missing: give document or documentSource"));
        }
    }
    if let Some(t) = root.opt("targetSelection") {
        match t.str()? {
            "SNAPSHOT" | "CONTINUOUS" => {}
            other => return Err(t.error(format!("`{other}` is not SNAPSHOT or CONTINUOUS"))),
        }
    }
    if let Some(tags) = root.opt("tags") {
        tags.array()?;
    }
    root.refuse(
        "presignedUrlConfig",
        "devices download from the drill's server, not S3",
    )?;
    root.refuse("namespaceId", "only the default namespace is rehearsed")?;
    root.refuse(
        "jobTemplateArn",
        "give the job's own configuration, not a template",
    )?;
    root.refuse(
        "documentParameters",
        "managed job templates are not rehearsed",
    )?;
    root.refuse("schedulingConfig", "the drill starts the job at once")?;
    root.refuse(
        "destinationPackageVersions",
        "software package catalog is not rehearsed",
    )?;

    let mut terms = vec![Term {
        theirs: "job executions notified at a rate".into(),
        ours: "a device is offered the release at a check-in while the current minute's notification budget lasts; later check-ins hear of it otherwise (no phases)".into(),
    }];
    let mut rate = RateConfig {
        maximum_per_minute: 1000,
        exponential: None,
        abort: Vec::new(),
        in_progress_timeout_us: None,
        retries: Vec::new(),
        targets: None,
    };
    let mut wave = Vec::new();
    if let Some(n) = root.opt("jobExecutionsRolloutConfig") {
        let o = n.obj()?;
        if let Some(m) = o.opt("maximumPerMinute") {
            let v = m.u64()?;
            if !(1..=1000).contains(&v) {
                return Err(m.error("maximumPerMinute is 1..1000"));
            }
            rate.maximum_per_minute = v as u32;
        }
        if let Some(e) = o.opt("exponentialRate") {
            let eo = e.obj()?;
            let base = eo.req("baseRatePerMinute")?;
            let base_v = base.u64()?;
            if !(1..=1000).contains(&base_v) {
                return Err(base.error("baseRatePerMinute is 1..1000"));
            }
            let f = eo.req("incrementFactor")?;
            let factor = f.f64()?;
            if !(1.0..=5.0).contains(&factor) || (factor * 10.0).fract() != 0.0 {
                return Err(f.error("incrementFactor is 1..5 with at most one decimal"));
            }
            let c = eo.req("rateIncreaseCriteria")?;
            let co = c.obj()?;
            let notified = co
                .opt("numberOfNotifiedThings")
                .map(|n| n.u64())
                .transpose()?;
            let succeeded = co
                .opt("numberOfSucceededThings")
                .map(|n| n.u64())
                .transpose()?;
            if notified.is_some() == succeeded.is_some() {
                return Err(c.error(
                    "give exactly one of numberOfNotifiedThings or numberOfSucceededThings",
                ));
            }
            co.finish("rateIncreaseCriteria")?;
            eo.finish("exponentialRate")?;
            wave.push(format!(
                "exponentialRate {base_v}/min x{factor} every {} {}",
                notified.or(succeeded).unwrap_or(0),
                if notified.is_some() {
                    "notified"
                } else {
                    "succeeded"
                }
            ));
            rate.exponential = Some(ExponentialRate {
                base_per_minute: base_v as u32,
                increment_factor: factor,
                notified: notified.map(|n| n as u32),
                succeeded: succeeded.map(|n| n as u32),
            });
        }
        o.finish("jobExecutionsRolloutConfig")?;
    }
    wave.push(format!("maximumPerMinute {}", rate.maximum_per_minute));
    if let Some(n) = root.opt("abortConfig") {
        let o = n.obj()?;
        for c in o.req("criteriaList")?.array()? {
            let co = c.obj()?;
            let t = failure_type(
                &co.req("failureType")?,
                &[
                    FailureType::All,
                    FailureType::Failed,
                    FailureType::Rejected,
                    FailureType::TimedOut,
                ],
            )?;
            let a = co.req("action")?;
            if a.str()? != "CANCEL" {
                return Err(a.error("the only abort action is CANCEL"));
            }
            let th = co.req("thresholdPercentage")?;
            let threshold = th.f64()?;
            if !(0.0..=100.0).contains(&threshold) {
                return Err(th.error("thresholdPercentage is 0..100"));
            }
            let m = co.req("minNumberOfExecutedThings")?;
            let min = m.u64()?;
            if min == 0 {
                return Err(m.error("minNumberOfExecutedThings is at least 1"));
            }
            co.finish("an abort criterion")?;
            wave.push(format!(
                "abort {} >= {threshold}% of >= {min} -> CANCEL",
                t.as_str()
            ));
            rate.abort.push(AbortCriterion {
                failure_type: t,
                min_executed: min as u32,
                threshold_percent: threshold,
            });
        }
        o.finish("abortConfig")?;
        terms.push(Term {
            theirs: "abortConfig criteriaList: failureType, thresholdPercentage, minNumberOfExecutedThings -> CANCEL".into(),
            ours: "the server halts the rollout once at least that many devices were offered the release and failures of that type reach that share of them".into(),
        });
    }
    if let Some(n) = root.opt("timeoutConfig") {
        let o = n.obj()?;
        let t = o.req("inProgressTimeoutInMinutes")?;
        let minutes = t.u64()?;
        if !(1..=10080).contains(&minutes) {
            return Err(t.error("inProgressTimeoutInMinutes is 1..10080"));
        }
        o.finish("timeoutConfig")?;
        rate.in_progress_timeout_us = Some(minutes * MINUTE_MS * 1000);
        wave.push(format!("inProgressTimeout {minutes} min"));
        terms.push(Term {
            theirs: "timeoutConfig inProgressTimeoutInMinutes -> TIMED_OUT".into(),
            ours: "a device offered the release that has neither updated nor failed that long after the offer (silent, or stuck downloading) counts as TIMED_OUT".into(),
        });
    }
    if let Some(n) = root.opt("jobExecutionsRetryConfig") {
        let o = n.obj()?;
        for c in o.req("criteriaList")?.array()? {
            let co = c.obj()?;
            let t = failure_type(
                &co.req("failureType")?,
                &[FailureType::All, FailureType::Failed, FailureType::TimedOut],
            )?;
            let r = co.req("numberOfRetries")?;
            let retries = r.u64()?;
            if retries > 10 {
                return Err(r.error("numberOfRetries is 0..10"));
            }
            co.finish("a retry criterion")?;
            wave.push(format!("retry {} x{retries}", t.as_str()));
            rate.retries.push((t, retries as u32));
        }
        o.finish("jobExecutionsRetryConfig")?;
        terms.push(Term {
            theirs: "jobExecutionsRetryConfig numberOfRetries".into(),
            ours: "a device that failed (FAILED) is offered the release again that many times before it counts as failed; a TIMED_OUT device keeps its offer (it is never withdrawn)".into(),
        });
    }
    let base = rate
        .exponential
        .as_ref()
        .map_or(rate.maximum_per_minute, |e| e.base_per_minute);
    Ok(Imported {
        backend: super::Backend::AwsIotJob,
        file: root.file().to_path_buf(),
        waves: vec![Wave {
            name: name.clone(),
            terms: wave.join(", "),
        }],
        name,
        terms,
        // Long enough to notify a 100,000-device fleet at the base rate, plus a day.
        horizon_ms: (100_000 / u64::from(base.max(1))) * MINUTE_MS + 24 * 3_600_000,
        plan: super::Plan::Aws(Plan { targets, rate }),
    })
}

impl Plan {
    pub fn build(&self, _file: &Path, fleet: &[FleetDevice]) -> Result<Built> {
        let any = Select::Or(self.targets.clone());
        let targets: BTreeSet<String> = fleet
            .iter()
            .filter(|d| any.matches(d))
            .map(|d| d.id.clone())
            .collect();
        let targeted = targets.len() as u32;
        let all = targeted as usize == fleet.len();
        Ok(Built {
            policy: PolicyConfig::AwsIotRate(RateConfig {
                targets: (!all).then_some(targets),
                ..self.rate.clone()
            }),
            sizes: vec![targeted],
            targeted,
        })
    }
}
