#!/usr/bin/env bash
# Builds the Raspberry Pi Pico W firmware (thumbv6m-none-eabi, release): the bootloader and the
# app linked for slot A and for slot B; lints it (cargo fmt --check, clippy -D warnings); runs the
# board-independent tests on the host; writes raw flash binaries (.bin) and prints a size table
# that fails the run when an image does not fit its partition. Needs only rustup and python3.
#
# Runs from any directory. Uses $CARGO_TARGET_DIR, or the repository's target/ so that it
# shares one target directory with the root workspace. Output: $CARGO_TARGET_DIR/pico-w/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../shared/cargo-env.sh"
out="$CARGO_TARGET_DIR/pico-w"
elf_dir="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release"
tool="$here/tools/pico_image.py"

step() { printf -- '--- pico-w: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

command -v python3 >/dev/null || { echo "pico-w: python3 is required" >&2; exit 1; }
cd "$here"
started=$SECONDS

step "toolchain"
rustup target add thumbv6m-none-eabi
rustup component add clippy rustfmt >/dev/null
host="$(rustc -vV | sed -n 's/^host: //p')"
mkdir -p "$out"

step "format (cargo fmt --check)"
# This workspace's members only: `--all` would also check its path dependency ota-core and,
# through it, the whole root workspace, which .ci/run's "format" step checks already.
cargo fmt -- --check

step "build bootloader"
cargo build --release -p otarig-pico-boot
cp "$elf_dir/otarig-pico-boot" "$out/bootloader.elf"

for slot in a b; do
  step "build app linked for slot $slot"
  OTARIG_SLOT=$slot cargo build --release -p otarig-pico-app
  cp "$elf_dir/otarig-pico-app" "$out/app-$slot.elf"
done
build_s=$((SECONDS - started))

step "clippy (thumbv6m-none-eabi, -D warnings)"
cargo clippy --release --workspace -- -D warnings

step "host tests (boot selection, entry checks, HTTP heads)"
cargo test -p otarig-pico --target "$host"

step "raw binaries"
python3 "$tool" bin "$out/bootloader.elf" "$out/bootloader.bin" --base 0x10000000 --size 0x10000
python3 "$tool" bin "$out/app-a.elf" "$out/app-a.bin" --base 0x10020100 --size 0x7ff00
python3 "$tool" bin "$out/app-b.elf" "$out/app-b.bin" --base 0x100a0100 --size 0x7ff00

step "image tool self-check"
check="$out/check"
mkdir -p "$check"
python3 "$tool" image --bin "$out/app-b.bin" --slot b --version 0.0.1 --out "$check/app-b.unsigned" >/dev/null
if python3 "$tool" image --bin "$out/app-a.bin" --slot b --version 0.0.1 --out "$check/wrong" 2>/dev/null; then
  echo "pico-w: the image tool accepted an app linked for slot a as a slot-b image" >&2
  exit 1
fi
python3 - "$check/app-b.unsigned" "$out/app-b.bin" <<'EOF'
import hashlib, struct, sys
img = open(sys.argv[1], "rb").read()
body = open(sys.argv[2], "rb").read()
magic, fmt, hlen = struct.unpack_from("<4sHH", img, 0)
body_len, load, entry = struct.unpack_from("<III", img, 20)
assert (magic, fmt, hlen) == (b"OTAI", 1, 256), "header"
assert img[256:] == body and body_len == len(body), "body"
assert img[32:64] == hashlib.sha256(body).digest(), "body hash"
assert load == 0x100A0100 and load < entry < load + body_len and entry & 1, "entry"
assert img[64:80].rstrip(b"\0") == b"pico-w", "board"
EOF
rm -rf "$check"

step "sizes"
set +e
python3 "$tool" sizes --skip-section .boot2 \
  "bootloader=$out/bootloader.elf:0x10000100:0xff00" \
  "app-a=$out/app-a.elf:0x10020100:0x7ff00" \
  "app-b=$out/app-b.elf:0x100a0100:0x7ff00"
fits=$?
set -e
echo "(bootloader: 64 KiB at 0x10000000 less the 256-byte boot2; apps: a 512 KiB slot less the 256-byte image header)"
ls -l "$out"/*.bin
echo "pico-w: build ${build_s}s, total $((SECONDS - started))s; artifacts in $out"
if [[ $fits -ne 0 ]]; then
  echo "pico-w: an image does not fit its partition" >&2
  exit 1
fi
