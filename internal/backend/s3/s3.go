// Package s3 is the backend for AWS S3 and S3-compatible servers (MinIO,
// versitygw, SeaweedFS, Ceph RGW), through minio-go v7.
//
// # Naming
//
// The object for (tenant, key) is "<prefix><tenant>/<path>", path being
// backend.KeyPath(key, maxChunks): the escaped key cut into 200-byte
// components, so that servers that store objects as files (versitygw,
// MinIO) never meet a component over 255 bytes, a "." or ".." segment, or
// a file where a directory is needed. S3 names are at most 1024 bytes, so
// keys whose escaped form exceeds maxChunks components (about 800 bytes;
// see New) are hashed: they live in one directory per shared 800-byte
// prefix, listed in hash order. List reads those objects' headers and sorts
// them by key, so listings come back in key order anyway; such a group is
// held in memory while it is sorted.
//
// # Preconditions
//
// Put uses If-Match / If-None-Match: * (SetMatchETag, SetMatchETagExcept),
// which AWS S3 (since 2024), MinIO and versitygw evaluate atomically. A
// conditional Delete sends If-Match on DELETE; minio-go has no option for
// it, so that request is signed here with minio-go's V4 signer. A server
// that ignores conditional headers silently makes conditional writes
// unconditional: the conformance suite's racing tests detect that.
//
// # ETags
//
// ETags are the server's (unquoted), usually the MD5 of the object: opaque,
// compared with ==, and different from the mem and fs ETags of the same
// object.
package s3

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

var (
	_ backend.Backend      = (*S3)(nil)
	_ backend.Corrupter    = (*S3)(nil)
	_ backend.TenantLister = (*S3)(nil)
)

// Config says where the objects are.
type Config struct {
	Bucket   string
	Prefix   string // "" or a path ending in "/"; New adds the slash
	Endpoint string // host:port; "" means AWS (s3.amazonaws.com)
	Region   string // "" lets the client discover it (AWS) or means us-east-1
	Insecure bool   // plain HTTP, for local servers
	// Creds, when nil, come from the standard AWS environment variables
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then
	// the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE).
	Creds *credentials.Credentials
}

// ParseURL parses s3://bucket/prefix?endpoint=host:port&region=r&insecure=1.
// The error is fault.Config and names the problem.
func ParseURL(raw string) (Config, error) {
	bad := func(msg string) (Config, error) {
		return Config{}, fault.New(fault.Config, fault.Context{Op: "backend.s3.config"}, fmt.Sprintf("s3 backend URL %q: %s", Redact(raw), msg))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL") // url's error quotes the whole of it
	}
	if u.Scheme != "s3" {
		return bad("scheme must be s3")
	}
	if u.Host == "" {
		return bad("no bucket")
	}
	if u.User != nil || u.Fragment != "" {
		return bad("no user info or fragment allowed (credentials come from the AWS environment variables)")
	}
	q := u.Query()
	cfg := Config{Bucket: u.Host, Prefix: strings.TrimPrefix(u.Path, "/"), Endpoint: q.Get("endpoint"), Region: q.Get("region")}
	switch q.Get("insecure") {
	case "", "0", "false":
	case "1", "true":
		cfg.Insecure = true
	default:
		return bad("insecure must be 1 or 0")
	}
	for k := range q {
		if k != "endpoint" && k != "region" && k != "insecure" {
			return bad("unknown parameter " + k)
		}
	}
	return cfg, nil
}

