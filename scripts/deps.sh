#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages a libconc job needs, only when missing.
# Usage: scripts/deps.sh build|test|ci
set -euo pipefail
want=(build-essential cmake ninja-build pkg-config)
case "${1:-build}" in
  build) ;;
  # python3-uvloop, python3-gevent: bench_loop's baselines (bench/run_all.sh
  # installs this list; the smoke tests skip them).
  # man-db, groff-base: the man_pages test renders the installed man pages
  # (it skips, saying why, without them).
  test) want+=(libcmocka-dev libglib2.0-dev libuv1-dev python3 python3-uvloop
               python3-gevent man-db groff-base) ;;
  ci) want+=(libcmocka-dev libglib2.0-dev libuv1-dev python3 clang musl-tools
             python3-greenlet libboost-context-dev valgrind strace
             gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
             liburing-dev man-db groff-base) ;;
  *) echo "usage: $0 build|test|ci" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
