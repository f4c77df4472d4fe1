#!/usr/bin/env bash
# Mutation testing of ota-core (issue 19): every plausible bug in the code that decides whether a
# board bricks must fail some check. docs/mutants.md explains the oracle, the figures and each
# exclusion or equivalent mutant.
#
#   .ci/mutants.sh                 the full run (every mutant of ota-core); -j / --shard k/n
#   .ci/mutants.sh --in-diff [REV] only mutants on the lines ota-core changed since REV
#                                  (default HEAD~1), under a time cap (MUTANTS_CAP_SECS, 1200)
#   .ci/mutants.sh --stage2-self-test
#                                  proves stage 2 judges: a copy of the tree without the image
#                                  signature check must be caught (rig run exits 101), one with a
#                                  harmless change (a documented equivalent mutant) must not
#
# The oracle has two stages. Stage 1 is cargo-mutants with ota-core's own tests (unit tests,
# the in-process power-cut sweeps, tests/*.rs): seconds per mutant. Stage 2 takes each mutant
# stage 1 missed, applies it to a copy of the tree and runs the rig's scenario suite on the sim
# board (`rig run`), so a mutant only the rig notices counts as caught. A mutant both stages
# miss fails the run unless docs/mutants.md lists it as equivalent.
#
# Prints generated / caught (stage 1, stage 2) / unviable / timeout / equivalent / missed and
# the wall time; exits 0 only with 0 missed. Needs cargo-mutants (CI: `cargo install --locked
# cargo-mutants --version 27.1.0`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

jobs=2
shard=
in_diff=
base=HEAD~1
self_test=
while (($#)); do
  case $1 in
    -j) jobs=$2; shift 2 ;;
    --shard) shard=$2; shift 2 ;;
    --in-diff)
      in_diff=1
      if [[ ${2:-} && $2 != -* ]]; then base=$2; shift; fi
      shift ;;
    --stage2-self-test) self_test=1; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "mutants.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Stage 2's judge: builds the rig in the tree at $1 (a copy with one change applied) and plays
# the scenario suite on the sim board there; sets `suite` to rig run's exit code (101: a
# scenario failed, the change is caught; 0: every scenario passed, it is missed; anything
# else — a build error, an infra error, the timeout — decides nothing). Log: $2.
stage2_target=${MUTANTS_STAGE2_TARGET:-${CARGO_TARGET_DIR:-$root/target}/mutants-stage2}
stage2_suite() {
  local work=$1 log=$2
  set +e
  (cd "$work" && CARGO_TARGET_DIR=$stage2_target cargo build -q -p rig) >"$log" 2>&1 &&
    (cd "$work" && timeout 900 "$stage2_target/debug/rig" run \
      --reports "$(dirname "$log")/stage2-reports") >>"$log" 2>&1
  suite=$?
  set -e
}

# A copy of the tracked tree at $1.
copy_tree() {
  mkdir -p "$1"
  git ls-files -z | xargs -0 cp --parents -t "$1"
}

