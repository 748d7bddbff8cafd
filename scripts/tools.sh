#!/usr/bin/env bash
# Installs the tools the checks and tests need into .tools/<name>-<version>/,
# keyed by version, so a second run (or a CI cache) skips the build. Prints
# nothing on a warm run. Source it or run it; it exports TOOLS_BIN.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools"

STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools; the last release that builds with Go 1.26

install_tool() { # name version package
	local dir="$tools/$1-$2"
	if [ ! -x "$dir/$1" ]; then
		echo "tools: building $1 $2 into $dir" >&2
		mkdir -p "$dir"
		GOBIN="$dir" GOFLAGS=-mod=mod go install "$3@$2" >&2
	fi
	echo "$dir"
}

staticcheck_dir=$(install_tool staticcheck "$STATICCHECK_VERSION" honnef.co/go/tools/cmd/staticcheck)
export TOOLS_BIN="$staticcheck_dir"
export PATH="$staticcheck_dir:$PATH"
