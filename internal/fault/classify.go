package fault

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"syscall"
)

// Classify recognises foreign errors that the process really meets and
// returns their class, or Unknown. It never looks at error strings.
//
// Outcomes:
//   - context.Canceled → Canceled (the caller gave up; not the callee's fault)
//   - context.DeadlineExceeded, net timeouts, ECONNRESET, ECONNREFUSED,
//     EPIPE, ECONNABORTED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH → Transient
//   - ENOSPC, EDQUOT, EMFILE, ENFILE, ENOMEM → Exhausted
//   - fs.ErrNotExist → NotFound
//   - fs.ErrPermission, EROFS → Config (the operator's setup, not the request)
//   - *json.SyntaxError, *json.UnmarshalTypeError → Invalid
func Classify(err error) Class {
	switch {
	case err == nil:
		return Unknown
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return Transient
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if c := errnoClass(errno); c != Unknown {
			return c
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Transient
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se), errors.As(err, &te):
		return Invalid
	case errors.Is(err, fs.ErrNotExist):
		return NotFound
	case errors.Is(err, fs.ErrPermission):
		return Config
	}
	return Unknown
}

func errnoClass(e syscall.Errno) Class {
	switch e {
	case syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE, syscall.ECONNABORTED,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EAGAIN:
		return Transient
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM:
		return Exhausted
	case syscall.EROFS: // mounted read-only, or remounted so after disk errors
		return Config
	}
	return Unknown
}
