#!/usr/bin/env bash
# Installs what the deploy/ and shell-completion checks need and prints
# the environment lines that name them (KEY=path), for scripts/test.sh to
# export:
#
#   CAIRN_PROMTOOL_BIN       promtool (check rules, test rules)
#   CAIRN_SYSTEMD_ANALYZE_BIN systemd-analyze (verify the unit)
#   CAIRN_ZSH_BIN, CAIRN_FISH_BIN  the shells the completions are parsed by
#
# promtool comes from Debian's prometheus package, unpacked into
# .tools/promtool-<version>/ with dpkg -x rather than installed: it is a
# static binary, and installing the package would also create a service
# user and start a Prometheus server. The shells and systemd are
# installed with apt-get when missing (as root, or through sudo). Idempotent;
# a warm run prints only the paths. Progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PROMETHEUS_DEB_VERSION=2.42.0 # Debian 12's prometheus package
promdir="$root/.tools/promtool-$PROMETHEUS_DEB_VERSION"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_update() {
	if [ -z "$apt_updated" ]; then
		as_root apt-get update -qq >&2
		apt_updated=1
	fi
}

if [ ! -x "$promdir/promtool" ]; then
	echo "deploy-tools.sh: unpacking promtool from Debian's prometheus package into $promdir" >&2
	apt_update
	tmp=$(mktemp -d)
	chmod 777 "$tmp" # apt-get download writes as the _apt user when it can
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download -qq "prometheus=$PROMETHEUS_DEB_VERSION*" >&2 ||
		apt-get download -qq prometheus >&2)
	dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"
	mkdir -p "$promdir"
	mv "$tmp/x/usr/bin/promtool" "$promdir/promtool"
fi

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
if [ ${#need[@]} -gt 0 ]; then
	echo "deploy-tools.sh: apt-get install ${need[*]}" >&2
	apt_update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

echo "CAIRN_PROMTOOL_BIN=$promdir/promtool"
echo "CAIRN_SYSTEMD_ANALYZE_BIN=$(command -v systemd-analyze)"
echo "CAIRN_ZSH_BIN=$(command -v zsh)"
echo "CAIRN_FISH_BIN=$(command -v fish)"