// Redact is raw with what may be a secret taken out, for messages: user
// information (a key and secret written into the URL) and the values of
// parameters other than endpoint, region and insecure (a secret_key=).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	if u.Opaque != "" {
		return u.Scheme + ":(redacted)" // s3:KEY:SECRET@bucket
	}
	u.Fragment, u.RawFragment = "", ""
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	for k := range q {
		if k != "endpoint" && k != "region" && k != "insecure" {
			q.Set(k, "REDACTED")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// idleConns is how many idle connections to the endpoint the client keeps
// for reuse.
const idleConns = 128

// S3 is a backend on one bucket and prefix. Close releases its idle
// connections.
type S3 struct {
	name   string
	bucket string
	prefix string // "" or ending in "/"
	region string
	// regionSet: the URL gave region=; else minio looks the bucket's up
	// and corrects it from a refusal that names the right one.
	regionSet bool
	maxChunks int
	client    *minio.Client
	creds     *credentials.Credentials
	transport *http.Transport // shared by client and the signed DELETEs
}

// maxName is S3's limit on object names, in bytes.
const maxName = 1024

// New returns the backend called name. It does no I/O; CheckBucket does.
func New(name string, cfg Config) (*S3, error) {
	ctx := backend.Ctx("backend.s3.config", name, "", "")
	bad := func(msg string) (*S3, error) { return nil, fault.New(fault.Config, ctx, "s3 backend: "+msg) }
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return bad(fmt.Sprintf("bucket %q: %v", cfg.Bucket, err))
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	// Room for the prefix, the longest tenant and its slash, and a hashed
	// name (33 bytes) after maxChunks directories of Chunk+2 bytes.
	maxChunks := (maxName - len(prefix) - doc.MaxTenantLen - 1 - 33) / (backend.Chunk + 2)
	if maxChunks < 1 {
		return bad(fmt.Sprintf("prefix %q is too long (%d bytes) to leave room for keys", prefix, len(prefix)))
	}
	endpoint, lookup := cfg.Endpoint, minio.BucketLookupPath
	if endpoint == "" {
		endpoint, lookup = "s3.amazonaws.com", minio.BucketLookupAuto
	}
	creds := cfg.Creds
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{},
		})
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A node's calls to one backend run many at once (reconcile.Limits:
	// 32 by default, more when configured); Go's default of 2 idle
	// connections per host would close all but two after each burst and
	// dial again, with a TLS handshake, for the next.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = idleConns, idleConns
	client, err := minio.New(endpoint, &minio.Options{
		Creds: creds, Secure: !cfg.Insecure, Transport: hintTransport{tr}, Region: cfg.Region, BucketLookup: lookup,
		// One attempt a call: the backend's resilience policy retries,
		// with its budget, its backoff, Retry-After and its metrics;
		// minio's own ten retries under it hid all of that.
		MaxRetries: 1,
	})
	if err != nil {
		return bad(err.Error())
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	return &S3{name: name, bucket: cfg.Bucket, prefix: prefix, region: region, regionSet: cfg.Region != "", maxChunks: maxChunks,
		client: client, creds: creds, transport: tr}, nil
}

// Name implements backend.Backend.
func (s *S3) Name() string { return s.name }

// Close closes idle connections. The backend stays usable.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// CheckBucket is a startup check: it fails with fault.Transient when the
// store could not be reached or its side could not answer — the connection
// refused, reset, without a route or timed out, a name server that did not
// answer, a 5xx (a gateway whose upstream is cut off), a 429 — and with
// fault.Config otherwise: the bucket missing, the credentials refused, a
// TLS or certificate failure, a host name that does not exist. The first
// may be only the network; the second is a setting.
func (s *S3) CheckBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	// An answer of a busy store (503 SlowDown, 429, a 5xx, a body cut
	// short) is tried again, a few times in a few seconds: one such
	// answer must not stop a node that would restore from the store. No
	// answer at all (refused, unreachable) is a partition, returned at once.
	waited := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for wait := checkRetryFirst; err != nil && busy(err) && wait <= checkRetryLast && waited(wait); wait *= 2 {
		ok, err = s.client.BucketExists(ctx, s.bucket)
	}
	answer, noAnswer := minio.ToErrorResponse(err), err != nil && (unanswered(err) || busy(err))
	if err != nil && answer.Code != "" && !strings.Contains(err.Error(), answer.Code) {
		err = fmt.Errorf("s3 %s: %w", answer.Code, err) // minio-go's message alone drops the code
	}
	switch {
	case err == nil && ok:
		return nil
	case err == nil:
		return fault.E(fault.Config, backend.Ctx("backend.s3.check", s.name, "", ""), fmt.Errorf("bucket %q does not exist", s.bucket))
	}
	if noAnswer {
		return fault.E(fault.Transient, backend.Ctx("backend.s3.check", s.name, "", ""), err)
	}
	// A HEAD's refusal has no body to say why: say what is likely.
	status := answer.StatusCode
	switch v, cerr := s.creds.GetWithContext(nil); {
	case (status == http.StatusForbidden || status == http.StatusUnauthorized) && (cerr != nil || v.AccessKeyID == ""):
		err = fmt.Errorf("%w (no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a shared credentials file with AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE)", err)
	case status == http.StatusBadRequest && s.regionSet:
		err = fmt.Errorf("%w (is region=%s the bucket's region?)", err, s.region)
	case status == http.StatusBadRequest:
		err = fmt.Errorf("%w (does the bucket need region= in the URL?)", err)
	}
	return fault.E(fault.Config, backend.Ctx("backend.s3.check", s.name, "", ""), err)
}

