#!/usr/bin/env bash
# cairn beside what users would pick instead, on this machine, in one run:
#
#   RESP   redis-benchmark -c 64 -d 200 (GET, and SET) against redis-server
#          (appendonly yes, appendfsync always) and against cairn's RESP front
#          (--resp-listen, durability sync)
#   HTTP   cairn bench (the lab's load generator) against cairn and the bare
#          net/http handler (cairn bench-bare): cached GET, durable PUT
#   SQL    pgbench -c 64 against PostgreSQL: select by key, and an upsert
#          (synchronous_commit=on), on MarketData records
#   bulk   the same 200 MiB MarketData NDJSON (scripts/gen-ndjson) loaded
#          with \copy into a jsonb table with a primary key, and with
#          cairn ingest into a fresh node (sync durability), and with
#          cairn import into a fresh, stopped node's data directory
#
# and prints one table of ratios (docs/performance.md). Never run by CI.
#
#   bash scripts/bench-peers.sh           the full run (~6 minutes on 2 cores)
#   SHORT=1 bash scripts/bench-peers.sh   2 s runs, one round, a 20 MiB file
#   ONLY=bulk bash scripts/bench-peers.sh the bulk loads only (PostgreSQL only)
#
# Settings (environment): DURATION (10s; SHORT 2s), REPEAT (3; SHORT 1)
# rounds of the throughput runs, medians shown; BULK (200MiB; SHORT 20MiB);
# BULK_REPEAT (REPEAT) rounds of the bulk loads, each COPY, ingest, import,
# after BULK_WARMUP (1) untimed rounds of the same;
# CONNS (64); OUT (a directory for the raw results; default a temp dir);
# ONLY=bulk skips the throughput runs (and Redis); BASE=REF (a git commit)
# also builds cairn at REF and, in each bulk round, times its ingest and
# import right after this tree's, for an A/B of the bulk path in one run.
#
# redis-server and PostgreSQL come from the distribution's packages: when
# missing they are installed with apt-get (as root). Every server runs as
# this script's child on a loopback port of its own, on data in a temp
# directory, and is stopped at exit.
#
# redis-benchmark's built-in SET sends -d bytes of 'x', which is not a JSON
# document; both servers are therefore sent the same custom commands,
# SET key:__rand_int__ VALUE and GET key:__rand_int__, with VALUE a
# 200-byte MarketData record and -r KEYS random keys (the SET run writes
# them before the GET run reads them).
set -euo pipefail
cd "$(dirname "$0")/.."

# TABLE=DIR prints the table of an earlier run's DIR/results.tsv and stops.
if [[ -n ${TABLE:-} ]]; then
	sed -n '/^# --- the table/,/^}$/p' "$0" >"${TMPDIR:-/tmp}/bench-peers-table.$$"
	# shellcheck disable=SC1090
	source "${TMPDIR:-/tmp}/bench-peers-table.$$"
	rm -f "${TMPDIR:-/tmp}/bench-peers-table.$$"
	table "$TABLE/results.tsv"
	exit
fi
SHORT=${SHORT:-}
DURATION=${DURATION:-$([[ -n $SHORT ]] && echo 2s || echo 10s)}
REPEAT=${REPEAT:-$([[ -n $SHORT ]] && echo 1 || echo 3)}
BULK=${BULK:-$([[ -n $SHORT ]] && echo 20MiB || echo 200MiB)}
BULK_REPEAT=${BULK_REPEAT:-$REPEAT}
BULK_WARMUP=${BULK_WARMUP:-1}
ONLY=${ONLY:-}
BASE=${BASE:-}
[[ -z $ONLY || $ONLY == bulk ]] || { echo "bench-peers: ONLY=$ONLY: want bulk" >&2; exit 2; }
CONNS=${CONNS:-64}
KEYS=10000
secs=${DURATION%s}

tmp=$(mktemp -d /tmp/cairn-peers.XXXXXX)
chmod 755 "$tmp"
OUT=${OUT:-$tmp/out}
mkdir -p "$OUT"
source scripts/bench-lib.sh bench-peers
PG=
cleanup() {
	[[ -n $PG ]] && runuser -u postgres -- "$PG/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
	stop_pids
	rm -rf "$tmp/data" "$tmp/ingest-data" "$tmp/import-data" "$tmp/redis" "$tmp/pg" "$tmp/bulk.ndjson" "$tmp/base"
}
trap cleanup EXIT

