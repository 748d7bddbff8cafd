package resp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/server"
)

// The document commands. Reads run without a deadline, as over HTTP (a
// cache hit cannot block; a store read waits at most for the commit in
// flight); writes get the node's request deadline and are answered once
// durable.

// absent reports whether err says the key holds no document. A tenant
// catching up after a restore answers not found for a key it has not
// restored yet as a CatchingUpError: that is not an answer (the document
// may exist), and goes to the client as TRYAGAIN, as HTTP answers 503.
func absent(err error) bool {
	var ce *server.CatchingUpError
	return errors.Is(err, fault.ErrNotFound) && !errors.As(err, &ce)
}

func (s *Server) get(c redcon.Conn, ss *session, op string, b []byte) (server.Doc, bool, result) {
	k, okKey := key(c, b)
	if !okKey {
		return server.Doc{}, false, failed(fault.Invalid)
	}
	d, err := s.opt.Docs.Get(ss.ctx(), ss.tenant, k)
	if absent(err) {
		return d, false, ok
	}
	if err != nil {
		return d, false, s.fail(c, ss, op, err)
	}
	return d, true, ok
}

func cmdGet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	d, found, res := s.get(c, ss, "GET", args[1])
	switch {
	case res.err:
	case found:
		ss.bulk(c, d.Body)
	default:
		writeNull(c, ss)
	}
	return res
}

// cmdGetETag is GETETAG key: the document and its ETag (the HTTP ETag
// without its quotes) read together, for a later SET … IFMATCH etag.
func cmdGetETag(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	d, found, res := s.get(c, ss, "GETETAG", args[1])
	switch {
	case res.err:
	case found:
		c.WriteArray(2)
		ss.bulk(c, d.Body)
		c.WriteBulkString(strings.Trim(d.ETag, `"`))
	default:
		writeNull(c, ss)
	}
	return res
}

// cmdType answers string for every document, one with open siblings
// included (EXISTS counts it, and SCAN … TYPE string lists it), and none
// for an absent key.
func cmdType(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	k, okKey := key(c, args[1])
	if !okKey {
		return failed(fault.Invalid)
	}
	_, err := s.opt.Docs.Get(ss.ctx(), ss.tenant, k)
	switch {
	case err == nil, errors.Is(err, fault.ErrConflict):
		c.WriteString("string")
	case absent(err):
		c.WriteString("none")
	default:
		return s.fail(c, ss, "TYPE", err)
	}
	return ok
}

// cmdSet is SET key value [NX | XX | IFMATCH etag]. A condition that does
// not hold is a null reply, as Redis answers a SET NX that found the key.
func cmdSet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	var pre doc.Precondition
	for i := 3; i < len(args); i++ {
		opt := lower(string(args[i]))
		switch opt {
		case "nx", "xx", "ifmatch":
			if !pre.IsZero() {
				c.WriteError(errSyntax + ": SET takes one of NX, XX and IFMATCH etag")
				return failed(fault.Invalid)
			}
		}
		switch opt {
		case "nx":
			pre.IfNoneMatch = []string{"*"}
		case "xx":
			pre.IfMatch = []string{"*"}
		case "ifmatch":
			if i+1 >= len(args) || len(args[i+1]) == 0 {
				c.WriteError(errSyntax + ": IFMATCH needs the ETag GETETAG answered")
				return failed(fault.Invalid)
			}
			i++
			if string(args[i]) == "*" {
				// HTTP's If-Match: * (any current version) is XX here; an
				// ETag is never *, so it would never match.
				c.WriteError(errSyntax + ": IFMATCH takes the ETag GETETAG answered; for any existing document, use XX")
				return failed(fault.Invalid)
			}
			pre.IfMatch = []string{quoteETag(args[i])}
		case "ex", "px", "exat", "pxat", "keepttl", "persist":
			c.WriteError("ERR SET " + strings.ToUpper(opt) + " is not supported: cairn documents do not expire")
			return failed(fault.Invalid)
		case "get":
			c.WriteError("ERR SET GET is not supported: read with GETETAG, then SET … IFMATCH etag")
			return failed(fault.Invalid)
		default:
			c.WriteError(errSyntax + ": unknown SET option '" + truncate(args[i]) + "'")
			return failed(fault.Invalid)
		}
	}
	return s.put(c, ss, "SET", args[1], args[2], pre)
}

// quoteETag turns the ETag a client holds (with or without the HTTP
// quotes) into the strong ETag the store compares.
func quoteETag(b []byte) string {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return string(b)
	}
	return `"` + string(b) + `"`
}

