#!/usr/bin/env bash
# Measures 'cairn ingest' into a running 'cairn serve' (default settings,
# sync durability): wall time, sustained MB/s and the peak RSS (VmHWM) of
# both processes, for each size given (default: 100MiB 1GiB). Each size
# gets a fresh node and data directory, so each peak is its own.
#
#   bash scripts/bench-ingest.sh [SIZE...]      e.g. 100MiB 1GiB
#
# Needs /usr/bin/time (GNU time). Data goes to $BENCH_DIR (default
# /tmp/cairn-ingest-bench), which is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_DIR:-/tmp/cairn-ingest-bench}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100MiB 1GiB)
mkdir -p "$dir"
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/cairn" ./cmd/cairn
go build -o "$dir/gen" ./scripts/gen-ndjson
echo "# $(date -u +%FT%TZ) $(go version) nproc=$(nproc) load: $(cut -d' ' -f1-3 /proc/loadavg)"
for size in "${sizes[@]}"; do
	"$dir/gen" -size "$size" -out "$dir/in.ndjson" 2>/dev/null
	rm -rf "$dir/data"
	# Ports of the kernel's choosing; the node prints its URL and token.
	"$dir/cairn" serve --data-dir "$dir/data" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
		>"$dir/serve.out" 2>"$dir/serve.err" &
	spid=$!
	for _ in $(seq 100); do grep -q CAIRN_TOKEN "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
	CAIRN_URL=$(grep '^export CAIRN_URL=' "$dir/serve.out" | cut -d= -f2)
	CAIRN_TOKEN=$(grep '^export CAIRN_TOKEN=' "$dir/serve.out" | cut -d= -f2)
	if [ -z "$CAIRN_URL" ] || [ -z "$CAIRN_TOKEN" ]; then
		echo "bench-ingest: the node did not start:" >&2; cat "$dir/serve.err" >&2; exit 1
	fi
	export CAIRN_URL CAIRN_TOKEN
	/usr/bin/time -v "$dir/cairn" ingest --key-field symbol "$dir/in.ndjson" >"$dir/summary" 2>"$dir/time"
	echo "## $size ($(stat -c %s "$dir/in.ndjson") bytes, $(wc -l <"$dir/in.ndjson") records)"
	cat "$dir/summary"
	echo "client: wall $(grep 'Elapsed' "$dir/time" | awk '{print $NF}'), peak RSS $(grep 'Maximum resident' "$dir/time" | awk '{print $NF}') KiB"
	echo "server: $(grep VmHWM /proc/$spid/status | tr -s ' \t' ' '), CPU $(awk '{printf "%.1f s user + %.1f s sys", $14/100, $15/100}' /proc/$spid/stat)"
	echo "data dir: $(du -sh "$dir/data" | cut -f1)"
	kill "$spid"; wait "$spid" || true
	spid=
	rm -f "$dir/in.ndjson"
done
