package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/ingest"
)

const ingestUsage = `Usage:
  cairn ingest [flags] FILE|-

Streams newline-delimited JSON (one document per line) from FILE, or stdin
with -, to the node's ingest endpoint. The file is sent as it is read, never
held in memory. Each line becomes the document named by its --key-field (or
--key-pointer); with --schema marketdata, by its symbol; with --schema
export (the lines of 'cairn export'), each line's "doc" by its "key".

Every accepted record is durable when the command prints its summary;
rejected records (invalid JSON, a missing or invalid key, a line larger than
the node's --max-body-bytes) are stored nowhere, and the first ones are
printed with their line numbers. With --rejects FILE the rejected lines are
written to FILE as they were read: fix them there and ingest FILE, which
sends only them (sending the whole input again would store every accepted
record again as a new version). The exit status is 1 when anything was
rejected, unless --allow-rejects; 1 also when the stream failed (the summary
then says how far it got), and 130 or 143 (128 + the signal's number) when
a SIGINT or SIGTERM stopped it. The first such signal ends the stream at the
end of the line being sent; the command then prints what the node stored
and how to go on from the next line. A second one ends it at once.

On a terminal, a progress line shows bytes sent, rate, records/s and ETA.

Connection settings come from flags or CAIRN_URL, CAIRN_TOKEN, CAIRN_TENANT.

Flags:
`

// showRejects is how many rejected records the command prints.
const showRejects = 10

type ingestFlags struct {
	clientFlags
	keyField, keyPointer, schema string
	allowRejects                 bool
	rejects                      string // file for the rejected lines
}

func newIngestFlags() (*flag.FlagSet, *ingestFlags) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), ingestUsage); fs.PrintDefaults() }
	var f ingestFlags
	f.register(fs)
	fs.StringVar(&f.keyField, "key-field", "", "top-level `member` naming each document")
	fs.StringVar(&f.keyPointer, "key-pointer", "", "JSON `pointer` to the member naming each document (e.g. /meta/id)")
	fs.StringVar(&f.schema, "schema", "", "`schema` of the records: empty or generic (any JSON), marketdata (named by symbol), or export (lines of cairn export: {\"key\": KEY, \"doc\": DOCUMENT})")
	fs.BoolVar(&f.allowRejects, "allow-rejects", false, "exit 0 even if some records were rejected")
	fs.StringVar(&f.rejects, "rejects", "", "write the rejected lines, as they were read, to `FILE` (only when there are some), to fix and ingest again")
	return fs, &f
}

func ingestCommand(ctx context.Context, args []string, env Env) int {
	fs, f := newIngestFlags()
	args, code, ok := parseArgs(fs, args, true, env)
	if !ok {
		return code
	}
	if err := settle(fs, env.Getenv, "", "url", "token", "tenant", "ca-cert"); err != nil {
		fmt.Fprintf(env.Stderr, "cairn ingest: %v\n", err)
		return exitUsage
	}
	// The command line's own mistakes come before a missing token.
	o := ingest.Options{KeyField: f.keyField, KeyPointer: f.keyPointer}
	if len(args) != 1 {
		return report("ingest", usageError("want exactly one FILE, or - for stdin"), env)
	}
	if err := keyOptions(&o, f.schema); err != nil {
		return report("ingest", err, env)
	}
	if m := f.missing(); m != "" {
		fmt.Fprintln(env.Stderr, "cairn ingest: "+m)
		return exitUsage
	}
	return report("ingest", reachable(f.run(ctx, args, o, env), f.url, "CAIRN_URL or --url"), env)
}

