package server

import (
	"fmt"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Listing.
//
// limit is a whole number from 1 to Options.MaxListLimit in plain decimal
// digits; anything else (a sign, an empty value, a larger number however
// large) is a 400 stating that rule. Rows are written as Docs yields them,
// with next as the cursor; a failure after the header went out is reported in an
// "error" member and the connection is aborted, so it cannot pass for a
// complete page.

// listDocs serves GET /v1/tenants/{tenant}/docs?prefix=&after=&limit=.
//
// The answer is streamed as Docs.List yields rows; the page is never held
// in memory. Its shape:
//
//	{"items":[{"key":"a","etag":"\"…\"","size":12},…],"next":"a"}
//
// next is the cursor for the following page (pass it as after), or "" on
// the last page; the server asks Docs for limit+1 rows to know.
//
// An error before the first row is an ordinary JSON error with its status.
// An error after the 200 header went out cannot change the status, so the
// server ends the items array, writes "error" with the usual error object,
// leaves the outer object unterminated and aborts the connection (the
// chunked body never gets its final chunk, an HTTP/2 stream is reset). Any
// client therefore sees a failed read or invalid JSON, never a short page
// that looks complete.
func (s *Server) listDocs(w http.ResponseWriter, r *http.Request) {
	const op = "doc.list"
	prefix, after, limit, err := s.pageOf(r, op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	lw := listWriter{s: s, w: w, r: r}
	streamPage(&lw, op, s.docs.List(r.Context(), TenantOf(r), prefix, after, limit+1), limit,
		func(it *Item) string { return it.Key }, appendItem)
}

// streamPage streams one page of a listing through lw: at most limit rows
// of seq, which was asked for limit+1 so that a further row means there is
// a next page, whose cursor is the key of the last row sent.
func streamPage[T any](lw *listWriter, op string, seq iter.Seq2[T, error], limit int, key func(*T) string, appendRow func([]byte, *T) []byte) {
	n, last := 0, ""
	for it, err := range seq {
		if err != nil {
			lw.fail(err)
			return
		}
		if n == limit {
			lw.end(last)
			return
		}
		if err := lw.write(func(b []byte) []byte { return appendRow(b, &it) }); err != nil {
			lw.gone(op, err)
			return
		}
		last = key(&it)
		n++
	}
	lw.end("")
}

// pageOf reads a listing's prefix, after and limit query parameters.
func (s *Server) pageOf(r *http.Request, op string) (prefix, after string, limit int, err error) {
	q := r.URL.Query()
	if err := onlyParams(q, "prefix", "after", "limit"); err != nil {
		return "", "", 0, invalid(op, err.Error())
	}
	prefix, after = q.Get("prefix"), q.Get("after")
	for _, p := range [2][2]string{{"prefix", prefix}, {"after", after}} {
		if p[1] == "" {
			continue
		}
		if err := doc.ValidateKey(p[1]); err != nil {
			return "", "", 0, invalid(op, p[0]+": "+fault.MessageOf(err))
		}
	}
	limit = s.listLimit
	if q.Has("limit") {
		if limit, err = parseLimit(q.Get("limit"), s.maxList); err != nil {
			return "", "", 0, invalid(op, err.Error())
		}
	}
	return prefix, after, limit, nil
}

// onceEach refuses a query that gives one of names more than once: which
// value was meant would be a guess.
func onceEach(q url.Values, names ...string) error {
	for _, n := range names {
		if len(q[n]) > 1 {
			return fmt.Errorf("query parameter %q given more than once", n)
		}
	}
	return nil
}

// noQuery refuses a query on a route that takes none. A document route
// must: a key holding '?' that a client did not percent-encode would
// otherwise name another document (PUT …/docs/a?b would write "a").
func noQuery(r *http.Request, op string) error {
	if r.URL.RawQuery == "" && !r.URL.ForceQuery {
		return nil
	}
	return invalid(op, "this route takes no query parameters, and the URL has a query ('?"+bound(queryNames(r.URL.RawQuery), 64)+
		"'): a key holding '?' or '#' must be sent percent-encoded (%3F, %23)")
}

// queryNames is a raw query with its values left out ("a=…&b"): enough to
// show the client what it sent, without repeating into the error and the
// log a value that may be a credential (?access_token=…).
func queryNames(raw string) string {
	var b strings.Builder
	for i, p := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(p, "=")
		b.WriteString(shownName(name))
		if hasValue {
			b.WriteString("=…")
		}
	}
	return b.String()
}

// Showable reports whether an error may show s back to the client and the
// log: at most 24 letters, digits, '_', '-' or '.', the shape of a name.
// Anything else may be a credential given in the wrong place (a query
// ?TOKEN, a token for its hash); the tokens the docs show how to make are
// longer.
func Showable(s string) bool {
	return len(s) <= 24 && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}) < 0
}

