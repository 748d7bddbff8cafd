package server

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseLimit: parseLimit accepts exactly the plain-digit numbers from 1
// to the maximum, and says the rule whenever it refuses.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"1", "1000", "1001", "+5", "-1", "0", "007", "", " 5", "99999999999999999999999", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseLimit(v, 1000)
		n, aerr := strconv.Atoi(v)
		plain := v != "" && strings.Trim(v, "0123456789") == ""
		want := aerr == nil && plain && n >= 1 && n <= 1000
		if want != (err == nil) || (want && got != n) {
			t.Fatalf("parseLimit(%q) = %d, %v; want ok=%v", v, got, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "from 1 to 1000 in plain digits") {
			t.Fatalf("parseLimit(%q): %v does not state the rule", v, err)
		}
	})
}

// FuzzParseRawError: parseRawError never panics, recognises only an error
// status, and recognises net/http's own answers.
func FuzzParseRawError(f *testing.F) {
	f.Add([]byte("HTTP/1.1 400 Bad Request" + netHTTPErrorHeaders + "400 Bad Request"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		status, _, ok := parseRawError(p)
		if ok && (status < 400 || status > 599) {
			t.Fatalf("%q: status %d", p, status)
		}
	})
}

func TestParseRawError(t *testing.T) {
	for _, tc := range []struct {
		in     string
		status int
		detail string
		ok     bool
	}{
		{"HTTP/1.1 400 Bad Request" + netHTTPErrorHeaders + "400 Bad Request", 400, "", true},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + netHTTPErrorHeaders + "400 Bad Request: missing required Host header", 400, "missing required Host header", true},
		{"HTTP/1.1 431 Request Header Fields Too Large" + netHTTPErrorHeaders + "431 Request Header Fields Too Large", 431, "", true},
		// A handler's answer: headers sorted (Connection first), with Date.
		{"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sat, 05 Dec 2026 17:00:00 GMT\r\n\r\nno", 0, "", false},
		{"HTTP/1.1 200 OK" + netHTTPErrorHeaders + "ok", 0, "", false},
		{"HTTP/1.1 4", 0, "", false},
		{"body bytes", 0, "", false},
	} {
		status, detail, ok := parseRawError([]byte(tc.in))
		if status != tc.status || detail != tc.detail || ok != tc.ok {
			t.Errorf("parseRawError(%.50q) = %d %q %v; want %d %q %v", tc.in, status, detail, ok, tc.status, tc.detail, tc.ok)
		}
	}
	if c, _ := rawErrorMessage(http.StatusRequestHeaderFieldsTooLarge, ""); c != "too_large" {
		t.Errorf("431 code %q", c)
	}
}
