package loadgen

import (
	"io"
	"net/http"
	"strconv"
)

// BareETag is the ETag the bare handler sends: as long as one of cairn's.
const BareETag = `"bare-000000000000000000000000000"`

// Bare is the baseline a node is measured against: a plain net/http
// handler that answers any GET or HEAD with Body(size) and any PUT with
// 201 after reading the body, with the headers cairn sends for the same
// requests (Content-Type, ETag, Content-Length) and nothing else: no
// routing, auth, validation, store, cache or middleware.
func Bare(size int) http.Handler {
	body := Body(size)
	ctype := []string{"application/json"}
	etag := []string{BareETag}
	clen := []string{strconv.Itoa(len(body))}
	zero := []string{"0"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h["Content-Type"], h["Etag"], h["Content-Length"] = ctype, etag, clen
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write(body)
			}
		case http.MethodPut:
			io.Copy(io.Discard, r.Body)
			h["Etag"], h["Content-Length"] = etag, zero
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}
