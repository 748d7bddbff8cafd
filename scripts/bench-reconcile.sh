#!/usr/bin/env bash
# Reconciliation at scale (docs/performance.md): test/scale's TestReconcileScale with
# CAIRN_LONG=1 — fill one tenant with 100,000 then 1,000,000 small
# documents replicated to an fs backend, time a full in-sync round at each
# size with its peak RSS (each phase is its own child process), change
# 10,000 documents on the backend and time the converging round, then the
# in-sync rounds against versitygw. Each in-sync round runs twice: listing
# everything, and as a node runs it, comparing the digests of key ranges
# first (docs/design/replication.md, "Anti-entropy digests"). The fill takes
# most of the time (about 10 minutes on a quiet 2-vCPU machine for fs; the
# S3 fill goes at the gateway's pace, and lays the tenant out at a seventh
# of its size so that no round lists it all; see test/scale's fillUpload).
#
#   bash scripts/bench-reconcile.sh
#
# Settings (environment): BENCH_DIR (default /tmp) holds the data (about
# 5 GB at 1M documents; deleted at the end); PROFILE=DIR keeps CPU and
# heap profiles of the rounds there; CAIRN_SCALE_KEYS=N replaces the
# 1,000,000; CAIRN_SCALE_S3_KEYS=N the S3 phases' 1,000,000;
# CAIRN_SCALE_ONLY=fs or s3 runs only that backend's phases;
# CAIRN_SCALE_GW_DIR=DIR holds versitygw's objects (default /dev/shm, a
# tmpfs, when it exists); CAIRN_SCALE_S3_FULL=1 adds the S3 round that
# lists everything above 100,000 documents (on versitygw its time grows
# with the square of the size: hours at a million);
# CAIRN_SCALE_DIR=DIR keeps the store and fs backend there
# (not deleted), and CAIRN_SCALE_REUSE=1 with it reruns only the 1M
# in-sync round over that data.
set -euo pipefail
cd "$(dirname "$0")/.."
# versitygw keeps its connections open, as an S3 service does
# (internal/backend/s3/versitygw.KeepAlive); CAIRN_VERSITYGW_KEEPALIVE=0 turns it off.
export CAIRN_VERSITYGW_KEEPALIVE=${CAIRN_VERSITYGW_KEEPALIVE:-1}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/cairn-scale.XXXXXX")
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
TMPDIR=$dir CAIRN_LONG=1 CAIRN_SCALE_PROFILE=${PROFILE:-} \
	"$dir/scale.test" -test.run '^TestReconcileScale$' -test.v -test.timeout 120m
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
