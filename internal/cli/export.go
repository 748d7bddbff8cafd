package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/store"
)

const exportUsage = `Usage:
  cairn export [flags] --data-dir DIR --tenant NAME FILE|-

Writes a tenant's documents, from the data directory of a stopped node, to
FILE (or stdout with -) as NDJSON, one document a line, sorted by key:

  {"key": KEY, "doc": DOCUMENT}

The whole export reads one point-in-time view of the store. 'cairn import
--schema export' loads such a file into a data directory, and 'cairn
ingest --schema export' sends it to a running node: a backup of a tenant, a
move to another cluster, or a copy to load elsewhere. The documents get new
versions there; their bodies are kept byte for byte, except for white
space: a document is written without the white space before and after
it, and one stored with line breaks between its tokens on one line.

A document with open siblings (a conflict left for a person, manual
policy) is written as {"key": KEY, "siblings": [DOCUMENT or null, ...]},
null for a deletion; import and ingest reject such lines, so resolve the
conflicts first ('cairn conflicts ls') or choose a sibling from the file.

FILE is written beside it as .FILE.*.tmp and renamed once complete and
synced, so a FILE that exists is whole; an existing FILE keeps its
permissions, a new one is 0600; a device or FIFO is written in place.

The data directory is read, never changed (a copy kept aside, or a
read-only snapshot, can be exported). It must not be in use: a running
node holds its lock (stop it, or read the documents from it with 'cairn
ls' and 'cairn get').

Flags:
`

type exportFlags struct {
	dataDir, tenant, prefix string
}

func newExportFlags() (*flag.FlagSet, *exportFlags) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), exportUsage); fs.PrintDefaults() }
	f := &exportFlags{}
	fs.StringVar(&f.dataDir, "data-dir", "", "the stopped node's data `directory` (required)")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant `name` whose documents are written (required)")
	fs.StringVar(&f.prefix, "prefix", "", "only the documents whose keys start with `P`")
	return fs, f
}

func exportCommand(ctx context.Context, args []string, env Env) int {
	fs, f := newExportFlags()
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	err := f.run(ctx, args, env)
	if fault.ClassOf(err) == fault.Corruption {
		err = hinted{err, fmt.Sprintf("the store in %s is damaged: cairn cannot read it whole, and the export wrote nothing; see %q in docs/runbook.md", f.dataDir, "Corrupt local store")}
	}
	return report("export", err, env)
}

func (f *exportFlags) check(args []string) error {
	switch {
	case len(args) != 1:
		return usageError("want exactly one FILE, or - for stdout")
	case f.dataDir == "":
		return usageError("--data-dir is required")
	case f.tenant == "":
		return usageError("--tenant is required")
	}
	if err := doc.ValidateTenant(f.tenant); err != nil {
		return usageError("--tenant: " + fault.MessageOf(err))
	}
	if f.prefix != "" {
		if err := doc.ValidateKey(f.prefix); err != nil {
			return usageError("--prefix: " + fault.MessageOf(err))
		}
	}
	return nil
}

// exportStats is what an export wrote.
type exportStats struct {
	docs, siblings, bytes int64
}

