#!/usr/bin/env bash
# Paired A/B comparison of durable PUT (or cached GET) throughput between two cairn
# binaries (or one binary under two environments), for a shared, noisy
# machine. Both nodes run at once, each on its own fresh data directory,
# and short wrk slices alternate between them (A then B, B then A, ...), so
# a change of the host's speed over minutes hits both alike and both stores
# grow alike. Never run by CI.
#
# Usage: scripts/bench-put-ab.sh BIN_A BIN_B      (from anywhere in the repository)
#
# Settings (environment):
#   PAIRS=16     slices per node
#   SLICE=3s     length of each wrk slice (64 connections, 2 threads)
#   ENVA, ENVB   extra environment of node A / B, e.g. ENVB=GOGC=200
#   OP=put       put: new keys (scripts/wrk-put.lua); get: one cached key
#   ARGS         extra flags of both nodes' 'cairn serve'; @DIR@ stands for
#                each node's own scratch directory, e.g.
#                ARGS='--backend fs=fs:@DIR@/backend'
#   WATCHB=1     node B's web console is open throughout: a loop signs in
#                (the development node lets loopback in without a token)
#                and fetches what its overview, tenants and replication
#                pages poll, every second, as three open tabs would
#
# Prints one line per slice (node, req/s, node CPU ticks in the slice),
# then each node's median, the ratio of the medians and the median of the
# per-pair ratios B/A, of req/s and of requests per node CPU tick. Needs wrk
# (installed with apt-get when missing, as root); scripts/wrk-put.lua makes the requests.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(realpath "$1")
B=$(realpath "$2")
PAIRS=${PAIRS:-16}
SLICE=${SLICE:-3s}
OP=${OP:-put}
ARGS=${ARGS:-}
source scripts/bench-lib.sh bench-put-ab
need_pkg wrk wrk

tmp=$(mktemp -d)
cleanup() {
	stop_pids
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME BIN ENV: a node on loopback ports of the kernel's choosing.
start() {
	mkdir -p "$tmp/$1"
	# shellcheck disable=SC2086 # ENV is a list of assignments, ARGS of flags
	env ${3:-} "$2" serve --data-dir "$tmp/$1/data" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
		${ARGS//@DIR@/$tmp/$1} >"$tmp/$1/out" 2>"$tmp/$1/err" &
	pids+=($!)
	echo $! >"$tmp/$1/pid"
	for _ in $(seq 200); do
		grep -q '^export CAIRN_TOKEN=' "$tmp/$1/out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-put-ab: node $1 did not start:" >&2
	cat "$tmp/$1/err" >&2
	exit 1
}
start A "$A" "${ENVA:-}"
start B "$B" "${ENVB:-}"
if [[ ${WATCHB:-} == 1 ]]; then
	admin=$(sed -n 's/.*(admin \([^)]*\)).*/\1/p' "$tmp/B/err" | head -1)
	jar="$tmp/B/console-cookies"
	curl -sf -o /dev/null -c "$jar" -X POST --data 'next=/console/overview' "http://$admin/console/signin" ||
		{ echo "bench-put-ab: cannot sign in to node B's console at $admin" >&2; exit 1; }
	(
		while :; do
			for p in overview tenants replication; do
				curl -sf -o /dev/null -b "$jar" "http://$admin/console/api/$p" || echo "bench-put-ab: console poll $p failed" >&2
			done
			sleep 1
		done
	) &
	pids+=($!)
fi
if [[ $OP == get ]]; then # the key every GET reads, cached by its PUT
	for n in A B; do
		curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/$n/out")" \
			-H 'Content-Type: application/json' --data "{\"v\":\"$(printf '%0192d' 0)\"}" \
			"$(sed -n 's/^export CAIRN_URL=//p' "$tmp/$n/out")/v1/tenants/demo/docs/ab/k0"
	done
fi

# slice NAME PREFIX: one wrk run against node NAME; prints NAME req/s ticks.
slice() {
	local url tok pid t0 t1 rps
	url=$(sed -n 's/^export CAIRN_URL=//p' "$tmp/$1/out")
	tok=$(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/$1/out")
	pid=$(cat "$tmp/$1/pid")
	t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	if [[ $OP == get ]]; then
		rps=$(wrk -t2 -c64 -d"$SLICE" -H "Authorization: Bearer $tok" "$url/v1/tenants/demo/docs/ab/k0" | awk '/Requests\/sec/ { print $2 }')
	else
		rps=$(CAIRN_TOKEN=$tok PREFIX=$2 wrk -t2 -c64 -d"$SLICE" -s scripts/wrk-put.lua "$url" | awk '/Requests\/sec/ { print $2 }')
	fi
	t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
	echo "$1 $rps $((t1 - t0))"
}

uptime >&2
for i in $(seq "$PAIRS"); do
	if ((i % 2)); then
		slice A "p$i"
		slice B "p$i"
	else
		slice B "p$i"
		slice A "p$i"
	fi
done | tee "$tmp/slices.txt"
uptime >&2

awk '
	{ v[$1, ++n[$1]] = $2; c[$1, n[$1]] = $3 }
	function median(name,   i, j, k, t, a) {
		k = n[name]
		for (i = 1; i <= k; i++) a[i] = v[name, i]
		for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	END {
		ma = median("A"); mb = median("B")
		for (i = 1; i <= n["A"]; i++) v["R", ++n["R"]] = v["B", i] / v["A", i]
		# Requests per CPU tick of the node: what a request costs the node,
		# which a host busy with other work disturbs less than req/s.
		for (i = 1; i <= n["A"]; i++) if (c["A", i] > 0 && c["B", i] > 0) v["E", ++n["E"]] = (v["B", i] / c["B", i]) / (v["A", i] / c["A", i])
		printf "median req/s: A %.0f, B %.0f; B/A of medians %.3f; median of pair ratios %.3f\n", ma, mb, mb / ma, median("R")
		printf "median of pair ratios of requests per node CPU tick, B/A: %.3f\n", median("E")
	}' "$tmp/slices.txt"