func (f *ingestFlags) run(ctx context.Context, args []string, o ingest.Options, env Env) error {
	in, size, closeIn, err := openInput(args[0], env)
	if err != nil {
		return err
	}
	defer closeIn()
	if in, err = refuseGzip(in, args[0], f.ingestCommand()); err != nil {
		return err
	}
	c, err := f.newClient()
	if err != nil {
		return err
	}
	var rj *rejectsFile
	if f.rejects != "" {
		if rj, in, err = newRejectsFile(f.rejects, in); err != nil {
			return err
		}
		defer rj.discard()
	}
	if size > 0 {
		// What the file holds now: lines appended while it is sent are
		// not, and the progress line's total stays true.
		in = io.LimitReader(in, size)
	}

	// The first SIGINT or SIGTERM (ctx) ends the stream at the end of the
	// line being sent, and the node's answer, which says what is stored,
	// is still read: the request itself is not cancelled.
	cut := &lineCut{r: in, stop: ctx.Done()}
	cr := &countingReader{r: cut}
	stop := func() {}
	if tty, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(tty.Fd())) {
		stop = startProgress(tty, cr, size, time.Now())
	}
	id := ingestRequestID()
	// Sent chunked (no Size): a stream cut at a line is then a whole request.
	res, err := c.Ingest(client.ContextWithRequestID(context.WithoutCancel(ctx), id), f.tenant, cr, client.IngestOptions{
		KeyField: f.keyField, KeyPointer: f.keyPointer, Schema: f.schema,
	})
	stop()
	if rerr := cr.err(); rerr != nil {
		// The input failed to be read (an I/O error): the node stored
		// what came before, as a stream that ended there.
		return hinted{fmt.Errorf("reading %s after %d whole lines: %w", inputName(args[0]), cr.lines.Load(), rerr),
			"the node stored what the lines before it held; once the input reads again, go on from the next line: " +
				f.resumeCommand(args[0], strconv.FormatInt(cr.lines.Load()+1, 10))}
	}
	var ce *client.Error
	if err != nil && !errors.As(err, &ce) && cr.bytes.Load() > 0 {
		// The connection failed mid-stream: the node's answer, which
		// says how far it stored, is lost with it.
		return hinted{fmt.Errorf("%w (after sending %d bytes, %d whole lines)", err, cr.bytes.Load(), cr.lines.Load()),
			fmt.Sprintf("the node keeps the batches it committed, at most the first %d lines: its log line for request %s says through which line they are durable (last_durable_line); send only the lines after it again (%s), not the whole input, which would store every record again as a new version. A node that went down logged no such line: send again from a line you know to be stored (cairn get of its key); lines sent twice are stored again, as new versions of the same content",
				cr.lines.Load(), id, f.resumeCommand(args[0], "LINE+1"))}
	}
	if err != nil && res.Stats.Records == 0 && res.ProcessedBytes == 0 {
		return err // refused or failed before anything was processed: report says why
	}
	if ctx.Err() != nil && err == nil {
		res = withoutCutLine(res, cr.lines.Load())
	}
	printSummary(env, res)
	var rejErr error
	if res.Stats.Rejected > 0 {
		rejErr = f.rejected(args[0], res, rj)
		if err == nil && f.allowRejects {
			report("ingest", rejErr, env) // says what was stored; the exit status is 0 all the same
			rejErr = nil
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(env.Stderr, "cairn ingest: stopped after %d bytes; records through line %d are stored\n",
			res.ProcessedBytes, res.LastDurableLine)
		if rejErr != nil {
			fmt.Fprintf(env.Stderr, "cairn ingest: %v\n", rejErr)
		}
		return err
	case ctx.Err() != nil:
		// Interrupted: the stream ended at a line (lineCut), or where the
		// process feeding stdin, stopped by the same Ctrl-C, left it. The
		// node took every line sent; one sent cut short is rejected, and
		// is the line to go on from.
		if rejErr != nil {
			fmt.Fprintf(env.Stderr, "cairn ingest: %v\n", rejErr)
		}
		return hinted{fmt.Errorf("interrupted after %d whole lines: the records they hold are stored", cr.lines.Load()),
			"to go on from the next line: " + f.resumeCommand(args[0], strconv.FormatInt(cr.lines.Load()+1, 10))}
	}
	return rejErr
}

// ingestCommand is this ingest's command line without its input: the key
// options, as they were given.
func (f *ingestFlags) ingestCommand() string {
	cmd := "cairn ingest"
	for _, o := range []struct{ name, v string }{{"key-field", f.keyField}, {"key-pointer", f.keyPointer}, {"schema", f.schema}} {
		if o.v != "" {
			cmd += " --" + o.name + " " + shellQuote(o.v)
		}
	}
	return cmd
}

// withoutCutLine leaves out of an interrupted stream's result the reject
// of the line after the last whole one sent: the interrupt cut it short
// (its producer stopped mid-line), and going on from it sends it again
// whole, so it is no reject of the input's.
func withoutCutLine(res client.IngestResult, whole int64) client.IngestResult {
	for i, rj := range res.Rejects {
		if rj.Line <= whole {
			continue
		}
		res.Rejects = slices.Delete(slices.Clone(res.Rejects), i, i+1)
		res.Stats.Rejected--
		res.Stats.Records--
		switch rj.Kind {
		case "malformed":
			res.Stats.Malformed--
		case "oversize":
			res.Stats.Oversize--
		case "invalid_key":
			res.Stats.InvalidKey--
		}
		break
	}
	return res
}