func (f *exportFlags) run(ctx context.Context, args []string, env Env) error {
	if err := f.check(args); err != nil {
		return err
	}
	// Opening a store creates a missing directory: a mistyped path must
	// not become an empty export.
	if entries, err := os.ReadDir(filepath.Join(f.dataDir, "pebble")); err != nil || len(entries) == 0 {
		return fmt.Errorf("%s holds no cairn data directory (no pebble/ store in it)", f.dataDir)
	}
	// The directory is only read: FILE in it would change it (an export
	// over identity.json made the node refuse its store).
	if args[0] != "-" {
		if out, data := absPath(filepath.Dir(args[0])), absPath(f.dataDir); out == data || within(out, data) {
			return usageError(fmt.Sprintf("%s: inside --data-dir %s, which an export reads and never changes: write it elsewhere", args[0], f.dataDir))
		}
	}
	start := time.Now()
	// Read-only: nothing in the directory changes, so a copy kept aside
	// (runbooks 15, 19) stays as it was, and a read-only snapshot can be
	// read.
	st, err := store.Open(f.dataDir, store.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return hinted{err, "another process holds it (a running node, or an import or export): stop it first, or read a running node's documents over the API ('cairn ls', 'cairn get')"}
		}
		return err
	}
	defer st.Close()
	// A tenant the store has never held (a typo) is refused before FILE is
	// touched: an empty export would replace an earlier one.
	tenants, err := tenantsOf(ctx, st)
	if err != nil {
		return err
	}
	if !slices.Contains(tenants, f.tenant) {
		return fmt.Errorf("%s holds no documents or deletions of tenant %s; tenants there: %s", f.dataDir, f.tenant, namesOrNone(tenants))
	}

	var stats exportStats
	write := func(out io.Writer) error {
		w := bufio.NewWriterSize(out, 256<<10)
		var err error
		if stats, err = writeExport(ctx, st, f.tenant, f.prefix, w); err != nil {
			return err
		}
		return w.Flush()
	}
	if args[0] == "-" {
		err = write(env.Stdout)
	} else {
		err = writeOutput(args[0], 0o600, write)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "exported %d documents of tenant %s (%s) in %v\n",
		stats.docs, f.tenant, human(stats.bytes), time.Since(start).Round(time.Millisecond))
	if stats.siblings > 0 {
		fmt.Fprintf(env.Stderr, "%d of them have open siblings, written as {\"key\", \"siblings\"}: import rejects those lines; resolve the conflicts first ('cairn conflicts ls')\n", stats.siblings)
	}
	if stats.docs == 0 {
		fmt.Fprintf(env.Stderr, "tenant %s has no documents%s in %s; tenants with documents or deletions there: %s\n",
			f.tenant, prefixNote(f.prefix), f.dataDir, namesOrNone(tenants))
	}
	return nil
}

func prefixNote(p string) string {
	if p == "" {
		return ""
	}
	return fmt.Sprintf(" under prefix %q", p)
}

// tenantsOf lists the tenants st holds documents or deletions of, sorted.
func tenantsOf(ctx context.Context, st *store.Store) ([]string, error) {
	var names []string
	for t, err := range st.Tenants(ctx) {
		if err != nil {
			return nil, err
		}
		names = append(names, t)
	}
	slices.Sort(names)
	return names, nil
}

// namesOrNone is names for a message.
func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// writeExport writes tenant's live documents under prefix to w, one line
// each, from one snapshot of st.
func writeExport(ctx context.Context, st *store.Store, tenant, prefix string, w *bufio.Writer) (exportStats, error) {
	var stats exportStats
	var line []byte
	for rec, err := range st.List(ctx, tenant, store.ListOptions{Prefix: prefix, NoETag: true}) {
		if err != nil {
			return stats, err
		}
		var lerr error
		if line, lerr = appendExportLine(line[:0], &rec); lerr != nil {
			return stats, fmt.Errorf("document %q: %w", rec.Key, lerr)
		}
		if _, err := w.Write(line); err != nil {
			return stats, err
		}
		stats.docs++
		stats.bytes += int64(len(line))
		if rec.Version.Siblings {
			stats.siblings++
		}
	}
	return stats, ctx.Err()
}

// appendExportLine appends rec's export line to b.
func appendExportLine(b []byte, rec *store.Record) ([]byte, error) {
	key, err := json.Marshal(rec.Key)
	if err != nil {
		return b, err
	}
	b = append(append(append(b, `{"key":`...), key...), ',')
	if !rec.Version.Siblings {
		b = appendOneLine(append(b, `"doc":`...), rec.Body)
		return append(b, "}\n"...), nil
	}
	sibs, err := doc.DecodeSiblings(rec.Body)
	if err != nil {
		return b, err
	}
	b = append(b, `"siblings":[`...)
	for i, s := range sibs {
		if i > 0 {
			b = append(b, ',')
		}
		if s.Version.Tombstone || len(s.Body) == 0 {
			b = append(b, "null"...)
			continue
		}
		b = appendOneLine(b, s.Body)
	}
	return append(b, "]}\n"...), nil
}

// appendOneLine appends the valid JSON body to b on one line, without the
// white space around it, which a load would not keep: a stored document
// may hold line breaks between its tokens (never inside a string, where
// JSON forbids them), which would break the NDJSON line.
func appendOneLine(b, body []byte) []byte {
	body = bytes.Trim(body, " \t\r\n")
	if !bytes.ContainsAny(body, "\r\n") {
		return append(b, body...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		return append(b, body...) // not reached: stored bodies are valid JSON
	}
	return append(b, buf.Bytes()...)
}
