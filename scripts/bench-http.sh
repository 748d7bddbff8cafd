#!/usr/bin/env bash
# HTTP throughput and latency of a durable cairn node beside a bare net/http
# handler serving the same bytes, measured by the same load generator in the
# same run (docs/performance.md). Never run by CI: it takes minutes and
# its numbers depend on the machine.
#
# Usage: scripts/bench-http.sh            (from anywhere in the repository)
#
# Settings (environment):
#   DURATION=10s  measured time of each run (after WARMUP=1s)
#   CONNS=64      connections, one closed-loop client each
#   SIZE=200      document bytes
#   REPEAT=3      rounds; the table shows the median of each column
#   WRK=auto      auto: also measure GET and PUT with wrk when it is installed, or
#                 installable (as root, with apt-get); no: skip wrk
#   PROFILE=      a directory: take a CPU profile of the node during the
#                 first round's GET run and write pprof -top there
#   OUT=          a directory to keep the raw results in (default: a temp dir)
#
# It starts 'cairn serve' on a fresh data directory with its defaults
# (durability sync: every acknowledged PUT is fsynced) and 'cairn bench-bare',
# both on loopback ports of the kernel's choosing, and stops both at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-64}
SIZE=${SIZE:-200}
REPEAT=${REPEAT:-3}
WRK=${WRK:-auto}
PROFILE=${PROFILE:-}

tmp=$(mktemp -d)
OUT=${OUT:-$tmp}
mkdir -p "$OUT"
source scripts/bench-lib.sh bench-http
cleanup() {
	stop_pids
	rm -rf "$tmp/data"
}
trap cleanup EXIT

echo "building cairn and cairn-lab..." >&2
go build -o "$tmp/cairn" ./cmd/cairn
go build -C lab -o "$tmp/cairn-lab" ./cmd/cairn-lab # 'cairn bench' runs the cairn-lab beside it

"$tmp/cairn" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "${throughput_flags[@]}" \
	>"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
