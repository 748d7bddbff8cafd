package fault

import (
	"errors"
	"strings"
)

// Class is the kind of failure. The zero value is Unknown.
type Class uint8

// The classes of DESIGN.md's failure table, plus the two outcomes that are not
// failures of the system but answers to the caller (not found, precondition).
const (
	Unknown            Class = iota
	Transient                // timeout, connection reset, 5xx, SlowDown: retry with backoff
	Corruption               // hash mismatch, truncated object: skip, quarantine, repair
	Exhausted                // 429, disk full, memory limit, breaker open: shed load
	Invalid                  // bad JSON, tenant, key, oversize: 4xx, nothing stored
	Config                   // bad flag, unreachable bucket at start: fail fast
	NotFound                 // the document or object does not exist
	PreconditionFailed       // If-Match / If-None-Match did not hold
	Unauthorized             // no or bad credentials
	Forbidden                // credentials valid, but not for this tenant
	Conflict                 // concurrent versions need a resolution
	Canceled                 // the caller gave up (context canceled)
	numClasses
)

var classNames = [numClasses]string{
	Unknown:            "unknown",
	Transient:          "transient",
	Corruption:         "corruption",
	Exhausted:          "exhausted",
	Invalid:            "invalid",
	Config:             "config",
	NotFound:           "not_found",
	PreconditionFailed: "precondition_failed",
	Unauthorized:       "unauthorized",
	Forbidden:          "forbidden",
	Conflict:           "conflict",
	Canceled:           "canceled",
}

// Classes returns every class, in order: for metrics whose series must
// exist before the first error of each.
func Classes() []Class {
	cs := make([]Class, numClasses)
	for i := range cs {
		cs[i] = Class(i)
	}
	return cs
}

// String returns the class name used in logs, metrics and JSON error codes.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// classError is the sentinel for one class; [Error.Is] matches it.
type classError struct{ c Class }

func (e *classError) Error() string { return "fault: " + e.c.String() }

// Sentinels, one per class, for errors.Is(err, fault.ErrNotFound) and the like.
var (
	ErrTransient          error = &classError{Transient}
	ErrCorruption         error = &classError{Corruption}
	ErrExhausted          error = &classError{Exhausted}
	ErrInvalid            error = &classError{Invalid}
	ErrConfig             error = &classError{Config}
	ErrNotFound           error = &classError{NotFound}
	ErrPreconditionFailed error = &classError{PreconditionFailed}
	ErrUnauthorized       error = &classError{Unauthorized}
	ErrForbidden          error = &classError{Forbidden}
	ErrConflict           error = &classError{Conflict}
	ErrCanceled           error = &classError{Canceled}
)

// Context says where a failure happened. Empty fields are unknown.
type Context struct {
	Op        string // the operation, e.g. "store.put", "backend.get"
	Tenant    string
	Key       string
	Backend   string
	RequestID string
}

// merge fills the empty fields of c from o.
func (c *Context) merge(o Context) {
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&c.Op, o.Op)
	fill(&c.Tenant, o.Tenant)
	fill(&c.Key, o.Key)
	fill(&c.Backend, o.Backend)
	fill(&c.RequestID, o.RequestID)
}

// Error is a classified error with context. Construct it with [E] or [New].
type Error struct {
	Class Class
	Context
	Msg string // what went wrong, in words a user can act on; may be empty
	Err error  // the cause; may be nil
}

// Error formats as "op: msg: cause", with the tenant and key when known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
	}
	if e.Tenant != "" || e.Key != "" {
		b.WriteString(" ")
		b.WriteString(e.Tenant)
		if e.Key != "" {
			b.WriteString("/")
			b.WriteString(e.Key)
		}
	}
	cause := errString(e.Err)
	if strings.HasSuffix(e.Msg, cause) {
		cause = "" // the message already ends with it (a message built from the cause)
	}
	for _, s := range []string{e.Msg, cause} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return "fault: " + e.Class.String()
	}
	return b.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	ce, ok := target.(*classError)
	return ok && ce.c == e.Class && e.Class != Unknown
}

// New returns a classified error with a message and no cause.
func New(c Class, ctx Context, msg string) *Error {
	return &Error{Class: c, Context: ctx, Msg: msg}
}

// E wraps err with a class and context. If c is Unknown, the class of err is
// kept (so E can add context without reclassifying). E(…, nil) returns nil.
func E(c Class, ctx Context, err error) error {
	if err == nil {
		return nil
	}
	if c == Unknown {
		c = ClassOf(err)
	}
	return &Error{Class: c, Context: ctx, Err: err}
}

// ClassOf returns the class of the outermost classified error in err's chain,
// or what [Classify] recognises, or Unknown. A nil error has class Unknown.
func ClassOf(err error) Class {
	if err == nil {
		return Unknown
	}
	var fe *Error
	for e := err; errors.As(e, &fe); e = fe.Err {
		if fe.Class != Unknown {
			return fe.Class
		}
	}
	return Classify(err)
}

// ContextOf merges the context of every [Error] in err's chain; for each
// field the innermost non-empty value wins.
func ContextOf(err error) Context {
	var frames []Context
	var fe *Error
	for e := err; e != nil && errors.As(e, &fe); e = fe.Err {
		frames = append(frames, fe.Context)
	}
	var c Context
	for i := len(frames) - 1; i >= 0; i-- {
		c.merge(frames[i])
	}
	return c
}

// MessageOf returns the message of the outermost [Error] with one, or the
// error's own text. It is what an HTTP error body shows a user.
func MessageOf(err error) string {
	var fe *Error
	for e := err; e != nil && errors.As(e, &fe); e = fe.Err {
		if fe.Msg != "" {
			return fe.Msg
		}
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
