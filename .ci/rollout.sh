#!/usr/bin/env bash
# Runbook drills (issue 8): every runbook in scenarios/runbooks on a simulated fleet of 1,000
# devices, then the fleet benchmark: the good-release runbook (5 phases) at 1,000 and 10,000
# devices, with wall time and peak RSS printed (target: 10,000 devices in <= 60 s, <= 2 GiB).
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

for n in 1000 10000; do
  out=$(mktemp)
  /usr/bin/env time -f '%e %M' -o "$out" \
    "$rig" rollout --runbook scenarios/runbooks/good-release.yaml --fleet "$n" >/dev/null
  read -r secs kib <"$out"
  rm -f "$out"
  mib=$((kib / 1024))
  echo "fleet benchmark: $n devices, 5-phase runbook: ${secs}s wall, peak RSS ${mib} MiB"
  if [[ $n == 10000 ]]; then
    awk -v s="$secs" -v m="$mib" 'BEGIN { if (s > 60 || m > 2048) { print "fleet benchmark over target (60 s, 2 GiB)"; exit 1 } }'
  fi
done
