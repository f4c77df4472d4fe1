#!/usr/bin/env bash
# Builds everything a rig needs for one QEMU MPS2 board into OUT_DIR: bootloader.elf (what
# QEMU's -kernel loads), and the app with each failure drill compiled in: app.bin / app.elf
# (drill none), app-<drill>.bin / app-<drill>.elf. One build per drill serves both slots (the
# bootloader copies the app to RAM). The .bin files are raw bodies for `otarig-qemu-image
# image --bin` (or any tool writing ota-core's header with load address 0x00100000); the ELF
# files carry the symbols for breakpoints.
#
#   OTARIG_SERVER=10.0.2.100:80 bash firmware-under-test/boards/qemu-mps2/tools/build-drills.sh out/qemu-1
#
# Other OTARIG_* settings (README) pass through. Each variant after the first rebuilds only
# the app crate.
set -euo pipefail
out="${1:?usage: build-drills.sh OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/../shared/cargo-env.sh"
elf_dir="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release"
tool="$here/../pico-w/tools/pico_image.py"
mkdir -p "$out"
out="$(cd "$out" && pwd)"   # the script works from its own directory below
cd "$here"
rustup target add thumbv6m-none-eabi >/dev/null
cargo build --release -p otarig-qemu-boot
cp "$elf_dir/otarig-qemu-boot" "$out/bootloader.elf"
for drill in none crash-in-init no-network hang slow-boot crash-on-rev-b; do
  name="app-$drill"
  [[ $drill == none ]] && name="app"
  OTARIG_DRILL=$drill cargo build --release -p otarig-qemu-app
  python3 "$tool" bin "$elf_dir/otarig-qemu-app" "$out/$name.bin" --base 0x00100000 --size 0x7ff00
  cp "$elf_dir/otarig-qemu-app" "$out/$name.elf"
  echo "build-drills: $out/$name.bin"
done