wait_for "$tmp/serve.out" '^export CAIRN_TOKEN='
CAIRN_URL=$(sed -n 's/^export CAIRN_URL=//p' "$tmp/serve.out")
CAIRN_TOKEN=$(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/serve.out")
ADMIN=$(sed -n 's/.*(admin \([^)]*\)).*/\1/p' "$tmp/serve.err" | head -1)
export CAIRN_URL CAIRN_TOKEN CAIRN_TENANT=demo

"$tmp/cairn" bench-bare --listen 127.0.0.1:0 --size "$SIZE" >"$tmp/bare.out" 2>"$tmp/bare.err" &
pids+=($!)
wait_for "$tmp/bare.out" '^BARE_URL='
BARE_URL=$(sed -n 's/^BARE_URL=//p' "$tmp/bare.out")

echo "node $CAIRN_URL (admin $ADMIN), bare $BARE_URL; $REPEAT rounds of $DURATION, $CONNS connections, $SIZE-byte documents" >&2

bench() { # LABEL URL ARGS...: one run, appending its tsv line to results.tsv
	local label=$1 url=$2
	shift 2
	"$tmp/cairn" bench --url "$url" --label "$label" --conns "$CONNS" --duration "$DURATION" \
		--warmup "$WARMUP" --size "$SIZE" --tsv "$@" | tee -a "$OUT/results.tsv" >&2
}

: >"$OUT/results.tsv"
: >"$OUT/uptime.txt"
for round in $(seq "$REPEAT"); do
	uptime | tee -a "$OUT/uptime.txt" >&2
	# GETs read the same 1000 keys in every round (a fixed prefix); each
	# PUT run creates new keys (a fresh prefix per run).
	bench bare "$BARE_URL" --op get --no-seed
	if [[ -n $PROFILE && $round == 1 ]]; then
		mkdir -p "$PROFILE"
		secs=$(($(sed 's/[^0-9].*//' <<<"$DURATION") - 2)) # seconds only; starts 3 s in
		((secs >= 1)) || secs=1
		( sleep 3; curl -s -o "$PROFILE/node-get.pprof" "http://$ADMIN/debug/pprof/profile?seconds=$secs" ) &
		prof=$!
	fi
	bench cairn "$CAIRN_URL" --op get --prefix bench/http
	if [[ -n $PROFILE && $round == 1 ]]; then
		wait "$prof"
		go tool pprof -top "$tmp/cairn" "$PROFILE/node-get.pprof" >"$PROFILE/node-get.top.txt" 2>/dev/null || true
	fi
	bench bare "$BARE_URL" --op put
	bench cairn "$CAIRN_URL" --op put
done
uptime | tee -a "$OUT/uptime.txt" >&2

# median COLUMN LABEL OP: the median of a results.tsv column over the rounds.
median() {
	awk -F'\t' -v c="$1" -v l="$2" -v o="$3" '$1 == l && $2 == o { print $c }' "$OUT/results.tsv" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
failed() { awk -F'\t' -v l="$1" -v o="$2" '$1 == l && $2 == o { s += $11 } END { print s + 0 }' "$OUT/results.tsv"; }

{
	echo
	echo "Medians of $REPEAT rounds; latency in µs; failed = non-2xx responses and connection errors, summed."
	printf '%-6s %-4s %9s %8s %8s %8s %8s %7s %12s\n' target op req/s p50 p90 p99 p99.9 failed "of bare"
	for op in get put; do
		bare=$(median 5 bare $op)
		for label in bare cairn; do
			rps=$(median 5 $label $op)
			printf '%-6s %-4s %9.0f %8s %8s %8s %8s %7s %12s\n' $label $op "$rps" \
				"$(median 6 $label $op)" "$(median 7 $label $op)" "$(median 8 $label $op)" "$(median 9 $label $op)" \
				"$(failed $label $op)" "$(awk -v a="$rps" -v b="$bare" 'BEGIN { printf "%.2f", a / b }')"
		done
	done
	echo
	echo "Targets: cairn GET >= 0.70 of bare GET; cairn durable PUT >= 20000 req/s."
} | tee "$OUT/table.txt"

# The same comparisons with wrk, a generator other stores' figures use: GET of one
# cached key, and durable PUTs of new keys (scripts/wrk-put.lua).
if [[ $WRK != no ]]; then
	(need_pkg wrk wrk) || true # optional: without wrk its comparison is skipped
fi
if [[ $WRK != no ]] && command -v wrk >/dev/null; then
	key=v1/tenants/demo/docs/bench/http/k0 # seeded by the GET runs above
	# wrk_row TARGET OP: Requests/sec, then the 50%, 90% and 99% latencies
	# in µs and the non-2xx count of the last wrk run, as a wrk.tsv line.
	wrk_row() {
		awk -v t="$1" -v op="$2" '
			function us(s) { if (s ~ /us$/) return s + 0; if (s ~ /ms$/) return s * 1000; if (s ~ /s$/) return s * 1e6; return s }
			/Requests\/sec/ { rps = $2 }
			$1 == "50%" { p50 = us($2) } $1 == "90%" { p90 = us($2) } $1 == "99%" { p99 = us($2) }
			/Non-2xx/ { bad = $NF }
			END { printf "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%d\n", t, op, rps, p50, p90, p99, bad }' "$tmp/wrk.txt" | tee -a "$OUT/wrk.tsv" >&2
	}
	: >"$OUT/wrk.tsv"
	for round in $(seq "$REPEAT"); do
		for target in bare cairn; do
			url=$BARE_URL
			[[ $target == cairn ]] && url=$CAIRN_URL
			wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $CAIRN_TOKEN" "$url/$key" >"$tmp/wrk.txt"
			wrk_row $target get
			PREFIX=wrk-$round SIZE=$SIZE wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s scripts/wrk-put.lua "$url" >"$tmp/wrk.txt"
			wrk_row $target put
		done
	done
	{
		echo
		echo "wrk -t2 -c$CONNS -d$DURATION --latency: GET of one cached key, PUT of new keys (scripts/wrk-put.lua);"
		echo "medians of $REPEAT rounds, latency in µs:"
		printf '%-6s %-4s %9s %8s %8s %8s %7s %8s\n' target op req/s p50 p90 p99 non-2xx "of bare"
		wmed() { awk -F'\t' -v c="$1" -v l="$2" -v o="$3" '$1 == l && $2 == o { print $c }' "$OUT/wrk.tsv" | sort -g |
			awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
		for op in get put; do
			bare=$(wmed 3 bare $op)
			for target in bare cairn; do
				rps=$(wmed 3 $target $op)
				printf '%-6s %-4s %9.0f %8s %8s %8s %7s %8s\n' $target $op "$rps" "$(wmed 4 $target $op)" "$(wmed 5 $target $op)" "$(wmed 6 $target $op)" \
					"$(awk -F'\t' -v l=$target -v o=$op '$1 == l && $2 == o { s += $7 } END { print s + 0 }' "$OUT/wrk.tsv")" \
					"$(awk -v a="$rps" -v b="$bare" 'BEGIN { printf "%.2f", a / b }')"
			done
		done
	} | tee -a "$OUT/table.txt"
else
	echo "(wrk not available: skipped the wrk comparison)" | tee -a "$OUT/table.txt"
fi
uptime | tee -a "$OUT/uptime.txt"
echo "raw results in $OUT" >&2
