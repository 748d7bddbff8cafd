package resp

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// feed runs in through a framer in chunks of the given sizes (cycled) and
// returns what it hands on, and its error.
func feed(limit int, in []byte, chunks []int) ([]byte, error) {
	return feedAs(true, limit, in, chunks)
}

// feedAs is feed for a connection signed in or not.
func feedAs(authed bool, limit int, in []byte, chunks []int) ([]byte, error) {
	f := framer{max: limit, authed: authed}
	var out []byte
	for i := 0; ; i++ {
		for {
			p := f.pending()
			if len(p) == 0 {
				f.frame() // as limitConn.Read does
				p = f.pending()
			}
			if len(p) == 0 {
				break
			}
			out = append(out, p...)
			f.take(len(p))
		}
		if f.err != nil {
			return out, f.err
		}
		if len(in) == 0 {
			return out, nil
		}
		n := len(in)
		if len(chunks) > 0 {
			n = min(n, max(1, chunks[i%len(chunks)]))
		}
		sp := f.space()
		n = copy(sp, in[:n])
		f.buf = f.buf[:len(f.buf)+n]
		in = in[n:]
		f.frame()
	}
}

func multibulk(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// TestFramer: multibulk commands pass as they are, whatever the reads
// that bring them; inline ones come out in the multibulk form, in order;
// empty commands and lines are skipped; input over a limit, or not in the
// protocol, is an error once what came before it has been handed on.
func TestFramer(t *testing.T) {
	big := strings.Repeat("v", 300)
	for _, tc := range []struct {
		name, in, want string
		err            string
	}{
		{"multibulk", multibulk("SET", "k", big) + multibulk("GET", "k"), multibulk("SET", "k", big) + multibulk("GET", "k"), ""},
		{"inline between", multibulk("PING") + "SET k {}\r\n" + multibulk("GET", "k"), multibulk("PING") + multibulk("SET", "k", "{}") + multibulk("GET", "k"), ""},
		{"inline LF only, quotes", "SET k \"{\\\"a\\\":\\x31}\"\n", multibulk("SET", "k", `{"a":1}`), ""},
		{"empty things skipped", "*0\r\n*-1\r\n\r\n   \r\n" + multibulk("PING"), multibulk("PING"), ""},
		{"huge bulk length", multibulk("PING") + "*1\r\n$9223372036854775807\r\n", multibulk("PING"), "invalid bulk length"},
		{"bulk over the limit", "*2\r\n$3\r\nSET\r\n$1001\r\n", "", "too large"},
		{"command over the limit", "*3\r\n$3\r\nSET\r\n$500\r\n" + strings.Repeat("x", 500) + "\r\n$500\r\n", "", "too large"},
		{"huge count", "*9223372036854775807\r\n", "", "invalid multibulk length"},
		{"count over 1M", "*1048577\r\n", "", "invalid multibulk length"},
		{"count not a number", "*x\r\n", "", "invalid multibulk length"},
		{"count with a plus", "*+1\r\n", "", "invalid multibulk length"},
		{"length with a leading zero", "*1\r\n$04\r\nPING\r\n", "", "invalid bulk length"},
		{"length of 19 digits", "*1\r\n$1000000000000000000\r\n", "", "invalid bulk length"},
		{"negative bulk", "*1\r\n$-5\r\n", "", "invalid bulk length"},
		{"bulk not ended by CRLF", "*1\r\n$1\r\nab\r\n", "", "invalid bulk length"},
		{"no dollar", "*1\r\n:1\r\n", "", "expected '$', got ':'"},
		{"length line without CR", "*1\n", "", "invalid multibulk length"},
		{"length line too long", "*1" + strings.Repeat("0", 40), "", "invalid multibulk length"},
		{"unbalanced quotes", `GET "k` + "\r\n", "", "unbalanced quotes"},
		{"quote not followed by space", `GET "k"x` + "\r\n", "", "unbalanced quotes"},
		{"inline too long", strings.Repeat(" ", maxInline+2), "", "too big inline request"},
		{"inline over the command bound", "SET k " + strings.Repeat("x", 1100) + "\r\n", "", "too large"},
	} {
		for _, chunks := range [][]int{nil, {1}, {3, 7}} {
			got, err := feed(1000, []byte(tc.in), chunks)
			if string(got) != tc.want {
				t.Errorf("%s, reads of %v: handed on %q, want %q", tc.name, chunks, got, tc.want)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%s, reads of %v: %v", tc.name, chunks, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("%s, reads of %v: error %v, want %q", tc.name, chunks, err, tc.err)
			}
		}
	}
}

// TestFramerBeforeAuth: before AUTH a command is at most 10 arguments and
// 16 KiB, in either form, or the framing error Redis gives an
// unauthenticated client; within them it passes as it would after AUTH.
func TestFramerBeforeAuth(t *testing.T) {
	const limit = 1 << 20
	name := strings.Repeat("n", preAuthBytes-200)
	for _, tc := range []struct {
		name, in, err string
	}{
		{"handshake", multibulk("HELLO", "3", "AUTH", "acme", "token", "SETNAME", name), ""},
		{"ten arguments", multibulk("CLIENT", "SETNAME", "a", "b", "c", "d", "e", "f", "g", "h"), ""},
		{"eleven arguments", multibulk("CLIENT", "SETNAME", "a", "b", "c", "d", "e", "f", "g", "h", "i"), "unauthenticated multibulk length"},
		{"a bulk over 16 KiB", multibulk("CLIENT", "SETNAME", strings.Repeat("x", preAuthBytes)), "unauthenticated bulk length"},
		{"a command over 16 KiB", multibulk("AUTH", name, name), "unauthenticated bulk length"},
		{"eleven inline arguments", "CLIENT SETNAME a b c d e f g h i\r\n", "unauthenticated multibulk length"},
		{"an inline line over 16 KiB", "CLIENT SETNAME " + strings.Repeat("x", preAuthBytes) + "\r\n", "too big inline request"},
		{"a TLS handshake", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "the client sent a TLS handshake"},
	} {
		for _, chunks := range [][]int{nil, {1}, {7, 100}} {
			out, err := feedAs(false, limit, []byte(tc.in), chunks)
			if tc.err == "" {
				if err != nil || string(out) != tc.in {
					t.Errorf("%s, chunks %v: %q, %v; want it handed on whole", tc.name, chunks, bound(out), err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s, chunks %v: error %v, want %q", tc.name, chunks, err, tc.err)
			}
			if len(out) != 0 {
				t.Errorf("%s, chunks %v: handed on %d bytes of a refused command", tc.name, chunks, len(out))
			}
		}
	}
	// Signed in, the same commands pass.
	for _, in := range []string{multibulk("AUTH", name, name), multibulk("CLIENT", "SETNAME", strings.Repeat("x", preAuthBytes))} {
		if out, err := feed(limit, []byte(in), nil); err != nil || string(out) != in {
			t.Errorf("signed in: %q, %v", bound(out), err)
		}
	}
}

func bound(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// TestSplitArgs: inline commands split as Redis's sdssplitargs splits them.
func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: unbalanced
	}{
		{"", []string{}},
		{"  \t ", []string{}},
		{"GET k", []string{"GET", "k"}},
		{"  SET   k  v ", []string{"SET", "k", "v"}},
		{`SET k "a b"`, []string{"SET", "k", "a b"}},
		{`SET k "\x7b\x7d\n\"\\"`, []string{"SET", "k", "{}\n\"\\"}},
		{`SET k "\xZZ"`, []string{"SET", "k", "xZZ"}},
		{`SET k 'it\'s "x"'`, []string{"SET", "k", `it's "x"`}},
		{`SET k ''`, []string{"SET", "k", ""}},
		{`SET k ""`, []string{"SET", "k", ""}},
		{`a"b"`, []string{`a"b"`}[:0:0]},
		{`"open`, nil},
		{`'open`, nil},
		{`"a"b`, nil},
		{`'a'b`, nil},
	} {
		got, ok := splitArgs([]byte(tc.in))
		if tc.want == nil {
			if ok {
				t.Errorf("splitArgs(%q) = %q, want unbalanced", tc.in, got)
			}
			continue
		}
		if tc.in == `a"b"` { // a quote inside an unquoted argument opens a quoted part, as in Redis
			if !ok || len(got) != 1 || string(got[0]) != "ab" {
				t.Errorf("splitArgs(%q) = %q, %v; want [ab]", tc.in, got, ok)
			}
			continue
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if !ok || !slices.Equal(gs, tc.want) && !(len(gs) == 0 && len(tc.want) == 0) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, gs, ok, tc.want)
		}
	}
}

// FuzzFramer: whatever the bytes and however they are read, the framer
// does not panic, holds at most a command's limit plus a read beyond what
// it hands on, and hands on only whole multibulk commands within the
// limit; a stream of valid multibulk commands passes unchanged.
func FuzzFramer(f *testing.F) {
	f.Add([]byte(multibulk("SET", "k", "{}")+"GET k\r\n"), uint8(3), false)
	f.Add([]byte("*1\r\n$9223372036854775807\r\n"), uint8(1), false)
	f.Add([]byte("*9223372036854775807\r\n"), uint8(5), false)
	f.Add([]byte(`SET k "\x7b" 'a'`+"\n"), uint8(2), false)
	f.Add([]byte("a\x00b c"), uint8(4), true)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, asArgs bool) {
		const limit = 512
		if asArgs { // the input as the arguments of one valid command
			args := strings.Fields(string(in))
			if len(args) == 0 {
				return
			}
			valid := multibulk(args...)
			out, err := feed(1<<20, []byte(valid), []int{int(chunk)})
			if err != nil || string(out) != valid {
				t.Fatalf("valid %q: handed on %q, %v", valid, out, err)
			}
			return
		}
		out, _ := feed(limit, in, []int{int(chunk)})
		for len(out) > 0 {
			n, ok := wholeCommand(out)
			if !ok || n > limit+len("*1\r\n$512\r\n\r\n") {
				t.Fatalf("handed on %q: not a whole multibulk command within the limit", out)
			}
			out = out[n:]
		}
	})
}

