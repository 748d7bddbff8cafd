package reconcile

import (
	"fmt"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
)

// The versions of one key used by the decision tests. Node A writes the
// main line, node B a concurrent one from v0:
//
//	v0 ─► v1 ─► d2 (delete) ─► r3 (recreated)        node A
//	 └──► x1 ─► xd (delete)                          node B
//
// e1 has v1's vector but other content: two versions with equal vectors,
// as two different resolutions of overlapping conflicts can produce.
const nodeA, nodeB = 0xA, 0xB

func at(ms int64) doc.Timestamp { return doc.MakeTimestamp(1_700_000_000_000+ms, 0) }

func live(parent *doc.Version, node uint64, ms int64, body string) *doc.Version {
	v := doc.Derive(parent, node, at(ms), []byte(body), false)
	return &v
}

func tomb(parent *doc.Version, node uint64, ms int64) *doc.Version {
	v := doc.Derive(parent, node, at(ms), nil, true)
	return &v
}

var (
	v0 = live(nil, nodeA, 1, `{"n":0}`)
	v1 = live(v0, nodeA, 2, `{"n":1}`)
	d2 = tomb(v1, nodeA, 3)
	r3 = live(d2, nodeA, 4, `{"n":3}`)
	x1 = live(v0, nodeB, 5, `{"x":1}`)
	xd = tomb(x1, nodeB, 6)
	e1 = func() *doc.Version {
		v := *v1
		v.Hash = doc.HashBody([]byte(`{"n":"e"}`))
		return &v
	}()
)

var names = map[doc.ID]string{}

func init() {
	for n, v := range map[string]*doc.Version{"v0": v0, "v1": v1, "d2": d2, "r3": r3, "x1": x1, "xd": xd, "e1": e1} {
		names[v.ID()] = n
	}
}

func name(v *doc.Version) string {
	if v == nil {
		return "-"
	}
	return names[v.ID()]
}

// etag is the backend's ETag of the object holding v (not v's own ID: a
// backend's ETag is its own, e.g. an MD5).
func etag(v *doc.Version) string { return "s3-" + v.ID().String()[:8] }

// Sides: loc is the node's version; rem a remote object read with its
// header; listed a remote object known from the listing only; base the
// synced state, whose ETag is the object's when it was synced; baseStale
// a base with another ETag (the same version re-uploaded since).
func loc(v *doc.Version) *Side       { return &Side{Version: v} }
func rem(v *doc.Version) *Side       { return &Side{Version: v, ETag: etag(v)} }
func listed(v *doc.Version) *Side    { return &Side{ETag: etag(v)} }
func base(v *doc.Version) *Side      { return &Side{Version: v, ETag: etag(v)} }
func baseStale(v *doc.Version) *Side { return &Side{Version: v, ETag: "s3-older"} }

func sideName(s *Side, header bool) string {
	switch {
	case s == nil:
		return "-"
	case s.Version == nil:
		return "listed(" + s.ETag + ")"
	case header && s.ETag != etag(s.Version):
		return name(s.Version) + "@stale"
	}
	return name(s.Version)
}

