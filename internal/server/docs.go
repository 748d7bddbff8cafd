package server

import (
	"net/http"
	"strconv"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// getDoc serves GET and HEAD of one document. Outcomes: 200 with the body,
// 304 when If-None-Match matches (weak comparison), 412 when If-Match does
// not (strong comparison), 400 for a bad key or a malformed header, or the
// status of the Docs error (404 for an absent document). A document read
// through from a backend (Doc.ReadThrough) is named in X-Cairn-Read-Through.
// The hit path does not allocate beyond the headers.
func (s *Server) getDoc(w http.ResponseWriter, r *http.Request) {
	head := r.Method == http.MethodHead
	key, err := docKeyOf(r, "doc.get")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	im, inm := r.Header["If-Match"], r.Header["If-None-Match"]
	// Check the headers' syntax before the read, so a malformed one is a
	// 400 whatever the document's state.
	if err := checkETagSyntax(im, inm); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.docs.Get(r.Context(), TenantOf(r), key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	if d.ReadThrough != "" {
		h.Set("X-Cairn-Read-Through", d.ReadThrough)
	}
	if len(im) > 0 {
		if ok, _ := matchETag(im, d.ETag, false); !ok {
			s.writeError(w, r, fault.New(fault.PreconditionFailed, fault.Context{Op: "doc.get"},
				"If-Match: the current ETag is "+d.ETag))
			return
		}
	}
	if len(inm) > 0 {
		if ok, _ := matchETag(inm, d.ETag, true); ok {
			h["Etag"] = []string{d.ETag}
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h["Content-Type"] = jsonContentType
	h["Etag"], h["Content-Length"] = headerValues(w, d.ETag, strconv.Itoa(len(d.Body)))
	w.WriteHeader(http.StatusOK)
	if !head {
		w.Write(d.Body)
	}
}

func checkETagSyntax(im, inm []string) error {
	if _, err := matchETag(im, "", false); err != nil {
		return invalid("doc.get", "If-Match: "+err.Error())
	}
	if _, err := matchETag(inm, "", true); err != nil {
		return invalid("doc.get", "If-None-Match: "+err.Error())
	}
	return nil
}

// putDoc serves PUT. Outcomes: 201 (created) or 200 (replaced) with the new
// ETag; 400 for a bad key, a malformed condition, an empty body or a body
// the validator rejects; 413 for a body over the limit; 412 for a failed
// condition; or the status of the Docs error. On every 4xx Docs.Put is not
// called (except 412, which Docs decides atomically), so nothing is stored.
func (s *Server) putDoc(w http.ResponseWriter, r *http.Request) {
	key, err := docKeyOf(r, "doc.put")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pre, err := preconditionOf(r, "doc.put")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	charge := s.chargeBody(r, "doc.put")
	defer charge.release()
	body, err := s.readBody(w, r, charge)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.check(body); err != nil {
		s.writeError(w, r, err)
		return
	}
	etag, created, err := s.docs.Put(r.Context(), TenantOf(r), key, body, pre)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h["Etag"], h["Content-Length"] = headerValues(w, etag, "0")
	if created {
		h["Location"] = []string{r.URL.EscapedPath()}
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// deleteDoc serves DELETE. Outcomes: 204; 404 when absent; 412 for a failed
// condition; 400 for a bad key or a malformed condition.
func (s *Server) deleteDoc(w http.ResponseWriter, r *http.Request) {
	key, err := docKeyOf(r, "doc.delete")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pre, err := preconditionOf(r, "doc.delete")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.docs.Delete(r.Context(), TenantOf(r), key, pre); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// docKeyOf is the checked key of a request on a document route, which
// takes no query (noQuery).
func docKeyOf(r *http.Request, op string) (string, error) {
	if err := noQuery(r, op); err != nil {
		return "", err
	}
	key := pathValue(r, "key")
	return key, doc.ValidateKey(key)
}

// preconditionOf reads If-Match and If-None-Match for a write. If-Match keeps
// W/ tags as sent: under the strong comparison RFC 9110 prescribes they never
// match, so the write fails with 412. If-None-Match uses the weak comparison,
// so W/ is stripped. A header that is present but holds no element is a 400
// rather than silently unconditional.
func preconditionOf(r *http.Request, op string) (doc.Precondition, error) {
	var pre doc.Precondition
	for _, hdr := range [2]string{"If-Match", "If-None-Match"} {
		lines, ok := r.Header[hdr]
		if !ok {
			continue
		}
		l, err := parseETagList(lines)
		if err != nil {
			return pre, invalid(op, hdr+": "+err.Error())
		}
		var tags []string
		switch {
		case l.star:
			tags = []string{"*"}
		case len(l.tags) == 0:
			return pre, invalid(op, hdr+": empty list")
		default:
			tags = l.tags
		}
		if hdr == "If-Match" {
			pre.IfMatch = tags
			continue
		}
		for i, t := range tags {
			tags[i] = opaque(t)
		}
		pre.IfNoneMatch = tags
	}
	return pre, nil
}

// check runs the validator and words its error for the client, with the
// byte offset when the error carries one.
func (s *Server) check(body []byte) error {
	err := s.validate(body)
	if err == nil {
		return nil
	}
	return &fault.Error{Class: fault.Invalid, Context: fault.Context{Op: "doc.put"}, Msg: describeInvalid(err), Err: err}
}
