package s3

import (
	"context"
	"errors"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
)

// List implements backend.Backend with ListObjectsV2 (StartAfter, no
// delimiter). S3 lists in UTF-8 binary order of the name, which for our
// ASCII names is byte order, which is key order (backend.KeyPath), except
// inside a group of hashed long keys: those are collected and sorted by the
// key in their headers before they are returned.
func (s *S3) List(ctx context.Context, tenant string, opts backend.ListOptions) (backend.Page, error) {
	ctx = withHint(ctx)
	if err := backend.CheckTenant(tenant); err != nil {
		return backend.Page{}, s.fail(ctx, backend.OpList, tenant, "", err)
	}
	l := lister{s: s, ctx: ctx, base: s.prefix + tenant + "/", opts: opts}
	if l.opts.Limit <= 0 {
		l.opts.Limit = backend.DefaultLimit
	}
	err := l.run()
	if errors.Is(err, errFull) {
		err = nil
	}
	if err != nil {
		return backend.Page{}, s.fail(ctx, backend.OpList, tenant, "", err)
	}
	return l.page, nil
}

// Tenants implements backend.TenantLister with one delimited listing of
// the prefix: each common prefix "<prefix><tenant>/" is a tenant. Names
// that are not tenants are skipped.
func (s *S3) Tenants(ctx context.Context) ([]string, error) {
	ctx = withHint(ctx)
	var ts []string
	lo := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: false}
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, lo) {
		if obj.Err != nil {
			return nil, s.fail(ctx, backend.OpTenants, "", "", obj.Err)
		}
		rel, ok := strings.CutPrefix(obj.Key, s.prefix)
		t, dir := strings.CutSuffix(rel, "/")
		if ok && dir && doc.ValidateTenant(t) == nil {
			ts = append(ts, t)
		}
	}
	// S3 sorts the prefixes with their '/': "a-b/" before "a/".
	slices.Sort(ts)
	return ts, nil
}

var errFull = errors.New("page full")

type lister struct {
	s    *S3
	ctx  context.Context
	base string // "<prefix><tenant>/"
	opts backend.ListOptions
	page backend.Page

	group    []backend.Entry // hashed entries of the group being read (keys unknown yet)
	groupDir string          // its directory, relative to base
}

func (l *lister) run() error {
	pp, _ := backend.PrefixPath(l.opts.Prefix, l.s.maxChunks)
	lo := minio.ListObjectsOptions{Prefix: l.base + pp, Recursive: true, MaxKeys: min(l.opts.Limit+1, backend.DefaultLimit)}
	if l.opts.StartAfter != "" {
		after, hashed := backend.KeyPath(l.opts.StartAfter, l.s.maxChunks)
		if hashed {
			// Start just before the cursor's group (after the one
			// unhashed key that can precede it): the group is re-read and
			// filtered by key.
			after = backend.GroupFile(l.opts.StartAfter, l.s.maxChunks)
		}
		lo.StartAfter = l.base + after
	}
	// The iterator makes one request per page and starts no goroutine;
	// leaving the loop stops it.
	for obj := range l.s.client.ListObjectsIter(l.ctx, l.s.bucket, lo) {
		if obj.Err != nil {
			return obj.Err
		}
		rel, ok := strings.CutPrefix(obj.Key, l.base)
		if !ok {
			return fault.New(fault.Corruption, fault.Context{}, "listing returned "+obj.Key+" outside "+l.base)
		}
		key, hashed, err := backend.ParsePath(rel, l.s.maxChunks)
		if err != nil {
			// A name cairn cannot have written is not a document of
			// its: another tool's object under the prefix, or a
			// gateway's in-flight temporary file (versitygw lists
			// ".<name>.sgwtmp.<n>" while a put is under way). Failing
			// the listing for it would fail every round of the tenant,
			// as corruption.
			continue
		}
		e := backend.Entry{Key: key, ETag: trimETag(obj.ETag), Size: obj.Size}
		if hashed {
			if dir := path.Dir(rel); dir != l.groupDir {
				if err := l.flush(); err != nil {
					return err
				}
				l.groupDir = dir
			}
			l.group = append(l.group, backend.Entry{Key: obj.Key, ETag: e.ETag, Size: e.Size})
			continue
		}
		if err := l.flush(); err != nil {
			return err
		}
		if err := l.add(e); err != nil {
			return err
		}
	}
	if err := l.flush(); err != nil {
		return err
	}
	return l.ctx.Err() // the iterator ends quietly when ctx is done
}

func (l *lister) add(e backend.Entry) error {
	if e.Key <= l.opts.StartAfter || !strings.HasPrefix(e.Key, l.opts.Prefix) {
		return nil
	}
	if len(l.page.Entries) == l.opts.Limit {
		l.page.More = true
		return errFull
	}
	l.page.Entries = append(l.page.Entries, e)
	return nil
}

// flush reads the keys of the collected group from the objects' headers
// (a ranged GET of the header each, not the whole object), sorts the group
// by key and adds it.
func (l *lister) flush() error {
	if len(l.group) == 0 {
		return nil
	}
	listed := l.group
	l.group, l.groupDir = nil, ""
	group := listed[:0]
	for _, e := range listed {
		h, err := l.s.readHeader(l.ctx, e.Key)
		if fault.ClassOf(l.s.fail(context.Background(), "", "", "", err)) == fault.NotFound {
			continue // deleted since the listing; the fs backend skips it too
		}
		if err != nil && fault.ClassOf(err) != fault.Corruption {
			return err
		}
		if err != nil {
			return fault.E(fault.Corruption, fault.Context{}, errors.New("hashed object "+e.Key+": "+err.Error()))
		}
		e.Key = h.Key
		group = append(group, e)
	}
	slices.SortFunc(group, func(a, b backend.Entry) int { return strings.Compare(a.Key, b.Key) })
	for _, e := range group {
		if err := l.add(e); err != nil {
			return err
		}
	}
	return nil
}

// headerRead is how much of an object readHeader asks for first: enough
// for any header but one with a very large version vector.
const headerRead = 4096

// readHeader reads the header of object name with a ranged GET, and the
// whole object only when the header is longer than headerRead. The error
// is the server's, or fault.Corruption for a bad header.
func (s *S3) readHeader(ctx context.Context, name string) (backend.Header, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(0, headerRead-1); err != nil {
		return backend.Header{}, err
	}
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		return backend.Header{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(body, headerRead))
	body.Close()
	if err != nil {
		return backend.Header{}, err
	}
	h, err := backend.ParseHeader(raw)
	if err != nil && backend.IsShortHeader(err) && len(raw) == headerRead {
		if raw, _, err = s.read(ctx, name); err != nil {
			return backend.Header{}, err
		}
		h, err = backend.ParseHeader(raw)
	}
	return h, err
}
