#!/usr/bin/env bash
# The RESP front's GET beside redis-server's, and beside another build of
# cairn, in paired rounds on this machine:
#
#   redis-benchmark -c 64 -d 200 GET key:__rand_int__ (and SET with OPS)
#
# against redis-server (appendonly yes, appendfsync always), cairn built
# from this tree, and, with OLD=REV, cairn built from git revision REV
# (each on its own loopback port and temp data directory, durability sync).
# A round runs each target once, back to back, with the same flags and
# request count; the table gives each round's requests per second, the
# ratio to redis-server, the server's CPU time per request (user +
# system, from /proc/PID/stat over the run), which moves less than the
# rate when the machine is shared, and for cairn's SETs the writes per
# group commit (cairn_store_commit_batch_size from the admin /metrics).
# Medians over the rounds. Never run by CI.
#
#   bash scripts/bench-resp.sh                 5 rounds of 200,000 GETs
#   OLD=main bash scripts/bench-resp.sh        ... and a build of main too
#   SHORT=1 bash scripts/bench-resp.sh         1 round of 50,000
#
# Settings (environment): ROUNDS (5; SHORT 1), REQUESTS (200000; SHORT
# 50000), CONNS (64), PIPELINE (1: redis-benchmark's -P, the commands each
# client sends before it reads the replies), OPS ("GET"; "GET SET" adds
# durable SETs), OLD.
#
#   CONNS=1 PIPELINE=100 OPS=SET bash scripts/bench-resp.sh   one client pipelining its SETs
# redis-server and redis-benchmark come from the distribution's packages
# (apt-get install redis-server redis-tools, as root, when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

SHORT=${SHORT:-}
ROUNDS=${ROUNDS:-$([[ -n $SHORT ]] && echo 1 || echo 5)}
REQUESTS=${REQUESTS:-$([[ -n $SHORT ]] && echo 50000 || echo 200000)}
CONNS=${CONNS:-64}
PIPELINE=${PIPELINE:-1}
OPS=${OPS:-GET}
OLD=${OLD:-}
KEYS=10000

tmp=$(mktemp -d /tmp/cairn-bench-resp.XXXXXX)
source scripts/bench-lib.sh bench-resp
cleanup() {
	stop_pids
	rm -rf "$tmp"
}
trap cleanup EXIT

need_pkg redis-server redis-server
need_pkg redis-benchmark redis-tools

log "building cairn${OLD:+ and cairn at $OLD}..."
go build -o "$tmp/cairn-new" ./cmd/cairn
targets=(redis new)
if [[ -n $OLD ]]; then
	mkdir "$tmp/old-src"
	git archive "$OLD" | tar -x -C "$tmp/old-src"
	(cd "$tmp/old-src" && go build -o "$tmp/cairn-old" ./cmd/cairn)
	targets=(redis old new)
fi

# A 200-byte MarketData record, as scripts/bench-peers.sh sends.
value='{"symbol":"SYM000000001","price":281.06,"volume":146072,"metadata":{"exchange":"NYSE","data_source":"direct-feed"},"raw_feed":"'
value+=$(head -c 200 /dev/zero | tr '\0' 'A')
value=${value:0:198}'"}'

declare -A host port pid auth admin
port[redis]=$(free_port)
mkdir -p "$tmp/redis"
redis-server --port "${port[redis]}" --bind 127.0.0.1 --dir "$tmp/redis" --save '' \
	--appendonly yes --appendfsync always --daemonize no --logfile "$tmp/redis.log" &
pid[redis]=$!
pids+=($!)
host[redis]=127.0.0.1
auth[redis]=
for _ in $(seq 100); do redis-cli -p "${port[redis]}" ping >/dev/null 2>&1 && break; sleep 0.1; done

for t in "${targets[@]:1}"; do
	"$tmp/cairn-$t" serve --data-dir "$tmp/data-$t" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
		--resp-listen 127.0.0.1:0 "${throughput_flags[@]}" >"$tmp/$t.out" 2>"$tmp/$t.err" &
	pid[$t]=$!
	pids+=($!)
	wait_for "$tmp/$t.out" '^export CAIRN_TOKEN='
	wait_for "$tmp/$t.err" 'resp 127'
	addr=$(sed -n 's/.*, resp \([^)]*\)).*/\1/p' "$tmp/$t.err" | head -1)
	host[$t]=${addr%:*} port[$t]=${addr##*:}
	admin[$t]=$(sed -n 's/.*(admin \([0-9.:]*\),.*/\1/p' "$tmp/$t.err" | head -1)
	auth[$t]="--user demo -a $(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/$t.out")"
