#!/usr/bin/env bash
# Installs Debian's chromium, which the console's browser tests drive
# headless (lab/test/console), when it is missing, and prints its path.
#
#   bin=$(bash scripts/chromium.sh)
#   CAIRN_CHROMIUM_BIN=$bin go test -C lab ./test/console/...
#
# It uses apt-get (as root, or through sudo when not root); apt output goes
# to stderr, the path to stdout. Idempotent: an installed chromium is used
# as it is.
set -euo pipefail

find_chromium() {
	for c in chromium chromium-browser; do
		if p=$(command -v "$c"); then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if ! find_chromium >/dev/null; then
	echo "chromium.sh: installing Debian's chromium" >&2
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q >&2
	"${sudo[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
fi
find_chromium
