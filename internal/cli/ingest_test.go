package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/client"
	"github.com/cairnstore/cairn/internal/node"
	"github.com/cairnstore/cairn/internal/server"
)

// startIngestNode runs a node in-process with tenant demo and returns its URL and
// token.
func startIngestNode(t *testing.T) (url, token string) {
	t.Helper()
	tok, hash, err := server.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Auth:   server.Auth{Tenants: map[string][][32]byte{"demo": {hash}}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return "http://" + n.Addr(), tok
}

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Run(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestIngestCommand(t *testing.T) {
	url, tok := startIngestNode(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ndjson")
	bad := filepath.Join(dir, "bad.ndjson")
	if err := os.WriteFile(good, []byte(`{"id":"a","v":1}`+"\n"+`{"id":"b","v":2}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"id":"c"}`+"\n"+`{"id":`+"\n"+`{"v":3}`+"\n"+`{"id":"d"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--url", url, "--token", tok, "--tenant", "demo"}
	cases := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStderr bool
	}{
		{name: "a directory", args: []string{"--key-field", "id", dir}, code: 1, stderr: []string{"a directory, not an NDJSON file"}},
		{name: "all accepted", args: []string{"--key-field", "id", good}, code: 0,
			stdout: []string{"ingested 2 records", "2 accepted, 0 rejected"}, noStderr: true},
		{name: "rejects fail", args: []string{"--key-field", "id", bad}, code: 1,
			stdout: []string{"4 records", "2 accepted, 2 rejected (2 malformed"},
			stderr: []string{"line 2 (byte 11): malformed", "line 3 (byte 18): malformed", "key not found", "--allow-rejects"}},
		{name: "rejects allowed", args: []string{"--allow-rejects", "--key-field", "id", bad}, code: 0,
			stdout: []string{"2 accepted, 2 rejected"}, stderr: []string{"line 2 (byte 11)"}},
		{name: "stdin, flags after FILE", args: []string{"-", "--key-pointer", "/id"}, stdin: `{"id":"e"}` + "\n", code: 0,
			stdout: []string{"1 accepted"}},
		{name: "no key", args: []string{good}, code: 2, stderr: []string{"--key-field"}},
		{name: "no file", args: []string{"--key-field", "id"}, code: 2, stderr: []string{"FILE"}},
		{name: "missing file", args: []string{"--key-field", "id", filepath.Join(dir, "nope")}, code: 1, stderr: []string{"no such file"}},
		{name: "refused before sending", args: []string{"--schema", "marketdata", "--key-field", "id", good}, code: 2,
			stderr: []string{"symbol"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(t, c.stdin, append(append([]string{"ingest"}, conn...), c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out, errs)
			}
			for _, s := range c.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout %q lacks %q", out, s)
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr %q lacks %q", errs, s)
				}
			}
			if c.noStderr && errs != "" {
				t.Errorf("stderr %q, want nothing (no progress line when stderr is not a terminal)", errs)
			}
		})
	}
	code, out, _ := runCLI(t, "", "get", "--url", url, "--token", tok, "d")
	if code != 0 || strings.TrimSpace(out) != `{"id":"d"}` {
		t.Errorf("get d after the ingest: exit %d, %q", code, out)
	}
}

func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		sent, lines, size int64
		elapsed           time.Duration
		want              []string
	}{
		{50 << 20, 1000, 100 << 20, 2 * time.Second, []string{"[============            ]  50%", "50.0 MiB", "26.2 MB/s", "500 records/s", "/ 100.0 MiB", "ETA 2s"}},
		{3 << 10, 10, 0, time.Second, []string{"3.0 KiB", "10 records/s"}},
	} {
		got := progressLine(c.sent, c.lines, c.size, c.elapsed)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("progressLine(%d, %d, %d, %v) = %q, lacks %q", c.sent, c.lines, c.size, c.elapsed, got, w)
			}
		}
	}
}

// TestIngestRejectsFromStdinFile: the rejected lines are read back from a
// file given as stdin, at offsets counted from where stdin was positioned;
// --rejects naming the input itself is refused before anything is sent.
func TestIngestRejectsFromStdinFile(t *testing.T) {
	url, tok := startIngestNode(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	const skipped = "already sent\n"
	if err := os.WriteFile(in, []byte(skipped+`{"id":"a"}`+"\n"+`{"id":`+"\n"+`{"id":"b"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(len(skipped)), 0); err != nil {
		t.Fatal(err)
	}
	rejects := filepath.Join(dir, "rejects.ndjson")
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"ingest", "--url", url, "--token", tok, "--key-field", "id", "--rejects", rejects, "-"},
		Env{Stdin: f, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if got, err := os.ReadFile(rejects); code != 1 || err != nil || string(got) != `{"id":`+"\n" {
		t.Errorf("exit %d, rejects file %q (%v), want 1 and the one rejected line\n%s%s", code, got, err, out.String(), errb.String())
	}
	if code, _, stderr := runCLI(t, "", "ingest", "--url", url, "--token", tok, "--key-field", "id", "--rejects", in, in); code != exitUsage || !strings.Contains(stderr, "is the input") {
		t.Errorf("--rejects the input: exit %d, %s", code, stderr)
	}
	// A directory is refused before anything is sent: found after the
	// stream, the rejected lines would be lost with the records stored.
	if code, _, stderr := runCLI(t, "", "ingest", "--url", url, "--token", tok, "--key-field", "id", "--rejects", dir, in); code != exitUsage || !strings.Contains(stderr, "a directory, not a file") {
		t.Errorf("--rejects a directory: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "ingest", "--url", "http://127.0.0.1:1", "--token", tok, "--key-field", "id", in); code != exitFail || !strings.Contains(stderr, "no cairn node answers at http://127.0.0.1:1") {
		t.Errorf("ingest to no node: exit %d, %s", code, stderr)
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--key-field", "id", "--key-pointer", "/id"}, "not both"},
		{[]string{"--schema", "bogus"}, `--schema "bogus"`},
		{[]string{"--key-pointer", "id"}, "must start with '/'"},
		{nil, "give --key-field or --key-pointer"},
	} {
		args := append([]string{"ingest", "--url", url, "--token", tok}, tc.flags...)
		if code, _, stderr := runCLI(t, "", append(args, in)...); code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("ingest %q: exit %d, %s; want %d and %q", tc.flags, code, stderr, exitUsage, tc.want)
		}
	}
}

// TestRejectedBeyondTheList: when the node lists only the first rejects,
// the message says how many the rejects file lacks and where they are.
func TestRejectedBeyondTheList(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	if err := os.WriteFile(in, []byte("{\"id\":\"a\"}\nbad1\nbad2\nbad3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := &ingestFlags{keyField: "id", rejects: filepath.Join(dir, "rejects")}
	rj, _, err := newRejectsFile(f.rejects, src)
	if err != nil {
		t.Fatal(err)
	}
	res := client.IngestResult{Stats: client.IngestStats{Records: 4, Accepted: 1, Rejected: 3},
		Rejects: []client.IngestReject{{Line: 2, Offset: 11, Kind: "malformed"}}, RejectsOmitted: 2}
	var h hinted
	if err := f.rejected(in, res, rj); !errors.As(err, &h) || !strings.Contains(h.hint, "the other 2 rejected lines come after line 2 of "+in) {
		t.Errorf("rejected = %v (hint %q), want it to say which rejected lines the file lacks", err, h.hint)
	}
	if got, err := os.ReadFile(f.rejects); err != nil || string(got) != "bad1\n" {
		t.Errorf("rejects file %q, %v; want the listed line", got, err)
	}
}

// TestIngestInterrupted: an ingest whose context ends mid-stream (the
// first SIGINT or SIGTERM) ends its stream at a line, reads the node's
// answer and says what is stored and how to go on, rather than sending the
// rest of its input or losing the answer.
func TestIngestInterrupted(t *testing.T) {
	url, tok := startIngestNode(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"ingest", "--url", url, "--token", tok, "--tenant", "demo", "--key-field", "id", "-"},
			Env{Stdin: pr, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	}()
	// A line taken by the stream, then the interrupt while more may come.
	if _, err := io.WriteString(pw, `{"id":"a"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	cancel()
	// At a terminal's Ctrl-C the process that fed the pipe ends too: the
	// stream ends at the line being sent, or there, alike.
	pw.Close()
	code := <-done
	// The line was sent, or (read ahead, the interrupt came first) not:
	// either way the summary, what is stored and where to go on agree.
	ok := false
	for _, sent := range []int{0, 1} {
		ok = ok || strings.Contains(errb.String(), fmt.Sprintf("interrupted after %d whole lines: the records they hold are stored", sent)) &&
			strings.Contains(errb.String(), fmt.Sprintf("… | tail -n +%d | cairn ingest --key-field id -", sent+1)) &&
			strings.HasPrefix(out.String(), fmt.Sprintf("ingested %d records", sent))
	}
	if code == 0 || !ok {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the summary, then a failure saying what is stored and how to go on", code, out.String(), errb.String())
	}
}

// TestLineCut: once stopped, the stream goes on to the end of the line
// being sent and ends there; a stop between lines ends it at once.
func TestLineCut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before string // read before the stop
		after  []string
		want   string
	}{
		{"between lines", "a\n", []string{"b\n"}, "a\n"},
		{"mid-line", "a\nb", []string{"b", "b\nc\n", "d\n"}, "a\nbbb\n"},
		{"mid-line, the input ends", "a\nb", []string{"b"}, "a\nbb"},
	} {
		stop := make(chan struct{})
		r := &scripted{reads: append([]string{tc.before}, tc.after...)}
		l := &lineCut{r: r, stop: stop}
		var got []byte
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			if i == 1 {
				close(stop)
			}
			n, err := l.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if string(got) != tc.want {
			t.Errorf("%s: sent %q, want %q", tc.name, got, tc.want)
		}
	}
}

// scripted returns one string a Read, then io.EOF.
type scripted struct{ reads []string }

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.reads) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.reads[0])
	s.reads = s.reads[1:]
	return n, nil
}

// TestSummaryOfAStoppedStream: the summary line of a stream the node
// stopped does not read as a success; that of a whole one does.
func TestSummaryOfAStoppedStream(t *testing.T) {
	for _, tc := range []struct {
		res  client.IngestResult
		want string
	}{
		{client.IngestResult{Complete: true}, "ingested 0 records"},
		{client.IngestResult{Error: &api.Error{Code: "shutting_down"}}, "stopped after 0 records"},
	} {
		var out bytes.Buffer
		printSummary(Env{Stdout: &out, Stderr: io.Discard}, tc.res)
		if !strings.HasPrefix(out.String(), tc.want) {
			t.Errorf("summary %q, want it to start %q", out.String(), tc.want)
		}
	}
}

// TestIngestConnectionLost: a connection that fails mid-stream is reported
// with what was sent and how to find what the node stored, not as a bare
// transport error.
func TestIngestConnectionLost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 1000)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}))
	defer srv.Close()
	in := strings.Repeat(`{"id":"a"}`+"\n", 100_000)
	code, _, stderr := runCLI(t, in, "ingest", "--url", srv.URL, "--token", "tok", "--tenant", "demo", "--key-field", "id", "-")
	if code != exitFail || !strings.Contains(stderr, "whole lines)") || !strings.Contains(stderr, "its log line for request ingest-") ||
		!strings.Contains(stderr, "… | tail -n +LINE+1 | cairn ingest --key-field id -") {
		t.Errorf("exit %d, stderr %q; want what was sent and where the node says what it stored", code, stderr)
	}
}

// TestRejectsSpool: the copy of a stream kept for --rejects is unlinked
// from the start, and a copy that fails (a full disk) ends the copy, not
// the stream, keeping track of the lines it holds whole.
func TestRejectsSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	rj, in, err := newRejectsFile(filepath.Join(t.TempDir(), "rejects"), strings.NewReader("a\nbb\ncc\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer rj.discard()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spool left in TMPDIR: %v", left)
	}
	small := make([]byte, 3)
	if n, _ := in.Read(small); n != 3 {
		t.Fatalf("read %d bytes", n)
	}
	rj.spool.f.Close() // the copy's next write fails
	rest, err := io.ReadAll(in)
	if string(small)+string(rest) != "a\nbb\ncc\n" || err != nil {
		t.Fatalf("stream %q, %v; want it whole", string(small)+string(rest), err)
	}
	if rj.spool.err == nil || rj.spool.wholeTo != 2 {
		t.Errorf("copy: err %v, whole to %d; want a failure, whole to 2", rj.spool.err, rj.spool.wholeTo)
	}
	if !strings.Contains(rj.spoolFailed(), "stopped after 2 bytes") {
		t.Errorf("spoolFailed() = %q", rj.spoolFailed())
	}
}

// failingInput gives its lines, then fails as a disk read can.
type failingInput struct{ lines string }

func (f *failingInput) Read(p []byte) (int, error) {
	if f.lines == "" {
		return 0, errors.New("read /mnt/x: input/output error")
	}
	n := copy(p, f.lines)
	f.lines = f.lines[n:]
	return n, nil
}

// TestIngestInputFails: an input that fails to be read is reported as
// that, with where to go on, not as a lost connection.
func TestIngestInputFails(t *testing.T) {
	url, tok := startIngestNode(t)
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"ingest", "--url", url, "--token", tok, "--tenant", "demo", "--key-field", "id", "-"},
		Env{Stdin: &failingInput{lines: `{"id":"a"}` + "\n" + `{"id":"b"}` + "\n"}, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code == 0 || !strings.Contains(errb.String(), "reading stdin after 2 whole lines") || !strings.Contains(errb.String(), "tail -n +3") {
		t.Errorf("exit %d, stderr %q; want the input's failure and where to go on", code, errb.String())
	}
}

// TestIngestRefusesGzip: a gzip-compressed input, from a file or stdin, is
// refused before anything is sent, saying how to send it.
func TestIngestRefusesGzip(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, `{"id":"a"}`+"\n")
	zw.Close()
	file := filepath.Join(t.TempDir(), "in.ndjson.gz")
	if err := os.WriteFile(file, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ arg, stdin, want string }{
		{file, "", "zcat " + file + " | cairn ingest --key-field id -"},
		{"-", gz.String(), "… | zcat | cairn ingest --key-field id -"},
	} {
		code, _, stderr := runCLI(t, tc.stdin, "ingest", "--url", "http://127.0.0.1:1", "--token", "tok", "--key-field", "id", tc.arg)
		if code != exitFail || !strings.Contains(stderr, "is gzip-compressed, not NDJSON") || !strings.Contains(stderr, tc.want) {
			t.Errorf("ingest %s: exit %d, %q; want a refusal saying %q", tc.arg, code, stderr, tc.want)
		}
	}
}

// TestCutLineNotRejected: the reject of a line an interrupt cut short is
// left out of the result (it is sent again whole by the resume); the
// whole lines' rejects stay.
func TestCutLineNotRejected(t *testing.T) {
	res := client.IngestResult{Stats: client.IngestStats{Records: 4, Accepted: 2, Rejected: 2, Malformed: 2},
		Rejects: []client.IngestReject{{Line: 2, Kind: "malformed"}, {Line: 4, Kind: "malformed"}}}
	got := withoutCutLine(res, 3)
	if len(got.Rejects) != 1 || got.Rejects[0].Line != 2 || got.Stats.Rejected != 1 || got.Stats.Malformed != 1 || got.Stats.Records != 3 {
		t.Errorf("withoutCutLine = %+v", got)
	}
	if len(res.Rejects) != 2 {
		t.Errorf("the result given was changed: %+v", res.Rejects)
	}
}
