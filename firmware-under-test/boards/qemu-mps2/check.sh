#!/usr/bin/env bash
# Builds the QEMU MPS2 AN385 firmware and boots it in QEMU: boot-path checks, one line each,
# then "N passed, M failed" (exit 1 if any failed).
#
#   a  the golden flash boots to `app: ... starting`/`running`; every console line parses
#   b  DHCP + check-in through fake-server, a full update v1 -> v2 (reboot into slot b, confirm)
#   c  a power cut (SIGKILL of QEMU) during the download, then a clean boot on a valid slot,
#      and the download resumes and completes
#   d  a staged slot whose image has a bad signature is refused at boot
#   e  the hang drill: the watchdog resets the board (`watchdog: expired`, `reset=watchdog`)
#   f  an update to an app that crashes in init (drill): `reset=panic` at every trial boot, then
#      the bootloader reverts to the previous image after the last attempt
#   g  a breakpoint power cut: gdb (tools/gdb_cut.py) halts the core at the 150th entry of the
#      app's `otarig_flash_write` (a page program about a quarter into the download), QEMU is
#      killed while halted; the next boot is clean, the download resumes and v2 is confirmed
#   h  the factory-reset drill (`recovery=1` on the command line at power-on): v2 in slot a is
#      replaced by the factory image v1
#
# Needs rustup, python3, qemu-system-arm and socat (Debian: apt-get install qemu-system-arm
# socat). Uses $CARGO_TARGET_DIR or the repository's target/; output in <target>/qemu-mps2/.
# Every QEMU and fake-server it starts is killed on exit; every wait is bounded.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../shared/cargo-env.sh"
out="$CARGO_TARGET_DIR/qemu-mps2"
elf_dir="$CARGO_TARGET_DIR/thumbv6m-none-eabi/release"
pyimg="$here/../pico-w/tools/pico_image.py"
host="$(rustc -vV | sed -n 's/^host: //p')"
tool="$CARGO_TARGET_DIR/$host/release/otarig-qemu-image"
fake="$CARGO_TARGET_DIR/debug/fake-server"

