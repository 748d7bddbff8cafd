#!/usr/bin/env bash
# Installs the versitygw S3 gateway used by the s3 backend's conformance run
# into .tools/versitygw-<version>/ (only when it is missing) and prints its
# path.
#
#   bin=$(bash scripts/versitygw.sh)        build if needed, print the path
#   CAIRN_VERSITYGW_BIN=$bin go test ./internal/backend/...
#
# versitygw (github.com/versity/versitygw, Apache-2.0) serves the S3 API over
# a local directory ("posix" backend); the test harness starts it on a free
# loopback port. Build output goes to stderr, the path to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

VERSITYGW_VERSION=v1.8.0
dir="$root/.tools/versitygw-$VERSITYGW_VERSION"

if [ ! -x "$dir/versitygw" ]; then
	echo "versitygw.sh: building versitygw $VERSITYGW_VERSION into $dir" >&2
	mkdir -p "$dir"
	# versitygw's go.mod has no replace directives, so `go install pkg@version`
	# builds it as its own main module; cairn's go.mod is untouched. GOBIN is a
	# temporary directory so that an interrupted build never leaves a
	# half-written binary at the final path.
	tmp=$(mktemp -d "$dir/build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	GOBIN="$tmp" GOFLAGS= GOWORK=off CGO_ENABLED=0 \
		go install -trimpath "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
	mv "$tmp/versitygw" "$dir/versitygw"
fi
echo "$dir/versitygw"
