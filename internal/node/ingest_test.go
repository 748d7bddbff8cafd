package node

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/api"
	"github.com/cairnstore/cairn/internal/proctest"
	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/store"
)

// ingestNode is a real node on loopback with tenants acme and other and an
// admin token.
type ingestNode struct {
	*Node
	dir                     string
	acme, other, admin, url string
	logs                    *proctest.SyncBuffer // the node's log, JSON lines at Info and above
}

func startIngestNode(t *testing.T, maxBody int64) *ingestNode {
	t.Helper()
	in := &ingestNode{dir: t.TempDir(), logs: &proctest.SyncBuffer{}}
	auth := server.Auth{Tenants: map[string][][32]byte{}}
	for _, p := range []struct {
		tok    *string
		tenant string
	}{{&in.acme, "acme"}, {&in.other, "other"}, {&in.admin, ""}} {
		tok, hash, err := server.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		*p.tok = tok
		if p.tenant == "" {
			auth.Admin = append(auth.Admin, hash)
		} else {
			auth.Tenants[p.tenant] = append(auth.Tenants[p.tenant], hash)
		}
	}
	n, err := Start(context.Background(), Config{DataDir: in.dir, Listen: "127.0.0.1:0", MaxBodyBytes: maxBody, Auth: auth,
		Durability: store.Sync, Logger: slog.New(slog.NewJSONHandler(in.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	in.Node, in.url = n, "http://"+n.Addr()
	t.Cleanup(func() { in.shutdown(t) })
	return in
}

func (in *ingestNode) shutdown(t *testing.T) {
	if in.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	in.Node = nil
	http.DefaultClient.CloseIdleConnections()
}

func (in *ingestNode) ingest(t *testing.T, token, tenant, query, body string) (int, api.IngestResult) {
	t.Helper()
	req, err := http.NewRequest("POST", in.url+"/v1/tenants/"+tenant+"/ingest?"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r api.IngestResult
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("reply %s: %v", raw, err)
		}
	} else {
		t.Logf("status %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, r
}

func (in *ingestNode) get(t *testing.T, tenant, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", in.url+"/v1/tenants/"+tenant+"/docs/"+key, nil)
	req.Header.Set("Authorization", "Bearer "+in.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type wantReject struct {
	line   int64
	kind   string
	reason string // substring
}

func checkRejects(t *testing.T, body string, got []api.IngestReject, want []wantReject) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rejects %+v, want %d of them", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Kind != w.kind || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("reject %d = %+v, want line %d kind %s reason ~%q", i, g, w.line, w.kind, w.reason)
		}
		// The offset is where the record starts: inside line w.line.
		if lineOf(body, g.Offset) != w.line {
			t.Errorf("reject %d: offset %d is on line %d, want %d", i, g.Offset, lineOf(body, g.Offset), w.line)
		}
	}
}

func lineOf(body string, off int64) int64 {
	return int64(strings.Count(body[:off], "\n")) + 1
}

// TestIngest covers the generic path: accepted records stored with their
// original bytes, malformed lines and bad keys rejected with line, offset
// and reason and stored nowhere, counts and the reply's shape.
func TestIngest(t *testing.T) {
	in := startIngestNode(t, 0)
	body := `{"id": "a",  "v": 1}` + "\n" + // original spacing must survive
		`{"id":"b","v":2}` + "\n" +
		`{"id":"c","v":` + "\n" + // malformed: line 3
		"\n" + // blank: nothing
		`{"id":42} ` + "\n" + // a number key; whitespace after the value
		`{"v":5}` + "\n" + // no key: line 6
		`{"id":""}` + "\n" + // empty key: line 7
		`{"id":"ctl\u0001"}` + "\n" + // control character: line 8
		`{"id":"e","v":01}` + "\n" + // leading zero: line 9
		`{"id":"f"}` + "\n" +
		`{"id":"d\u00e9"}` // an escaped key; no final newline
	code, r := in.ingest(t, in.acme, "acme", "key_field=id", body)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	s := r.Stats
	if !r.Complete || s.Accepted != 5 || s.Rejected != 5 || s.Malformed != 3 || s.InvalidKey != 2 || s.Records != 10 ||
		s.Bytes != int64(len(body)) || r.ProcessedBytes != int64(len(body)) || r.LastDurableLine != 11 || r.RejectsOmitted != 0 {
		t.Fatalf("reply %+v", r)
	}
	checkRejects(t, body, r.Rejects, []wantReject{
		{3, "malformed", "invalid JSON"},
		{6, "malformed", "key not found"},
		{7, "invalid_key", "empty"},
		{8, "invalid_key", "control character"},
		{9, "malformed", "leading zero"},
	})
	for key, want := range map[string]string{"a": `{"id": "a",  "v": 1}`, "b": `{"id":"b","v":2}`, "42": `{"id":42}`,
		"d%C3%A9": `{"id":"d\u00e9"}`, "f": `{"id":"f"}`} {
		if code, got := in.get(t, "acme", key); code != 200 || got != want {
			t.Errorf("GET %s = %d %q, want %q", key, code, got, want)
		}
	}
	for _, key := range []string{"c", "e"} {
		if code, _ := in.get(t, "acme", key); code != http.StatusNotFound {
			t.Errorf("GET %s (rejected) = %d, want 404", key, code)
		}
	}
}

// TestIngestTrailingData: a line whose value is followed by anything but
// whitespace is rejected whole, with the same words PUT uses for the same
// bytes, and nothing of it is stored, so sending the rejected lines again
// writes nothing twice.
func TestIngestTrailingData(t *testing.T) {
	in := startIngestNode(t, 0)
	bad := []string{`{"id":"j3","x":1}}`, `{"id":"j5"}"tail"`, `{"id":"j6"}123`, `{"id":"j7"}{"id":"j8"}`}
	body := `{"id":"j1"}` + "\n" + strings.Join(bad, "\n") + "\n" + `{"id":"j9"}` + "\n"
	code, r := in.ingest(t, in.acme, "acme", "key_field=id", body)
	if code != http.StatusOK || r.Stats.Accepted != 2 || r.Stats.Malformed != int64(len(bad)) {
		t.Fatalf("status %d, reply %+v", code, r)
	}
	var want []wantReject
	for i, line := range bad {
		at := strings.Index(body, line) + strings.IndexAny(line[1:], "}") + 2 // just past the first object
		want = append(want, wantReject{int64(i + 2), "malformed",
			fmt.Sprintf("invalid JSON at byte %d: trailing data after the JSON value", at)})
	}
	checkRejects(t, body, r.Rejects, want)
	for _, key := range []string{"j3", "j5", "j6", "j7", "j8"} {
		if code, got := in.get(t, "acme", key); code != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404: a rejected line stored nothing", key, code, got)
		}
	}
	for _, key := range []string{"j1", "j9"} {
		if code, _ := in.get(t, "acme", key); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", key, code)
		}
	}
	// PUT says the same of the same bytes.
	req, _ := http.NewRequest("PUT", in.url+"/v1/tenants/acme/docs/j3", strings.NewReader(bad[0]))
	req.Header.Set("Authorization", "Bearer "+in.acme)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "trailing data after the JSON value") {
		t.Errorf("PUT %s = %d %s, want 400 trailing data", bad[0], resp.StatusCode, raw)
	}
}

// TestIngestDurableAndCache: after the reply, every accepted key is
// readable, a key that was cached before shows the ingested version, and
// everything is still there after the store is reopened (durable).
func TestIngestDurableAndCache(t *testing.T) {
	in := startIngestNode(t, 0)
	req, _ := http.NewRequest("PUT", in.url+"/v1/tenants/acme/docs/k0", strings.NewReader(`"old"`))
	req.Header.Set("Authorization", "Bearer "+in.acme)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, got := in.get(t, "acme", "k0"); code != 200 || got != `"old"` { // now cached
		t.Fatalf("GET k0 = %d %s", code, got)
	}
	var b strings.Builder
	const n = 20000 // several batches
	for i := range n {
		fmt.Fprintf(&b, `{"k":"k%d","pad":"%s"}`+"\n", i, strings.Repeat("x", 100))
	}
	code, r := in.ingest(t, in.acme, "acme", "key_field=k", b.String())
	if code != 200 || r.Stats.Accepted != n {
		t.Fatalf("status %d, reply %+v", code, r.Stats)
	}
	if r.Stats.Batches < 2 {
		t.Errorf("%d store batches for %d bytes; want several", r.Stats.Batches, b.Len())
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		want := fmt.Sprintf(`{"k":"k%d","pad":"%s"}`, i, strings.Repeat("x", 100))
		if code, got := in.get(t, "acme", fmt.Sprintf("k%d", i)); code != 200 || got != want {
			t.Errorf("GET k%d = %d %.40q…, want the ingested body", i, code, got)
		}
	}
	in.shutdown(t)
	st, err := store.Open(in.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	found := 0
	for rec, err := range st.List(context.Background(), "acme", store.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Version.Tombstone {
			found++
		}
	}
	if found != n {
		t.Fatalf("%d documents after reopening, want %d", found, n)
	}
}

func TestIngestOversize(t *testing.T) {
	in := startIngestNode(t, 256)
	big := `{"id":"big","pad":"` + strings.Repeat("y", 600) + `"}`
	body := `{"id":"a"}` + "\n" + big + "\n" + `{"id":"b"}` + "\n"
	code, r := in.ingest(t, in.acme, "acme", "key_field=id", body)
	if code != 200 || r.Stats.Accepted != 2 || r.Stats.Oversize != 1 {
		t.Fatalf("status %d, reply %+v", code, r)
	}
	checkRejects(t, body, r.Rejects, []wantReject{{2, "oversize", "maximum size"}})
	if code, _ := in.get(t, "acme", "big"); code != http.StatusNotFound {
		t.Errorf("GET big = %d, want 404", code)
	}
	if code, _ := in.get(t, "acme", "b"); code != 200 {
		t.Errorf("GET b (after the oversize line) = %d, want 200", code)
	}
}

func TestIngestKeyPointer(t *testing.T) {
	in := startIngestNode(t, 0)
	body := `{"meta":{"a/b":["x","p1"]}}` + "\n" + `{"meta":{"a/b":["x"]}}` + "\n"
	code, r := in.ingest(t, in.acme, "acme", "key_pointer=/meta/a~1b/1", body)
	if code != 200 || r.Stats.Accepted != 1 || r.Stats.Malformed != 1 {
		t.Fatalf("status %d, reply %+v", code, r)
	}
	if code, got := in.get(t, "acme", "p1"); code != 200 || got != `{"meta":{"a/b":["x","p1"]}}` {
		t.Errorf("GET p1 = %d %s", code, got)
	}
}

// TestIngestExportSchema: schema=export stores each line's "doc" under its
// "key", byte for byte, and rejects a line without a document.
func TestIngestExportSchema(t *testing.T) {
	in := startIngestNode(t, 0)
	deep := strings.Repeat("[", server.DefaultMaxDepth) + strings.Repeat("]", server.DefaultMaxDepth) // as deep as a PUT takes
	big := `"` + strings.Repeat("x", server.DefaultMaxBodyBytes-2) + `"`                              // as large
	body := `{"key":"a","doc":{"x": [1, 2]}}` + "\n" + `{"key":"b"}` + "\n" + `{"doc":"s","key":"c"}` + "\n" +
		`{"key":"deep","doc":` + deep + "}\n" + `{"key":"big","doc":` + big + "}\n"
	code, r := in.ingest(t, in.acme, "acme", "schema=export", body)
	if code != 200 || r.Stats.Accepted != 4 || r.Stats.Malformed != 1 {
		t.Fatalf("status %d, reply %+v", code, r)
	}
	checkRejects(t, body, r.Rejects, []wantReject{{2, "malformed", "/doc"}})
	for key, want := range map[string]string{"a": `{"x": [1, 2]}`, "c": `"s"`} {
		if code, got := in.get(t, "acme", key); code != 200 || got != want {
			t.Errorf("GET %s = %d %s, want %s", key, code, got, want)
		}
	}
}

func TestIngestMarketData(t *testing.T) {
	in := startIngestNode(t, 0)
	rec := func(sym, vol string) string {
		return `{"symbol":"` + sym + `","price":101.25,"volume":` + vol + `,"metadata":{"exchange":"XNAS","data_source":"feed"}}`
	}
	body := rec("AAPL", "10") + "\n" + rec("MSFT", "-1") + "\n" + rec("AAPL", "20") + "\n" + `{"id":"x"}` + "\n" + rec("", "5") + "\n"
	code, r := in.ingest(t, in.acme, "acme", "schema=marketdata", body)
	if code != 200 || r.Stats.Accepted != 2 || r.Stats.Malformed != 2 || r.Stats.InvalidKey != 1 {
		t.Fatalf("status %d, reply %+v", code, r)
	}
	checkRejects(t, body, r.Rejects, []wantReject{
		{2, "malformed", "volume"},
		{4, "malformed", "symbol"},
		{5, "invalid_key", "empty"},
	})
	if code, got := in.get(t, "acme", "AAPL"); code != 200 || got != rec("AAPL", "20") {
		t.Errorf("GET AAPL = %d %s, want the later tick", code, got)
	}
	if code, _ := in.ingest(t, in.acme, "acme", "schema=marketdata&key_field=symbol", rec("IBM", "1")); code != 200 {
		t.Errorf("key_field=symbol with marketdata: status %d", code)
	}
}

// TestIngestRefused: requests refused before the body is read.
func TestIngestRefused(t *testing.T) {
	in := startIngestNode(t, 0)
	body := `{"id":"a"}` + "\n"
	for _, c := range []struct {
		name, token, tenant, query string
		want                       int
	}{
		{"no token", "", "acme", "key_field=id", 401},
		{"other tenant's token", in.other, "acme", "key_field=id", 403},
		{"admin token", in.admin, "acme", "key_field=id", 200},
		{"no key", in.acme, "acme", "", 400},
		{"both keys", in.acme, "acme", "key_field=id&key_pointer=/id", 400},
		{"bad pointer", in.acme, "acme", "key_pointer=id", 400},
		{"bad pointer escape", in.acme, "acme", "key_pointer=/a~2", 400},
		{"marketdata with another key", in.acme, "acme", "schema=marketdata&key_field=id", 400},
		{"unknown schema", in.acme, "acme", "schema=csv&key_field=id", 400},
		{"export with a key", in.acme, "acme", "schema=export&key_field=id", 400},
		{"unknown parameter", in.acme, "acme", "key_field=id&dry_run=1", 400},
		{"repeated parameter", in.acme, "acme", "key_field=id&key_field=v", 400},
		{"bad tenant", in.admin, "Bad!", "key_field=id", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, _ := in.ingest(t, c.token, c.tenant, c.query, body); code != c.want {
				t.Errorf("status %d, want %d", code, c.want)
			}
		})
	}
	req, _ := http.NewRequest("POST", in.url+"/v1/tenants/acme/ingest?key_field=id", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+in.acme)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("Content-Type application/json: status %d, want 400", resp.StatusCode)
	}
}

