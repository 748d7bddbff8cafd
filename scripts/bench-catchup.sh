#!/usr/bin/env bash
# Catch-up of an empty node (docs/performance.md, "Catch-up"): test/scale's
# TestCatchUpScale with CAIRN_LONG=1 — an origin node fills one tenant with
# 100,000 small documents and uploads them to versitygw on loopback; then,
# each in its own process with its peak RSS, an empty node catches up by a
# round that reads every object (today's way), the origin writes a catch-up
# pack, and another empty node restores from the pack and runs the round
# that follows it. The fill and upload take most of the time.
#
#   bash scripts/bench-catchup.sh
#
# Settings (environment): BENCH_DIR (default /tmp) holds the data (deleted
# at the end); CAIRN_CATCHUP_KEYS=N replaces the 100,000 (1000000 for the
# million); CAIRN_CATCHUP_BASELINE=0 skips today's way (a few hundred
# documents a second: about half an hour at a million);
# CAIRN_CATCHUP_BACKEND=fs replaces versitygw with an fs backend.
# versitygw keeps its objects in
# CAIRN_SCALE_GW_DIR, by default /dev/shm (a tmpfs) when it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
# versitygw keeps its connections open, as an S3 service does
# (internal/backend/s3/versitygw.KeepAlive); CAIRN_VERSITYGW_KEEPALIVE=0 turns it off.
export CAIRN_VERSITYGW_KEEPALIVE=${CAIRN_VERSITYGW_KEEPALIVE:-1}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/cairn-catchup.XXXXXX")
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/scale.test" ./test/scale/
CAIRN_VERSITYGW_BIN=$(bash scripts/versitygw.sh) # assigned, then exported: a failed build stops the script
export CAIRN_VERSITYGW_BIN
echo "# $(date -u +%FT%TZ) $(go version) nproc=$(nproc) load: $(cut -d' ' -f1-3 /proc/loadavg)"
# versitygw keeps its objects on a tmpfs when there is one: a file and its
# extended attributes per object, and the fill writes every one of them.
if [ -z "${CAIRN_SCALE_GW_DIR+set}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export CAIRN_SCALE_GW_DIR=/dev/shm
fi
cd test/scale # run from the package directory, as go test would
TMPDIR=$dir CAIRN_LONG=1 "$dir/scale.test" -test.run '^TestCatchUpScale$' -test.v -test.timeout 180m
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
