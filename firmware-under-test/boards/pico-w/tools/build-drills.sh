#!/usr/bin/env bash
# Builds everything `rig run --bench` needs for one Pico W board into OUT_DIR (the board's
# `firmware:` directory in bench.yaml): bootloader.bin, and the app linked for slot A and for
# slot B with each failure drill compiled in (app-a.bin, app-b.bin, app-<drill>-a.bin, ..., and
# the ELF of each for its symbols).
# The rig writes the image headers (version, anti-rollback counter) and signs them itself.
#
#   OTARIG_WIFI_SSID=bench OTARIG_WIFI_PASSWORD=... OTARIG_SERVER=192.168.1.2:8081 \
#     bash firmware-under-test/boards/pico-w/tools/build-drills.sh bench/pico-1
#
# OTARIG_SERVER must be the board's `server.listen` address as the board reaches it (the Pi's
# address on the bench network). Other OTARIG_* settings (README) pass through. Each variant
# after the first rebuilds only the app crate (≈ 15-30 s each on 2 cores).
set -euo pipefail
out="${1:?usage: build-drills.sh OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/../shared/cargo-env.sh"
elf_dir="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release"
tool="$here/tools/pico_image.py"
mkdir -p "$out"
cd "$here"
rustup target add thumbv6m-none-eabi >/dev/null
cargo build --release -p otarig-pico-boot
python3 "$tool" bin "$elf_dir/otarig-pico-boot" "$out/bootloader.bin" --base 0x10000000 --size 0x10000
declare -A base=([a]=0x10020100 [b]=0x100a0100)
for drill in none crash-in-init no-network hang slow-boot crash-on-rev-b; do
  for slot in a b; do
    name="app-$drill-$slot.bin"
    [[ $drill == none ]] && name="app-$slot.bin"
    OTARIG_DRILL=$drill OTARIG_SLOT=$slot cargo build --release -p otarig-pico-app
    python3 "$tool" bin "$elf_dir/otarig-pico-app" "$out/$name" --base "${base[$slot]}" --size 0x7ff00
    # The ELF beside it: symbols for breakpoint cuts (`cut: { when: { breakpoint: ... } }`).
    cp "$elf_dir/otarig-pico-app" "$out/${name%.bin}.elf"
    echo "build-drills: $out/$name"
  done
done
