#!/usr/bin/env bash
# The workspace's `rust-version` is a real minimum (issue 18, item 5): no locked dependency
# declares a higher one, and it is at least what the language features we use need
# (let-chains: 1.88). This machine has one toolchain, so this is the `cargo msrv verify`
# equivalent for what can be checked without installing an older compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
for manifest in Cargo.toml firmware-under-test/boards/{pico-w,qemu-mps2,shared,shared/build-support}/Cargo.toml; do
  cargo metadata --format-version 1 --locked --offline --manifest-path "$manifest" \
    | python3 -c '
import json, sys
meta = json.load(sys.stdin)
ver = lambda v: tuple(int(x) for x in v.split("."))
members = set(meta["workspace_members"])
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")}
if len(ours) != 1:
    sys.exit(f"{sys.argv[1]}: workspace members disagree on rust-version: {sorted(ours)}")
msrv = ours.pop()
if ver(msrv) < (1, 88):
    sys.exit(f"{sys.argv[1]}: rust-version {msrv} is below 1.88, which let-chains need")
too_new = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] not in members and p.get("rust_version") and ver(p["rust_version"]) > ver(msrv)
)
if too_new:
    lines = "\n".join(f"  {n} {v} needs {r}" for n, v, r in too_new)
    sys.exit(f"{sys.argv[1]}: rust-version {msrv}, but locked dependencies need more:\n{lines}")
print(f"{sys.argv[1]}: rust-version {msrv}: no locked dependency needs a newer compiler")
' "$manifest"
done
