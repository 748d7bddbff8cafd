package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/store"
)

// TestUnnamedTenantsWarned: a store holding documents of a tenant the
// configuration does not name (one mistyped at import) is warned about at
// start, naming it; the configured ones are not named.
func TestUnnamedTenantsWarned(t *testing.T) {
	cfg := testConfig(t)
	st, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "acmee"} {
		if _, err := st.Put(context.Background(), tenant, "k", []byte(`{}`), doc.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var logs proctest.SyncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Auth.Tenants = map[string][][32]byte{"acme": {{1}}}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown(context.Background())
	line := ""
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "no --tenant names") {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "acmee") || strings.Contains(line, "[acme ") {
		t.Errorf("start log's warning: %q; want one naming acmee only", line)
	}
}
