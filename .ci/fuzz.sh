#!/usr/bin/env bash
# Fuzz every parser on a bounded budget (issue 15 item 10): otarig-fuzz runs each target from
# its committed corpus (tools/fuzz/corpus/) for FUZZ_SECONDS seconds (default 16; 11 targets,
# about 3 minutes) and fails on any panic, broken property, slow input (> 1 s), hang or abort.
# Failing inputs are written to tools/fuzz/crashes/<target>/ and printed in hex. The seed
# changes daily; FUZZ_SEED=<seed> reproduces a run (tools/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-16}"
seed="${FUZZ_SEED:-$(date -u +%Y%m%d)}"
cargo build --release -p otarig-fuzz
echo "otarig-fuzz: seed $seed, ${seconds}s per target (FUZZ_SEED=$seed .ci/fuzz.sh reproduces)"
"${CARGO_TARGET_DIR:-target}/release/otarig-fuzz" --seconds "$seconds" --seed "$seed"
