#!/usr/bin/env bash
# Clean-path throughput of fake-server vs Debian's nginx serving the same 1 MiB image, with
# 64 concurrent connections, loopback only, bounded in time (about 30 s in all).
#   bash fake-server/bench/compare-nginx.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi
cargo build --release -q -p fake-server
# Wherever cargo put it: CARGO_TARGET_DIR, build.target-dir in a cargo config, or target/.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/images/v1/images" "$tmp/nginx"
head -c 1048576 /dev/urandom > "$tmp/images/bench.bin"
cp "$tmp/images/bench.bin" "$tmp/images/v1/images/bench.bin"
chmod -R a+rX "$tmp"   # nginx workers run unprivileged

"$target_dir/release/fake-server" --images "$tmp/images" --listen 127.0.0.1:0 > "$tmp/fs.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$tmp/fs.out" && break; sleep 0.05; done
fs_url=$(sed -n 's/^listening on //p' "$tmp/fs.out")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
workers=$(nproc)
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes $workers;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server { listen 127.0.0.1:$port; root $tmp/images; }
}
CONF
nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" 2>"$tmp/nginx/start.log" &
pids+=($!)
ng_url="http://127.0.0.1:$port"
check() { # url: must serve the whole file before it is measured
  for _ in $(seq 50); do
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$1" || true)
    [[ $got == "200 1048576" ]] && return 0
    sleep 0.1
  done
  echo "not serving the image: $1 answered '$got'" >&2
  cat "$tmp/nginx/start.log" "$tmp/nginx/error.log" >&2 2>/dev/null || true
  exit 3
}
check "$fs_url/v1/images/bench.bin"
check "$ng_url/v1/images/bench.bin"

load() { # url -> requests/s (fails on socket errors or non-2xx answers)
  out=$(wrk -t 2 -c 64 -d "${secs}s" --timeout 5s "$1")
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then echo "$out" >&2; exit 3; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
fs=$(load "$fs_url/v1/images/bench.bin")
ng=$(load "$ng_url/v1/images/bench.bin")
ratio=$(python3 -c "print(f'{$fs/$ng:.2f}')")
echo "fake-server: $fs req/s, nginx: $ng req/s, ratio $ratio (1 MiB image, 64 connections, ${secs}s each, $(nproc) cores)"