// wholeCommand returns the length of the multibulk command at the start of
// b, a reference parser for FuzzFramer.
func wholeCommand(b []byte) (int, bool) {
	i := bytes.Index(b, []byte("\r\n"))
	if len(b) == 0 || b[0] != '*' || i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[1:i]))
	if err != nil || n < 1 {
		return 0, false
	}
	pos := i + 2
	for range n {
		j := bytes.Index(b[pos:], []byte("\r\n"))
		if j < 0 || b[pos] != '$' {
			return 0, false
		}
		size, err := strconv.Atoi(string(b[pos+1 : pos+j]))
		if err != nil || size < 0 || pos+j+2+size+2 > len(b) || string(b[pos+j+2+size:pos+j+2+size+2]) != "\r\n" {
			return 0, false
		}
		pos += j + 2 + size + 2
	}
	return pos, true
}

// TestTruncate: an argument quoted in an error is cut before a UTF-8
// sequence the 128-byte limit would split.
func TestTruncate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{strings.Repeat("a", 127) + "é", strings.Repeat("a", 127) + "…"},
		{strings.Repeat("a", 126) + "€x", strings.Repeat("a", 126) + "…"},
		{strings.Repeat("\x80", 200), strings.Repeat("\x80", 128) + "…"},
	} {
		if got := truncate([]byte(tc.in)); got != tc.want {
			t.Errorf("truncate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRetryAfter: a TRYAGAIN's wait reads in whole milliseconds, never 0.
func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "1ms"}, {1026905 * time.Nanosecond, "2ms"}, {time.Millisecond, "1ms"}, {1500 * time.Millisecond, "1.5s"}, {3*time.Second + 200*time.Microsecond, "3.001s"}} {
		if got := retryAfter(tc.d); got != tc.want {
			t.Errorf("retryAfter(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
