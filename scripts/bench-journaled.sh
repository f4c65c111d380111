#!/usr/bin/env bash
# The agent benchmark on a journaled ext4, what a hypervisor's state directories sit on, made for the run from a
# sparse image file on a loop device and removed after it (packages/agent/src/bench/file-system.ts says why: on ext4
# without a journal the kernel's cost of making inodes grows from run to run). Needs root and a free loop device;
# build first (npx --yes pnpm@10 build). BENCH_* variables pass through to the benchmark; BENCH_IMAGE_DIR is where the
# image goes (default /var/tmp: the image must not sit on a tmpfs, whose pages never reach a disk).
#
#   sudo BENCH_TRANSPORTS=https BENCH_SCENARIOS=1x16,100x1 BENCH_SAMPLES=5 bash scripts/bench-journaled.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bench="$here/packages/agent/dist/bench/main.js"
fail() {
  echo "bench-journaled: $*" >&2
  exit 2
}
[[ $(id -u) -eq 0 ]] || fail "needs root (it mounts a file system)"
[[ -f $bench ]] || fail "$bench is missing: build first (npx --yes pnpm@10 build)"
for tool in mkfs.ext4 losetup mount umount truncate; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
losetup --find >/dev/null 2>&1 || fail "no free loop device (losetup --find)"

image=$(mktemp "${BENCH_IMAGE_DIR:-/var/tmp}/hostfiles-bench-ext4.XXXXXX")
mnt=$(mktemp -d /tmp/hostfiles-bench-mnt.XXXXXX)
mounted=
cleanup() {
  # The benchmark waits for its servers before it exits; should one outlive it anyway, the mount is detached now and
  # freed once it has gone (umount --lazy).
  if [[ -n $mounted ]] && ! umount "$mnt" 2>/dev/null; then
    echo "bench-journaled: $mnt is still in use: detached (umount --lazy), freed once its last user exits" >&2
    umount --lazy "$mnt"
  fi
  rmdir "$mnt" 2>/dev/null || true
  rm -f "$image"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 2 GiB, sparse: the benchmark writes a few MiB at a time and deletes them; ext4's defaults, journal included.
truncate -s 2G "$image"
mkfs.ext4 -q -F "$image"
mount -o loop "$image" "$mnt"
mounted=1
BENCH_DIR="$mnt" node "$bench" "$@"
