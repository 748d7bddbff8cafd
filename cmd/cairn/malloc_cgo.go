//go:build linux && cgo

package main

/*
#include <malloc.h>
#include <stdlib.h>

// Limits glibc's malloc arenas to one, from a constructor: it runs as the
// program is loaded, before the Go runtime starts threads. glibc fixes its
// arena limit when a thread first needs a second arena, which the
// runtime's threads do before any Go init runs, so a mallopt from Go comes
// too late. MALLOC_ARENA_MAX in the environment, if set, wins: glibc has
// read it. Not glibc (no M_ARENA_MAX): nothing done.
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

// arenasLimited reports whether the process limited glibc's malloc arenas
// to one when it was loaded.
//
// Why: Pebble allocates its block cache and memtables with C calloc (in a
// cgo build), from whichever OS thread runs the goroutine, and glibc gives
// threads arenas of their own, up to 8 per core. Freed cache blocks stay
// resident in those arenas, so a node's resident memory grows with the
// threads that touched the cache rather than with the cache's size: in
// the chaos memory scenario (a node at GOMEMLIMIT=128MiB), the node peaks
// at 113-120 MiB with one arena and at 125-145 MiB with glibc's default,
// which crossed the scenario's bound of 1.1 × the limit (140.8 MiB) on a
// quiet machine (docs/performance.md).
//
// It is set here, in the command, because it is a setting of the whole
// process: a library must not change malloc for the program that links
// it. C allocations are one per cache block read (and one per memtable),
// so one arena's lock does not contend on a 2-core node; on a many-core
// node under a cache-missing read load it might, and MALLOC_ARENA_MAX=n
// overrides it (docs/runbook.md, Memory pressure).
var arenasLimited = C.cairn_arenas() == 1

const cgoBuild = true