// TestIngestBodyEndsEarly: a client that half-closes its connection before
// the body's Content-Length (or inside a chunk) is answered 400 naming the
// cut body, on the connection it still reads, not 499 for the
// cancellation net/http makes of the connection's end; a gzip body cut
// so is not called damaged gzip. What the reply names durable is stored.
func TestIngestBodyEndsEarly(t *testing.T) {
	in := startIngestNode(t, 0)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, `{"id":"g1"}`+"\n"+`{"id":"g2"}`+"\n")
	zw.Close()
	for _, tc := range []struct {
		name, framing, body string
	}{
		{"content-length", "Content-Length: 1000\r\n", `{"id":"p5"}` + "\n" + `{"id":"p6"}`},
		{"chunked", "Transfer-Encoding: chunked\r\n", "18\r\n" + `{"id":"c1"}` + "\n" + `{"id":"c2"}` + "\n" + "\r\n" + "ff\r\n{"},
		{"gzip", fmt.Sprintf("Content-Encoding: gzip\r\nContent-Length: %d\r\n", gz.Len()+10), gz.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", in.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := "POST /v1/tenants/acme/ingest?key_field=id HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + in.acme +
				"\r\nContent-Type: application/x-ndjson\r\n" + tc.framing + "\r\n" + tc.body
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			var r api.IngestResult
			if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 400 || r.Error == nil || !strings.Contains(r.Error.Message, "the request body ended early") {
				t.Fatalf("status %d, reply %+v %+v", res.StatusCode, r, r.Error)
			}
			for line := int64(1); line <= r.LastDurableLine; line++ {
				key := map[string][]string{"content-length": {"p5"}, "chunked": {"c1", "c2"}, "gzip": {"g1", "g2"}}[tc.name][line-1]
				if code, _ := in.get(t, "acme", key); code != 200 {
					t.Errorf("GET %s = %d: the reply named line %d durable", key, code, line)
				}
			}
		})
	}
}

