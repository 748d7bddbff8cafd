package reconcile_test

import (
	"fmt"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/reconcile"
)

func ExampleDecide() {
	const nodeA, nodeB = 1, 2
	v1 := doc.Derive(nil, nodeA, 1000, []byte(`{"n":1}`), false)
	v2 := doc.Derive(&v1, nodeA, 2000, []byte(`{"n":2}`), false)
	theirs := doc.Derive(&v1, nodeB, 1500, []byte(`{"m":1}`), false)

	// Synced v1 with the backend, which stored it as ETag "e1".
	base := &reconcile.Side{Version: &v1, ETag: "e1"}

	// The node wrote v2; the listing shows the object unchanged: upload,
	// without reading the object.
	fmt.Println(reconcile.Decide(&reconcile.Side{Version: &v2}, &reconcile.Side{ETag: "e1"}, base))
	// The object changed, and the listing has no version: read it first.
	fmt.Println(reconcile.Decide(&reconcile.Side{Version: &v2}, &reconcile.Side{ETag: "e9"}, base))
	// It holds a version concurrent with v2.
	d := reconcile.Explain(&reconcile.Side{Version: &v2}, &reconcile.Side{Version: &theirs, ETag: "e9"}, base)
	fmt.Println(d.Action, d.Order)
	// Output:
	// upload
	// fetch_remote
	// conflict concurrent
}

func ExampleResolve() {
	const nodeA, nodeB = 1, 2
	cand := func(parent *reconcile.Candidate, node uint64, ts doc.Timestamp, body string) reconcile.Candidate {
		var pv *doc.Version
		if parent != nil {
			pv = &parent.Version
		}
		return reconcile.Candidate{Version: doc.Derive(pv, node, ts, []byte(body), false), Body: []byte(body)}
	}
	base := cand(nil, nodeA, 1000, `{"title":"draft","likes":0}`)
	ours := cand(&base, nodeA, 2000, `{"title":"final","likes":0}`)
	theirs := cand(&base, nodeB, 3000, `{"title":"draft","likes":1}`)

	merge, _ := reconcile.ParsePolicy("merge")
	r, _ := reconcile.Resolve(merge, ours, theirs, &base)
	fmt.Println(r.Outcome, string(r.Result.Body))
	fmt.Println(r.Result.Version.Vector)

	// The other node, with the arguments the other way round, makes the
	// same version.
	r2, _ := reconcile.Resolve(merge, theirs, ours, &base)
	fmt.Println(r2.Result.Version.ID() == r.Result.Version.ID())

	// Without the ancestor the merge falls back to last-writer-wins, and
	// the loser is reported for the conflict history.
	r3, _ := reconcile.Resolve(merge, ours, theirs, nil)
	fmt.Println(r3.Outcome, string(r3.Result.Body), "lost:", string(r3.Loser.Body))
	// Output:
	// merged {"likes":1,"title":"final"}
	// [{1 2} {2 1}]
	// true
	// picked {"title":"draft","likes":1} lost: {"title":"final","likes":0}
}

func ExampleMergeJSON() {
	out, err := reconcile.MergeJSON(
		[]byte(`{"a":1,"b":{"x":1}}`),
		[]byte(`{"a":2,"b":{"x":1}}`),
		[]byte(`{"a":1,"b":{"x":1,"y":2}}`))
	fmt.Println(string(out), err)

	_, err = reconcile.MergeJSON([]byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":3}`))
	fmt.Println(err)
	// Output:
	// {"a":2,"b":{"x":1,"y":2}} <nil>
	// reconcile.merge_json: field "/a" changed differently on both sides
}

func ExampleGuard_Stop() {
	g := reconcile.DefaultGuard // a quarter of the documents, beyond 1,000
	fmt.Println(g.Stop(10000, 2000), g.Stop(10000, 3000), g.Stop(800, 800))
	// Output: false true false
}
