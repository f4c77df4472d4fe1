#!/usr/bin/env bash
# The rig's Pico W release path on the real firmware builds of pico-w/ci.sh (run it first):
# `rig image pico` makes the two per-slot images and the golden flash image, and must agree
# byte for byte with the firmware's own tool (pico_image.py's unsigned header, signed by
# `rig image sign`; ed25519 signatures are deterministic). Both images must verify.
set -euo pipefail
cd "$(dirname "$0")/.."
fw="${CARGO_TARGET_DIR:-target}/pico-w"
for f in bootloader.bin app-a.bin app-b.bin; do
  [[ -f $fw/$f ]] || { echo "pico-images: $fw/$f missing: run firmware-under-test/boards/pico-w/ci.sh first" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rig=(cargo run --release -q -p rig --)
"${rig[@]}" keygen --out "$work/keys" >/dev/null
"${rig[@]}" image pico --firmware "$fw" --version 2.1.0 --rollback-counter 3 \
  --key "$work/keys/release.key" --out-dir "$work/rig" --golden
tool=firmware-under-test/boards/pico-w/tools/pico_image.py
for slot in a b; do
  python3 "$tool" image --bin "$fw/app-$slot.bin" --slot "$slot" --version 2.1.0 \
    --rollback-counter 3 --out "$work/app-$slot.unsigned" >/dev/null
  "${rig[@]}" image sign --key "$work/keys/release.key" -o "$work/app-$slot.img" \
    "$work/app-$slot.unsigned" >/dev/null
  cmp "$work/app-$slot.img" "$work/rig/v2.1.0-$slot.img"
  "${rig[@]}" image inspect --key "$work/keys/release.pub" "$work/rig/v2.1.0-$slot.img" >/dev/null
  echo "pico-images: slot $slot image identical to pico_image.py + rig image sign, signature valid"
done
python3 "$tool" key --pub "$work/keys/release.pub" --out "$work/key-region.bin" >/dev/null
python3 - "$work/rig/golden-v2.1.0.bin" "$work/key-region.bin" "$fw/bootloader.bin" "$work/rig/v2.1.0-a.img" <<'PY'
import sys
golden, key_region, boot, slot_a = (open(p, "rb").read() for p in sys.argv[1:])
assert len(golden) == 0x1A0000, len(golden)
assert golden[: len(boot)] == boot, "bootloader at 0x10000000"
assert golden[0x10000 : 0x10000 + len(key_region)] == key_region, "key region as pico_image.py key writes it"
assert golden[0x20000 : 0x20000 + len(slot_a)] == slot_a, "factory image in slot A"
assert set(golden[0xA0000:0x120000]) == {0xFF}, "slot B erased"
assert golden[0x120000 : 0x120000 + len(slot_a)] == slot_a, "factory image in the factory region"
print(f"pico-images: golden flash image {len(golden)} bytes: bootloader, key region, slot A, erased slot B, factory region")
PY
