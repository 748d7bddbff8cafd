package resp

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tidwall/redcon"

	"github.com/cairnstore/cairn/internal/fault"
)

// SCAN's cursor is a number to every client (go-redis parses it as a
// uint64), but the listing resumes after a key of up to 1 KiB. So the
// server keeps the key: a cursor is a random number naming a key in a
// table of its tenant's most recent cursors (at most maxCursors), shared
// by the node's connections (a client's pool may send each SCAN on another
// one). The tables together hold at most cursorBytes: past it, the tenant
// holding the most loses its oldest cursors first, so a tenant that scans
// little keeps its cursors while others scan hard, and many tenants
// scanning cannot grow the node's memory without bound. A cursor pushed
// out, or another tenant's, is an error telling the client to start again
// from 0.

// maxCursorID bounds the cursors' numbers: clients that hold a cursor in
// a JavaScript number (node-redis 4) or an int64 must get it back exactly,
// and Redis's own cursors are small.
const maxCursorID = 1 << 53

// maxCursors bounds a tenant's table; cursorBytes all tables, counting
// each cursor as its key and cursorCost for the rest of it.
const (
	maxCursors  = 4096
	cursorBytes = 16 << 20
	cursorCost  = 96
)

type cursors struct {
	mu      sync.Mutex // guards all below
	n       int        // each tenant's most cursors
	limit   int        // the most bytes of all tables
	total   int        // the bytes of all tables
	tenants map[string]*cursorRing
}

// cursorRing is one tenant's cursors: the key each names, and the order
// they were made in, oldest first (order[head:]).
type cursorRing struct {
	m     map[uint64]string
	order []uint64
	head  int
	bytes int
}

func newCursors(n, limit int) *cursors {
	return &cursors{n: n, limit: limit, tenants: make(map[string]*cursorRing)}
}

func (cs *cursors) put(tenant, after string) uint64 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	r := cs.tenants[tenant]
	if r == nil {
		r = &cursorRing{m: make(map[uint64]string)}
		cs.tenants[tenant] = r
	}
	id := rand.Uint64N(maxCursorID)
	for _, taken := r.m[id]; id == 0 || taken; _, taken = r.m[id] {
		id = rand.Uint64N(maxCursorID)
	}
	if len(r.m) >= cs.n {
		cs.dropOldest(r)
	}
	r.m[id] = after
	r.order = append(r.order, id)
	r.bytes += len(after) + cursorCost
	cs.total += len(after) + cursorCost
	for cs.total > cs.limit {
		victim, vr := tenant, r
		for t, tr := range cs.tenants {
			if tr.bytes > vr.bytes {
				victim, vr = t, tr
			}
		}
		if cs.dropOldest(vr); len(vr.m) == 0 {
			delete(cs.tenants, victim) // many tenants scanning once hold nothing
		}
	}
	return id
}

// dropOldest removes the oldest cursor of table r.
func (cs *cursors) dropOldest(r *cursorRing) {
	id := r.order[r.head]
	r.head++
	after := r.m[id]
	delete(r.m, id)
	r.bytes -= len(after) + cursorCost
	cs.total -= len(after) + cursorCost
	if r.head > len(r.order)/2 {
		r.order = append(r.order[:0], r.order[r.head:]...)
		r.head = 0
	}
}

func (cs *cursors) get(id uint64, tenant string) (string, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	r := cs.tenants[tenant]
	if r == nil {
		return "", false
	}
	after, ok := r.m[id]
	return after, ok
}

// The page sizes of SCAN's COUNT: Redis's default, and the HTTP listing's
// largest page. COUNT is a hint: a larger one is served as the largest.
const (
	scanCount    = 10
	maxScanCount = 1000
)