// TestDecideTable is the specification of Decide: every local/remote/base
// combination that matters. "=L" and "=R" say which side the base equals.
func TestDecideTable(t *testing.T) {
	tests := []struct {
		name                string
		local, remote, base *Side
		want                Action
		deletes             bool
		// The versions the decision carries, checked when set: for the
		// rows where a collected side stands for the base tombstone.
		wantLocal, wantRemote *doc.Version
	}{
		// Absent on both sides.
		{name: "nothing anywhere", want: InSync},
		{name: "both gone, live base: forget it", base: base(v0), want: UpdateBase},
		{name: "both collected the tombstone: forget the base", base: base(d2), want: UpdateBase},

		// Only the node has it.
		{name: "new local document", local: loc(v0), want: Upload},
		{name: "local tombstone the backend never had", local: loc(d2), want: Upload},
		{name: "backend lost the synced copy (=L)", local: loc(v0), base: base(v0), want: Upload},
		{name: "backend lost it, local changed since", local: loc(v1), base: base(v0), want: Upload},
		{name: "backend lost it, local deleted since (no live copy to delete)", local: loc(d2), base: base(v1), want: Upload},
		{name: "backend collected the synced tombstone (=L)", local: loc(d2), base: base(d2), want: InSync},
		{name: "backend collected the tombstone, local recreated", local: loc(r3), base: base(d2), want: Upload},
		{name: "backend collected the tombstone, local is an older copy: delete it", local: loc(v1), base: base(d2), want: Download, deletes: true, wantRemote: d2},
		{name: "backend collected the tombstone, local concurrent update", local: loc(x1), base: base(d2), want: Conflict, wantRemote: d2},

		// Only the backend has it.
		{name: "new remote document", remote: rem(v0), want: Download},
		{name: "new remote document, listing only", remote: listed(v0), want: FetchRemote},
		{name: "remote tombstone the node never had", remote: rem(d2), want: Download},
		{name: "node lost the synced copy (=R)", remote: rem(v0), base: base(v0), want: Download},
		{name: "node lost the synced copy, listing only: no GET to decide", remote: listed(v0), base: base(v0), want: Download, wantRemote: v0},
		{name: "node collected the synced tombstone (=R)", remote: rem(d2), base: base(d2), want: InSync},
		{name: "node collected the synced tombstone, listing only", remote: listed(d2), base: base(d2), want: InSync},
		{name: "node collected the tombstone, remote recreated", remote: rem(r3), base: base(d2), want: Download},
		{name: "node collected the tombstone, remote is an older copy: delete it", remote: rem(v1), base: base(d2), want: Upload, deletes: true, wantLocal: d2},
		{name: "node collected the tombstone, remote concurrent update", remote: rem(x1), base: base(d2), want: Conflict, wantLocal: d2},

		// Both have it; no base (first sync with this backend).
		{name: "no base, equal", local: loc(v1), remote: rem(v1), want: UpdateBase},
		{name: "no base, local after", local: loc(v1), remote: rem(v0), want: Upload},
		{name: "no base, local before", local: loc(v0), remote: rem(v1), want: Download},
		{name: "no base, concurrent", local: loc(v1), remote: rem(x1), want: Conflict},
		{name: "no base, listing only", local: loc(v1), remote: listed(v1), want: FetchRemote},
		{name: "no base, local delete after remote", local: loc(d2), remote: rem(v1), want: Upload, deletes: true},
		{name: "no base, remote delete after local", local: loc(v1), remote: rem(d2), want: Download, deletes: true},
		{name: "no base, local delete vs remote update", local: loc(d2), remote: rem(x1), want: Conflict},
		{name: "no base, local update vs remote delete", local: loc(x1), remote: rem(d2), want: Conflict},
		{name: "no base, both deleted, same tombstone", local: loc(d2), remote: rem(d2), want: UpdateBase},
		{name: "no base, both deleted concurrently", local: loc(d2), remote: rem(xd), want: Conflict},
		{name: "no base, equal vectors, different versions", local: loc(v1), remote: rem(e1), want: Conflict},

		// Base equal to both.
		{name: "in sync", local: loc(v1), remote: rem(v1), base: base(v1), want: InSync},
		{name: "in sync, listing only (no GET)", local: loc(v1), remote: listed(v1), base: base(v1), want: InSync, wantRemote: v1},
		{name: "in sync as a tombstone", local: loc(d2), remote: listed(d2), base: base(d2), want: InSync},
		{name: "same version, base ETag stale", local: loc(v1), remote: rem(v1), base: baseStale(v1), want: UpdateBase},
		{name: "same version, base ETag stale, listing only", local: loc(v1), remote: listed(v1), base: baseStale(v1), want: FetchRemote},

		// Base equal to local: the backend changed.
		{name: "=L, remote after", local: loc(v0), remote: rem(v1), base: base(v0), want: Download},
		{name: "=L, remote after, listing only", local: loc(v0), remote: listed(v1), base: base(v0), want: FetchRemote},
		{name: "=L, remote deleted", local: loc(v1), remote: rem(d2), base: base(v1), want: Download, deletes: true},
		{name: "=L tombstone, remote recreated", local: loc(d2), remote: rem(r3), base: base(d2), want: Download},
		{name: "=L, remote regressed to an older copy", local: loc(v1), remote: rem(v0), base: base(v1), want: Upload},
		{name: "=L tombstone, remote regressed to an older live copy: delete again", local: loc(d2), remote: rem(v1), base: base(d2), want: Upload, deletes: true},
		{name: "=L, remote concurrent", local: loc(v1), remote: rem(x1), base: base(v1), want: Conflict},
		{name: "=L tombstone, remote concurrent update", local: loc(d2), remote: rem(x1), base: base(d2), want: Conflict},
		{name: "=L, remote concurrent delete", local: loc(v1), remote: rem(xd), base: base(v1), want: Conflict},

		// Base equal to remote: the node changed; the ETag saves the GET.
		{name: "=R, local after", local: loc(v1), remote: listed(v0), base: base(v0), want: Upload, wantRemote: v0},
		{name: "=R, local after, header read", local: loc(v1), remote: rem(v0), base: base(v0), want: Upload},
		{name: "=R, local deleted", local: loc(d2), remote: listed(v1), base: base(v1), want: Upload, deletes: true},
		{name: "=R tombstone, local recreated", local: loc(r3), remote: listed(d2), base: base(d2), want: Upload},
		{name: "=R, local regressed to an older copy", local: loc(v0), remote: listed(v1), base: base(v1), want: Download},
		{name: "=R tombstone, local regressed to an older live copy: delete again", local: loc(v1), remote: listed(d2), base: base(d2), want: Download, deletes: true},
		{name: "=R, local concurrent", local: loc(x1), remote: listed(v1), base: base(v1), want: Conflict},
		{name: "=R tombstone, local concurrent update", local: loc(x1), remote: listed(d2), base: base(d2), want: Conflict},
		{name: "=R, local concurrent delete", local: loc(xd), remote: listed(v1), base: base(v1), want: Conflict},
		{name: "=R, equal vectors, different versions", local: loc(e1), remote: listed(v1), base: base(v1), want: Conflict},

		// Base older than both.
		{name: "older base, equal", local: loc(v1), remote: rem(v1), base: base(v0), want: UpdateBase},
		{name: "older base, local after", local: loc(d2), remote: rem(v1), base: base(v0), want: Upload, deletes: true},
		{name: "older base, local before", local: loc(v1), remote: rem(r3), base: base(v0), want: Download},
		{name: "older base, concurrent updates", local: loc(v1), remote: rem(x1), base: base(v0), want: Conflict},
		{name: "older base, local delete vs remote update", local: loc(d2), remote: rem(x1), base: base(v0), want: Conflict},
		{name: "older base, local update vs remote delete", local: loc(v1), remote: rem(xd), base: base(v0), want: Conflict},
		{name: "older base, both changed, listing only", local: loc(v1), remote: listed(x1), base: base(v0), want: FetchRemote},

		// Base newer than both (both sides restored from an old backup).
		{name: "newer live base, both older: nothing to restore from", local: loc(v0), remote: rem(v0), base: base(v1), want: UpdateBase},
		{name: "newer base tombstone, both older: delete again", local: loc(v1), remote: rem(v1), base: base(d2), want: Download, deletes: true, wantRemote: d2},
		{name: "base tombstone, each side a different older copy: delete locally first", local: loc(v0), remote: rem(v1), base: base(d2), want: Download, deletes: true, wantRemote: d2},
		{name: "base tombstone, local older copy, remote concurrent update", local: loc(v0), remote: rem(x1), base: base(d2), want: Conflict, wantLocal: d2},
		{name: "base tombstone, local concurrent update, remote older copy", local: loc(x1), remote: listed(v1), base: baseStale(d2), want: FetchRemote},
		{name: "base tombstone, local concurrent update, remote older copy (read)", local: loc(x1), remote: rem(v1), base: baseStale(d2), want: Conflict, wantRemote: d2},
		{name: "base tombstone, both concurrent with it", local: loc(x1), remote: rem(x1), base: base(d2), want: Conflict, wantRemote: d2},
		{name: "base tombstone, both recreated after it", local: loc(r3), remote: rem(r3), base: base(d2), want: UpdateBase},
		{name: "base concurrent with both", local: loc(v1), remote: rem(v1), base: base(x1), want: UpdateBase},
	}
	for _, tt := range tests {
		got := Explain(tt.local, tt.remote, tt.base)
		where := fmt.Sprintf("%s: Explain(%s, %s, %s)", tt.name,
			sideName(tt.local, false), sideName(tt.remote, true), sideName(tt.base, true))
		if got.Action != tt.want || got.Deletes != tt.deletes {
			t.Errorf("%s = %v (deletes %v, %q), want %v (deletes %v)", where, got.Action, got.Deletes, got.Reason, tt.want, tt.deletes)
		}
		if tt.wantLocal != nil && name(got.Local) != name(tt.wantLocal) {
			t.Errorf("%s: Local = %s, want %s", where, name(got.Local), name(tt.wantLocal))
		}
		if tt.wantRemote != nil && name(got.Remote) != name(tt.wantRemote) {
			t.Errorf("%s: Remote = %s, want %s", where, name(got.Remote), name(tt.wantRemote))
		}
		if d := Decide(tt.local, tt.remote, tt.base); d != got.Action {
			t.Errorf("%s: Decide = %v, Explain = %v", where, d, got.Action)
		}
	}
}

