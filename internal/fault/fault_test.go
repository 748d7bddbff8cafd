package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestClassOfThroughWrapping(t *testing.T) {
	base := New(NotFound, Context{Op: "store.get", Key: "k"}, "no such document")
	wrapped := fmt.Errorf("docs: %w", fmt.Errorf("cache: %w", base))
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Unknown},
		{"plain", errors.New("x"), Unknown},
		{"direct", base, NotFound},
		{"two %w", wrapped, NotFound},
		{"E Unknown keeps class", E(Unknown, Context{Tenant: "t"}, wrapped), NotFound},
		{"outer E reclassifies", E(Invalid, Context{}, wrapped), Invalid},
		{"E over foreign", E(Unknown, Context{}, fmt.Errorf("x: %w", context.DeadlineExceeded)), Transient},
		{"retry-after is transparent", WithRetryAfter(fmt.Errorf("y: %w", base), time.Second), NotFound},
		{"joined", errors.Join(errors.New("a"), wrapped), NotFound},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("%s: ClassOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsAndAsThroughWrapping(t *testing.T) {
	inner := E(Transient, Context{Op: "backend.get", Backend: "s3"}, syscall.ECONNRESET)
	err := fmt.Errorf("reconcile: %w", fmt.Errorf("upload: %w", E(Unknown, Context{Tenant: "acme"}, inner)))

	if !errors.Is(err, ErrTransient) {
		t.Errorf("errors.Is(err, ErrTransient) = false, want true")
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("errors.Is(err, ErrNotFound) = true, want false")
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("cause lost: errors.Is(err, ECONNRESET) = false")
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(*Error) = false")
	}
	if got, want := fe.Tenant, "acme"; got != want {
		t.Errorf("outermost *Error tenant = %q, want %q", got, want)
	}
	// An Unknown-class frame must not match the Unknown "sentinel" of nothing.
	if errors.Is(New(Unknown, Context{}, "x"), ErrTransient) {
		t.Errorf("Unknown error matched ErrTransient")
	}
}

func TestContextMergeOrder(t *testing.T) {
	inner := E(Transient, Context{Op: "backend.put", Backend: "s3", Key: "inner-key"}, errors.New("reset"))
	mid := fmt.Errorf("uploader: %w", E(Unknown, Context{Op: "upload", Tenant: "acme", Key: "outer-key"}, inner))
	outer := E(Unknown, Context{Op: "reconcile", RequestID: "r1", Tenant: "other"}, mid)

	got := ContextOf(outer)
	want := Context{Op: "backend.put", Tenant: "acme", Key: "inner-key", Backend: "s3", RequestID: "r1"}
	if got != want {
		t.Errorf("ContextOf = %+v, want %+v (innermost non-empty wins)", got, want)
	}
	if got := ContextOf(errors.New("plain")); got != (Context{}) {
		t.Errorf("ContextOf(plain) = %+v, want zero", got)
	}
	if got := ContextOf(nil); got != (Context{}) {
		t.Errorf("ContextOf(nil) = %+v, want zero", got)
	}
}

func TestMessageOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("raw"), "raw"},
		{fmt.Errorf("w: %w", New(Invalid, Context{Op: "put"}, "key too long")), "key too long"},
		{E(Unknown, Context{}, New(Invalid, Context{}, "inner")), "inner"},
	}
	for _, tt := range tests {
		if got := MessageOf(tt.err); got != tt.want {
			t.Errorf("MessageOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Class: Transient}, "fault: transient"},
		{New(Invalid, Context{Op: "put", Tenant: "t", Key: "k"}, "bad"), "put t/k: bad"},
		{&Error{Class: Transient, Context: Context{Op: "get"}, Err: errors.New("eof")}, "get: eof"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if E(Transient, Context{}, nil) != nil {
		t.Errorf("E(nil) != nil")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestClassify(t *testing.T) {
	var syn *json.SyntaxError
	synErr := json.Unmarshal([]byte("{"), &struct{}{})
	if !errors.As(synErr, &syn) {
		t.Fatalf("setup: %v is not a *json.SyntaxError", synErr)
	}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"canceled", fmt.Errorf("x: %w", context.Canceled), Canceled},
		{"deadline", context.DeadlineExceeded, Transient},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, Transient},
		{"refused", syscall.ECONNREFUSED, Transient},
		{"enospc", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, Exhausted},
		{"emfile", syscall.EMFILE, Exhausted},
		{"net timeout", timeoutErr{}, Transient},
		{"json syntax", synErr, Invalid},
		{"json type", json.Unmarshal([]byte(`"s"`), new(int)), Invalid},
		{"not exist", fs.ErrNotExist, NotFound},
		{"permission", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, Config},
		{"read-only file system", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EROFS}, Config},
		{"other errno", syscall.EINVAL, Unknown},
		{"nil", nil, Unknown},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("%s: Classify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPolicyTable(t *testing.T) {
	for c := Unknown; c < numClasses; c++ {
		if c.String() == "" || c.Policy().Status == 0 {
			t.Errorf("class %d has no name or status", c)
		}
	}
	tests := []struct {
		c      Class
		status int
		action Action
		counts bool
	}{
		{Transient, 503, Retry, true},
		{Corruption, 502, Skip, false},
		{Exhausted, 503, Break, true},
		{Invalid, 400, FailFast, false},
		{Config, 500, FailFast, false},
		{NotFound, 404, FailFast, false},
	}
	for _, tt := range tests {
		p := tt.c.Policy()
		if p.Status != tt.status || p.Action != tt.action || p.CountsAsFailure != tt.counts {
			t.Errorf("%v.Policy() = %+v, want {%d %v %v}", tt.c, p, tt.status, tt.action, tt.counts)
		}
	}
	if got := Class(200).Policy(); got != table[Unknown] {
		t.Errorf("out-of-range class policy = %+v, want Unknown's", got)
	}
}

func TestRetryAfter(t *testing.T) {
	base := New(Transient, Context{}, "slow down")
	tests := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"none", base, 0, false},
		{"nil", nil, 0, false},
		{"direct", WithRetryAfter(base, 3*time.Second), 3 * time.Second, true},
		{"under two %w", fmt.Errorf("a: %w", fmt.Errorf("b: %w", WithRetryAfter(base, time.Second))), time.Second, true},
		{"outermost wins", WithRetryAfter(fmt.Errorf("a: %w", WithRetryAfter(base, time.Second)), 5*time.Second), 5 * time.Second, true},
		{"negative clamps", WithRetryAfter(base, -time.Second), 0, true},
		{"foreign type", fmt.Errorf("x: %w", foreignThrottle{}), 7 * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := RetryAfter(tt.err)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: RetryAfter = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
	if WithRetryAfter(nil, time.Second) != nil {
		t.Errorf("WithRetryAfter(nil) != nil")
	}
	wrapped := WithRetryAfter(E(Unknown, Context{Backend: "s3"}, base), time.Second)
	if ClassOf(wrapped) != Transient || ContextOf(wrapped).Backend != "s3" || wrapped.Error() != "slow down" {
		t.Errorf("WithRetryAfter hid class or context: class %v ctx %+v", ClassOf(wrapped), ContextOf(wrapped))
	}
}

type foreignThrottle struct{}

func (foreignThrottle) Error() string             { return "throttled" }
func (foreignThrottle) RetryAfter() time.Duration { return 7 * time.Second }
