# Helpers for the benchmark scripts, sourced after `cd` to the repository:
#
#   source scripts/bench-lib.sh NAME     NAME prefixes log lines
#
# pids: background processes stop_pids kills and waits for (the caller's
# cleanup trap calls it).
bench_name=$1
pids=()
log() { echo "$bench_name: $*" >&2; }
# need_pkg COMMAND PACKAGE...: install the packages with apt-get unless
# COMMAND is on PATH; without root, say what to install and exit.
need_pkg() {
	command -v "$1" >/dev/null && return 0
	if [[ $(id -u) != 0 ]]; then
		log "$1 is missing: install ${*:2} (apt-get install ${*:2}) or run as root"; exit 1
	fi
	log "installing ${*:2}..."
	apt-get install -y "${@:2}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${@:2}" >/dev/null; }
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for FILE PATTERN: poll (across processes) until FILE has a line
# matching PATTERN, for at most 30 s.
wait_for() {
	for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	log "timed out waiting for $2 in $1:"; cat "$1" >&2; return 1
}
# throughput_flags: what a benchmark's node is started with when the run
# measures throughput. The per-tenant rate limit (100,000 requests/s by
# default) stays on, as in production, but out of reach: the run measures
# the node, and one tenant's GETs exceed the default on two cores
# (redis-benchmark stops at the first refusal).
throughput_flags=(--tenant-rate 10000000)
stop_pids() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
