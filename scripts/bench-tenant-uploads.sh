#!/usr/bin/env bash
# How long a node takes to upload one write to each of many tenants, for
# two cairn binaries in alternating runs (A, B, A, B, ...), each on a fresh
# data directory and a fresh fs backend: the case where each tenant's
# drain has fixed costs (docs/scaling.md, "Propagation"). Never run by CI.
#
# Usage: scripts/bench-tenant-uploads.sh BIN_A BIN_B   (from anywhere in the repository)
#
# Settings (environment):
#   PAIRS=3        runs of each binary
#   TENANTS=2000   tenants, one document written to each (4 connections)
#
# Prints, per run, the seconds the writes took and the seconds from the
# first write until cairn_reconcile_actions_total{action="upload"} counts
# every document, with the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1")
B=$(realpath "$2")
PAIRS=${PAIRS:-3}
TENANTS=${TENANTS:-2000}
source scripts/bench-lib.sh bench-tenant-uploads

tmp=$(mktemp -d)
cleanup() {
	stop_pids
	rm -rf "$tmp"
}
trap cleanup EXIT

# Tenant tNNNN's token is tok-tNNNN; the node gets their hashes.
python3 - "$TENANTS" >"$tmp/tenants.json" <<'EOF'
import hashlib, json, sys
n = int(sys.argv[1])
print(json.dumps({"tenant": ["t%05d:%s" % (i, hashlib.sha256(b"tok-t%05d" % i).hexdigest()) for i in range(n)]}))
EOF

run() { # BIN: one run
	local bin=$1 dir api admin pid t0 t1 t2 n
	dir=$(mktemp -d -p "$tmp")
	mkdir "$dir/backend"
	api=$(free_port)
	admin=$(free_port)
	"$bin" serve --config "$tmp/tenants.json" --data-dir "$dir/data" --listen "127.0.0.1:$api" \
		--admin-listen "127.0.0.1:$admin" --backend "local=fs:$dir/backend" >"$dir/out" 2>"$dir/err" &
	pid=$!
	pids+=("$pid")
	wait_for "$dir/err" '"cairn node started"'
	t0=$(date +%s.%N)
	python3 - "$api" "$TENANTS" <<'EOF'
import http.client, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
failed = []
def writer(j):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(j, n, 4):
        c.request("PUT", "/v1/tenants/t%05d/docs/k" % i, body='{"i":%d}' % i,
                  headers={"Authorization": "Bearer tok-t%05d" % i})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            failed.append(r.status)
ts = [threading.Thread(target=writer, args=(j,)) for j in range(4)]
for t in ts: t.start()
for t in ts: t.join()
if failed:
    sys.exit("%d writes failed: %s" % (len(failed), sorted(set(failed))))
EOF
	t1=$(date +%s.%N)
	while :; do
		n=$(curl -s "127.0.0.1:$admin/metrics" | awk '/^cairn_reconcile_actions_total\{.*action="upload"/ {s += $2} END {print s + 0}')
		((n >= TENANTS)) && break
		sleep 0.2
	done
	t2=$(date +%s.%N)
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	printf '%s\twrites %.1f s\tall uploaded %.1f s after the first write\tload %s\n' \
		"$(basename "$bin")" "$(bc <<<"$t1 - $t0")" "$(bc <<<"$t2 - $t0")" "$(cut -d' ' -f1 /proc/loadavg)"
}

for _ in $(seq "$PAIRS"); do
	run "$A"
	run "$B"
done
