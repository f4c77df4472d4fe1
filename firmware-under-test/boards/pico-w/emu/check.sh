#!/usr/bin/env bash
# The Pico W boot-path checks: the bootloader and app that ci.sh built, booted in an RP2040
# emulator (rp2040js, see README.md). Run after ci.sh, from any directory:
#
#   bash firmware-under-test/boards/pico-w/emu/check.sh                 # the five checks
#   bash firmware-under-test/boards/pico-w/emu/check.sh --only c        # some of them
#   bash firmware-under-test/boards/pico-w/emu/check.sh --bootloader X.bin   # another bootloader
#   bash firmware-under-test/boards/pico-w/emu/check.sh --self-test     # then: a broken bootloader
#                                                                       #   must fail check (c)
#
# Artifacts: $CARGO_TARGET_DIR/pico-w (or the repository's target/pico-w), as ci.sh writes them.
# Needs node >= 20, npm (first run: `npm ci` from the committed lockfile; then offline) and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
board="$(cd "$here/.." && pwd)"
source "$board/../shared/cargo-env.sh"
artifacts="$CARGO_TARGET_DIR/pico-w"
tool="$board/tools/pico_image.py"

die() { echo "pico-emu: $*" >&2; exit 2; }

self_test=0
pass=()
while (($#)); do
  case "$1" in
    --self-test) self_test=1; shift ;;
    --bootloader) [[ $# -ge 2 ]] || die "--bootloader needs a path to a bootloader .bin (its .elf beside it)"; pass+=(--bootloader "$(realpath "$2")"); shift 2 ;;
    --only) [[ $# -ge 2 ]] || die "--only needs check letters, e.g. --only a,c"; pass+=(--only "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

command -v node >/dev/null || die "node (>= 20) is required"
command -v npm >/dev/null || die "npm is required"
command -v python3 >/dev/null || die "python3 is required"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "node $(node --version) is too old: >= 20 is required"

for f in bootloader.bin bootloader.elf app-a.bin app-a.elf app-b.bin app-b.elf; do
  [[ -f $artifacts/$f ]] || die "$artifacts/$f is missing: run firmware-under-test/boards/pico-w/ci.sh first (same CARGO_TARGET_DIR)"
done

# The .bin files under test are the ones ci.sh made from these ELFs (the ELF gives the symbols
# for exact power cuts): convert again and compare byte for byte.
verify="$artifacts/emu-verify"
rm -rf "$verify" && mkdir -p "$verify"
python3 "$tool" bin "$artifacts/bootloader.elf" "$verify/bootloader.bin" --base 0x10000000 --size 0x10000 >/dev/null
python3 "$tool" bin "$artifacts/app-a.elf" "$verify/app-a.bin" --base 0x10020100 --size 0x7ff00 >/dev/null
python3 "$tool" bin "$artifacts/app-b.elf" "$verify/app-b.bin" --base 0x100a0100 --size 0x7ff00 >/dev/null
for f in bootloader app-a app-b; do
  cmp -s "$verify/$f.bin" "$artifacts/$f.bin" ||
    die "$artifacts/$f.bin is not $f.elf converted: stale artifacts, run ci.sh again"
done
rm -rf "$verify"
echo "pico-emu: binaries under test ($artifacts):"
(cd "$artifacts" && sha256sum bootloader.bin app-a.bin app-b.bin | sed 's/^/  /')

# npm packages: installed from the lockfile only when missing or out of date.
if ! (cd "$here" && npm ls --depth=0 >/dev/null 2>&1); then
  echo "pico-emu: npm ci (rp2040js, from package-lock.json)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The harness's own models first (NOR flash, ROM table, grammar, state records): < 1 s.
if ! unit="$(cd "$here" && node --test test/ 2>&1)"; then
  printf '%s\n' "$unit"
  echo "pico-emu: the harness's unit tests (emu/test/) failed" >&2
  exit 1
fi
echo "pico-emu: harness unit tests: $(grep -o '^# pass [0-9]*' <<<"$unit" | sed 's/# //') ok"

started=$SECONDS
set +e
node "$here/src/check.js" --artifacts "$artifacts" "${pass[@]}"
rc=$?
set -e
echo "pico-emu: checks took $((SECONDS - started)) s"
if ((self_test)); then
  bash "$here/self-test.sh" "$artifacts" || rc=1
  echo "pico-emu: checks and self-test took $((SECONDS - started)) s"
fi
exit $rc