// The waits between CheckBucket's attempts on a busy store's answers:
// 250 ms, doubling, up to 2 s (five attempts in under four seconds).
const checkRetryFirst, checkRetryLast = 250 * time.Millisecond, 2 * time.Second

// busy reports whether err is a store's answer that it is busy or failed
// on its side (429, a 5xx, a body cut short), not a refusal or no answer.
func busy(err error) bool {
	st := minio.ToErrorResponse(err).StatusCode
	return st == http.StatusTooManyRequests || st >= 500 || errors.Is(err, io.ErrUnexpectedEOF)
}

// The store's Retry-After, which minio-go's error does not carry: the
// client's transport (hintTransport) notes it in a slot the call's context
// holds (withHint), and fail reads it (retryAfterOf).
type hintKey struct{}

type hintSlot struct{ v atomic.Pointer[string] }

// withHint gives ctx a slot for the Retry-After of a call made with it.
func withHint(ctx context.Context) context.Context {
	return context.WithValue(ctx, hintKey{}, &hintSlot{})
}

// retryAfterOf is the last Retry-After noted for a call made with ctx, or "".
func retryAfterOf(ctx context.Context) string {
	if slot, ok := ctx.Value(hintKey{}).(*hintSlot); ok {
		if v := slot.v.Load(); v != nil {
			return *v
		}
	}
	return ""
}

// hintTransport notes the Retry-After of a throttled or unavailable answer
// in the request's slot.
type hintTransport struct{ base http.RoundTripper }

func (t hintTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if slot, ok := r.Context().Value(hintKey{}).(*hintSlot); ok {
				slot.v.Store(&ra)
			}
		}
	}
	return resp, err
}

// unanswered reports whether err says the store gave no answer of its own.
func unanswered(err error) bool {
	if err == nil {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsNotFound // a name that does not exist is a typo
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case strings.Contains(err.Error(), "Connection closed by foreign host"):
		return true // minio-go's rewording of an EOF, which drops the error itself
	}
	return minio.ToErrorResponse(err).StatusCode >= 500
}

func (s *S3) object(tenant, key string) string {
	p, _ := backend.KeyPath(key, s.maxChunks)
	return s.prefix + tenant + "/" + p
}

// fail classifies err and adds the operation's context. S3 error answers
// are classified by fault.FromS3 from their code and status.
func (s *S3) fail(call context.Context, op, tenant, key string, err error) error {
	ctx := backend.Ctx(op, s.name, tenant, key)
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code != "" || er.StatusCode != 0) {
		if ferr := fault.FromS3(er.Code, er.StatusCode, retryAfterOf(call)); ferr != nil {
			err = fmt.Errorf("%w: %s", ferr, er.Message)
		}
		if er.Code == "AuthorizationHeaderMalformed" && er.Region != "" && !s.regionSet {
			// Signed for a region minio had guessed; the answer names the
			// bucket's, which minio has now taken: the next attempt is
			// signed right. (Its own retry did this before it was off.)
			return fault.E(fault.Transient, ctx, err)
		}
		if er.Code == "ConditionalRequestConflict" {
			// AWS: another conditional write to the object was in flight.
			// For the caller it is the same as losing the race.
			return fault.E(fault.PreconditionFailed, ctx, err)
		}
	}
	if fault.ClassOf(err) == fault.Unknown && unanswered(err) {
		// A connection reset, cut short or timed out: retried with
		// backoff, as a 5xx is.
		return fault.E(fault.Transient, ctx, err)
	}
	return fault.E(fault.Unknown, ctx, err)
}

