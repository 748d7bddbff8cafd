package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/doc"
	"github.com/cairnstore/cairn/internal/fault"
	"github.com/cairnstore/cairn/internal/ingest"
	"github.com/cairnstore/cairn/internal/ingest/bulk"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

const importUsage = `Usage:
  cairn import [flags] --data-dir DIR --tenant NAME FILE

Loads a local NDJSON file (one document per line) straight into the data
directory of a stopped node: a first load, or a restore from an NDJSON
file of the documents (each record carrying its key in a field, or the
lines of 'cairn export' with --schema export).
The file is memory-mapped, not read through a socket, and each batch of
records is one durable group commit, as 'cairn ingest' commits them. The
records name their documents by the same rule as ingest's: --key-field,
--key-pointer, --schema marketdata (by symbol), or --schema export (each
line {"key": KEY, "doc": DOCUMENT}).

Every document gets a version, a change-log entry and sync state, so the
node, once started with 'cairn serve --data-dir DIR', serves them and
replicates them to its backends like any written document.

The data directory must not be in use: a running node holds its lock, and
import refuses it (stop the node, or send the file with 'cairn ingest').
Rejected records (invalid JSON, a missing or invalid key, a line larger
than --max-record-bytes) are stored nowhere and the first ones are printed
with their line numbers; the exit status is then 1, unless
--allow-rejects. If import stops early (a kill, a full disk), every batch
it committed is whole and durable, and nothing of a later one is stored.
A first SIGINT or SIGTERM stops it after its last whole batch, saying
through which line FILE is stored, and it exits 130 or 143 (128 + the
signal's number); a second one ends it at once.

With --progress, a line after each durable batch says through which line
of FILE records are stored.

The file must not be written to while it is imported: a mapped file
truncated underneath makes the import crash (SIGBUS).

Flags:
`

type importFlags struct {
	dataDir, tenant, nodeID      string
	keyField, keyPointer, schema string
	maxRecord                    byteSize
	allowRejects, progress       bool
}

func newImportFlags() (*flag.FlagSet, *importFlags) {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), importUsage); fs.PrintDefaults() }
	f := &importFlags{maxRecord: 1 << 20}
	fs.StringVar(&f.dataDir, "data-dir", "", "the stopped node's data `directory` (required; created if missing)")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant `name` the documents belong to (required)")
	fs.StringVar(&f.nodeID, "node-id", "", "the node's `name`, for a new directory the node will serve with --node-id (default: the directory's own)")
	fs.StringVar(&f.keyField, "key-field", "", "top-level `member` naming each document")
	fs.StringVar(&f.keyPointer, "key-pointer", "", "JSON `pointer` to the member naming each document (e.g. /meta/id)")
	fs.StringVar(&f.schema, "schema", "", "`schema` of the records: empty or generic (any JSON), marketdata (named by symbol), or export (lines of cairn export: {\"key\": KEY, \"doc\": DOCUMENT})")
	fs.Var(&f.maxRecord, "max-record-bytes", "largest record accepted (`size`; the node's --max-body-bytes)")
	fs.BoolVar(&f.allowRejects, "allow-rejects", false, "exit 0 even if some records were rejected")
	fs.BoolVar(&f.progress, "progress", false, "print a line after each durable batch: through which line of FILE records are stored")
	return fs, f
}

func importCommand(ctx context.Context, args []string, env Env) int {
	fs, f := newImportFlags()
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	err := f.run(ctx, args, env)
	if fault.ClassOf(err) == fault.Corruption {
		err = hinted{err, fmt.Sprintf("the store in %s is damaged; see %q in docs/runbook.md", f.dataDir, "Corrupt local store")}
	}
	return report("import", err, env)
}

// options checks the flags and turns them into ingest options, with the
// rules the server's ingest route applies to its query.
func (f *importFlags) options(args []string) (ingest.Options, error) {
	switch {
	case len(args) != 1:
		return ingest.Options{}, usageError("want exactly one FILE")
	case f.dataDir == "":
		return ingest.Options{}, usageError("--data-dir is required")
	case f.tenant == "":
		return ingest.Options{}, usageError("--tenant is required")
	case f.maxRecord <= 0 || int64(f.maxRecord) > store.MaxBody:
		return ingest.Options{}, usageError(fmt.Sprintf("--max-record-bytes %d: want 1 to %d", int64(f.maxRecord), store.MaxBody))
	}
	if err := doc.ValidateTenant(f.tenant); err != nil {
		return ingest.Options{}, usageError("--tenant: " + fault.MessageOf(err))
	}
	o := ingest.Options{
		KeyField: f.keyField, KeyPointer: f.keyPointer,
		// The node's own bound on nesting, as a PUT and the ingest route
		// have it: a document imported deeper could not be written back.
		MaxRecordSize: int(f.maxRecord), MaxDepth: server.DefaultMaxDepth, MaxRejects: showRejects,
		// Ordered: the committed records are a prefix of the file, so an
		// interrupted import can say through which line it is stored.
		Ordered: true,
	}
	err := keyOptions(&o, f.schema)
	return o, err
}