// resumeCommand sends input from line from on with this ingest's options.
func (f *ingestFlags) resumeCommand(input, from string) string {
	if input == "-" {
		return "… | tail -n +" + from + " | " + f.ingestCommand() + " -"
	}
	return "tail -n +" + from + " " + shellQuote(input) + " | " + f.ingestCommand() + " -"
}

// ingestRequestID names an ingest request, for the node's log line of it.
func ingestRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "ingest-" + hex.EncodeToString(b[:])
}

// lineCut passes a stream through until stop is closed, then to the end of
// the line being sent, and ends it there.
type lineCut struct {
	r    io.Reader
	stop <-chan struct{}
	mid  bool // the last byte passed was not a newline
	cut  bool // the stream was ended here, at a line
}

func (l *lineCut) Read(p []byte) (int, error) {
	if l.cut {
		return 0, io.EOF
	}
	stopped := false
	select {
	case <-l.stop:
		stopped = true
	default:
	}
	if stopped && !l.mid {
		l.cut = true
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	if n == 0 {
		return n, err
	}
	if stopped {
		if i := bytes.IndexByte(p[:n], '\n'); i >= 0 {
			l.cut, l.mid = true, false
			return i + 1, nil
		}
	}
	l.mid = p[n-1] != '\n'
	return n, err
}

// rejected says what was stored and how to send only the rejected lines
// again, writing them to the --rejects file if there is one. Sending the
// whole input again is what it steers away from: every accepted record
// would be stored again as a new version.
func (f *ingestFlags) rejected(input string, res client.IngestResult, rj *rejectsFile) error {
	s := res.Stats
	if input == "-" {
		input = "the input"
	}
	again := fmt.Sprintf("sending %s again would store each accepted record again as a new version", input)
	msg := fmt.Sprintf("%d records stored, %d rejected", s.Accepted, s.Rejected)
	if rj == nil {
		listed := "listed above"
		if s.Rejected > showRejects {
			listed = fmt.Sprintf("the first %d listed above", min(showRejects, len(res.Rejects)))
		}
		hint := again + ": send only the rejected lines, fixed (--rejects FILE writes them to FILE, ready to ingest)"
		if !f.allowRejects {
			hint += "; --allow-rejects makes an ingest with rejects exit 0"
		}
		return hinted{fmt.Errorf("%s (%s)", msg, listed), hint}
	}
	n, err := rj.write(res.Rejects)
	if err != nil {
		return fmt.Errorf("%s; writing them to %s: %w", msg, f.rejects, err)
	}
	hint := fmt.Sprintf("fix them there, then send only them: %s (%s)", f.resendCommand(), again)
	if listed := len(res.Rejects); s.Rejected > int64(listed) && listed > 0 {
		last := res.Rejects[listed-1].Line
		hint += fmt.Sprintf("; the node listed only the first %d: the other %d rejected lines come after line %d of %s and are not in %s",
			listed, s.Rejected-int64(listed), last, input, f.rejects)
	}
	if why := rj.spoolFailed(); why != "" {
		hint += "; " + why + fmt.Sprintf(" (%d of the %d listed are)", n, len(res.Rejects))
	}
	return hinted{fmt.Errorf("%s: the rejected lines are in %s", msg, f.rejects), hint}
}

// resendCommand is the ingest of the --rejects file with this ingest's
// record options.
func (f *ingestFlags) resendCommand() string {
	return f.ingestCommand() + " " + shellQuote(f.rejects)
}

// openInput opens FILE or stdin and returns its size when it is a regular
// file (0: unknown).
func openInput(name string, env Env) (io.Reader, int64, func(), error) {
	if name == "-" {
		var size int64
		if f, ok := env.Stdin.(*os.File); ok {
			// A file on stdin may have been read from already: what is
			// left is what will be sent.
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
					size = fi.Size() - pos
				}
			}
		}
		return env.Stdin, size, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	} else if err == nil && fi.IsDir() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("%s: a directory, not an NDJSON file", name)
	}
	return f, size, func() { f.Close() }, nil
}

