#!/usr/bin/env bash
# The test command: house-rule checks, then every test with -race.
#
#   bash scripts/test.sh            the default run (what CI runs)
#   CAIRN_LONG=1 bash scripts/test.sh   also the long soak and scale variants
#
# Everything it needs is installed by scripts/tools.sh into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
# The telemetry end-to-end test reads traces back from a real Jaeger. A cold
# build takes ~9 minutes on 2 cores; it is kept in .tools/ keyed by version.
CAIRN_JAEGER_BIN=$(bash scripts/jaeger.sh)
export CAIRN_JAEGER_BIN
# Assigned, then exported: `export X=$(cmd)` would hide a failed build from
# set -e, and the S3 tests would then skip outside CI.
CAIRN_VERSITYGW_BIN=$(bash scripts/versitygw.sh)
export CAIRN_VERSITYGW_BIN
# The console's browser tests (lab/test/console) drive Debian's chromium,
# installed with apt-get when missing.
CAIRN_CHROMIUM_BIN=$(bash scripts/chromium.sh)
export CAIRN_CHROMIUM_BIN
# promtool, systemd-analyze, zsh and fish, for the checks of deploy/ and of
# the shell completion scripts (CAIRN_PROMTOOL_BIN=… lines; see the script).
deploy_env=$(bash scripts/deploy-tools.sh)
while IFS= read -r line; do export "${line?}"; done <<<"$deploy_env"
# redis-cli and redis-benchmark, unpacked from Debian's redis-tools, drive
# the RESP front in the end-to-end tests.
CAIRN_REDIS_TOOLS=$(bash scripts/redis-tools.sh)
export CAIRN_REDIS_TOOLS

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# Three modules: the product (.), the chaos harness and load generator
# (lab: the cairn-lab command) and the peer benchmarks (bench). The bench
# module is vetted (which type-checks its benchmarks) so that it cannot rot;
# they are not run here.
modules=(. lab bench)

step "go vet"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...); done

step "staticcheck"
for m in "${modules[@]}"; do (cd "$m" && staticcheck ./...); done

step "build"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -race -o "$bin/cairn" ./cmd/cairn
# cairn runs cairn-lab, found beside it, for 'cairn chaos' and 'cairn bench'.
go build -C lab -race -o "$bin/cairn-lab" ./cmd/cairn-lab
export CAIRN_BIN="$bin/cairn" # the end-to-end tests run the real binary

step "tests (-race)"
go test -race -count=1 -timeout 20m ./...
(cd lab && go test -race -count=1 -timeout 20m ./...)

step "tests with the cairndebug tag"
go test -race -count=1 -tags cairndebug ./internal/streambuf/... ./internal/ingest/...

echo; echo "all checks passed"