// keyOptions checks how records are named, as the ingest route checks its
// query (key_field, key_pointer, schema), and sets o's schema: the rules of
// cairn import, and of cairn ingest before it sends anything.
func keyOptions(o *ingest.Options, schema string) error {
	switch schema {
	case "", "generic":
		switch {
		case o.KeyField != "" && o.KeyPointer != "":
			return usageError("give --key-field or --key-pointer, not both")
		case o.KeyField == "" && o.KeyPointer == "":
			return usageError("give --key-field or --key-pointer (or --schema marketdata, or export)")
		}
	case "marketdata":
		if o.KeyPointer != "" || (o.KeyField != "" && o.KeyField != "symbol") {
			return usageError("--schema marketdata names each document by its symbol: omit --key-pointer, and --key-field must be symbol if given")
		}
		o.Schema, o.KeyField = ingest.MarketDataSchema, ""
	case "export":
		if o.KeyField != "" || o.KeyPointer != "" {
			return usageError(`--schema export names each document by its "key" member: omit --key-field and --key-pointer`)
		}
		o.KeyPointer, o.BodyPointer = ingest.ExportKeyPointer, ingest.ExportBodyPointer
	default:
		return usageError(fmt.Sprintf("--schema %q: want generic, marketdata or export", schema))
	}
	if err := o.Check(); err != nil {
		return usageError(strings.TrimPrefix(err.Error(), "ingest: "))
	}
	return nil
}

func (f *importFlags) run(ctx context.Context, args []string, env Env) error {
	opts, err := f.options(args)
	if err != nil {
		return err
	}
	// The import's live heap is small (the batches in flight and the
	// store's overlay) while it allocates a copy and a request for every
	// record, so at the default GOGC the collector runs every few batches.
	// A heap target of four times the live heap makes it run a quarter as
	// often, for a bounded amount of memory (docs/ingest.md); GOGC, if
	// set, wins.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if args[0] == "-" {
		return usageError("import reads a file, which it maps into memory: it cannot read stdin (-); save the input to a file first, or send it to a running node with 'cairn ingest -'")
	}
	// The file is opened before the data directory, which Open creates
	// when missing: a mistyped file name leaves nothing behind.
	in, err := os.Open(args[0])
	if err != nil {
		return err
	}
	fi, err := in.Stat()
	in.Close()
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: a directory, not an NDJSON file", args[0])
	}
	st, err := store.Open(f.dataDir, store.Options{NodeID: f.nodeID})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return hinted{err, "another process holds it (a running node, or an import or export): stop it first, or send the file to a running node with 'cairn ingest'"}
		}
		return err
	}
	// The same bulk path as the server's ingest route.
	w := &bulk.Loader{Ctx: ctx, W: st, Tenant: f.tenant, Market: opts.Schema == ingest.MarketDataSchema}
	if f.progress {
		w.Batch = func(*ingest.Batch, int) func([]store.Record, error) {
			return func(recs []store.Record, err error) {
				if err == nil && len(recs) > 0 {
					fmt.Fprintf(env.Stdout, "durable through line %d\n", w.LastLine)
				}
			}
		}
	}
	stats, err := ingest.ProcessFile(ctx, args[0], opts, w.Handle)
	if werr := w.Wait(); werr != nil && err == nil {
		err = werr
	}
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	rejected := stats.Malformed + stats.Oversize + stats.Skipped
	verb := "imported"
	if err != nil {
		verb = "stopped after reading" // loaded counts only what was committed
	}
	fmt.Fprintf(env.Stdout, "%s %d records (%s) in %v: %d loaded, %d rejected (%d malformed, %d oversize, %d invalid key); %.1f MB/s, %.0f records/s\n",
		verb, stats.Records+rejected, human(stats.Bytes), stats.Duration.Round(time.Millisecond), w.Stored, rejected,
		stats.Malformed, stats.Oversize, stats.Skipped, stats.Throughput()/1e6, stats.RecordsPerSecond())
	for _, r := range stats.Rejects {
		kind := r.Kind.String()
		if r.Kind == ingest.KindSkipped {
			kind = "invalid_key"
		}
		fmt.Fprintf(env.Stderr, "  line %d (byte %d): %s: %s\n", r.Line, r.Offset, kind, fault.MessageOf(r.Err))
	}
	if more := rejected - int64(len(stats.Rejects)); more > 0 && len(stats.Rejects) > 0 {
		fmt.Fprintf(env.Stderr, "  … and %d more rejected\n", more)
	}
	switch {
	case err != nil && w.LastLine == 0:
		return fmt.Errorf("stopped before any record was stored: %w", err)
	case err != nil:
		return fmt.Errorf("stopped: records through line %d are stored: %w", w.LastLine, err)
	}
	if rejected > 0 && !f.allowRejects {
		return hinted{fmt.Errorf("%d records stored, %d rejected", stats.Records, rejected),
			"fix the rejected lines and import only them (importing the whole file again stores every record again as a new version); --allow-rejects makes an import with rejects exit 0"}
	}
	return nil
}