done

rb() { # TARGET N COMMAND...: redis-benchmark's requests per second
	local t=$1 n=$2
	shift 2
	# shellcheck disable=SC2086
	redis-benchmark -h "${host[$t]}" -p "${port[$t]}" ${auth[$t]} -c "$CONNS" -P "$PIPELINE" -d 200 -r "$KEYS" -n "$n" --csv "$@" 2>/dev/null |
		tail -1 | awk -F'","' '{ printf "%.0f", $(NF-6) }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# commits TARGET: the node's group commits and the writes they held so far
# (cairn_store_commit_batch_size), "0 0" for redis-server.
commits() {
	[[ -n ${admin[$1]:-} ]] || { echo "0 0"; return; }
	curl -fsS "http://${admin[$1]}/metrics" |
		awk '/^cairn_store_commit_batch_size_count/ { c = $2 } /^cairn_store_commit_batch_size_sum/ { s = $2 } END { print c + 0, s + 0 }'
}
tck=$(getconf CLK_TCK)

# Every key a GET can ask for (redis-benchmark's __rand_int__ is 12 digits,
# below -r) is written before the rounds, so GETs measure hits on every
# server.
VALUE=$value python3 -c '
import os, sys
v = os.environ["VALUE"].encode()
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
' "$KEYS" >"$tmp/fill.txt"
for t in "${targets[@]}"; do
	# shellcheck disable=SC2086
	redis-cli -h "${host[$t]}" -p "${port[$t]}" ${auth[$t]} --pipe <"$tmp/fill.txt" >"$tmp/fill-$t.out" 2>&1 ||
		{ cat "$tmp/fill-$t.out" >&2; exit 1; }
done
log "${targets[*]}: $ROUNDS round(s) of $REQUESTS requests, $CONNS clients, pipeline $PIPELINE, ops $OPS"
: >"$tmp/results.tsv"
for round in $(seq "$ROUNDS"); do
	log "round $round: load $(cut -d' ' -f1-3 /proc/loadavg)"
	for op in $OPS; do
		args=(GET 'key:__rand_int__')
		[[ $op == SET ]] && args=(SET 'key:__rand_int__' "$value")
		for t in "${targets[@]}"; do
			c0=$(cpu_ticks "${pid[$t]}")
			read -r g0 w0 < <(commits "$t")
			rps=$(rb "$t" "$REQUESTS" "${args[@]}")
			c1=$(cpu_ticks "${pid[$t]}")
			read -r g1 w1 < <(commits "$t")
			us=$(awk -v d=$((c1 - c0)) -v hz="$tck" -v n="$REQUESTS" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
			group=$(awk -v g=$((g1 - g0)) -v w="$w1" -v w0="$w0" 'BEGIN { if (g > 0) printf "%.1f", (w - w0) / g; else print 0 }')
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$op" "$t" "$rps" "$us" "$group" | tee -a "$tmp/results.tsv" >&2
		done
	done
done

# The table: per op and target, the median rate, the median of the
# rounds' ratios to redis-server (and each round's), the median CPU per
# request.
python3 - "$tmp/results.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
res = {}
for rnd, op, t, rps, us, group in rows:
    res.setdefault(op, {}).setdefault(t, {})[rnd] = (float(rps), float(us), float(group))
print("| op | server | req/s, median | ÷ redis-server, median (each round's) | CPU µs per request, median (each round's) | writes per group commit, median |")
print("|---|---|---:|---|---|---:|")
for op, ts in res.items():
    for t, rounds in ts.items():
        keys = sorted(rounds, key=int)
        rps = statistics.median(rounds[k][0] for k in keys)
        us = [rounds[k][1] for k in keys]
        ratios = [rounds[k][0] / ts["redis"][k][0] for k in keys if ts["redis"][k][0] > 0]
        name = {"redis": "redis-server", "new": "cairn (this tree)", "old": "cairn (OLD)"}[t]
        ratio = "" if t == "redis" else "%.2f (%s)" % (statistics.median(ratios), ", ".join("%.2f" % r for r in ratios))
        groups = [rounds[k][2] for k in keys]
        group = "" if t == "redis" or op != "SET" else "%.1f" % statistics.median(groups)
        print("| %s | %s | %s | %s | %.1f (%s) | %s |" % (op, name, f"{rps:,.0f}", ratio, statistics.median(us), ", ".join("%.1f" % u for u in us), group))
PY
