# Sourced by the boards' scripts (pico-w: ci.sh, emu/check.sh, tools/build-drills.sh; qemu-mps2:
# check.sh, tools/build-drills.sh) before they change directory. Sets `repo`, the repository's
# root, and exports CARGO_TARGET_DIR as an absolute path: the caller's (a relative one is taken
# from the current directory), else the repository's target/, which the root workspace shares.
# CARGO_TERM_COLOR defaults to never (logs).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
case "$CARGO_TARGET_DIR" in
  /*) ;;
  *) CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR" ;;
esac
export CARGO_TARGET_DIR
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