// TestIngestStoppedByShutdown: a node that starts draining in the middle
// of an ingest stream stops it at its next read and answers 503
// shutting_down with how far it got and a Retry-After, to a client still
// sending (so the answer is not lost to a reset connection), and its drain
// ends without waiting out the stream.
func TestIngestStoppedByShutdown(t *testing.T) {
	in := startIngestNode(t, 0)
	pr, pw := io.Pipe()
	defer pw.Close()
	sent := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			if i == 5000 {
				close(sent)
			}
			if _, err := fmt.Fprintf(pw, `{"id":"s%d","pad":"%0100d"}`+"\n", i, i); err != nil {
				return // the client stopped sending: the answer came
			}
		}
	}()
	req, _ := http.NewRequest("POST", in.url+"/v1/tenants/acme/ingest?key_field=id", pr)
	req.Header.Set("Authorization", "Bearer "+in.acme)
	req.Header.Set("Content-Type", "application/x-ndjson")
	type answer struct {
		res *http.Response
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		answered <- answer{res, err}
	}()
	<-sent
	// The lines sent may still be in the sockets' buffers, the connection
	// not yet accepted: a drain then refuses it, as it should. Drain once
	// the handler has stored the first line.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if code, _ := in.get(t, "acme", "s0"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node stored nothing of the stream")
		}
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- in.Node.Shutdown(ctx)
	}()
	a := <-answered
	if a.err != nil {
		t.Fatalf("the client lost the answer: %v", a.err)
	}
	defer a.res.Body.Close()
	var r api.IngestResult
	if err := json.NewDecoder(a.res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if a.res.StatusCode != 503 || r.Error == nil || r.Error.Code != "shutting_down" || a.res.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q), reply %+v %+v; want 503 shutting_down", a.res.StatusCode, a.res.Header.Get("Retry-After"), r, r.Error)
	}
	if !strings.Contains(r.Error.Message, "shutting down") || r.Complete {
		t.Errorf("reply %+v %+v", r, r.Error)
	}
	a.res.Body.Close()
	pw.CloseWithError(errors.New("test over"))
	if err := <-drained; err != nil {
		t.Errorf("Shutdown: %v, want the drain to end once the stream answered", err)
	}
	// The node's planned stop is not its failure: an operator's alert on
	// ERROR lines must not fire at every restart under an ingest.
	for line := range strings.Lines(in.logs.String()) {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("logged at ERROR: %s", line)
		}
	}
	in.Node = nil
	t.Logf("stopped through line %d: %s", r.LastDurableLine, r.Error.Message)
}

