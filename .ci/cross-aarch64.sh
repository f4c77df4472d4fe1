#!/usr/bin/env bash
# Cross-builds rig (with the probe-rs backend, `--features rig/probe`: what the Pi installs) and
# fake-server for the Raspberry Pi (aarch64) and runs them under qemu-user: `rig --version`,
# `rig check scenarios/` and a `bench-check` that reaches the probe backend must work there.
# probe-rs is built without default features: USB through nusb (usbfs), no libudev to cross-link.
# (Serial-port tests are not run under qemu: Debian's qemu-aarch64 does not implement TCGETS2.)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
start=$(date +%s)
cargo build --release --target aarch64-unknown-linux-gnu -p rig -p fake-server --features rig/probe
echo "aarch64 release build: $(( $(date +%s) - start )) s"
out="${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-gnu/release"
file "$out/rig" "$out/fake-server" 2>/dev/null || true
ls -l "$out/rig" "$out/fake-server" | awk '{print $5, $9}'
q="qemu-aarch64 -L /usr/aarch64-linux-gnu"
$q "$out/rig" --version
$q "$out/rig" check scenarios/
$q "$out/fake-server" --version
# No relay, port or probe here: bench-check reports problems (exit 3), but the probe's must come
# from the probe-rs backend, not from a rig built without it.
checked=$($q "$out/rig" bench-check --bench scenarios/bench.example.yaml 2>&1 || true)
if grep -q 'feature `probe`' <<<"$checked" || ! grep -q 'no debug probe found' <<<"$checked"; then
  echo "the aarch64 rig has no working probe-rs backend:" >&2
  echo "$checked" >&2
  exit 1
fi
echo "probe-rs backend: present (bench-check looked for probes)"
echo "glibc needed: $(objdump -T "$out/rig" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1 || echo unknown)"
