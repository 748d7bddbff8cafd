package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one cairn node. It is safe for concurrent use.
type Client struct {
	base   string // scheme://host[:port][/prefix], without a trailing slash
	token  string
	hc     *http.Client
	wraps  []func(http.RoundTripper) http.RoundTripper
	roots  *x509.CertPool // nil: the system's
	policy RetryPolicy
	agent  string

	sleep func(ctx context.Context, d time.Duration) error // tests replace it
	jit   func(n int64) int64                              // uniform in [0, n); tests replace it
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (its
// transport, TLS settings, proxy). The default is an http.Client on
// http.DefaultTransport that does not follow redirects. hc is not modified.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRootCAs makes the client trust only the certificate authorities in
// pool when it talks to an https URL, as a node with a self-signed or
// private CA needs (see [CertPool]); verification stays on. It applies to
// the default transport or to the *http.Transport of a client given by
// WithHTTPClient (a clone: hc is not modified); any other RoundTripper is a
// programmer error and New panics.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.roots = pool } }

// CertPool reads the PEM certificates of a CA file, for [WithRootCAs].
func CertPool(pemFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(pemFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", pemFile)
	}
	return pool, nil
}

// WithTransport wraps the transport of the client's http.Client, e.g. to
// inject W3C traceparent headers or to record requests. Wrappers apply in
// order, the last outermost.
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *Client) { c.wraps = append(c.wraps, wrap) }
}

// WithRetry sets the retry policy; see [RetryPolicy] for which requests
// are retried. Zero fields take the defaults.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.policy = p } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a client for the node at baseURL (e.g. "http://127.0.0.1:7070")
// that authenticates with token.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		agent: "cairn-go-client",
		sleep: sleepCtx,
		jit:   randN,
	}
	for _, o := range opts {
		o(c)
	}
	c.policy = c.policy.withDefaults()
	if c.hc == nil {
		c.hc = &http.Client{
			// A redirect would re-send a write to another URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.roots != nil {
		c.hc = withRoots(c.hc, c.roots)
	}
	if len(c.wraps) > 0 {
		hc := *c.hc
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		for _, w := range c.wraps {
			rt = w(rt)
		}
		hc.Transport = rt
		c.hc = &hc
	}
	return c
}

// withRoots returns a copy of hc whose transport trusts only roots.
// HTTPClientTrusting returns an http.Client that trusts only the CA
// certificates in pool, as [WithRootCAs] makes the Client's: for calls this
// package does not make (the admin listener's API) to a node whose
// certificate a private CA signed.
func HTTPClientTrusting(pool *x509.CertPool) *http.Client { return withRoots(&http.Client{}, pool) }

func withRoots(hc *http.Client, roots *x509.CertPool) *http.Client {
	var tr *http.Transport
	switch rt := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = rt.Clone()
	default:
		panic(fmt.Sprintf("cairn: WithRootCAs needs an *http.Transport, not a %T", rt))
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.RootCAs = roots
	cp := *hc
	cp.Transport = tr
	return &cp
}

type requestIDKey struct{}

// ContextWithRequestID returns a context whose requests carry id as their
// X-Request-ID (every attempt of a retried call sends the same id). The
// server keeps an id of 1–64 bytes of letters, digits and "._:-"; without
// one, or for another, it generates an id; either way it is in
// [Error.RequestID].
func ContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// Document is a stored JSON document.
type Document struct {
	Key  string
	ETag string // strong entity tag, quotes included; pass it to IfMatch
	Body []byte
}

// Meta is what HEAD tells about a document.
type Meta struct {
	ETag string
	Size int64
}

// PutResult is the outcome of a successful Put.
type PutResult struct {
	ETag    string
	Created bool // no live version existed before (201); false: replaced (200)
}

// Condition makes a request conditional on the document's current ETag.
type Condition struct{ header, value string }

// IfMatch makes a write (or read) proceed only if the current ETag is etag
// (or, with "*", if the document exists); otherwise ErrPreconditionFailed.
func IfMatch(etag string) Condition { return Condition{"If-Match", etag} }