// TestIngestAnswerOutlastsStalledRead: once the drain has ended a read
// that waited on a stalled client, the node still reads and drops what the
// client sends after its answer, so the client sees the answer and the
// connection's end, not a reset (a reset drops the answer from a client's
// receive buffer when it comes before the client reads).
func TestIngestAnswerOutlastsStalledRead(t *testing.T) {
	in := startIngestNode(t, 0)
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/tenants/acme/ingest?key_field=id HTTP/1.1\r\nHost: cairn\r\n"+
		"Authorization: Bearer %s\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n", in.acme)
	line := `{"id":"w1"}` + "\n"
	fmt.Fprintf(conn, "%x\r\n%s\r\n", len(line), line) // then the client stalls mid-stream
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if code, _ := in.get(t, "acme", "w1"); code == 200 {
			break // the handler waits in its next read
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not store the line sent before the stall")
		}
	}
	n := in.Node
	in.Node = nil
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		drained <- n.Shutdown(ctx)
	}()
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != 503 || !bytes.Contains(body, []byte(`"shutting_down"`)) {
		t.Fatalf("answer %d %s; want 503 shutting_down", res.StatusCode, body)
	}
	// The client, not yet aware, sends on; then it stops.
	more := bytes.Repeat([]byte(fmt.Sprintf("%x\r\n%s\r\n", len(line), line)), 4000)
	if _, err := conn.Write(more); err != nil {
		t.Fatalf("write after the answer: %v", err)
	}
	conn.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the answer: %q, %v; want the connection's end, not a reset", rest, err)
	}
	if err := <-drained; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestIngestStalledClientAtShutdown: a client that stopped sending in the