// Get implements backend.Backend.
func (s *S3) Get(ctx context.Context, tenant, key string) (*backend.Object, error) {
	ctx = withHint(ctx)
	if err := backend.CheckNames(tenant, key); err != nil {
		return nil, s.fail(ctx, backend.OpGet, tenant, key, err)
	}
	raw, etag, err := s.read(ctx, s.object(tenant, key))
	if err != nil {
		return nil, s.fail(ctx, backend.OpGet, tenant, key, err)
	}
	o, err := backend.VerifyObject(raw, tenant, key, etag)
	if err != nil {
		return nil, s.fail(ctx, backend.OpGet, tenant, key, err)
	}
	return o, nil
}

// read GETs a whole object with its ETag, in one request (minio-go's
// Client.GetObject makes two — stat, then read with If-Match — and so
// fails with 412 when a writer lands in between).
func (s *S3) read(ctx context.Context, name string) ([]byte, string, error) {
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	if info.Size > backend.MaxObjectSize {
		return nil, "", fault.New(fault.Corruption, fault.Context{}, fmt.Sprintf("object is %d bytes, over the %d limit", info.Size, backend.MaxObjectSize))
	}
	raw, err := io.ReadAll(io.LimitReader(body, backend.MaxObjectSize+1))
	if err != nil {
		return nil, "", err
	}
	return raw, trimETag(info.ETag), nil
}

func trimETag(e string) string { return strings.Trim(e, `"`) }

// Stat implements backend.Backend.
func (s *S3) Stat(ctx context.Context, tenant, key string) (backend.Entry, error) {
	ctx = withHint(ctx)
	if err := backend.CheckNames(tenant, key); err != nil {
		return backend.Entry{}, s.fail(ctx, backend.OpStat, tenant, key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.object(tenant, key), minio.StatObjectOptions{})
	if err != nil {
		return backend.Entry{}, s.fail(ctx, backend.OpStat, tenant, key, err)
	}
	return backend.Entry{Key: key, ETag: trimETag(info.ETag), Size: info.Size}, nil
}

// Put implements backend.Backend.
func (s *S3) Put(ctx context.Context, tenant, key string, v doc.Version, body []byte, pre backend.Precondition) (string, error) {
	ctx = withHint(ctx)
	if err := backend.CheckPut(tenant, key, &v, body); err != nil {
		return "", s.fail(ctx, backend.OpPut, tenant, key, err)
	}
	if err := pre.Check("", false); fault.ClassOf(err) == fault.Invalid { // both conditions set
		return "", s.fail(ctx, backend.OpPut, tenant, key, err)
	}
	raw := backend.EncodeObject(tenant, key, &v, body)
	etag, err := s.write(ctx, s.object(tenant, key), raw, pre)
	if err != nil {
		err = s.fail(ctx, backend.OpPut, tenant, key, err)
		if pre.IfMatch != "" && fault.ClassOf(err) == fault.NotFound {
			// S3 answers If-Match on a missing object with 404 NoSuchKey.
			err = fault.E(fault.PreconditionFailed, backend.Ctx(backend.OpPut, s.name, tenant, key),
				fmt.Errorf("if-match %s: no object: %w", pre.IfMatch, err))
		}
		return "", err
	}
	return etag, nil
}

func (s *S3) write(ctx context.Context, name string, raw []byte, pre backend.Precondition) (string, error) {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	switch {
	case pre.IfMatch != "":
		opts.SetMatchETag(pre.IfMatch)
	case pre.IfNoneMatch:
		opts.SetMatchETagExcept("*")
	}
	info, err := s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(raw), int64(len(raw)), opts)
	if err != nil {
		return "", err
	}
	if trimETag(info.ETag) == "" {
		// S3 answers every stored PUT with its ETag. A success without
		// one is something else's answer (a proxy's error page with a
		// 200), and the object may not be there: retried, never recorded.
		return "", fault.New(fault.Transient, fault.Context{}, "the store answered the PUT with success but no ETag: not a stored object's answer")
	}
	return trimETag(info.ETag), nil
}