func (s *Server) put(c redcon.Conn, ss *session, op string, kb, body []byte, pre doc.Precondition) result {
	k, okKey := key(c, kb)
	if !okKey || !s.value(c, body, nil) {
		return failed(fault.Invalid)
	}
	// The store keeps what it is given (server.Docs), and body is the
	// connection's read buffer (loop.go).
	_, _, err := s.opt.Docs.Put(s.writeCtx(ss.ctx()), ss.tenant, k, bytes.Clone(body), pre)
	switch {
	case err == nil:
		c.WriteString("OK")
		return ok
	case errors.Is(err, fault.ErrPreconditionFailed):
		writeNull(c, ss)
		return ok
	}
	return s.fail(c, ss, op, err)
}

// cmdDel deletes the keys, each once however often the command names it,
// as concurrent durable writes (writeAll), and answers how many existed.
// Every key is checked before any is deleted.
func cmdDel(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	keys, okKeys := keysOf(c, args[1:])
	if !okKeys {
		return failed(fault.Invalid)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var n atomic.Int64
	done, at, err := writeAll(len(keys), func(i int) error {
		// Each write has the request timeout, as each has its own share
		// of a commit, not the command's.
		err := s.opt.Docs.Delete(s.writeCtx(ss.ctx()), ss.tenant, keys[i], doc.Precondition{})
		switch {
		case err == nil:
			n.Add(1)
		case absent(err):
			err = nil
		}
		return err
	})
	if err != nil {
		return s.failSaying(c, ss, "DEL", err, partly("DEL", keys[at], done, len(keys), "deleted or found absent"))
	}
	c.WriteInt(int(n.Load()))
	return ok
}

func keysOf(c redcon.Conn, args [][]byte) ([]string, bool) {
	keys := make([]string, len(args))
	for i, a := range args {
		k, okKey := key(c, a)
		if !okKey {
			return nil, false
		}
		keys[i] = k
	}
	return keys, true
}

// cmdExists counts the keys that hold a document; one with open siblings
// exists.
func cmdExists(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	keys, okKeys := keysOf(c, args[1:])
	if !okKeys {
		return failed(fault.Invalid)
	}
	n := 0
	for _, k := range keys {
		_, err := s.opt.Docs.Get(ss.ctx(), ss.tenant, k)
		switch {
		case err == nil, errors.Is(err, fault.ErrConflict):
			n++
		case absent(err):
		default:
			return s.fail(c, ss, "EXISTS", err)
		}
	}
	c.WriteInt(n)
	return ok
}

// cmdMGet answers a null for an absent key and for one with open
// siblings, as Redis answers a null for a key that holds no string.
func cmdMGet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	keys, okKeys := keysOf(c, args[1:])
	if !okKeys {
		return failed(fault.Invalid)
	}
	bodies := make([][]byte, len(keys))
	total := 0
	defer func() { s.opt.Replies.Give(ss.tenant, 2*int64(total)) }()
	for i, k := range keys {
		d, err := s.opt.Docs.Get(ss.ctx(), ss.tenant, k)
		switch {
		case err == nil:
			bodies[i] = d.Body
			if total+len(d.Body) > s.maxReply {
				c.WriteError("ERR MGET reply larger than " + strconv.Itoa(s.maxReply) + " bytes: ask for fewer keys at a time")
				return failed(fault.Invalid)
			}
			if !s.opt.Replies.Take(ss.tenant, 2*int64(len(d.Body)), 2*int64(total)) {
				c.WriteError("TRYAGAIN " + s.opt.Replies.Busy("the replies being gathered") + "; retry after " + retryAfter(time.Second))
				return failed(fault.Exhausted)
			}
			total += len(d.Body)
		case absent(err), errors.Is(err, fault.ErrConflict):
		default:
			return s.fail(c, ss, "MGET", err)
		}
	}
	c.WriteArray(len(bodies))
	for _, b := range bodies {
		if b == nil {
			writeNull(c, ss)
		} else {
			ss.bulk(c, b)
		}
	}
	return ok
}

