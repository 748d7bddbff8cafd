package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
)

// TestQuarantineAdmin: a damaged object on the backend is quarantined by
// the round that repairs it, and GET /v1/admin/quarantine lists the row
// (no bytes) and, for one key, returns the damaged bytes.
func TestQuarantineAdmin(t *testing.T) {
	be := mem.New("m")
	a := startReplNode(t, BackendSpec{Name: "m", Backend: be})
	if code, body := a.do(t, "PUT", "k1", `{"v":1}`); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	a.run(t, "")
	if _, err := be.Get(context.Background(), "acme", "k1"); err != nil {
		t.Fatalf("the object did not reach the backend: %v", err)
	}
	var damaged []byte
	if err := be.Corrupt(context.Background(), "acme", "k1", func(raw []byte) []byte {
		h, _ := backend.ParseHeader(raw)
		raw[h.Len-backend.ChecksumSize] ^= 0x80 // in the ETag (the checksum's start), so the round reads it
		damaged = bytes.Clone(raw)
		return raw
	}); err != nil {
		t.Fatal(err)
	}
	// Digests do not see damage done behind the node's back: a scrub
	// reads the object.
	a.run(t, "&scrub=1")
	if _, err := be.Get(context.Background(), "acme", "k1"); err != nil {
		t.Fatalf("not repaired: %v", err)
	}

	get := func(query string, wantCode int) api.QuarantineList {
		t.Helper()
		resp, err := http.Get("http://" + a.AdminAddr() + "/v1/admin/quarantine" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantCode {
			t.Fatalf("GET quarantine%s: %s %s, want %d", query, resp.Status, b, wantCode)
		}
		var out api.QuarantineList
		if wantCode == 200 {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
		}
		return out
	}
	list := get("", 200)
	if len(list.Rows) != 1 {
		t.Fatalf("list: %+v, want 1 row", list)
	}
	r := list.Rows[0]
	if r.Backend != "m" || r.Tenant != "acme" || r.Key != "k1" || r.ETag != backend.ETagOf(damaged) ||
		r.Size != int64(len(damaged)) || r.Reason == "" || r.Raw != nil {
		t.Fatalf("row %+v: want m/acme/k1, the damaged ETag and size, a reason, no bytes", r)
	}
	one := get("?backend=m&tenant=acme&key=k1", 200)
	if len(one.Rows) != 1 || !bytes.Equal(one.Rows[0].Raw, damaged) {
		t.Fatalf("one key: %+v, want the 1 row with the %d damaged bytes", one, len(damaged))
	}
	if other := get("?backend=m&tenant=acme&key=k2", 200); len(other.Rows) != 0 {
		t.Fatalf("another key: %+v, want no rows", other)
	}
	get("?tenant=acme", 400)
	get("?backend=m&tenant=ACME!&key=k1", 400)
	// Another round finds the repaired object: no new row.
	a.run(t, "")
	if list := get("", 200); len(list.Rows) != 1 {
		t.Fatalf("after another round: %+v", list)
	}
}
