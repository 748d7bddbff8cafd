package fault

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestClassOfHTTPStatus(t *testing.T) {
	tests := []struct {
		code int
		want Class
	}{
		{200, Unknown}, {204, Unknown}, {301, Unknown}, {304, PreconditionFailed},
		{400, Invalid}, {401, Unauthorized}, {403, Forbidden}, {404, NotFound},
		{405, Invalid}, {408, Transient}, {409, Conflict}, {410, NotFound},
		{412, PreconditionFailed}, {413, Invalid}, {418, Invalid}, {425, Transient},
		{429, Exhausted}, {500, Transient}, {501, Config}, {502, Transient},
		{503, Transient}, {504, Transient}, {505, Config}, {507, Exhausted},
		{599, Transient}, {600, Unknown}, {-1, Unknown}, {0, Unknown},
	}
	for _, tt := range tests {
		if got := ClassOfHTTPStatus(tt.code); got != tt.want {
			t.Errorf("ClassOfHTTPStatus(%d) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestFromHTTPStatus(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		code       int
		retryAfter string
		wantClass  Class
		wantNil    bool
		wantRA     time.Duration
		wantHasRA  bool
		wantMsg    string
	}{
		{code: 200, wantNil: true},
		{code: 503, retryAfter: "120", wantClass: Transient, wantRA: 2 * time.Minute, wantHasRA: true, wantMsg: "http 503 Service Unavailable"},
		{code: 429, retryAfter: now.Add(90 * time.Second).Format(http.TimeFormat), wantClass: Exhausted, wantRA: 90 * time.Second, wantHasRA: true, wantMsg: "http 429 Too Many Requests"},
		{code: 503, retryAfter: "soon", wantClass: Transient, wantMsg: "http 503 Service Unavailable"},
		{code: 404, wantClass: NotFound, wantMsg: "http 404 Not Found"},
		{code: 599, wantClass: Transient, wantMsg: "http 599"},
	}
	for _, tt := range tests {
		err := fromHTTPStatusAt(tt.code, tt.retryAfter, now)
		if tt.wantNil {
			if err != nil {
				t.Errorf("FromHTTPStatus(%d) = %v, want nil", tt.code, err)
			}
			continue
		}
		if got := ClassOf(err); got != tt.wantClass {
			t.Errorf("FromHTTPStatus(%d) class = %v, want %v", tt.code, got, tt.wantClass)
		}
		if got := MessageOf(err); got != tt.wantMsg {
			t.Errorf("FromHTTPStatus(%d) msg = %q, want %q", tt.code, got, tt.wantMsg)
		}
		ra, ok := RetryAfter(err)
		if ra != tt.wantRA || ok != tt.wantHasRA {
			t.Errorf("FromHTTPStatus(%d, %q) RetryAfter = %v, %v; want %v, %v", tt.code, tt.retryAfter, ra, ok, tt.wantRA, tt.wantHasRA)
		}
	}
	// The public entry point uses the wall clock; only check it classifies.
	if err := FromHTTPStatus(500, "1"); !errors.Is(err, ErrTransient) {
		t.Errorf("FromHTTPStatus(500) = %v, want transient", err)
	}
	// Adding context keeps class and hint.
	err := fmt.Errorf("s3 get: %w", E(Unknown, Context{Backend: "s3"}, fromHTTPStatusAt(503, "5", now)))
	if ra, _ := RetryAfter(err); ClassOf(err) != Transient || ra != 5*time.Second {
		t.Errorf("wrapped FromHTTPStatus: class %v ra %v", ClassOf(err), ra)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"86401", 24 * time.Hour, true},
		{"99999999999999999999999", 24 * time.Hour, true},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"abc", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour, true},
		{"Saturday, 01-Mar-25 12:00:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Sat Mar  1 12:00:20 2025", 20 * time.Second, true},         // asctime
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestFormatRetryAfter(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "1"}, {-time.Second, "1"}, {time.Millisecond, "1"}, {time.Second, "1"},
		{1001 * time.Millisecond, "2"}, {90 * time.Second, "90"},
	}
	for _, tt := range tests {
		if got := FormatRetryAfter(tt.d); got != tt.want {
			t.Errorf("FormatRetryAfter(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// FuzzParseRetryAfter checks the parser of an untrusted header never panics,
// never returns a negative or over-cap duration, and round-trips what
// FormatRetryAfter writes.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-1", "1e9", "Sat, 01 Mar 2025 12:00:30 GMT",
		"Saturday, 01-Mar-25 12:00:10 GMT", "Sat Mar  1 12:00:20 2025", "99999999999999999999", " 3 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, false; want 0 on failure", s, d)
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, out of [0, %v]", s, d, maxRetryAfter)
		}
		if ok {
			back, ok2 := ParseRetryAfter(FormatRetryAfter(d), now)
			if !ok2 || back < d || back > max(d, time.Second)+time.Second {
				t.Fatalf("round trip of %v: %v, %v", d, back, ok2)
			}
		}
	})
}
