//! `report.json`: the machine-readable report.
//!
//! Schema (version [`crate::verdict::RunReport::SCHEMA`]): the `RunReport` fields — `schema`,
//! `run_id`, `started` (RFC 3339 UTC), `duration` (`{secs, nanos}`), `rig_version`, `command`,
//! `seed`, and `scenarios[]` with `name`, `about`, `file`, `board`, `expected`, and
//! `attempts[]` (`index`, `status`: passed | failed | infra-error | skipped, `observed`,
//! `reason`, `duration`, `seed`, `resolved[]`, `replay`, `logs[]`, and `events[]` with
//! `t_us`, `board`, `source` (power | console | http | flash | probe | rig) and the source's
//! fields). Fields are only ever added, never renamed, within one schema number.

use super::Error;
use crate::verdict::RunReport;

pub fn render(report: &RunReport) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    write(report, &mut out)?;
    Ok(out)
}

/// Streams the report as JSON into `w`.
pub fn write(report: &RunReport, w: &mut dyn std::io::Write) -> Result<(), Error> {
    serde_json::to_writer(w, report).map_err(|e| Error::Encode {
        what: "report.json",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_fields_consumers_use() {
        let report = crate::report::sample::report();
        let v: serde_json::Value =
            serde_json::from_slice(&render(&report).expect("json")).expect("parse");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["scenarios"][0]["name"], "happy-path");
        assert_eq!(v["scenarios"][1]["attempts"][0]["status"], "failed");
        assert_eq!(v["scenarios"][2]["attempts"][0]["status"], "infra-error");
        assert_eq!(
            v["scenarios"][0]["attempts"][0]["events"][0]["source"],
            "power"
        );
        assert!(v["scenarios"][0]["attempts"][0]["events"][0]["t_us"].is_u64());
    }
}
