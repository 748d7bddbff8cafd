package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// Conflicts.
//
// A document whose concurrent versions were kept as siblings (the manual
// conflict policy) answers GET, HEAD and a write that does not name one of
// them with 409 conflict; the error object adds "etag" (the sibling set's)
// and "siblings" (their ETags, last writer first), X-Cairn-Siblings lists
// them too, and X-Cairn-Sibling-Set gives the set's ETag (a HEAD's only
// way to name them). A PUT or DELETE with If-Match naming the set or a sibling
// resolves the conflict; so does POST .../resolve, which writes the chosen
// or given body (or a delete) If-Match the set's ETag, and so gets 412 if
// another version joined the siblings meanwhile. The conflict routes need
// a [Docs] that also implements [Conflicts]; otherwise they answer 404.

// Conflicts is the optional part of a [Docs] behind the conflict routes:
// the documents whose concurrent versions were kept as siblings (the
// manual conflict policy). A Docs without it answers those routes 404.
type Conflicts interface {
	// Conflicts yields tenant's documents with open siblings whose keys
	// start with prefix and sort after after, in key order, at most limit
	// of them, without the siblings' bodies. It streams, as List does.
	Conflicts(ctx context.Context, tenant, prefix, after string, limit int) iter.Seq2[Conflict, error]
	// Conflict returns one document's open siblings with their bodies;
	// fault.NotFound when the document has none (or does not exist).
	Conflict(ctx context.Context, tenant, key string) (Conflict, error)
	// History yields the versions of key that conflict resolutions
	// discarded (last-writer-wins losers, siblings a resolution did not
	// keep), with their bodies, so they can be looked at and restored.
	History(ctx context.Context, tenant, key string) iter.Seq2[Lost, error]
}

// Lost is a version a conflict resolution discarded.
type Lost struct {
	Sibling
	Winner string // the ETag of the version that replaced it
	Reason string
}

// Conflict is a document with open siblings.
type Conflict struct {
	Key string
	// ETag is the sibling set's: a write with If-Match of it (or of one
	// sibling) resolves exactly these siblings, and fails with 412 if
	// another version joined them meanwhile.
	ETag     string
	Siblings []Sibling // last writer first
}

// Sibling is one of a conflict's versions.
type Sibling struct {
	ETag    string
	Deleted bool      // a delete against an update
	Writer  uint64    // the node incarnation that wrote it
	Time    time.Time // its hybrid logical clock time, for people
	Size    int       // of the body
	Body    []byte    // nil in listings
}

// Paths of the conflict routes.
const (
	conflictsPath = "/v1/tenants/{tenant}/conflicts"
	conflictPath  = "/v1/tenants/{tenant}/conflicts/{key...}"
	resolveSuffix = "/resolve"
)

func (s *Server) conflictRoutes() []Route {
	return []Route{
		{Pattern: "GET " + conflictsPath, Op: "conflict.list", Access: AccessTenant, Handler: http.HandlerFunc(s.listConflicts)},
		{Pattern: "GET " + conflictPath, Op: "conflict.get", Access: AccessTenant, Handler: http.HandlerFunc(s.getConflict)},
		// {key...} must end a pattern, so .../{key...}/resolve is matched
		// here and the suffix taken off the escaped path (resolveKey).
		{Pattern: "POST " + conflictPath, Op: "conflict.resolve", Access: AccessTenant, Handler: http.HandlerFunc(s.resolveConflict)},
		{Pattern: conflictsPath, Op: "conflict.list", Access: AccessPublic, Handler: s.notAllowed("GET, HEAD")},
		{Pattern: conflictPath, Op: "conflict", Access: AccessPublic, Handler: s.notAllowed("GET, HEAD, POST")},
	}
}

func (s *Server) conflicts(op string) (Conflicts, error) {
	c, ok := s.docs.(Conflicts)
	if !ok {
		return nil, fault.New(fault.NotFound, fault.Context{Op: op}, "this server keeps no conflicts")
	}
	return c, nil
}

