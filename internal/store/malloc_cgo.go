//go:build linux && cgo

package store

/*
#include <malloc.h>
#include <stdlib.h>

// Limits glibc's malloc arenas to one, from a constructor: it runs as the
// program is loaded, before the Go runtime starts threads. glibc fixes its
// arena limit when a thread first needs a second arena, so a mallopt from
// Go's init comes too late (measured: no effect). MALLOC_ARENA_MAX in the
// environment, if set, wins: glibc has read it. Not glibc (no
// M_ARENA_MAX): nothing done.
static int cairn_arenas_limited;

__attribute__((constructor)) static void cairn_limit_arenas(void) {
#ifdef M_ARENA_MAX
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		cairn_arenas_limited = mallopt(M_ARENA_MAX, 1);
	}
#endif
}

static int cairn_arenas(void) { return cairn_arenas_limited; }
*/
import "C"

// arenasLimited reports whether the store limited glibc's malloc arenas
// to one when the program was loaded.
//
// Why: Pebble allocates its block cache and memtables with C calloc (when
// built with cgo), from whichever OS thread runs the goroutine, and glibc
// gives threads their own arenas, up to 8 per core. Freed cache blocks
// stay resident in those arenas, so a long scan that churns the cache (a
// reconciliation round over 1M keys) left ~20 MiB resident above the
// cache's size, which one arena does not (docs/benchmarks.md §7, run 4).
// C allocations are one per cache block read (and one per memtable), so
// one lock does not contend on a 2-core node; on a many-core node under a
// cache-missing read load it might, and MALLOC_ARENA_MAX=n overrides it.
var arenasLimited = C.cairn_arenas() == 1
