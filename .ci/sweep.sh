#!/usr/bin/env bash
# Power-cut sweeps of the paths that matter, every op cut clean and torn in every tear shape
# (issues 7 and 20): update, slot write, failed trial (a drill, a server that never accepts the
# trial's check-in), rollback, refusals (after and before the download). One more with unstable
# bits, nested cuts, and a process cross-check sample (torn points included). Each sweep derives
# its path from the scenario and fails (exit 101) if any point bricks or ends off the
# scenario's `outcome:`.
set -euo pipefail
cd "$(dirname "$0")/.."
rig="${CARGO_TARGET_DIR:-target}/release/rig"
cargo build --release -p rig
for s in power-cut-writing-inactive-slot happy-path no-network-reverts forced-rollback-command \
  checkin-timeout-rollback bad-signature downgrade-refused; do
  "$rig" sweep power-cut --scenario "scenarios/$s.yaml" --torn
done
"$rig" sweep power-cut --scenario scenarios/happy-path.yaml --torn --unstable-bits
"$rig" sweep power-cut --scenario scenarios/happy-path.yaml --nested 2 --from 0 --to 200
"$rig" sweep power-cut --scenario scenarios/happy-path.yaml --torn --replay process --process-every 150
