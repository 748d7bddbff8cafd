package loadgen

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
)

// minSize is the length of the smallest body Body makes: {"pad":""}.
const minSize = len(`{"pad":""}`)

// Body is the JSON document of exactly size bytes (at least 10) that
// PUTs send, seeding stores and the bare handler serves:
// {"pad":"xxx…"}.
func Body(size int) []byte {
	size = max(size, minSize)
	b := make([]byte, 0, size)
	b = append(b, `{"pad":"`...)
	b = append(b, bytes.Repeat([]byte{'x'}, size-minSize)...)
	return append(b, `"}`...)
}

// target is what every worker shares, read-only once built.
type target struct {
	base    string // scheme://host, for net/http
	host    string // host:port, to dial
	docs    string // /v1/tenants/{tenant}/docs/, escaped
	auth    string // "Bearer …", or ""
	body    []byte
	paths   []string // the escaped paths of the keys get and mixed read
	rawGets [][]byte // a pre-built GET request per key (raw client)
	rawHead []byte   // request line suffix and headers common to raw PUTs, up to Content-Length's value
}

func newTarget(c *Config) *target {
	u, _ := url.Parse(c.URL) // checked by fill
	t := &target{
		base:  u.Scheme + "://" + u.Host,
		host:  u.Host,
		docs:  "/v1/tenants/" + url.PathEscape(c.Tenant) + "/docs/",
		body:  Body(c.Size),
		paths: make([]string, c.Keys),
	}
	if u.Port() == "" {
		t.host += ":80"
	}
	if c.Token != "" {
		t.auth = "Bearer " + c.Token
	}
	for i := range t.paths {
		t.paths[i] = t.path(c.Prefix + "/k" + strconv.Itoa(i))
	}
	var h []byte
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, u.Host...)
	h = append(h, "\r\nUser-Agent: cairn-bench\r\n"...)
	if t.auth != "" {
		h = append(h, "Authorization: "...)
		h = append(h, t.auth...)
		h = append(h, "\r\n"...)
	}
	h = append(h, "Content-Type: application/json\r\nContent-Length: "...)
	t.rawHead = h
	if c.Client == ClientRaw && c.Op != OpPut {
		t.rawGets = make([][]byte, len(t.paths))
		for i, p := range t.paths {
			t.rawGets[i] = t.appendGet(nil, p)
		}
	}
	return t
}

// path is the escaped request path of key; keys are the generator's own,
// so only '/'-separated plain segments occur.
func (t *target) path(key string) string {
	return t.docs + escapeKey(key)
}

func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// appendGet appends a complete GET request for path to b.
func (t *target) appendGet(b []byte, path string) []byte {
	b = append(b, "GET "...)
	b = append(b, path...)
	b = append(b, t.rawHead[:bytes.Index(t.rawHead, []byte("Content-Type:"))]...)
	return append(b, "\r\n"...)
}

// appendPut appends a complete PUT request of t.body for path to b.
func (t *target) appendPut(b, path []byte) []byte {
	b = append(b, "PUT "...)
	b = append(b, path...)
	b = append(b, t.rawHead...)
	b = strconv.AppendInt(b, int64(len(t.body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, t.body...)
}
