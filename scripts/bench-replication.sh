#!/usr/bin/env bash
# Replication between nodes sharing one S3 backend (docs/design/replication.md):
# versitygw and two cairn nodes on loopback, default settings, measured by
# 'cairn-lab bench-replication' (lab/internal/replbench) for two binaries in
# the same run — A, the baseline, built from git archive of BASE (default
# 662776f), and B, the working tree — printing a table with B/A ratios:
# backend requests per 1,000 writes, uploads/s of a hot key, write-to-peer
# propagation p50/p99, catch-up of an empty node (docs/s, peak RSS) and an
# in-sync round (duration, objects read).
#
#   bash scripts/bench-replication.sh                    # A/B, 100,000 documents
#   DOCS=1000000 bash scripts/bench-replication.sh       # rows 4 and 5 at a million
#   ROWS=1,2 BASE= bash scripts/bench-replication.sh     # the working tree only
#
# Settings (environment): BASE (a commit; empty: no baseline), ROWS
# (default 1,2,3,4,5), DOCS (default 100000), DURATION (rows 2 and 3,
# default 10s), BENCH_DIR (default /tmp) holds the builds and data (deleted
# at the end), ARGS (further cairn-lab bench-replication flags).
set -euo pipefail
cd "$(dirname "$0")/.."
# versitygw keeps its connections open, as an S3 service does
# (internal/backend/s3/versitygw.KeepAlive); CAIRN_VERSITYGW_KEEPALIVE=0 turns it off.
export CAIRN_VERSITYGW_KEEPALIVE=${CAIRN_VERSITYGW_KEEPALIVE:-1}
BASE=${BASE-662776f}
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/cairn-replbench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
CAIRN_VERSITYGW_BIN=$(bash scripts/versitygw.sh) # assigned, then exported: a failed build stops the script
export CAIRN_VERSITYGW_BIN
go build -o "$dir/cairn-b" ./cmd/cairn
go build -C lab -o "$dir/cairn-lab" ./cmd/cairn-lab
bins=()
if [ -n "$BASE" ]; then
	mkdir "$dir/base"
	git archive "$BASE" | tar -x -C "$dir/base"
	(cd "$dir/base" && go build -o "$dir/cairn-a" ./cmd/cairn)
	bins+=("A=$dir/cairn-a")
fi
bins+=("B=$dir/cairn-b")
echo "# $(date -u +%FT%TZ) $(go version) nproc=$(nproc) load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# A = $BASE, B = $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo +changes)"
# shellcheck disable=SC2086 # ARGS is split on purpose
"$dir/cairn-lab" bench-replication --dir "$dir/run" --rows "${ROWS:-1,2,3,4,5}" \
	--docs "${DOCS:-100000}" --duration "${DURATION:-10s}" ${ARGS:-} "${bins[@]}"
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