if [[ -n $self_test ]]; then
  # Stage 2 has nothing to judge on a run where stage 1 catches everything, so it is proven
  # here on two changes of ota-core applied by hand: a plausible bug (the image signature
  # check removed: only the suite's bad-signature scenario notices it end to end) must be
  # caught, and a harmless change (`+ with *` in MAX_FETCH_URL, an equivalent mutant of
  # docs/mutants.md: a larger buffer) must not. Builds the rig twice (incrementally).
  st=${MUTANTS_OUT:-$root/target/mutants}/stage2-self-test
  rm -rf "$st"
  copy_tree "$st/tree"
  unset CARGO_TARGET_DIR
  start=$(date +%s)
  # $1 file, $2 text, $3 replacement: exactly one occurrence, or the self-test is stale.
  change() {
    python3 - "$st/tree/$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"stage 2 self-test: {old!r} is not in {path} exactly once: update the self-test")
open(path, "w").write(text.replace(old, new))
PY
  }
  failed=0
  judge() { # $1 name, $2 wanted exit code, $3 file, $4 text, $5 replacement
    cp "$st/tree/$3" "$st/original"
    change "$3" "$4" "$5"
    diff -u --label "a/$3" --label "b/$3" "$st/original" "$st/tree/$3" >"$st/$1.diff" || true
    local t0=$(date +%s)
    stage2_suite "$st/tree" "$st/$1.log"
    cp "$st/original" "$st/tree/$3"
    local verdict
    case $suite in
      101) verdict="caught (rig run exit 101)" ;;
      0) verdict="not caught (rig run exit 0)" ;;
      *) verdict="no verdict (exit $suite: a build or infra error, $st/$1.log)" ;;
    esac
    printf '  %-18s %-48s %4ds  %s\n' "$1" "$verdict" $(( $(date +%s) - t0 )) \
      "$( ((suite == $2)) && echo ok || echo WRONG)"
    ((suite == $2)) || failed=1
  }
  echo "stage 2 self-test (the scenario suite on a changed copy of the tree, $st):"
  judge no-signature 101 firmware-under-test/ota-core/src/device/mod.rs \
    'if !h.verify_signature(&self.cfg.public_key) {' \
    'if false && !h.verify_signature(&self.cfg.public_key) {'
  judge harmless 0 firmware-under-test/ota-core/src/updater/mod.rs \
    'pub const MAX_FETCH_URL: usize = MAX_URL_LEN + 2;' \
    'pub const MAX_FETCH_URL: usize = MAX_URL_LEN * 2;'
  wall=$(( $(date +%s) - start ))
  printf '  wall time %dm%02ds\n' $((wall / 60)) $((wall % 60))
  # In CI the mutated rig's build (~1 GB) is scratch: the disk is needed by the stages after it.
  [[ ${CI:-} == true ]] && rm -rf "$stage2_target"
  if ((failed)); then
    echo "stage 2 self-test FAILED: stage 2 cannot be trusted to judge mutants" >&2
    exit 1
  fi
  echo "stage 2 self-test passed"
  exit 0
fi

want=27.1.0
have=$(cargo mutants --version 2>/dev/null | awk '{print $2}') || true
if [[ $have != "$want" ]]; then
  echo "mutants.sh: needs cargo-mutants $want (have: ${have:-none}):" >&2
  echo "  cargo install --locked cargo-mutants --version $want" >&2
  exit 2
fi

out=${MUTANTS_OUT:-$root/target/mutants}
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)

args=(mutants -p ota-core --no-shuffle -j "$jobs" -o "$out" --colors never)
[[ -n $shard ]] && args+=(--shard "$shard")
cap=
if [[ -n $in_diff ]]; then
  git diff "$base" -- firmware-under-test/ota-core/src >"$out/in-diff.patch"
  if [[ ! -s $out/in-diff.patch ]]; then
    echo "mutants: ota-core unchanged since $base: nothing to test"
    exit 0
  fi
  args+=(--in-diff "$out/in-diff.patch")
  cap=${MUTANTS_CAP_SECS:-1200}
  # A change that only deletes lines has no mutants of its own, but a deleted check must still
  # fail its test: ota-core's tests run first, on the tree as it is.
  if ! cargo test -q -p ota-core >"$out/tests.log" 2>&1; then
    grep -E '^test .* FAILED$|panicked at' "$out/tests.log" | head -20 >&2
    echo "mutants: ota-core's tests fail on this change (a check removed is a check a test" \
      "proved): $out/tests.log" >&2
    exit 1
  fi
fi

# Each scratch build gets its own target directory (cargo-mutants copies the tree); a shared
# CARGO_TARGET_DIR would serialise and mix them. Stage 2 builds the mutated rig in a target
# directory of its own (its binaries must never replace the real ones): $stage2_target.
unset CARGO_TARGET_DIR
set +e
if [[ -n $cap ]]; then
  timeout --foreground "$cap" cargo "${args[@]}"
else
  cargo "${args[@]}"
