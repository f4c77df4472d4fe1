#!/usr/bin/env bash
# Runbook drills (issues 8 and 17): every runbook in scenarios/runbooks on a simulated fleet of
# 1,000 devices; each imported backend definition in scenarios/runbooks/imported (hawkBit, AWS
# IoT Jobs, Mender: a good release that completes, a bad one the backend's threshold stops);
# then the fleet benchmark: the good-release runbook (5 phases) at 10,000 and 100,000 devices,
# wall time and peak RSS printed (target for 100,000: <= 60 s, <= 2 GiB; a benchmark, not a
# timed test).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p rig
rig="$target/release/rig"

"$rig" rollout --runbook scenarios/runbooks --fleet 1000
# A misbehaving CDN (Range ignored on every image request, 503 + Retry-After on a fifth of
# them) against the whole 10,000-device fleet: must complete with 0 failed and 0 bricked.
"$rig" rollout --runbook scenarios/runbooks/cdn-faults.yaml
# The same runbooks' engineering phase on a bench of simulated boards, in real time. The
# crash-on-rev-b release must fail on the rev-B board; the rest must pass.
"$rig" rollout --runbook scenarios/runbooks --bench scenarios/bench.rollout.yaml

# Imported definitions, each with the drills of its sidecar (FILE.rig.yaml).
"$rig" rollout --from hawkbit scenarios/runbooks/imported/hawkbit-rollout.json
"$rig" rollout --from aws-iot-job scenarios/runbooks/imported/aws-iot-job.json
"$rig" rollout --from mender scenarios/runbooks/imported/mender-deployment.json
# A definition with a field the rig cannot honour is refused with its JSON path: exit 2.
bad=$(mktemp -d)
printf '{"name":"r","distributionSetId":1,"targetFilterQuery":"name==*","amountGroups":2,"startAt":1}\n' >"$bad/r.json"
cp scenarios/runbooks/imported/hawkbit-rollout.rig.yaml "$bad/r.rig.yaml"
set +e
"$rig" rollout --from hawkbit "$bad/r.json" 2>"$bad/err"
code=$?
set -e
grep -q '\$.startAt' "$bad/err" || { cat "$bad/err"; echo "no JSON path in the refusal"; exit 1; }
[[ $code == 2 ]] || { echo "unsupported field: exit $code, expected 2"; exit 1; }
rm -rf "$bad"

for n in 10000 100000; do
  out=$(mktemp)
  /usr/bin/env time -f '%e %M' -o "$out" \
    "$rig" rollout --runbook scenarios/runbooks/good-release.yaml --fleet "$n" --reports "$(mktemp -d)" >/dev/null
  read -r secs kib <"$out"
  rm -f "$out"
  mib=$((kib / 1024))
  echo "fleet benchmark: $n devices, 5-phase runbook: ${secs}s wall, peak RSS ${mib} MiB ($((kib * 1024 / n)) bytes/device)"
  if [[ $n == 100000 ]]; then
    awk -v s="$secs" -v m="$mib" 'BEGIN { if (s > 60 || m > 2048) print "fleet benchmark: over the target (60 s, 2 GiB) on this machine" }'
  fi
done
