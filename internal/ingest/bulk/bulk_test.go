package bulk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failing fails the StartPutBatch calls from the n-th on (1-based).
type failing struct {
	st    *store.Store
	n     int
	calls int
}

var errDisk = errors.New("disk full")

func (f *failing) StartPutBatch(ctx context.Context, tenant string, items []store.Item) (*store.PendingBatch, error) {
	if f.calls++; f.calls >= f.n {
		return nil, errDisk
	}
	return f.st.StartPutBatch(ctx, tenant, items)
}

// TestLoader: batches are stored whole and in order, an invalid key is
// skipped, and a store failure stops the stream with the marks at the last
// durable batch and nothing of the failed one stored.
func TestLoader(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var in strings.Builder
	const n = 300
	for i := 1; i <= n; i++ {
		key := fmt.Sprintf("k%04d", i)
		if i == 7 {
			key = "" // doc.ValidateKey refuses it
		}
		fmt.Fprintf(&in, `{"id":%q,"pad":"%s"}`+"\n", key, strings.Repeat("x", 100))
	}
	ctx := context.Background()
	w := &failing{st: st, n: 3}
	var traced []int
	l := &Loader{Ctx: ctx, W: w, Tenant: "demo", Batch: func(b *ingest.Batch, accepted int) func([]store.Record, error) {
		return func(recs []store.Record, err error) {
			if err == nil {
				traced = append(traced, len(recs))
			}
		}
	}}
	opts := ingest.Options{KeyField: "id", ChunkSize: 4096, MaxRecordSize: 1024, Ordered: true, MaxRejects: 10, Workers: 1}
	stats, err := ingest.ProcessBytes(ctx, []byte(in.String()), opts, l.Handle)
	if werr := l.Wait(); werr != nil && err == nil {
		err = werr
	}
	if !errors.Is(err, errDisk) || !errors.Is(l.StoreErr, errDisk) {
		t.Fatalf("Process: %v, StoreErr %v; want %v", err, l.StoreErr, errDisk)
	}
	if l.Batches != 2 || len(traced) != 2 {
		t.Fatalf("%d batches durable (%d traced), want 2", l.Batches, len(traced))
	}
	if len(stats.Rejects) != 1 || stats.Rejects[0].Line != 7 {
		t.Errorf("rejects %+v, want line 7", stats.Rejects)
	}
	var keys []string
	for rec, err := range st.List(ctx, "demo", store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, rec.Key)
	}
	// The stored documents are the first LastLine lines but line 7.
	want := int(l.LastLine) - 1
	if len(keys) != want || keys[len(keys)-1] != fmt.Sprintf("k%04d", l.LastLine) {
		t.Fatalf("stored %d documents ending %q, want %d ending at line %d", len(keys), keys[len(keys)-1], want, l.LastLine)
	}
	if l.DurableEnd <= 0 || !strings.HasPrefix(in.String()[l.DurableEnd:], "\n{") {
		t.Errorf("DurableEnd %d is not the end of a line", l.DurableEnd)
	}
	if l.Stored != int64(want) {
		t.Errorf("Stored %d, want the %d documents stored (not the records read)", l.Stored, want)
	}
}