step() { printf -- '--- qemu-mps2: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
for cmd in python3 qemu-system-arm socat; do
  command -v "$cmd" >/dev/null || { echo "qemu-mps2: $cmd is required" >&2; exit 1; }
done
started=$SECONDS
cd "$here"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

step "toolchain"
rustup target add thumbv6m-none-eabi >/dev/null 2>&1 || rustup target add thumbv6m-none-eabi
rm -rf "$out" && mkdir -p "$out"

step "format and clippy (thumbv6m-none-eabi, -D warnings)"
cargo fmt -- --check
cargo clippy --release -- -D warnings

step "build: two drill variants, then bootloader + app"
for drill in hang crash-in-init; do
  OTARIG_DRILL=$drill cargo build --release -p otarig-qemu-app
  cp "$elf_dir/otarig-qemu-app" "$out/app-$drill.elf"
done
cargo build --release -p otarig-qemu-boot -p otarig-qemu-app
cp "$elf_dir/otarig-qemu-boot" "$out/bootloader.elf"
cp "$elf_dir/otarig-qemu-app" "$out/app.elf"
cargo build --release -p otarig-qemu-image --target "$host"
(cd "$repo" && cargo build -p fake-server)

step "images"
w="$out/work"
mkdir -p "$w/images"
"$tool" keygen "$w/keys" >/dev/null
for app in app app-hang app-crash-in-init; do
  python3 "$pyimg" bin "$out/$app.elf" "$out/$app.bin" --base 0x100000 --size 0x7ff00 >/dev/null
done
key="$w/keys/release.key"
"$tool" image --bin "$out/app.bin" --version 1.0.0 --key "$key" --out "$w/images/v1.img"
"$tool" image --bin "$out/app.bin" --version 2.0.0 --key "$key" --out "$w/images/v2.img"
"$tool" image --bin "$out/app.bin" --version 2.0.0 --key "$key" --corrupt signature --out "$w/v2-badsig.img"
"$tool" image --bin "$out/app-hang.bin" --version 1.0.0 --key "$key" --out "$w/hang.img"
"$tool" image --bin "$out/app-crash-in-init.bin" --version 2.0.0 --key "$key" --out "$w/images/v2-crash.img"
"$tool" flash --pub "$w/keys/release.pub" --slot-a "$w/images/v1.img" --factory "$w/images/v1.img" \
  --out "$out/golden-v1.bin"
"$tool" flash --pub "$w/keys/release.pub" --slot-a "$w/images/v1.img" --slot-b "$w/v2-badsig.img" \
  --state trial-b --out "$w/badsig.bin"
"$tool" flash --pub "$w/keys/release.pub" --slot-a "$w/hang.img" --out "$w/hang.bin"
"$tool" flash --pub "$w/keys/release.pub" --slot-a "$w/images/v2.img" --factory "$w/images/v1.img" \
  --out "$w/factory.bin"

step "sizes"
python3 "$pyimg" sizes "bootloader=$out/bootloader.elf:0x00000000:0x100000" \
  "app=$out/app.elf:0x00100000:0x7ff00"

# --- running QEMU -----------------------------------------------------------------------------

qpid=""
# qemu_start LOG FLASH [PORT]: boots the board on FLASH (a copy is not made: the file is the
# board's flash); with PORT, 10.0.2.100:80 in the guest reaches 127.0.0.1:PORT, else nothing.
qemu_start() {
  local log=$1 flash=$2 port=${3:-} gdb=${4:-} append=${5:-} nic="user,model=lan9118,restrict=on"
  if [[ -n $port ]]; then
    nic="$nic,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:$port"
  fi
  : >"$log"
  qemu_t0=$(date +%s%N)
  qemu-system-arm -M mps2-an385 -nographic -monitor none \
    -semihosting-config enable=on,target=native \
    -kernel "$out/bootloader.elf" -append "flash=$flash${append:+ $append}" \
    -nic "$nic" -serial stdio ${gdb:+-S -gdb tcp:127.0.0.1:$gdb} >"$log" 2>"$log.err" </dev/null &
  qpid=$!
  pids+=("$qpid")
}
qemu_kill() { [[ -n $qpid ]] && { kill -9 "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; }; qpid=""; }
# wait_for LOG REGEX SECONDS: true once a line of LOG matches.
wait_for() {
  local log=$1 re=$2 end=$((SECONDS + $3))
  while ((SECONDS < end)); do
    grep -Eq -- "$re" "$log" && return 0
    sleep 0.1
  done
  return 1
}

fs_pid=""
fake_start() {
  local log=$1; shift
  : >"$log"
  "$fake" --images "$w/images" --listen 127.0.0.1:0 --key "$key" "$@" >"$log" 2>&1 &
  fs_pid=$!
  pids+=("$fs_pid")
  local end=$((SECONDS + 10))
  fs_port=""
  while ((SECONDS < end)) && [[ -z $fs_port ]]; do
    fs_port=$(grep -Eo '127\.0\.0\.1:[0-9]+' "$log" | head -1 | cut -d: -f2 || true)
    sleep 0.1
  done
  [[ -n $fs_port ]] || { echo "fake-server did not start:"; cat "$log"; return 1; }
}
fake_stop() { [[ -n $fs_pid ]] && { kill "$fs_pid" 2>/dev/null || true; wait "$fs_pid" 2>/dev/null || true; }; fs_pid=""; }

passed=0
failed=0
result() { # result NAME OK DETAIL
  if [[ $2 == 0 ]]; then
    passed=$((passed + 1)); echo "PASS $1: $3"
  else
    failed=$((failed + 1)); echo "FAIL $1: $3"
  fi
}
show() { echo "    --- $1"; sed 's/^/    | /' "$1" | tail -n "${2:-40}"; }

step "checks"

# (a) golden image boots; every line is a console line.
log="$w/a.log"; cp "$out/golden-v1.bin" "$w/a.bin"
qemu_start "$log" "$w/a.bin"
first_ms=""
end=$((SECONDS + 10))
while ((SECONDS < end)); do
  if [[ -s $log ]]; then first_ms=$((($(date +%s%N) - qemu_t0) / 1000000)); break; fi
  sleep 0.005
done
ok=1
if wait_for "$log" '^app: v1\.0\.0 running$' 15; then
  sleep 0.5; qemu_kill
  grep -q '^app: v1.0.0 starting drill=none$' "$log" && "$tool" lines "$log" >"$w/a.lines" && ok=0
else
  qemu_kill
fi
result a "$ok" "golden flash boots to 'app: v1.0.0 starting' and 'running', $(grep -c '' "$log") lines all CONSOLE.md lines; first UART line ${first_ms:-?} ms after QEMU start"
[[ $ok == 0 ]] || { show "$log"; cat "$w/a.lines" 2>/dev/null || true; }

# (b) DHCP, check-in and a full update v1 -> v2 through fake-server.
log="$w/b.log"; cp "$out/golden-v1.bin" "$w/b.bin"
fake_start "$w/b.server.log" --publish v1=v1.img --publish v2=v2.img
qemu_start "$log" "$w/b.bin" "$fs_port"
t0=$SECONDS
ok=1
if wait_for "$log" '^app: v2\.0\.0 confirmed$' 90; then
  grep -q '^net: address=10\.0\.2\.15/' "$log" &&
    grep -q '^checkin: version=1\.0\.0 state=confirmed -> command=update$' "$log" &&
    grep -q '^update: staged version=2\.0\.0$' "$log" &&
    grep -q '^boot: otarig-boot board=qemu-mps2 .* reset=update$' "$log" &&
    grep -q '^boot: slot=b version=2\.0\.0 state=trial$' "$log" && ok=0
fi
wait_for "$log" '^checkin: version=2\.0\.0 state=confirmed -> command=none$' 10 || ok=1
qemu_kill; fake_stop
"$tool" lines "$log" >/dev/null || ok=1
result b "$ok" "DHCP 10.0.2.15, check-in via fake-server, v1 -> v2: staged, reset=update, trial boot of slot b, confirmed ($((SECONDS - t0)) s)"
[[ $ok == 0 ]] || show "$log"

# (c) power cut during the download, then a clean boot and a resumed download.
log="$w/c.log"; cp "$out/golden-v1.bin" "$w/c.bin"
# Image bytes at 16 KiB/s (about 7 s for the image), so the cut lands mid-download (about a
# quarter in), not at its end.
printf 'faults:\n  - match: { path: "/v1/images/*", method: GET }\n    throttle: "16KiB/s"\n' >"$w/slow.yaml"
fake_start "$w/c.server.log" --publish v1=v1.img --publish v2=v2.img --chunk-size 4096 \
  --faults "$w/slow.yaml"
qemu_start "$log" "$w/c.bin" "$fs_port"
ok=1
cut=""
if wait_for "$log" '^download: progress [0-9]+/' 60; then
  qemu_kill
  cut=$(grep -E '^download: (progress|start)' "$log" | tail -1)
  ! grep -q '^download: complete' "$log" || cut="$cut (too late: the download had completed)"
  log2="$w/c2.log"
  qemu_start "$log2" "$w/c.bin" "$fs_port"
  if wait_for "$log2" '^app: v1\.0\.0 starting' 15 &&
    grep -q '^boot: slot=a version=1\.0\.0 state=confirmed$' "$log2" &&
    wait_for "$log2" '^download: resume offset=[1-9][0-9]* chunk=' 30 &&
    wait_for "$log2" '^app: v2\.0\.0 confirmed$' 90; then
    ok=0
  fi
  qemu_kill
else
  qemu_kill
fi
fake_stop
grep -q 'too late' <<<"$cut" && ok=1
resumed=$(grep -m1 '^download: resume' "${log2:-/dev/null}" || true)
result c "$ok" "SIGKILL of QEMU after '${cut:-?}': clean boot of slot a v1.0.0, '${resumed:-no resume}', v2.0.0 confirmed"
[[ $ok == 0 ]] || { show "$log" 15; show "${log2:-/dev/null}"; }

# (d) a staged slot with a bad signature is refused.
log="$w/d.log"
qemu_start "$log" "$w/badsig.bin"
ok=1
if wait_for "$log" '^app: v1\.0\.0 starting' 15; then
  grep -q '^boot: refuse slot=b reason=bad-signature$' "$log" &&
    grep -q '^boot: slot=a version=1\.0\.0' "$log" &&
    ! grep -q '^boot: slot=b' "$log" && ok=0
fi
qemu_kill
result d "$ok" "slot b staged for trial with a bad signature: '$(grep -m1 '^boot: refuse' "$log" || echo 'no refusal')', slot a runs"
[[ $ok == 0 ]] || show "$log"

# (e) the hang drill: the watchdog resets the board.
log="$w/e.log"
qemu_start "$log" "$w/hang.bin"
ok=1
if wait_for "$log" '^boot: otarig-boot .* reset=watchdog$' 20; then
  grep -q '^app: v1\.0\.0 hang (drill)$' "$log" && grep -q '^watchdog: expired$' "$log" && ok=0
fi
qemu_kill
result e "$ok" "hang drill: 'watchdog: expired' and 'reset=watchdog' after the app stopped feeding"
[[ $ok == 0 ]] || show "$log"

# (g) below uses this: a free TCP port on the loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# (f) an update whose app crashes in init: trial boots end in reset=panic, then a revert.
log="$w/f.log"; cp "$out/golden-v1.bin" "$w/f.bin"
fake_start "$w/f.server.log" --publish v1=v1.img --publish v2=v2-crash.img
qemu_start "$log" "$w/f.bin" "$fs_port"
ok=1
if wait_for "$log" '^boot: revert to=1\.0\.0 reason=trial-exhausted$' 60 &&
  wait_for "$log" '^app: v1\.0\.0 starting' 10; then
  crashes=$(grep -c '^app: v2\.0\.0 crash in init (drill)$' "$log" || true)
  panics=$(grep -c '^boot: otarig-boot .* reset=panic$' "$log" || true)
  grep -q '^update: staged version=2\.0\.0$' "$log" &&
    grep -q '^boot: trial version=2\.0\.0 attempt=3/3$' "$log" &&
    [[ $crashes == 3 && $panics == 3 ]] &&
    [[ $(grep '^boot: slot=' "$log" | tail -1) == 'boot: slot=a version=1.0.0 state=confirmed' ]] && ok=0
fi
qemu_kill; fake_stop
result f "$ok" "v2 crashing in init: ${crashes:-?} crashes, ${panics:-?} boots with reset=panic, then 'boot: revert to=1.0.0 reason=trial-exhausted' and slot a runs"
[[ $ok == 0 ]] || show "$log"

# (g) a breakpoint power cut at the 150th flash program of the app, then a clean boot.
log="$w/g.log"; cp "$out/golden-v1.bin" "$w/g.bin"
fake_start "$w/g.server.log" --publish v1=v1.img --publish v2=v2.img
gport=$(free_port)
qemu_start "$log" "$w/g.bin" "$fs_port" "$gport"
python3 "$here/tools/gdb_cut.py" --port "$gport" --elf "$out/app.elf" --symbol otarig_flash_write \
  --hit 150 >"$w/g.cut" 2>&1 &
gdb_pid=$!
pids+=("$gdb_pid")
ok=1
halted=""
if wait_for "$w/g.cut" '^halted ' 60; then
  sleep 0.3 # halted means halted: nothing may move in the meantime
  halted=$(head -1 "$w/g.cut")
  qemu_kill
  kill "$gdb_pid" 2>/dev/null || true
  last=$(tail -1 "$log")
  log2="$w/g2.log"
  qemu_start "$log2" "$w/g.bin" "$fs_port"
  if wait_for "$log2" '^app: v1\.0\.0 starting' 15 &&
    grep -q '^boot: slot=a version=1\.0\.0 state=confirmed$' "$log2" &&
    wait_for "$log2" '^download: resume offset=[1-9][0-9]* chunk=' 30 &&
    wait_for "$log2" '^app: v2\.0\.0 confirmed$' 90 &&
    ! grep -q 'FATAL' "$log2"; then
    ok=0
  fi
  qemu_kill
else
  qemu_kill
  kill "$gdb_pid" 2>/dev/null || true
fi
fake_stop
result g "$ok" "${halted:-never halted} (last line '${last:-?}'), QEMU killed while halted; next boot '$(grep -m1 '^boot: slot=' "${log2:-/dev/null}" || true)', '$(grep -m1 '^download: resume' "${log2:-/dev/null}" || echo 'no resume')', v2.0.0 confirmed"
[[ $ok == 0 ]] || { cat "$w/g.cut"; show "$log" 15; show "${log2:-/dev/null}"; }

# (h) the factory-reset drill.
log="$w/h.log"
qemu_start "$log" "$w/factory.bin" "" "" "recovery=1"
ok=1
if wait_for "$log" '^app: v1\.0\.0 starting' 15; then
  grep -q '^boot: factory reset version=1\.0\.0$' "$log" &&
    grep -q '^boot: slot=a version=1\.0\.0 state=confirmed$' "$log" && ok=0
fi
qemu_kill
result h "$ok" "recovery=1 at power-on over v2 in slot a: '$(grep -m1 '^boot: factory' "$log" || echo 'no factory reset')', v1.0.0 runs"
[[ $ok == 0 ]] || show "$log"

echo "$passed passed, $failed failed (qemu-mps2 check: $((SECONDS - started)) s; logs in $w)"
[[ $failed == 0 ]]
