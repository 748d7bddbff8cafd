package telemetry

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRunbookNamesExportedMetrics: every metric docs/runbook.md names in an
// alert is one cairn exports, so an alert copied from it can fire. cairn's
// own names are the literals registered in this package and the RESP
// front's; go_* and
// process_* come from the collectors, read from a scrape.
func TestRunbookNamesExportedMetrics(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	files, _ := filepath.Glob("*.go")
	resp, _ := filepath.Glob("../resp/*.go") // the RESP front registers its own
	files = append(files, resp...)
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

// TestRunbookEntries: every numbered entry of docs/runbook.md says what an
// operator sees, names a metric cairn exports (TestRunbookNamesExportedMetrics
// checks the names), the log line to search for, and what to do; and every
// log message it quotes ("msg" in backquotes) is one cairn logs: a string
// literal in its source.
func TestRunbookEntries(t *testing.T) {
	doc, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, root := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			src.Write(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	heading := regexp.MustCompile(`(?m)^## (\d+)\. (.+)$`)
	metric := regexp.MustCompile(`\b(?:cairn|go|process)_[a-z_]+`)
	quoted := regexp.MustCompile("`\"([^\"`]+)\"`")
	text := string(doc)
	quotes := 0
	locs := heading.FindAllStringSubmatchIndex(text, -1)
	if len(locs) < 17 {
		t.Fatalf("%d numbered entries in the runbook, want at least 17", len(locs))
	}
	for i, loc := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		title := text[loc[2]:loc[3]] + ". " + text[loc[4]:loc[5]]
		body := text[loc[1]:end]
		for _, part := range []string{"**Symptom.**", "**Metric.**", "**Log.**", "**What to do.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("runbook %q has no %s", title, part)
			}
		}
		if m, _, ok := strings.Cut(body[strings.Index(body, "**Metric.**")+1:], "**Log.**"); !ok || !metric.MatchString(m) {
			t.Errorf("runbook %q: its Metric part names no metric", title)
		}
		_, logPart, _ := strings.Cut(body, "**Log.**")
		logPart, _, _ = strings.Cut(logPart, "**What to do.**")
		for _, q := range quoted.FindAllStringSubmatch(logPart, -1) {
			quotes++
			msg := strings.Join(strings.Fields(q[1]), " ")
			if !strings.Contains(src.String(), strconv.Quote(msg)) {
				t.Errorf("runbook %q quotes the log line %q, which no source file logs", title, msg)
			}
		}
	}
	if quotes < 15 {
		t.Fatalf("only %d quoted log lines in the runbook: the pattern is wrong", quotes)
	}
}