// shownName is a query parameter's name as an error shows it: itself when
// Showable, else only its length.
func shownName(name string) string {
	if Showable(name) {
		return name
	}
	return "(a name of " + strconv.Itoa(len(name)) + " bytes, not repeated: it may be a credential)"
}

// onlyParams refuses a query with a parameter not among names, or one of
// them given more than once.
func onlyParams(q url.Values, names ...string) error {
	var unknown []string
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(names, name) {
			if Showable(name) {
				unknown = append(unknown, strconv.Quote(name))
			} else {
				unknown = append(unknown, shownName(name))
			}
		}
	}
	switch {
	case len(unknown) == 1:
		return fmt.Errorf("unknown query parameter %s (want %s)", unknown[0], strings.Join(names, ", "))
	case len(unknown) > 1:
		if len(unknown) > 8 {
			unknown = append(unknown[:8], "…")
		}
		return fmt.Errorf("unknown query parameters %s (want %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return onceEach(q, names...)
}

// parseLimit reads a listing's limit by one rule: a whole number from 1 to
// max in plain decimal digits. A sign, a fraction, an empty value and any
// number above max (however large) are refused alike, so a client learns
// the page size it gets instead of receiving fewer rows than it asked for.
func parseLimit(v string, maxLimit int) (int, error) {
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			n = -1
			break
		}
		if n <= maxLimit { // stop growing past the bound: huge numbers cannot overflow
			n = n*10 + int(c-'0')
		}
	}
	if v == "" || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit %s: want a whole number from 1 to %d in plain digits", strconv.Quote(bound(v, 32)), maxLimit)
	}
	return n, nil
}

// listWriter streams the listing body.
type listWriter struct {
	s         *Server
	w         http.ResponseWriter
	r         *http.Request
	rc        *http.ResponseController
	buf       []byte
	started   bool
	lastFlush time.Time
}

func (lw *listWriter) start() {
	lw.started = true
	h := lw.w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	lw.w.WriteHeader(http.StatusOK)
	lw.rc = http.NewResponseController(lw.w)
	lw.buf = append(lw.buf[:0], `{"items":[`...)
}

// appendItem appends a document listing's row.
func appendItem(b []byte, it *Item) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, it.Key)
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, it.ETag)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(it.Size), 10)
	if it.Conflict {
		b = append(b, `,"conflict":true`...)
	}
	return append(b, '}')
}

// write writes one row, which appendRow appends to its argument. The
// first row is flushed at once (time to first byte); later ones when
// flushEvery has passed since the last flush, and in any case whenever
// net/http's 4 KiB buffer fills, so a slow store shows up as a slow stream
// rather than a stalled one. Each flush extends the write deadline, so a
// long listing is not cut by the server's WriteTimeout while it makes
// progress.
func (lw *listWriter) write(appendRow func([]byte) []byte) error {
	first := !lw.started
	if first {
		lw.start()
	} else {
		lw.buf = append(lw.buf[:0], ',')
	}
	b := appendRow(append(lw.buf, '\n'))
	lw.buf = b
	if _, err := lw.w.Write(b); err != nil {
		return err
	}
	if now := lw.s.now(); first || now.Sub(lw.lastFlush) >= lw.s.flushEvery {
		return lw.flush(now)
	}
	return nil
}

func (lw *listWriter) flush(now time.Time) error {
	lw.lastFlush = now
	// The deadline is wall-clock time whatever s.now says. Behind a wrapper
	// without Unwrap this is ErrNotSupported and the server's deadline stays.
	lw.rc.SetWriteDeadline(time.Now().Add(lw.s.timeouts.Write))
	return lw.rc.Flush()
}

func (lw *listWriter) end(next string) {
	b := lw.buf[:0]
	if !lw.started {
		lw.start()
		b = lw.buf
	}
	b = append(b, "\n"+`],"next":`...)
	b = appendJSONString(b, next)
	b = append(b, "}\n"...)
	lw.w.Write(b)
}

// gone records that writing a row failed: the client is gone, and the
// handler stops reading the store for it.
func (lw *listWriter) gone(op string, err error) {
	if x := exchangeFrom(lw.r.Context()); x != nil {
		x.failure = fault.E(fault.Canceled, fault.Context{Op: op}, err)
	}
}

// fail reports an error: as a normal error answer if nothing was sent, else
// in-band and by aborting the connection.
func (lw *listWriter) fail(err error) {
	if !lw.started {
		lw.s.writeError(lw.w, lw.r, err)
		return
	}
	var id string
	if x := exchangeFrom(lw.r.Context()); x != nil {
		x.failure = err
		id = x.info.ID
	}
	status, code := statusOf(err)
	b := append(lw.buf[:0], "\n"+`],"error":`...)
	b = appendErrorObject(b, code, ClientMessage(err, status), id)
	lw.w.Write(b)
	lw.rc.Flush()
	panic(http.ErrAbortHandler)
}