// listConflicts serves GET /v1/tenants/{tenant}/conflicts?prefix=&after=&limit=,
// streamed like the document listing:
//
//	{"items":[{"key":"a","etag":"\"…\"","siblings":[{"etag":"\"…\"","deleted":false,"writer":"…","time":"…","size":12},…]},…],"next":"a"}
func (s *Server) listConflicts(w http.ResponseWriter, r *http.Request) {
	const op = "conflict.list"
	c, err := s.conflicts(op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	prefix, after, limit, err := s.pageOf(r, op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lw := listWriter{s: s, w: w, r: r}
	streamPage(&lw, op, c.Conflicts(r.Context(), TenantOf(r), prefix, after, limit+1), limit,
		func(cf *Conflict) string { return cf.Key }, appendConflict)
}

// getConflict serves GET /v1/tenants/{tenant}/conflicts/{key...}: one
// conflict as a listing row, with each sibling's body as "body" (null for
// a delete). With ?history it lists instead what resolutions of key's
// conflicts discarded, as a one-page listing:
//
//	{"items":[{"etag":…,"deleted":…,"writer":…,"time":…,"size":…,"body":…,"winner":…,"reason":…},…],"next":""}
func (s *Server) getConflict(w http.ResponseWriter, r *http.Request) {
	const op = "conflict.get"
	c, err := s.conflicts(op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key := r.PathValue("key")
	if err := doc.ValidateKey(key); err != nil {
		s.writeError(w, r, err)
		return
	}
	history, err := historyOf(r, op)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if history {
		s.history(w, r, c, key)
		return
	}
	cf, err := c.Conflict(r.Context(), TenantOf(r), key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	w.Write(append(appendConflict(nil, &cf), '\n'))
}

// history streams key's conflict history. It is not paginated: it grows
// only with the conflicts of one key.
func (s *Server) history(w http.ResponseWriter, r *http.Request, c Conflicts, key string) {
	lw := listWriter{s: s, w: w, r: r}
	for l, err := range c.History(r.Context(), TenantOf(r), key) {
		if err != nil {
			lw.fail(err)
			return
		}
		err := lw.write(func(b []byte) []byte {
			b = appendSibling(b, &l.Sibling)
			b = append(b[:len(b)-1], `,"winner":`...) // reopen the object
			b = appendJSONString(b, l.Winner)
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, l.Reason)
			return append(b, '}')
		})
		if err != nil {
			lw.gone("conflict.history", err)
			return
		}
	}
	lw.end("")
}

// resolveConflict serves POST /v1/tenants/{tenant}/conflicts/{key...}/resolve
// with {"choose":"<etag>"}, {"body":<document>} or {"delete":true}. The
// resolution is an ordinary write over the sibling set, If-Match its ETag,
// so it dominates every sibling and replicates like any write; the
// siblings it does not keep go to the node's conflict history. Outcomes:
// 200 {"key","etag"} (204 when it deleted); 400 for a bad request body
// (naming what is wrong) or an ETag that is not a sibling's; 404 when the
// key has no open siblings; 412 when another version joined the siblings
// since they were read (If-Match, the set's ETag the client read, or while
// the resolution is written without one); 413 for a body over the limit.
func (s *Server) resolveConflict(w http.ResponseWriter, r *http.Request) {
	const op = "conflict.resolve"
	if _, err := s.conflicts(op); err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := resolveKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// If-Match pins the sibling set the client read: without it, versions
	// that joined the siblings since would be resolved away unseen.
	var setETag string
	if lines, ok := r.Header["If-Match"]; ok {
		l, err := parseETagList(lines)
		switch {
		case err != nil:
			s.writeError(w, r, invalid(op, "If-Match: "+err.Error()))
			return
		case len(l.tags) > 1 || (!l.star && len(l.tags) == 0):
			s.writeError(w, r, invalid(op, "If-Match: give one ETag, the sibling set's as GET …/conflicts/{key} answered it (or *)"))
			return
		case len(l.tags) == 1:
			setETag = l.tags[0]
		}
	}
	charge := s.chargeBody(r, op)
	defer charge.release()
	req, err := s.readResolve(w, r, charge)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	etag, err := s.Resolve(r.Context(), TenantOf(r), key, req, setETag)
	switch {
	case err != nil:
		s.writeError(w, r, err)
		return
	case etag == "":
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Etag"] = []string{etag}
	b := appendJSONString([]byte(`{"key":`), key)
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, etag)
	w.Write(append(b, "}\n"...))
}

// Resolve resolves key's open siblings with req, a request body
// [Server.ReadResolve] checked: the write the resolve route makes, over
// the sibling set If-Match its ETag. setETag, when not "", is the set's
// ETag the caller saw (the console's page): a set that changed since is
// fault.PreconditionFailed, as is another version joining the siblings
// while the resolution is written. Outcomes: the new ETag, "" after a
// delete; fault.NotFound when the key has no open siblings; fault.Invalid
// for a chosen ETag that is not a sibling's.
func (s *Server) Resolve(ctx context.Context, tenant, key string, req api.ResolveRequest, setETag string) (string, error) {
	const op = "conflict.resolve"
	c, err := s.conflicts(op)
	if err != nil {
		return "", err
	}
	cf, err := c.Conflict(ctx, tenant, key)
	if err != nil {
		return "", err
	}
	if setETag != "" && setETag != cf.ETag {
		return "", fault.New(fault.PreconditionFailed, fault.Context{Op: op, Tenant: tenant, Key: key},
			"the siblings changed since they were read: look at them again")
	}
	pre := doc.Precondition{IfMatch: []string{cf.ETag}}
	body, del := []byte(req.Body), req.Delete != nil
	if req.Choose != nil {
		sib, ok := chosen(&cf, *req.Choose)
		if !ok {
			return "", invalid(op, "choose: "+strconv.Quote(*req.Choose)+" is not the ETag of one of the siblings ("+siblingETags(&cf)+")")
		}
		body, del = sib.Body, sib.Deleted
	}
	if del {
		return "", s.docs.Delete(ctx, tenant, key, pre)
	}
	etag, _, err := s.docs.Put(ctx, tenant, key, body, pre)
	return etag, err
}

// resolveKey takes the key out of .../conflicts/{key...}/resolve. It works
// on the escaped path, so that a key ending in "/resolve" (escaped as
// %2Fresolve) is not mistaken for the suffix.
// historyOf reads a conflict read's one query parameter: ?history (or
// history=1, =true) asks for the resolutions' history, history=0 (or
// =false) for the open siblings, as without it.
func historyOf(r *http.Request, op string) (bool, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "history"); err != nil {
		return false, invalid(op, err.Error())
	}
	if !q.Has("history") {
		return false, nil
	}
	switch v := q.Get("history"); v {
	case "", "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	default:
		return false, invalid(op, fmt.Sprintf("history=%q: want history, history=1 or history=0", bound(v, 64)))
	}
}

func resolveKey(r *http.Request) (string, error) {
	const op = "conflict.resolve"
	if err := noQuery(r, op); err != nil {
		return "", err
	}
	p := r.URL.EscapedPath()
	prefix := "/v1/tenants/" + TenantOf(r) + "/conflicts/"
	esc, ok := strings.CutPrefix(p, prefix)
	if ok {
		esc, ok = strings.CutSuffix(esc, resolveSuffix)
	}
	if !ok || esc == "" {
		return "", invalid(op, "POST the resolution to /v1/tenants/{tenant}/conflicts/{key}/resolve")
	}
	key, err := url.PathUnescape(esc)
	if err != nil {
		return "", invalid(op, "key: "+err.Error())
	}
	if err := doc.ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// ReadResolve reads and checks a resolution's request body (bounded, gzip
// allowed, exactly one member, a valid document); its errors are 4xx
// naming the problem.
func (s *Server) ReadResolve(w http.ResponseWriter, r *http.Request) (api.ResolveRequest, error) {
	return s.readResolve(w, r, nil)
}

// readResolve is ReadResolve with the body charged to the memory budget.
func (s *Server) readResolve(w http.ResponseWriter, r *http.Request, charge *bodyCharge) (api.ResolveRequest, error) {
	const op = "conflict.resolve"
	var req api.ResolveRequest
	// The document inside may be as large as a PUT's, plus the wrapping.
	raw, err := s.readEncoded(w, r, op, s.maxBody+1024, charge)
	switch {
	case err != nil:
		return req, err
	case len(bytes.TrimSpace(raw)) == 0:
		return req, invalid(op, `empty body: want {"choose":"<sibling ETag>"}, {"body":<document>} or {"delete":true}`)
	case bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("\xEF\xBB\xBF")):
		return req, invalid(op, "request body: begins with a UTF-8 byte order mark (EF BB BF), which JSON text must not: send it without")
	}
	if err := resolveMembers(raw); err != nil {
		return req, invalid(op, "request body: "+err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, invalid(op, "request body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return req, invalid(op, "request body: more than one JSON value")
	}
	n := 0
	for _, set := range []bool{req.Choose != nil, req.Body != nil, req.Delete != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return req, invalid(op, `request body: give exactly one of "choose", "body" and "delete"`)
	case req.Delete != nil && !*req.Delete:
		return req, invalid(op, `"delete" must be true`)
	case req.Body != nil && string(req.Body) == "null":
		return req, invalid(op, `"body" must be a document, not null (to delete, send {"delete":true})`)
	case int64(len(req.Body)) > s.maxBody:
		return req, tooLarge(s.maxBody, op)
	case req.Body != nil:
		if err := s.check(req.Body); err != nil {
			return req, err
		}
	}
	return req, nil
}

// resolveMembers checks a resolution body's members by their exact names,
// each given once: encoding/json matches names regardless of case and keeps
// the last of a name given twice, both silently. What is not an object of
// members is left for the decoder to name.
func resolveMembers(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var seen [3]bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		i := slices.Index([]string{"choose", "body", "delete"}, name)
		switch {
		case i < 0:
			return fmt.Errorf("unknown member %q: want choose, body or delete", bound(name, 64))
		case seen[i]:
			return fmt.Errorf("member %q given more than once", name)
		}
		seen[i] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
	}
	return nil
}

// chosen finds the sibling whose ETag is etag, with or without its quotes.
func chosen(cf *Conflict, etag string) (*Sibling, bool) {
	if !strings.HasPrefix(etag, `"`) {
		etag = `"` + etag + `"`
	}
	for i := range cf.Siblings {
		if cf.Siblings[i].ETag == etag {
			return &cf.Siblings[i], true
		}
	}
	return nil, false
}

func siblingETags(cf *Conflict) string {
	tags := make([]string, len(cf.Siblings))
	for i, s := range cf.Siblings {
		tags[i] = s.ETag
	}
	return strings.Join(tags, ", ")
}

// appendConflict appends cf as JSON, with bodies when they are set.
func appendConflict(b []byte, cf *Conflict) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, cf.Key)
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, cf.ETag)
	b = append(b, `,"siblings":[`...)
	for i := range cf.Siblings {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSibling(b, &cf.Siblings[i])
	}
	return append(b, "]}"...)
}

// appendSibling appends sib as a JSON object, with "body" when it is set
// (null for a delete).
func appendSibling(b []byte, sib *Sibling) []byte {
	b = append(b, `{"etag":`...)
	b = appendJSONString(b, sib.ETag)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, sib.Deleted)
	b = append(b, `,"writer":"`...)
	b = strconv.AppendUint(b, sib.Writer, 16)
	b = append(b, `","time":`...)
	b = appendJSONString(b, sib.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(sib.Size), 10)
	if sib.Body != nil || sib.Deleted {
		b = append(b, `,"body":`...)
		if sib.Deleted {
			b = append(b, "null"...)
		} else {
			b = append(b, sib.Body...)
		}
	}
	return append(b, '}')
}

// appendSiblingsError adds the siblings of a 409 to the error object's
// members: ,"etag":…,"siblings":[…].
func appendSiblingsError(b []byte, se *doc.SiblingsError) []byte {
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, se.ETag)
	b = append(b, `,"siblings":[`...)
	for i, t := range se.Siblings {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	return append(b, ']')
}