// Delete implements backend.Backend.
func (s *S3) Delete(ctx context.Context, tenant, key string, pre backend.Precondition) error {
	ctx = withHint(ctx)
	if err := backend.CheckNames(tenant, key); err != nil {
		return s.fail(ctx, backend.OpDelete, tenant, key, err)
	}
	if pre.IfNoneMatch {
		return fault.New(fault.Invalid, backend.Ctx(backend.OpDelete, s.name, tenant, key), "if-none-match on a delete")
	}
	if err := s.remove(ctx, s.object(tenant, key), pre); err != nil {
		return s.fail(ctx, backend.OpDelete, tenant, key, err)
	}
	return nil
}

// remove deletes the named object if pre (if-match or none) holds.
func (s *S3) remove(ctx context.Context, name string, pre backend.Precondition) error {
	if pre.IfMatch == "" {
		// S3 answers 204 for a missing object: deleting is idempotent.
		return s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	}
	// Some servers (versitygw) answer a conditional DELETE of a missing
	// object with 204, others (AWS) with 404; a HEAD first makes the
	// missing case PreconditionFailed everywhere. The DELETE itself is
	// still conditional, so a write between the two is not deleted; only
	// a delete racing this one can make both succeed.
	_, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err == nil {
		err = s.deleteIfMatch(ctx, name, pre.IfMatch)
	}
	if fault.ClassOf(s.fail(ctx, "", "", "", err)) == fault.NotFound {
		err = fault.New(fault.PreconditionFailed, fault.Context{}, "if-match "+pre.IfMatch+": no object")
	}
	return err
}

// emptySHA256 is the SHA-256 of an empty payload, which a DELETE has.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// deleteIfMatch sends DELETE with If-Match, signed like minio-go signs its
// own requests (V4), to the same endpoint and bucket addressing.
func (s *S3) deleteIfMatch(ctx context.Context, name, etag string) error {
	u := *s.client.EndpointURL()
	path := "/" + s.bucket + "/" + name
	if s.client.EndpointURL().Host == "s3.amazonaws.com" {
		u.Host = s.bucket + "." + u.Host // AWS: virtual-hosted style
		path = "/" + name
	}
	u.Path, u.RawPath = path, s3utils.EncodePath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("If-Match", `"`+etag+`"`)
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	cred, err := s.creds.GetWithContext(s.client.CredContext())
	if err != nil {
		return err
	}
	if !cred.SignerType.IsAnonymous() {
		req = signer.SignV4(*req, cred.AccessKeyID, cred.SecretAccessKey, cred.SessionToken, s.region)
	}
	resp, err := (&http.Client{Transport: hintTransport{s.transport}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	er := minio.ErrorResponse{StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = xml.Unmarshal(body, &er) // a body-less answer keeps just the status
	return er
}

// Corrupt implements backend.Corrupter: it rewrites the object through f
// with a plain PUT.
func (s *S3) Corrupt(ctx context.Context, tenant, key string, f func([]byte) []byte) error {
	name := s.object(tenant, key)
	raw, _, err := s.read(ctx, name)
	if err == nil {
		_, err = s.write(ctx, name, f(slices.Clone(raw)), backend.Precondition{})
	}
	if err != nil {
		return s.fail(ctx, "backend.corrupt", tenant, key, err)
	}
	return nil
}
