#!/usr/bin/env bash
# check.sh --self-test: the check must catch a broken bootloader. Builds the bootloader with its
# `quirk-skip-signature` feature (a staged image boots without its signature check, see
# bootloader/src/quirk.rs) into ARTIFACTS/quirk/, runs check (c) with it and passes only if
# check (c) FAILS. The shipped bootloader.bin is not touched.
#
#   bash self-test.sh ARTIFACTS      (check.sh --self-test calls it after its own checks)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
board="$(cd "$here/.." && pwd)"
artifacts="${1:?usage: self-test.sh ARTIFACTS (the pico-w directory ci.sh wrote)}"
export CARGO_TARGET_DIR="$(cd "$artifacts/.." && pwd)"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
quirk="$artifacts/quirk"
mkdir -p "$quirk"

elf="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release/otarig-pico-boot"
# Cargo's output path is shared by both feature sets: put the default build back afterwards
# (a cached relink) and check that it still converts to the shipped bootloader.bin.
restore() {
  (cd "$board" && cargo build --release -q -p otarig-pico-boot)
  python3 "$board/tools/pico_image.py" bin "$elf" "$quirk/restored.bin" --base 0x10000000 --size 0x10000 >/dev/null
  if ! cmp -s "$quirk/restored.bin" "$artifacts/bootloader.bin"; then
    echo "pico-emu self-test: this checkout's default bootloader build is not $artifacts/bootloader.bin" \
      "(artifacts from another checkout or other sources? run ci.sh again): cannot vouch that the" \
      "quirk feature leaves the shipped build alone" >&2
    return 1
  fi
  echo "pico-emu self-test: default bootloader rebuilt, identical to the shipped bootloader.bin"
}
trap 'restore || exit 1' EXIT

echo "pico-emu self-test: building the bootloader with --features quirk-skip-signature"
(cd "$board" && cargo build --release -q -p otarig-pico-boot --features quirk-skip-signature)
cp "$elf" "$quirk/bootloader.elf"
python3 "$board/tools/pico_image.py" bin "$quirk/bootloader.elf" "$quirk/bootloader.bin" \
  --base 0x10000000 --size 0x10000 >/dev/null
if cmp -s "$quirk/bootloader.bin" "$artifacts/bootloader.bin"; then
  echo "pico-emu self-test: the quirk build is identical to the shipped bootloader" >&2
  exit 1
fi
echo "pico-emu self-test: broken bootloader $(cd "$quirk" && sha256sum bootloader.bin)"

set +e
out="$(node "$here/src/check.js" --artifacts "$artifacts" --work "$quirk/emu-check" \
  --bootloader "$quirk/bootloader.bin" --only c)"
rc=$?
set -e
printf '%s\n' "$out"
if [[ $rc -eq 1 ]] && grep -q '^FAIL (c) ' <<<"$out" && grep -q '^0 passed, 1 failed$' <<<"$out"; then
  echo "pico-emu self-test: ok, check (c) fails with the broken bootloader"
  exit 0
fi
echo "pico-emu self-test: FAILED: check (c) did not catch the broken bootloader (check.js exit $rc)" >&2
exit 1
