package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/fault"
)

// Sentinels for errors.Is. Every non-2xx answer is an [*Error], which
// matches the sentinel of its code (or, for answers that are not cairn's
// JSON, of its status).
var (
	ErrNotModified        = errors.New("cairn: not modified")            // 304: If-None-Match matched
	ErrInvalid            = errors.New("cairn: invalid request")         // 400, 405: bad tenant, key, JSON, header
	ErrUnauthorized       = errors.New("cairn: unauthorized")            // 401: no or unknown token
	ErrForbidden          = errors.New("cairn: forbidden")               // 403: token not valid for the tenant
	ErrNotFound           = errors.New("cairn: not found")               // 404
	ErrConflict           = errors.New("cairn: conflict")                // 409
	ErrPreconditionFailed = errors.New("cairn: precondition failed")     // 412: If-Match / If-None-Match
	ErrTooLarge           = errors.New("cairn: document too large")      // 413
	ErrUnavailable        = errors.New("cairn: temporarily unavailable") // 408, 429, 502, 503, 504: try later
	ErrServer             = errors.New("cairn: server error")            // other 5xx
)

// Error is a non-2xx answer from the server, or an error the server
// reported inside a listing stream (then Status is 0).
type Error struct {
	Status     int    // HTTP status
	Code       string // the server's error code, e.g. "not_found", "too_large"
	Message    string // what the server said
	RequestID  string // the request's X-Request-ID, to find it in the server's log
	RetryAfter time.Duration
	// Siblings, on an ErrConflict for a document with open siblings (the
	// manual conflict policy), are their ETags, last writer first, and
	// SiblingSet is the ETag of the set. Write with IfMatch of one of them
	// (or Resolve) to resolve the conflict.
	Siblings   []string
	SiblingSet string
}

func (e *Error) Error() string {
	s := "cairn: "
	if e.Status != 0 {
		s += strconv.Itoa(e.Status) + " "
	}
	s += e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

var byCode = map[string]error{
	"not_modified":        ErrNotModified,
	"invalid":             ErrInvalid,
	"method_not_allowed":  ErrInvalid,
	"unauthorized":        ErrUnauthorized,
	"forbidden":           ErrForbidden,
	"not_found":           ErrNotFound,
	"conflict":            ErrConflict,
	"precondition_failed": ErrPreconditionFailed,
	"too_large":           ErrTooLarge,
	"transient":           ErrUnavailable,
	"exhausted":           ErrUnavailable,
	"timeout":             ErrUnavailable,
	"corruption":          ErrServer, // a stored copy is damaged: repeating the read cannot help
}

// sentinel is the sentinel e matches.
func (e *Error) sentinel() error {
	if s, ok := byCode[e.Code]; ok {
		return s
	}
	switch e.Status {
	case http.StatusNotModified:
		return ErrNotModified
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return ErrInvalid
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	if e.Status >= 500 {
		return ErrServer
	}
	return nil
}

// Is matches the sentinel of e's code or status.
func (e *Error) Is(target error) bool {
	s := e.sentinel()
	return s != nil && s == target
}

// errorFrom builds the Error for a non-2xx response and closes its body.
func errorFrom(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-ID"),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
	}
	var body api.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &body) == nil && body.Error != nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		e.Siblings, e.SiblingSet = body.Error.Siblings, body.Error.ETag
		if body.Error.RequestID != "" {
			e.RequestID = body.Error.RequestID
		}
	}
	if h := resp.Header.Get("X-Cairn-Siblings"); h != "" && len(e.Siblings) == 0 {
		e.Siblings = strings.Split(h, ", ") // a HEAD: no body; ETags hold no commas
	}
	if e.SiblingSet == "" {
		e.SiblingSet = resp.Header.Get("X-Cairn-Sibling-Set")
	}
	if e.Code == "" {
		if resp.StatusCode == http.StatusNotModified {
			e.Code = "not_modified"
		} else {
			e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter parses a Retry-After value (delay-seconds or an HTTP-date),
// capped as the server side caps it, so a huge value cannot overflow.
func retryAfter(v string) time.Duration {
	d, _ := fault.ParseRetryAfter(v, time.Now())
	return d
}
