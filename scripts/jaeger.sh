#!/usr/bin/env bash
# Installs the Jaeger all-in-one binary used by the telemetry end-to-end test
# into .tools/jaeger-<version>/ (only when it is missing) and prints its path.
#
#   bin=$(bash scripts/jaeger.sh)        build if needed, print the path
#   CAIRN_JAEGER_BIN=$bin go test ./internal/telemetry/...
#
# A cold build takes about 9 minutes on 2 cores; a warm run prints the path
# and nothing else. Build output goes to stderr, the path to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

JAEGER_VERSION=v1.76.0 # github.com/jaegertracing/jaeger; the all-in-one "jaeger" command (v2 core, OTLP in, query API)
dir="$root/.tools/jaeger-$JAEGER_VERSION"

if [ ! -x "$dir/jaeger" ]; then
	echo "jaeger.sh: building jaeger $JAEGER_VERSION into $dir (cold build ~9 min on 2 cores)" >&2
	mkdir -p "$dir"
	# `go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0` is refused
	# by the go command: Jaeger's go.mod has a replace directive (sarama), and
	# `go install pkg@version` does not allow those. So fetch the module
	# through the module proxy and build it as the main module, in its own
	# directory, with its own go.mod and go.sum. cairn's go.mod is untouched.
	src=$(GOFLAGS= go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$src" ]; then
		echo "jaeger.sh: go mod download gave no source directory" >&2
		exit 1
	fi
	(cd "$src" && GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 \
		go build -trimpath -o "$dir/jaeger.tmp" ./cmd/jaeger) >&2
	mv "$dir/jaeger.tmp" "$dir/jaeger"
fi
echo "$dir/jaeger"
