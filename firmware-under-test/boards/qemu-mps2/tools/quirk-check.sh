#!/usr/bin/env bash
# Broken firmware must fail on QEMU too. Builds the bootloader and the app with one of
# ota-core's deliberate defects compiled in (a `quirk-*` Cargo feature of common/, forwarded by
# both stages; never in a shipped build), runs the scenarios that must catch it on two QEMU
# boards, and passes only if the rig fails exactly those (exit 101, each named FAILED) while a
# healthy path still passes:
#
#   quirk                 must fail
#   state-before-data     power-cut-writing-inactive-slot (the record names the new image
#                         before it is written: a cut in the slot write activates half an
#                         image; qemu/breakpoint-cut-flash-write fails too, but only after its
#                         240 s wait, so it is not run here) and the QEMU power-cut sweep
#                         (`rig sweep power-cut --replay qemu`: disagreements with the
#                         in-memory engine)
#   skip-body-hash        corrupt-body (an image whose body does not match its signed header
#                         is staged and run)
#
#   bash firmware-under-test/boards/qemu-mps2/tools/quirk-check.sh [OUT_DIR]   (from the repo)
#
# OUT_DIR (default target/qemu-mps2-quirks) gets one firmware directory and bench file per
# quirk. RIG (default `cargo run --release -q -p rig --`) runs the rig. The app is built with
# the settings of scenarios/bench.qemu.yaml (OTARIG_NET_TIMEOUT_MS=2000,
# OTARIG_TRIAL_WINDOW_MS=4000 unless set). Run from the repository root.
set -euo pipefail
out="${1:-target/qemu-mps2-quirks}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
esac
export OTARIG_NET_TIMEOUT_MS="${OTARIG_NET_TIMEOUT_MS:-2000}"
export OTARIG_TRIAL_WINDOW_MS="${OTARIG_TRIAL_WINDOW_MS:-4000}"
export OTARIG_DRILL=none
read -r -a rig <<<"${RIG:-cargo run --release -q -p rig --}"
elf_dir="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
failures=0

# build QUIRK DIR: the bootloader and the app (no drill) with the quirk, as build-drills.sh lays
# them out.
build() {
  local quirk=$1 dir=$2
  mkdir -p "$dir"
  (cd "$here" && cargo build --release -q -p otarig-qemu-boot -p otarig-qemu-app \
    -F "otarig-qemu-boot/quirk-$quirk" -F "otarig-qemu-app/quirk-$quirk")
  cp "$elf_dir/otarig-qemu-boot" "$dir/bootloader.elf"
  cp "$elf_dir/otarig-qemu-app" "$dir/app.elf"
  python3 "$here/../pico-w/tools/pico_image.py" bin "$elf_dir/otarig-qemu-app" "$dir/app.bin" \
    --base 0x00100000 --size 0x7ff00 >/dev/null
  # The shipped bench file with this firmware directory.
  sed "s|firmware: ../target/qemu-mps2-drills|firmware: $dir|" \
    "$repo/scenarios/bench.qemu.yaml" >"$dir/bench.yaml"
}

# expect QUIRK DIR CONTROL MUST_FAIL...: the rig exits 101, names every MUST_FAIL scenario
# FAILED and passes CONTROL.
expect() {
  local quirk=$1 dir=$2 control=$3
  shift 3
  local files=("scenarios/$control.yaml") log="$dir/rig-run.log" code=0 ok=1
  for s in "$@"; do files+=("scenarios/$s.yaml"); done
  (cd "$repo" && "${rig[@]}" run --bench "$dir/bench.yaml" --board qemu \
    --reports "$dir/reports" "${files[@]}") >"$log" 2>&1 || code=$?
  if [[ $code != 101 ]]; then
    echo "quirk-check: $quirk: the rig exited $code, not 101 (see $log)" >&2
    ok=0
  fi
  for s in "$@"; do
    local name=${s##*/}
    if ! grep -Eq "^test $name +\.\.\. FAILED" "$log"; then
      echo "quirk-check: $quirk: scenario $name did not fail (see $log)" >&2
      ok=0
    fi
  done
  if ! grep -Eq "^test ${control##*/} +\.\.\. ok" "$log"; then
    echo "quirk-check: $quirk: the healthy path ${control##*/} did not pass (see $log)" >&2
    ok=0
  fi
  if ((ok)); then
    echo "quirk-check: $quirk: rig exit 101; FAILED: $*; ok: $control"
  else
    failures=$((failures + 1))
  fi
}

q=state-before-data
build "$q" "$out/$q"
expect "$q" "$out/$q" happy-path power-cut-writing-inactive-slot
sweep_log="$out/$q/rig-sweep.log"
code=0
(cd "$repo" && "${rig[@]}" sweep power-cut --scenario scenarios/happy-path.yaml --replay qemu \
  --qemu-firmware "$out/$q" --qemu-points 2 --reports "$out/$q/reports") >"$sweep_log" 2>&1 ||
  code=$?
if [[ $code != 0 ]] && grep -Eq "qemu replay: .* [1-9][0-9]* disagreement" "$sweep_log"; then
  echo "quirk-check: $q: QEMU sweep exit $code: $(grep -E '^qemu replay:' "$sweep_log")"
else
  echo "quirk-check: $q: the QEMU sweep found nothing wrong (exit $code, see $sweep_log)" >&2
  failures=$((failures + 1))
fi

q=skip-body-hash
build "$q" "$out/$q"
expect "$q" "$out/$q" happy-path corrupt-body

if ((failures)); then
  echo "quirk-check: $failures check(s) did not catch a broken QEMU firmware" >&2
  exit 1
fi
echo "quirk-check: every broken QEMU firmware was caught"