// middle of a stream, leaving the handler in a read, does not hold the
// drain until the read deadline: the drain ends the read, and the client
// is answered 503 shutting_down.
func TestIngestStalledClientAtShutdown(t *testing.T) {
	in := startIngestNode(t, 0)
	pr, pw := io.Pipe()
	defer pw.Close()
	sent := make(chan struct{})
	go func() {
		for i := range 2000 {
			if _, err := fmt.Fprintf(pw, `{"id":"q%d"}`+"\n", i); err != nil {
				return
			}
		}
		close(sent) // then nothing more, and the body stays open
	}()
	req, _ := http.NewRequest("POST", in.url+"/v1/tenants/acme/ingest?key_field=id", pr)
	req.Header.Set("Authorization", "Bearer "+in.acme)
	req.Header.Set("Content-Type", "application/x-ndjson")
	answered := make(chan *http.Response, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("the client lost the answer: %v", err)
		}
		answered <- res
	}()
	<-sent
	// The node stores the last line sent once it has read it (a short read
	// that ends a line is a batch): its handler then waits in a read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if code, _ := in.get(t, "acme", "q1999"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not store the lines sent before the client stalled")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // well under the 30 s read timeout
	defer cancel()
	drained := make(chan error, 1)
	n := in.Node
	in.Node = nil // shut down here, not again at cleanup
	go func() { drained <- n.Shutdown(ctx) }()
	select {
	case err := <-drained:
		if err != nil {
			t.Errorf("Shutdown: %v; want the drain to end the stalled stream", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown has not returned 20 s past its deadline: the stalled stream holds it")
	}
	res := <-answered
	if res == nil {
		return
	}
	defer res.Body.Close()
	var r api.IngestResult
	json.NewDecoder(res.Body).Decode(&r)
	if res.StatusCode != 503 || r.Error == nil || r.Error.Code != "shutting_down" {
		t.Fatalf("status %d, reply %+v %+v; want 503 shutting_down", res.StatusCode, r, r.Error)
	}
}
