package telemetry

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunbookNamesExportedMetrics: every metric docs/runbook.md names in an
// alert is one cairn exports, so an alert copied from it can fire. cairn's
// own names are the literals registered in this package; go_* and
// process_* come from the collectors, read from a scrape.
func TestRunbookNamesExportedMetrics(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	files, _ := filepath.Glob("*.go")
	literal := regexp.MustCompile(`"(cairn_[a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			known[m[1]] = true
		}
	}
	mfs, err := NewMetrics("test", 0).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	used := regexp.MustCompile(`\b((?:cairn|go|process)_[a-z_]+)`).FindAllStringSubmatch(string(doc), -1)
	if len(used) < 20 {
		t.Fatalf("only %d metric names in the runbook: the pattern is wrong", len(used))
	}
	for _, m := range used {
		name := m[1]
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if !known[name] && !known[base] {
			t.Errorf("docs/runbook.md names %s, which cairn does not export", name)
		}
	}
}