// cmdMSet checks every key and value, then writes each key's last value
// in the command (the one Redis's MSET leaves) as concurrent durable
// writes (writeAll). Unlike Redis's, it is not atomic: a failure leaves
// some pairs written.
func cmdMSet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	if len(args)%2 != 1 {
		c.WriteError(errWrongArg + "mset' command")
		return failed(fault.Invalid)
	}
	keys := make([]string, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		k, okKey := key(c, args[i])
		if !okKey || !s.value(c, args[i+1], args[i]) {
			return failed(fault.Invalid)
		}
		keys = append(keys, k)
	}
	// Only a key's last pair is written: concurrent writes of one key
	// could commit in any order.
	last := make(map[string]int, len(keys))
	for j, k := range keys {
		last[k] = j
	}
	pairs := make([]int, 0, len(last))
	for j, k := range keys {
		if last[k] == j {
			pairs = append(pairs, j)
		}
	}
	done, at, err := writeAll(len(pairs), func(i int) error {
		j := pairs[i]
		// Each its own timeout, as DEL's; the value cloned from the read
		// buffer, as put's.
		_, _, err := s.opt.Docs.Put(s.writeCtx(ss.ctx()), ss.tenant, keys[j], bytes.Clone(args[2+2*j]), doc.Precondition{})
		return err
	})
	if err != nil {
		return s.failSaying(c, ss, "MSET", err, partly("MSET", keys[pairs[at]], done, len(pairs), "written"))
	}
	c.WriteString("OK")
	return ok
}

// writeAll runs write(0) … write(n-1), up to writeParallel at once, so
// that a command's writes share the store's group commits: a write costs
// a share of an fsync rather than one. It starts none after one fails and
// waits for those started. It returns how many succeeded, and the first
// error with the index of the write that returned it.
func writeAll(n int, write func(i int) error) (done, at int, err error) {
	if n == 1 { // the common case, without a goroutine
		if err := write(0); err != nil {
			return 0, 0, err
		}
		return 1, 0, nil
	}
	var (
		wg      sync.WaitGroup
		slots   = make(chan struct{}, writeParallel)
		mu      sync.Mutex // guards done, at and err
		failing atomic.Bool
	)
	for i := range n {
		slots <- struct{}{}
		if failing.Load() {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			werr := write(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case werr == nil:
				done++
			case err == nil:
				failing.Store(true)
				at, err = i, werr
			}
		})
	}
	wg.Wait()
	return done, at, err
}

// partly tells, after a multi-key command's error, which key it was and
// what of the command was done: such commands are not atomic.
func partly(cmd, key string, done, total int, verb string) string {
	if total == 1 {
		return fmt.Sprintf(" (key '%s')", truncate([]byte(key))) // nothing else to tell of one key
	}
	return fmt.Sprintf(" (key '%s'; %s is not atomic: %d of its %d keys were %s, the rest not)", truncate([]byte(key)), cmd, done, total, verb)
}

// writeParallel bounds the writes one command has in flight: enough that
// they share commits, few enough that one command does not crowd the
// node's other writers out of the committer's groups (512 writes at most).
const writeParallel = 32

// rootPath reports whether p names the whole document in RedisJSON's
// syntax: "$" (JSONPath) or "." (the legacy path).
func rootPath(p []byte) bool { return string(p) == "$" || string(p) == "." }

const errRootOnly = "ERR cairn serves JSON.GET and JSON.SET on the root path only ($ or .)"

// cmdJSONGet is JSON.GET key [path]: with "$" the document in a one-element
// array, as RedisJSON answers a JSONPath; with "." or no path the
// document.
func cmdJSONGet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	if len(args) > 3 || (len(args) == 3 && !rootPath(args[2])) {
		c.WriteError(errRootOnly)
		return failed(fault.Invalid)
	}
	d, found, res := s.get(c, ss, "JSON.GET", args[1])
	switch {
	case res.err:
	case !found:
		writeNull(c, ss)
	case len(args) == 3 && string(args[2]) == "$":
		b := make([]byte, 0, len(d.Body)+2)
		b = append(append(append(b, '['), d.Body...), ']')
		ss.bulk(c, b)
	default:
		ss.bulk(c, d.Body)
	}
	return res
}

// cmdJSONSet is JSON.SET key path value [NX | XX].
func cmdJSONSet(s *Server, c redcon.Conn, ss *session, args [][]byte) result {
	if !rootPath(args[2]) {
		c.WriteError(errRootOnly)
		return failed(fault.Invalid)
	}
	var pre doc.Precondition
	switch {
	case len(args) == 4:
	case len(args) == 5 && lower(string(args[4])) == "nx":
		pre.IfNoneMatch = []string{"*"}
	case len(args) == 5 && lower(string(args[4])) == "xx":
		pre.IfMatch = []string{"*"}
	default:
		c.WriteError(errSyntax + ": JSON.SET key path value [NX | XX]")
		return failed(fault.Invalid)
	}
	return s.put(c, ss, "JSON.SET", args[1], args[3], pre)
}
