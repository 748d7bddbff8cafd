#!/usr/bin/env bash
# Installs redis-cli, redis-benchmark and redis-server from Debian's
# redis-tools package into .tools/redis-tools-<version>/ (only when missing)
# and prints the directory that holds them.
#
#   dir=$(bash scripts/redis-tools.sh)
#   CAIRN_REDIS_TOOLS=$dir go test ./test/e2e -run RESP
#
# The packages are fetched with apt-get download and unpacked with dpkg -x,
# so no root is needed and the system is untouched; the binaries run through
# wrappers that point the loader at the unpacked libraries (jemalloc, lzf).
# Debian ships redis-server as redis-check-rdb under another name; the
# redis-server wrapper runs it so. Output of apt to stderr, the path to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

candidate() { apt-cache policy redis-tools 2>/dev/null | awk '/Candidate:/ {print $2}'; }
version=$(candidate)
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	apt-get update >&2 || sudo apt-get update >&2
	version=$(candidate)
fi
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	echo "redis-tools.sh: no redis-tools package in the apt sources" >&2
	exit 1
fi
dir="$root/.tools/redis-tools-${version//[:~]/_}"

if [ ! -x "$dir/bin/redis-benchmark" ]; then
	echo "redis-tools.sh: unpacking redis-tools $version into $dir" >&2
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download "redis-tools=$version" libjemalloc2 liblzf1 >&2)
	for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
	mkdir -p "$tmp/bin"
	libs=$(dirname "$(find "$tmp/root" -name 'libjemalloc.so.2' | head -1)")
	libs=${libs#"$tmp/root"}
	wrap() { # name binary
		printf '#!/usr/bin/env bash\nd=$(cd "$(dirname "$0")/.." && pwd)\nLD_LIBRARY_PATH="$d/root%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec -a %s "$d/root/usr/bin/%s" "$@"\n' \
			"$libs" "$1" "$2" >"$tmp/bin/$1"
		chmod +x "$tmp/bin/$1"
	}
	wrap redis-cli redis-cli
	wrap redis-benchmark redis-benchmark
	wrap redis-server redis-check-rdb
	rm -f "$tmp"/*.deb
	rm -rf "${dir:?}/root" "${dir:?}/bin"
	mv "$tmp/root" "$tmp/bin" "$dir/"
fi
echo "$dir/bin"