// IfNoneMatch makes a write fail with ErrPreconditionFailed if the current
// ETag is etag; on Get and Head it makes a matching document answer
// ErrNotModified.
func IfNoneMatch(etag string) Condition { return Condition{"If-None-Match", etag} }

// CreateOnly makes a Put fail with ErrPreconditionFailed if the document
// exists (If-None-Match: *).
func CreateOnly() Condition { return IfNoneMatch("*") }

// call is one API request, possibly sent several times.
type call struct {
	method, path string
	query        url.Values
	body         []byte
	conds        []Condition
	write        bool // not safe to repeat blindly; see RetryPolicy
}

func docPath(tenant, key string) string {
	return "/v1/tenants/" + url.PathEscape(tenant) + "/docs/" + escapeKey(key)
}

// escapeKey escapes a key as one path segment: "/" becomes %2F, so the
// server's router never sees empty or dot segments it would clean away,
// and a key that is "." or ".." has its dots escaped.
func escapeKey(k string) string {
	if k == "." || k == ".." {
		return strings.Repeat("%2E", len(k))
	}
	return url.PathEscape(k)
}

// Get returns a document. Errors: ErrNotFound, ErrNotModified (with an
// IfNoneMatch that matched), ErrPreconditionFailed (IfMatch), ErrInvalid,
// ErrUnauthorized, ErrForbidden, ErrUnavailable, or a transport error.
func (c *Client) Get(ctx context.Context, tenant, key string, conds ...Condition) (Document, error) {
	resp, err := c.do(ctx, &call{method: http.MethodGet, path: docPath(tenant, key), conds: conds})
	if err != nil {
		return Document{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Document{}, fmt.Errorf("cairn: get %s/%s: reading body: %w", tenant, key, err)
	}
	return Document{Key: key, ETag: resp.Header.Get("ETag"), Body: body}, nil
}

// Head returns a document's ETag and size without its body; errors as Get.
func (c *Client) Head(ctx context.Context, tenant, key string, conds ...Condition) (Meta, error) {
	resp, err := c.do(ctx, &call{method: http.MethodHead, path: docPath(tenant, key), conds: conds})
	if err != nil {
		return Meta{}, err
	}
	resp.Body.Close()
	return Meta{ETag: resp.Header.Get("ETag"), Size: resp.ContentLength}, nil
}

// Put stores body (a JSON value) under key. Errors: ErrPreconditionFailed
// (a condition failed), ErrInvalid (bad key or JSON; the message names the
// byte offset), ErrTooLarge, ErrUnauthorized, ErrForbidden,
// ErrUnavailable, or a transport error. body is not retained.
func (c *Client) Put(ctx context.Context, tenant, key string, body []byte, conds ...Condition) (PutResult, error) {
	resp, err := c.do(ctx, &call{method: http.MethodPut, path: docPath(tenant, key), body: body, conds: conds, write: true})
	if err != nil {
		return PutResult{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return PutResult{ETag: resp.Header.Get("ETag"), Created: resp.StatusCode == http.StatusCreated}, nil
}

// Delete removes a document. Errors: ErrNotFound, ErrPreconditionFailed,
// and the others of Put.
func (c *Client) Delete(ctx context.Context, tenant, key string, conds ...Condition) error {
	resp, err := c.do(ctx, &call{method: http.MethodDelete, path: docPath(tenant, key), conds: conds, write: true})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// setHeaders sets the headers every request carries: credentials, Accept,
// User-Agent and the caller's request id.
func (c *Client) setHeaders(ctx context.Context, h http.Header) {
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	h.Set("Accept", "application/json")
	h.Set("User-Agent", c.agent)
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		h.Set("X-Request-ID", id)
	}
}

// send makes one attempt of cl.
func (c *Client) send(ctx context.Context, cl *call) (*http.Response, error) {
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("cairn: %s %s: %w", cl.method, u, err)
	}
	h := req.Header
	c.setHeaders(ctx, h)
	if cl.body != nil {
		h.Set("Content-Type", "application/json")
	}
	for _, cd := range cl.conds {
		h.Add(cd.header, cd.value)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cairn: %s %s: %w", cl.method, cl.path, err)
	}
	return resp, nil
}
