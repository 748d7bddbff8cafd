package docs

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/reconcile"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// Catching up: a tenant is catching up with a backend until one of its
// rounds with it has completed (reconcile.Engine.CatchingUp). Meanwhile the
// node may lack documents the backend holds, so the service does not decide
// what depends on their absence (the node's /readyz also waits, see package
// node):
//   - a conditional write (If-Match, If-None-Match) to the tenant, and a
//     DELETE of a document the node does not hold, answer 503 with
//     Retry-After (server.CatchingUpError);
//   - a read reads the document through from the backends and serves the
//     newer of theirs and the node's, storing theirs first when it is the
//     one served (getCatchingUp).

// catchingUpWith returns the engines tenant is catching up with.
func (d *Service) catchingUpWith(tenant string) []*reconcile.Engine {
	if d.catchingUp == nil {
		return nil
	}
	return d.catchingUp(tenant)
}

// undecidable refuses a conditional write while tenant catches up: its
// condition would be checked against a store that may lack the document.
func (d *Service) undecidable(tenant string, pre doc.Precondition) error {
	if pre.IsZero() || len(d.catchingUpWith(tenant)) == 0 {
		return nil
	}
	return &server.CatchingUpError{Tenant: tenant,
		Msg: "a conditional write (If-Match or If-None-Match) cannot be decided before the node holds the tenant's documents; retry later"}
}

// readThroughWait bounds a client's read through the backends, retries
// included: a backend that does not answer makes the read a 503 with
// Retry-After (or the node's own version) after it, not after the
// resilience policy's whole budget of attempts (tens of seconds).
const readThroughWait = 3 * time.Second

// newestRemote reads key from the backends es: the newest version any of
// them holds and the engine of its backend (nil, nil when none does), and
// the errors of those that could not be read.
func newestRemote(ctx context.Context, es []*reconcile.Engine, tenant, key string) (best *backend.Object, from *reconcile.Engine, failed error) {
	ctx, span := telemetry.StartChild(ctx, "backend.read_through")
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, readThroughWait)
	defer cancel()
	for _, e := range es {
		o, err := e.ReadThrough(ctx, tenant, key)
		switch {
		case err == nil:
			if best == nil || newer(&o.Version, &best.Version) {
				best, from = o, e
			}
		case !errors.Is(err, fault.ErrNotFound):
			failed = errors.Join(failed, err)
		}
	}
	if span.IsRecording() {
		name := ""
		if from != nil {
			name = from.Backend()
		}
		span.SetAttributes(attribute.String("cairn.backend", name), attribute.Bool("cairn.found", best != nil))
	}
	return best, from, failed
}

// remoteDoc answers a read with the backends' newest version: the
// document, its ETag the version's (the one the node will serve once the
// round has stored it) and ReadThrough naming the backend; fault.NotFound
// when none holds it or the newest is a tombstone; the conflict of a
// sibling set; a server.CatchingUpError (503) when none holds it and a
// backend could not be read, since its absence there is then unknown.
func remoteDoc(best *backend.Object, from string, failed error, tenant, key string) (server.Doc, error) {
	ctxf := fault.Context{Op: "docs.get", Tenant: tenant, Key: key}
	switch {
	case best == nil && failed != nil:
		return server.Doc{}, &server.CatchingUpError{Tenant: tenant, Err: failed,
			Msg: "the node does not hold this document yet and a backend could not be read"}
	case best == nil:
		return server.Doc{}, fault.New(fault.NotFound, ctxf, "document not found (on the node or its backends)")
	case best.Version.Tombstone:
		return server.Doc{}, fault.New(fault.NotFound, ctxf, "no such document (deleted)")
	case best.Version.Siblings:
		return server.Doc{}, doc.ConflictError("docs.get", tenant, key, best.Version.ETag(), best.Body)
	}
	return server.Doc{ETag: best.Version.ETag(), Body: best.Body, ReadThrough: from}, nil
}

// getCatchingUp is Get for a tenant catching up with es. The node may hold
// an older version of a document than a backend: a catch-up pack's, until
// the feed replay after it brings what was written since the pack, or one
// a round has not reached yet. Serving it would send a reader back in time
// (a document deleted since, shown again) after a read through had shown
// the newer one. So the backends are read for every document, and the
// newer of theirs and the node's is served; the node's when no backend can
// be read and it holds one.
func (d *Service) getCatchingUp(ctx context.Context, es []*reconcile.Engine, tenant, key string) (server.Doc, error) {
	sctx, span := telemetry.StartChild(ctx, "store.get")
	rec, err := d.st.Get(sctx, tenant, key)
	span.End()
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		return server.Doc{}, err
	}
	best, from, failed := newestRemote(ctx, es, tenant, key)
	if err == nil && (best == nil || !newer(&best.Version, &rec.Version)) {
		return docOf(sharedEntryOf(&rec), tenant, key)
	}
	if best == nil {
		return remoteDoc(nil, "", failed, tenant, key)
	}
	// The version served is adopted before it is: once the round has passed
	// the key, the node must not answer an older one.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adoptWait)
	defer cancel()
	if err := from.Adopt(actx, tenant, key, best); err != nil {
		return server.Doc{}, &server.CatchingUpError{Tenant: tenant, Err: err,
			Msg: "the node could not store the newer version a backend holds of this document; retry later"}
	}
	return remoteDoc(best, from.Backend(), failed, tenant, key)
}

// adoptWait bounds the store write of a version read through.
const adoptWait = 5 * time.Second

// newer reports whether a is to be served rather than b.
func newer(a, b *doc.Version) bool {
	switch a.Compare(b) {
	case doc.After:
		return true
	case doc.Concurrent:
		return a.Wins(b)
	}
	return false
}