func printSummary(env Env, res client.IngestResult) {
	s := res.Stats
	verb := "ingested"
	if res.Error != nil {
		// A stream the node stopped: the counts are of what it took, and
		// stderr says where to resume.
		verb = "stopped after"
	}
	fmt.Fprintf(env.Stdout, "%s %d records (%s) in %v: %d accepted, %d rejected (%d malformed, %d oversize, %d invalid key); %.1f MB/s, %.0f records/s\n",
		verb, s.Records, human(s.Bytes), s.Duration().Round(time.Millisecond), s.Accepted, s.Rejected,
		s.Malformed, s.Oversize, s.InvalidKey, s.ThroughputMBps, s.RecordsPerSec)
	for i, r := range res.Rejects {
		if i == showRejects {
			break
		}
		fmt.Fprintf(env.Stderr, "  line %d (byte %d): %s: %s\n", r.Line, r.Offset, r.Kind, r.Reason)
	}
	if more := s.Rejected - int64(min(len(res.Rejects), showRejects)); more > 0 && len(res.Rejects) > 0 {
		fmt.Fprintf(env.Stderr, "  … and %d more rejected\n", more)
	}
}

// countingReader counts the bytes and newlines read through it, for the
// progress line and for where to go on after a failure, and keeps the
// input's first read error. Counting newlines costs one bytes.Count per
// read, which runs at memory speed.
type countingReader struct {
	r            io.Reader
	bytes, lines atomic.Int64
	readErr      atomic.Pointer[error]
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bytes.Add(int64(n))
	c.lines.Add(int64(bytes.Count(p[:n], []byte{'\n'})))
	if err != nil && err != io.EOF {
		c.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

// WriteTo sends the stream in writes of what one read brings, up to 1 MiB
// (a file's reads bring that much, a pipe's what it holds): the ingest is
// sent chunked, a chunk a write, and io.Copy's 32 KiB chunks make the node
// take a bulk load in as many small reads, at a large cost in time.
func (c *countingReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// err is the input's first read error other than io.EOF, or nil.
func (c *countingReader) err() error {
	if p := c.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// refuseGzip refuses an input that starts as a gzip stream, whose every
// line the node would reject as malformed, saying how to send it; it
// returns the reader to send in place of in. A regular file is looked at
// where it will be read from, and passed on as it is.
func refuseGzip(in io.Reader, arg, cmd string) (io.Reader, error) {
	var magic []byte
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				b := make([]byte, 2)
				n, _ := f.ReadAt(b, pos)
				magic = b[:n]
			}
		}
	}
	if magic == nil {
		br := bufio.NewReaderSize(in, 64<<10)
		magic, _ = br.Peek(2)
		in = br
	}
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return in, nil
	}
	send := "zcat " + shellQuote(arg) + " | " + cmd + " -"
	if arg == "-" {
		send = "… | zcat | " + cmd + " -"
	}
	return nil, hinted{fmt.Errorf("%s is gzip-compressed, not NDJSON", inputName(arg)), "decompress it as it is sent: " + send}
}

// inputName names an input in a message.
func inputName(arg string) string {
	if arg == "-" {
		return "stdin"
	}
	return arg
}

// startProgress redraws one status line on w five times a second until the
// returned stop is called; stop waits for the drawing goroutine and clears
// the line.
func startProgress(w io.Writer, cr *countingReader, size int64, start time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-t.C:
				fmt.Fprint(w, "\r\033[K"+progressLine(cr.bytes.Load(), cr.lines.Load(), size, now.Sub(start)))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// progressLine renders sent bytes (of size, if known), the byte and record
// rates and, with a known size, a bar and the ETA. Records are counted as
// the newlines sent, which is what the server will count as lines.
func progressLine(sent, lines, size int64, elapsed time.Duration) string {
	secs := max(elapsed.Seconds(), 1e-3)
	rate := float64(sent) / secs
	s := fmt.Sprintf("%s  %.1f MB/s  %.0f records/s", human(sent), rate/1e6, float64(lines)/secs)
	if size <= 0 {
		return s
	}
	frac := min(float64(sent)/float64(size), 1)
	const width = 24
	filled := int(frac * width)
	bar := bytes.Repeat([]byte{'='}, filled)
	bar = append(bar, bytes.Repeat([]byte{' '}, width-filled)...)
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(size-sent) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s] %3.0f%%  %s / %s  ETA %s", bar, frac*100, s, human(size), eta)
}

// human formats a byte count with binary units.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
