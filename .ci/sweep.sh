#!/usr/bin/env bash
# Power-cut sweeps of the update paths that matter, full and torn (issue 7), plus a process
# cross-check sample. Fails (exit 101) if any point bricks or ends off its expected outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
rig="${CARGO_TARGET_DIR:-target}/release/rig"
cargo build --release -p rig
for s in power-cut-writing-inactive-slot happy-path no-network-reverts forced-rollback-command; do
  "$rig" sweep power-cut --scenario "scenarios/$s.yaml" --torn
done
"$rig" sweep power-cut --scenario scenarios/happy-path.yaml --nested 2 --from 0 --to 200
"$rig" sweep power-cut --scenario scenarios/happy-path.yaml --replay process --process-every 50