// cmdScan is SCAN cursor [MATCH prefix* | key] [COUNT n] [TYPE string].
func cmdScan(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	after := ""
	if cur := string(args[1]); cur != "0" {
		id, err := strconv.ParseUint(cur, 10, 64)
		var found bool
		if err == nil {
			after, found = s.cursors.get(id, ss.tenant)
		}
		if !found {
			c.WriteError("ERR invalid or expired cursor '" + truncate(args[1]) + "': start the scan again from 0")
			return failed(fault.Invalid)
		}
	}
	prefix, exact, count := "", false, scanCount
	none := false // TYPE names a type no cairn document has
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.WriteError(errSyntax)
			return failed(fault.Invalid)
		}
		v := args[i+1]
		switch lower(string(args[i])) {
		case "match":
			p, ex, okPat := matchOf(string(v))
			if !okPat {
				c.WriteError("ERR MATCH '" + truncate(v) + "': cairn matches a prefix ('prefix*', with no *, ?, [ or \\ before the final *) or one whole key (no *, ?, [ or \\ at all)")
				return failed(fault.Invalid)
			}
			if !utf8Prefix(p) {
				c.WriteError("ERR MATCH '" + truncate(v) + "': keys are UTF-8, and this pattern is not, so it matches none")
				return failed(fault.Invalid)
			}
			prefix, exact = p, ex
		case "count":
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				c.WriteError("ERR COUNT must be a positive whole number")
				return failed(fault.Invalid)
			}
			count = min(n, maxScanCount)
		case "type":
			// Every document is a string: another type selects nothing,
			// as a type no key has does in Redis.
			none = lower(string(v)) != "string"

		default:
			c.WriteError(errSyntax + ": unknown SCAN option '" + truncate(args[i]) + "'")
			return failed(fault.Invalid)
		}
	}
	if after != "" && after < prefix {
		after = "" // the client changed MATCH mid-scan: list the new prefix from its start
	}
	if exact {
		// One key at most: the first key with the prefix is the key itself
		// when it exists, since no other key with that prefix sorts before it.
		count = 1
	}
	if none {
		c.WriteArray(2)
		c.WriteBulkString("0")
		c.WriteArray(0)
		return ok
	}
	keys := make([]string, 0, count)
	more := false
	for it, err := range s.opt.Docs.List(ss.ctx(), ss.tenant, prefix, after, count+1) {
		if err != nil {
			return s.fail(c, ss, "SCAN", err)
		}
		if exact {
			if it.Key == prefix {
				keys = append(keys, it.Key)
			}
			break
		}
		if len(keys) == count {
			more = true
			break
		}
		keys = append(keys, it.Key)
	}
	next := "0"
	if more {
		next = strconv.FormatUint(s.cursors.put(ss.tenant, keys[len(keys)-1]), 10)
	}
	c.WriteArray(2)
	c.WriteBulkString(next)
	c.WriteArray(len(keys))
	n := 0
	for _, k := range keys {
		c.WriteBulkString(k)
		n += len(k)
	}
	ss.wrote(c, n)
	return ok
}

// matchOf returns what a MATCH pattern selects: "*" every key, "p*" the
// keys starting with p, and a pattern without a glob character the one key
// it names (exact), as in Redis. Any other glob is refused.
// utf8Prefix reports whether p can begin a key, which is UTF-8: it is
// valid UTF-8 but perhaps for a rune cut at its end.
func utf8Prefix(p string) bool {
	for cut := 0; cut < utf8.UTFMax && cut <= len(p); cut++ {
		if utf8.ValidString(p[:len(p)-cut]) {
			return cut == 0 || !utf8.FullRuneInString(p[len(p)-cut:]) // the start of a rune, cut
		}
	}
	return false
}

func matchOf(pat string) (prefix string, exact, ok bool) {
	if !strings.ContainsAny(pat, `*?[\`) {
		return pat, true, true
	}
	p, found := strings.CutSuffix(pat, "*")
	if !found || strings.ContainsAny(p, `*?[\`) {
		return "", false, false
	}
	return p, false, true
}