// TestDecideSweep runs Decide over every combination of the versions above
// on each side (absent, read with its header, known from the listing only)
// and every base (none, each version, with the remote's ETag or a stale
// one), and checks the rules the table instances.
func TestDecideSweep(t *testing.T) {
	all := []*doc.Version{nil, v0, v1, d2, r3, x1, xd, e1}
	n := 0
	for _, l := range all {
		for _, r := range all {
			for _, listing := range []bool{false, true} {
				for _, b := range all {
					for _, stale := range []bool{false, true} {
						if (r == nil && listing) || (b == nil && stale) {
							continue
						}
						n++
						checkSweep(t, l, r, b, listing, stale)
					}
				}
			}
		}
	}
	t.Logf("%d combinations", n)
}

func checkSweep(t *testing.T, l, r, b *doc.Version, listing, stale bool) {
	t.Helper()
	var local, remote, bs *Side
	if l != nil {
		local = loc(l)
	}
	if r != nil {
		remote = rem(r)
		if listing {
			remote = listed(r)
		}
	}
	if b != nil {
		bs = base(b)
		if stale {
			bs = baseStale(b)
		}
	}
	d := Explain(local, remote, bs)
	where := fmt.Sprintf("Explain(%s, %s, %s) = %v (%q)", sideName(local, false), sideName(remote, true), sideName(bs, true), d.Action, d.Reason)
	etagMatch := r != nil && b != nil && !stale && etag(r) == etag(b)

	// The remote is fetched exactly when it changed and its version is
	// not known.
	needFetch := listing && !etagMatch
	if (d.Action == FetchRemote) != needFetch {
		t.Errorf("%s: FetchRemote is for a changed remote known only from the listing", where)
	}
	if d.Action == FetchRemote {
		return
	}
	// Copies go in the causal direction only.
	switch d.Action {
	case Upload:
		if d.Local == nil || (d.Remote != nil && d.Order != doc.After) {
			t.Errorf("%s: uploads %s over %s (%v)", where, name(d.Local), name(d.Remote), d.Order)
		}
	case Download:
		if d.Remote == nil || (d.Local != nil && d.Order != doc.Before) {
			t.Errorf("%s: downloads %s over %s (%v)", where, name(d.Remote), name(d.Local), d.Order)
		}
	case Conflict:
		if d.Local == nil || d.Remote == nil || d.Order == doc.After || d.Order == doc.Before {
			t.Errorf("%s: conflict between %s and %s (%v)", where, name(d.Local), name(d.Remote), d.Order)
		}
	case InSync:
		if b == nil && (l != nil || r != nil) {
			t.Errorf("%s: in sync without a base", where)
		}
	}
	// A synced tombstone is never replaced by a version it dominates.
	if b != nil && b.Tombstone {
		var dst *doc.Version
		switch d.Action {
		case Upload:
			dst = d.Local
		case Download:
			dst = d.Remote
		}
		if dst != nil && dst.Compare(b) == doc.Before {
			t.Errorf("%s: would write %s, older than the synced tombstone %s", where, name(dst), name(b))
		}
	}
	// With the remote known and consistent ETags, swapping the sides
	// mirrors the decision, except when both hold copies older than a base
	// tombstone: the node is brought up to date first, whichever it is.
	older := func(v *doc.Version) bool { return v != nil && b != nil && b.Tombstone && v.Compare(b) == doc.Before }
	if !listing && !stale && !(older(l) && older(r)) {
		var ml, mr *Side
		if r != nil {
			ml = loc(r)
		}
		if l != nil {
			mr = rem(l)
		}
		m := Decide(ml, mr, bs)
		mirror := map[Action]Action{Upload: Download, Download: Upload}
		want := d.Action
		if w, ok := mirror[want]; ok {
			want = w
		}
		if m != want {
			t.Errorf("%s, mirrored = %v, want %v", where, m, want)
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{InSync: "in_sync", UpdateBase: "update_base", FetchRemote: "fetch_remote",
		Upload: "upload", Download: "download", Conflict: "conflict", Action(99): "unknown"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, want)
		}
	}
}

func TestDecideMissingVersion(t *testing.T) {
	// A local side or base without a version counts as absent.
	if got := Decide(&Side{}, rem(v0), &Side{ETag: "x"}); got != Download {
		t.Errorf("Decide(empty local, v0, empty base) = %v, want download", got)
	}
	if got := Decide(&Side{}, nil, nil); got != InSync {
		t.Errorf("Decide(empty local, -, -) = %v, want in_sync", got)
	}
}