fi
code=$?
set -e
# cargo-mutants: 0 all caught, 2 some missed, 3 some timed out; anything else is a failure to
# run (baseline tests failing, a build error, our time cap: 124).
case $code in
  0 | 2 | 3) ;;
  124)
    echo "mutants: time cap of ${cap}s reached before every mutant of the diff ran;" \
      "split the change or run .ci/mutants.sh in full" >&2
    exit 1 ;;
  *) echo "mutants: cargo mutants failed to run (exit $code)" >&2; exit 1 ;;
esac

m=$out/mutants.out
count() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(o["summary"]==sys.argv[2] for o in d["outcomes"]))' "$m/outcomes.json" "$1"; }
# Stage-1 survivors: name, file, diff (tab-separated).
python3 - "$m/outcomes.json" >"$out/stage1-missed.tsv" <<'PY'
import json, sys
for o in json.load(open(sys.argv[1]))["outcomes"]:
    if o["summary"] == "MissedMutant":
        mu = o["scenario"]["Mutant"]
        print(mu["name"], mu["file"], o["diff_path"], sep="\t")
PY
# Equivalent mutants are listed in docs/mutants.md by name without line:column (the first
# column of its "Equivalent mutants" table), so that they survive edits elsewhere in a file;
# a `|` in a name is escaped there (`\|`) so that the table holds.
grep -oE '^\| `[^`]+: [^`]+` \|' docs/mutants.md 2>/dev/null | sed -E 's/^\| `(.*)` \|$/\1/; s/\\\|/|/g' \
  | sort -u >"$out/equivalent.keys" || true
key() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }

# Stage 2: the scenario suite on a copy of the tree with one stage-1 survivor applied.
caught2=0
equivalent=0
missed=0
: >"$out/missed.txt"
: >"$out/caught-by-suite.txt"
if [[ -s $out/stage1-missed.tsv ]]; then
  work=$out/stage2
  copy_tree "$work"
  while IFS=$'\t' read -r name file diff; do
    if grep -qxF "$(key <<<"$name")" "$out/equivalent.keys"; then
      equivalent=$((equivalent + 1))
      echo "$name" >>"$out/equivalent.txt"
      continue
    fi
    echo "stage 2: $name"
    patch -s -p0 -d "$work" "$file" <"$m/$diff"
    stage2_suite "$work" "$out/stage2.log"
    # Undecided (a build error, an infra error, the timeout) counts as missed.
    if ((suite == 101)); then
      echo "$name" >>"$out/caught-by-suite.txt"
      caught2=$((caught2 + 1))
    else
      ((suite == 0)) || echo "  (the suite could not judge it: exit $suite, $out/stage2.log)"
      echo "$name" >>"$out/missed.txt"
      missed=$((missed + 1))
    fi
    patch -s -R -p0 -d "$work" "$file" <"$m/$diff"
  done <"$out/stage1-missed.tsv"
fi

caught1=$(count CaughtMutant)
unviable=$(count Unviable)
timeouts=$(count Timeout)
generated=$((caught1 + caught2 + equivalent + missed + unviable + timeouts))
wall=$(( $(date +%s) - start ))
printf '\nmutants of ota-core%s%s\n' "${shard:+ (shard $shard)}" "${in_diff:+ (lines changed since $base)}"
printf '  generated   %5d\n' "$generated"
printf '  caught      %5d  (ota-core tests %d, scenario suite %d)\n' \
  $((caught1 + caught2)) "$caught1" "$caught2"
printf '  unviable    %5d  (does not build)\n' "$unviable"
printf '  timeout     %5d  (a hang the tests cut off: caught)\n' "$timeouts"
printf '  equivalent  %5d  (docs/mutants.md)\n' "$equivalent"
printf '  missed      %5d\n' "$missed"
printf '  wall time   %dm%02ds\n' $((wall / 60)) $((wall % 60))
if ((missed)); then
  echo "missed (no test fails without the code they change):"
  sed 's/^/  /' "$out/missed.txt"
  exit 1
fi