# --- the peers, from the distribution's packages
if [[ -z $ONLY ]]; then
	need_pkg redis-server redis-server
	need_pkg redis-benchmark redis-tools
fi
PG=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z $PG || ! -x $PG/initdb ]] || ! command -v pgbench >/dev/null; then
	need_pkg initdb-is-absent postgresql postgresql-contrib
	PG=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
command -v psql >/dev/null || need_pkg psql postgresql-client

log "building cairn, cairn-lab and gen-ndjson..."
go build -o "$tmp/cairn" ./cmd/cairn
go build -C lab -o "$tmp/cairn-lab" ./cmd/cairn-lab # 'cairn bench' and 'cairn bench-bare' run the cairn-lab beside it
go build -o "$tmp/gen" ./scripts/gen-ndjson
if [[ -n $BASE ]]; then
	log "building cairn at $BASE..."
	mkdir -p "$tmp/base"
	git archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go build -o "$tmp/cairn-base" ./cmd/cairn)
	rm -rf "$tmp/base"
fi

# A 200-byte MarketData record (gen-ndjson's shape, raw_feed padded).
value='{"symbol":"SYM000000001","price":281.06,"volume":146072,"metadata":{"exchange":"NYSE","data_source":"direct-feed"},"raw_feed":"'
value+=$(head -c 200 /dev/zero | tr '\0' 'A')
value=${value:0:198}'"}'
[[ ${#value} == 200 ]] || { log "value is ${#value} bytes"; exit 1; }

# --- servers
if [[ -z $ONLY ]]; then
redis_port=$(free_port)
mkdir -p "$tmp/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" --save '' \
	--appendonly yes --appendfsync always --daemonize no --logfile "$tmp/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

"$tmp/cairn" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
	--resp-listen 127.0.0.1:0 "${throughput_flags[@]}" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
wait_for "$tmp/serve.out" '^export CAIRN_TOKEN='
wait_for "$tmp/serve.err" 'resp 127'
CAIRN_URL=$(sed -n 's/^export CAIRN_URL=//p' "$tmp/serve.out")
CAIRN_TOKEN=$(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/serve.out")
RESP=$(sed -n 's/.*, resp \([^)]*\)).*/\1/p' "$tmp/serve.err" | head -1)
export CAIRN_URL CAIRN_TOKEN CAIRN_TENANT=demo

"$tmp/cairn" bench-bare --listen 127.0.0.1:0 --size 200 >"$tmp/bare.out" 2>"$tmp/bare.err" &
pids+=($!)
wait_for "$tmp/bare.out" '^BARE_URL='
BARE_URL=$(sed -n 's/^BARE_URL=//p' "$tmp/bare.out")
fi

pg_port=$(free_port)
chown postgres "$tmp"
runuser -u postgres -- "$PG/initdb" -D "$tmp/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG/pg_ctl" -D "$tmp/pg" -l "$tmp/pg.log" -w \
	-o "-p $pg_port -c listen_addresses=127.0.0.1 -k $tmp -c synchronous_commit=on -c fsync=on -c max_connections=200" start >/dev/null
psqlc() { psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
: >"$OUT/results.tsv"
: >"$OUT/load.txt"
record() { printf '%s\t%s\n' "$1" "$2" | tee -a "$OUT/results.tsv" >&2; }
if [[ -z $ONLY ]]; then
psqlc -c "CREATE TABLE md (symbol text PRIMARY KEY, doc jsonb NOT NULL)"
psqlc -c "INSERT INTO md SELECT 'key:' || lpad(i::text, 12, '0'), '$value'::jsonb FROM generate_series(0, $((KEYS - 1))) i"
cat >"$tmp/select.sql" <<SQL
\set k random(0, $((KEYS - 1)))
SELECT doc FROM md WHERE symbol = 'key:' || lpad(:k::text, 12, '0');
SQL
cat >"$tmp/upsert.sql" <<SQL
\set k random(0, $((KEYS - 1)))
INSERT INTO md VALUES ('key:' || lpad(:k::text, 12, '0'), '$value'::jsonb) ON CONFLICT (symbol) DO UPDATE SET doc = EXCLUDED.doc;
SQL

log "redis $redis_port, cairn $CAIRN_URL resp $RESP, bare $BARE_URL, postgres $pg_port; $REPEAT round(s) of $DURATION, $CONNS clients"

# --- throughput runs: one line per run in results.tsv (name, req/s)
rb() { # NAME HOST PORT [AUTH...] -- COMMAND...: redis-benchmark for about DURATION
	local name=$1 host=$2 port=$3 n=20000 pass opts=()
	shift 3
	while [[ $1 != -- ]]; do opts+=("$1"); shift; done
	shift
	# A quick calibration run, then requests for about DURATION at its rate.
	for pass in calibrate measure; do
		if ! redis-benchmark -h "$host" -p "$port" "${opts[@]}" -c "$CONNS" -d 200 -r "$KEYS" -n "$n" --csv "$@" >"$tmp/rb.csv" 2>"$tmp/rb.err"; then
			# It stops at the first error reply: say which.
			log "$name: redis-benchmark failed: $(grep -v '^WARNING' "$tmp/rb.err" | tail -1)"
			exit 1
		fi
		[[ $pass == measure ]] && break
		n=$(tail -1 "$tmp/rb.csv" | awk -F'","' -v s="$secs" '{ printf "%d", $(NF-6) * s }')
		((n >= 20000)) || n=20000
	done
	record "$name" "$(tail -1 "$tmp/rb.csv" | awk -F'","' '{ printf "%.0f", $(NF-6) }')"
}
rhost=${RESP%:*} rport=${RESP##*:}
cairn_auth=(--user demo -a "$CAIRN_TOKEN")
# Fill the key space on both first, so GETs find documents.
redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$CONNS" -r "$KEYS" -n $((KEYS * 5)) -q SET 'key:__rand_int__' "$value" >/dev/null 2>&1
redis-benchmark -h "$rhost" -p "$rport" "${cairn_auth[@]}" -c "$CONNS" -r "$KEYS" -n $((KEYS * 5)) -q SET 'key:__rand_int__' "$value" >/dev/null 2>&1
for round in $(seq "$REPEAT"); do
	log "round $round: load $(cut -d' ' -f1-3 /proc/loadavg | tee -a "$OUT/load.txt")"
	rb redis-get 127.0.0.1 "$redis_port" -- GET 'key:__rand_int__'
	rb resp-get "$rhost" "$rport" "${cairn_auth[@]}" -- GET 'key:__rand_int__'
	rb redis-set 127.0.0.1 "$redis_port" -- SET 'key:__rand_int__' "$value"
	rb resp-set "$rhost" "$rport" "${cairn_auth[@]}" -- SET 'key:__rand_int__' "$value"
	for target in bare cairn; do
		url=$BARE_URL
		[[ $target == cairn ]] && url=$CAIRN_URL
		for op in get put; do
			extra=()
			[[ $op == get ]] && extra=(--prefix bench/peers)
			[[ $op == get && $target == bare ]] && extra=(--no-seed)
			"$tmp/cairn" bench --url "$url" --label "$target" --conns "$CONNS" --duration "$DURATION" --warmup 1s \
				--size 200 --op "$op" --tsv "${extra[@]}" >"$tmp/bench.tsv"
			record "http-$target-$op" "$(awk -F'\t' '{ printf "%.0f", $5 }' "$tmp/bench.tsv")"
		done
	done
	for w in select upsert; do
		PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres pgbench -n -M prepared -c "$CONNS" -j 2 -T "$secs" -f "$tmp/$w.sql" postgres >"$tmp/pgbench.txt" 2>&1
		record "pg-$w" "$(awk '/^tps = / { printf "%.0f", $3 }' "$tmp/pgbench.txt")"
	done
done
fi

# --- bulk load: wall seconds of each, on the same file
log "generating $BULK of MarketData NDJSON..."
"$tmp/gen" -size "$BULK" -out "$tmp/bulk.ndjson" 2>/dev/null
records=$(wc -l <"$tmp/bulk.ndjson")
chmod 644 "$tmp/bulk.ndjson"
sync
record bulk-records "$records"
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
bulk_cairn() { # BINARY SUFFIX: ingest and import with BINARY, recorded as bulk-ingest-seconds$SUFFIX, ...
	local bin=$1 sfx=$2 ipid t0
	# cairn ingest into a node of its own, so the load starts from an empty store as COPY's does.
	rm -rf "$tmp/ingest-data" "$tmp/import-data"
	sync
	"$bin" serve --data-dir "$tmp/ingest-data" --listen 127.0.0.1:0 --admin-listen '' >"$tmp/ingest-serve.out" 2>"$tmp/ingest-serve.err" &
	ipid=$!
	pids+=($ipid)
	wait_for "$tmp/ingest-serve.out" '^export CAIRN_TOKEN='
	t0=$(date +%s.%N)
	CAIRN_URL=$(sed -n 's/^export CAIRN_URL=//p' "$tmp/ingest-serve.out") CAIRN_TOKEN=$(sed -n 's/^export CAIRN_TOKEN=//p' "$tmp/ingest-serve.out") \
		"$bin" ingest --key-field symbol "$tmp/bulk.ndjson" >"$OUT/ingest$sfx.txt"
	record "${pre}bulk-ingest-seconds$sfx" "$(secs_since "$t0")"
	kill "$ipid"
	wait "$ipid" || true
	# cairn import: the same file into a fresh, stopped node's data directory.
	sync
	t0=$(date +%s.%N)
	"$bin" import --data-dir "$tmp/import-data" --tenant demo --key-field symbol "$tmp/bulk.ndjson" >"$OUT/import$sfx.txt"
	record "${pre}bulk-import-seconds$sfx" "$(secs_since "$t0")"
	rm -rf "$tmp/ingest-data" "$tmp/import-data"
}
# The bulk loads share the machine with nothing else: the servers of the
# throughput runs are stopped first, so none of their background work
# (the node's compactions, redis-server's append-only file) lands in a
# load, and the first rounds are not timed: on the machine of
# docs/performance.md, the first round of a run took twice as long as the
# others for COPY, ingest and import alike.
stop_pids
pids=()
for round in $(seq $((BULK_WARMUP + BULK_REPEAT))); do
	pre= # what record names a warm-up round's figures: nothing the table reads
	if ((round <= BULK_WARMUP)); then
		pre=warmup-
		log "bulk warm-up round $round (not timed)"
	else
		log "bulk round $((round - BULK_WARMUP)): load $(cut -d' ' -f1-3 /proc/loadavg | tee -a "$OUT/load.txt")"
	fi
	psqlc -c "DROP TABLE IF EXISTS bulk"
	# No load may pay for the one before it: PostgreSQL writes COPY's pages
	# out at its next checkpoint and, left to autovacuum, vacuums and
	# analyzes the new table within a minute, both while cairn loads
	# (docs/performance.md). So autovacuum is off for the table, a
	# checkpoint follows the COPY, and every load starts after a sync; none
	# of it is timed.
	psqlc -c "CREATE TABLE bulk (doc jsonb NOT NULL, symbol text GENERATED ALWAYS AS (doc->>'symbol') STORED PRIMARY KEY) WITH (autovacuum_enabled = false)"
	sync
	t0=$(date +%s.%N)
	psqlc -c "\\copy bulk (doc) FROM '$tmp/bulk.ndjson'"
	record "${pre}bulk-copy-seconds" "$(secs_since "$t0")"
	[[ $(psqlc -tA -c "SELECT count(*) FROM bulk") == "$records" ]] || { log "COPY loaded the wrong number of rows"; exit 1; }
	psqlc -c "CHECKPOINT"
	# With BASE, the two builds take turns at going first.
	if [[ -n $BASE ]] && ((round % 2 == 0)); then
		bulk_cairn "$tmp/cairn-base" -base
		bulk_cairn "$tmp/cairn" ""
	else
		bulk_cairn "$tmp/cairn" ""
		[[ -z $BASE ]] || bulk_cairn "$tmp/cairn-base" -base
	fi
done

# --- the table
# Each ratio is the median of the rounds' ratios: a round measures cairn and
# its peer back to back, so on a shared machine the pairs see the same load
# where the medians of each column need not.
table() {
	local res=$1
	local records
	records=$(awk -F'\t' '$1 == "bulk-records" { print $2 }' "$res")
	median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
	col() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$res"; }
	row() { # WORK CAIRN-NAME PEER-NAME PEER-LABEL TARGET
		local c p r
		[[ -n $(col "$2") && -n $(col "$3") ]] || return 0
		c=$(col "$2" | median) p=$(col "$3" | median)
		r=$(paste <(col "$2") <(col "$3") | awk '$2 > 0 { print $1 / $2 }' | median)
		printf '%-34s %9.0f %9.0f  %-26s %5.2f %s  %s\n' "$1" "$c" "$p" "$4" "$r" \
			"$(paste <(col "$2") <(col "$3") | awk '$2 > 0 { printf "%s%.2f", (NR > 1 ? "," : "("), $1 / $2 } END { print ")" }')" "$5"
	}
	printf '%-34s %9s %9s  %-26s %s  %s\n' work cairn peer "peer is" "ratio (each round's)" target
	row "RESP GET (redis-benchmark)" resp-get redis-get "redis-server" ">= 0.8"
	row "RESP durable SET (redis-benchmark)" resp-set redis-set "redis-server fsync always" ">= 0.6"
	row "HTTP cached GET (cairn bench)" http-cairn-get http-bare-get "bare net/http handler" ">= 0.9"
	row "HTTP durable PUT (cairn bench)" http-cairn-put http-bare-put "bare net/http handler" ">= 0.6"
	row "HTTP GET vs pgbench select" http-cairn-get pg-select "PostgreSQL select by key" ""
	row "HTTP PUT vs pgbench upsert" http-cairn-put pg-upsert "PostgreSQL upsert, sync" ""
	row "RESP GET vs pgbench select" resp-get pg-select "PostgreSQL select by key" ""
	row "RESP SET vs pgbench upsert" resp-set pg-upsert "PostgreSQL upsert, sync" ""
	# Bulk: seconds, so the ratio is COPY's time over cairn's.
	brow() { # WORK CAIRN-NAME
		local c p r
		c=$(col "$2" | median) p=$(col bulk-copy-seconds | median)
		[[ -n $(col "$2") && -n $(col bulk-copy-seconds) ]] || return 0
		r=$(paste <(col "$2") <(col bulk-copy-seconds) | awk '$1 > 0 { print $2 / $1 }' | median)
		printf '%-34s %8ss %8ss  %-26s %5.2f %s  %s\n' "$1" "$c" "$p" "PostgreSQL \\copy, jsonb+pk" "$r" \
			"$(paste <(col "$2") <(col bulk-copy-seconds) | awk '$1 > 0 { printf "%s%.2f", (NR > 1 ? "," : "("), $2 / $1 } END { print ")" }')" ">= 1.0 (COPY time / cairn time)"
	}
	brow "bulk load, $records records: ingest" bulk-ingest-seconds
	brow "bulk load, $records records: import" bulk-import-seconds
	brow "bulk load, BASE: ingest" bulk-ingest-seconds-base
	brow "bulk load, BASE: import" bulk-import-seconds-base
	# This tree against BASE, each round's pair: BASE's time over this tree's.
	for w in ingest import; do
		[[ -n $(col "bulk-$w-seconds-base") ]] || continue
		printf '%-34s %5.2f %s\n' "bulk $w, BASE time / this time" \
			"$(paste <(col "bulk-$w-seconds") <(col "bulk-$w-seconds-base") | awk '$1 > 0 { print $2 / $1 }' | median)" \
			"$(paste <(col "bulk-$w-seconds") <(col "bulk-$w-seconds-base") | awk '$1 > 0 { printf "%s%.2f", (NR > 1 ? "," : "("), $2 / $1 } END { print ")" }')"
	done
}
{
	echo
	echo "$(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); $REPEAT round(s) of $DURATION, $CONNS clients, 200-byte MarketData values"
	echo "load average at each round: $(paste -sd';' "$OUT/load.txt")"
	table "$OUT/results.tsv"
} | tee "$OUT/table.txt"
log "raw results in $OUT"
