//go:build cairndebug

package streambuf_test

import (
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/streambuf"
)

func TestUseAfterResetPanics(t *testing.T) {
	accessors := map[string]func(streambuf.View){
		"Bytes":      func(v streambuf.View) { _ = v.Bytes() },
		"Len":        func(v streambuf.View) { _ = v.Len() },
		"String":     func(v streambuf.View) { _ = v.String() },
		"Equal":      func(v streambuf.View) { _ = v.Equal("x") },
		"EqualBytes": func(v streambuf.View) { _ = v.EqualBytes(nil) },
	}
	for name, use := range accessors {
		t.Run(name, func(t *testing.T) {
			b := streambuf.New(streambuf.Config{})
			views := []streambuf.View{
				b.Add([]byte("AAPL")),
				b.Ref([]byte("input")),
				b.View([]byte("input")),
				b.Commit(append(b.Grow(3), "esc"...)),
			}
			for _, v := range views {
				use(v) // valid before Reset
			}
			b.Reset()
			for i, v := range views {
				msg := panicMessage(func() { use(v) })
				if !strings.Contains(msg, "use of short-lived view after Reset") {
					t.Errorf("view %d after Reset: panic %q, want use-after-Reset panic", i, msg)
				}
			}
		})
	}
}

func TestLongLivedViewsSurviveReset(t *testing.T) {
	b := streambuf.New(streambuf.Config{})
	s, _ := b.Intern([]byte("NYSE"))
	v := streambuf.Permanent(s)
	b.Reset()
	b.Reset()
	if msg := panicMessage(func() { _ = v.Bytes() }); msg != "" || !v.Equal("NYSE") {
		t.Fatalf("permanent view after Reset: panic %q, value %q", msg, v.Bytes())
	}
	fresh := b.Add([]byte("new"))
	if msg := panicMessage(func() { _ = fresh.Bytes() }); msg != "" {
		t.Fatalf("view made after Reset panicked: %q", msg)
	}
}

func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg, _ = r.(string)
			if msg == "" {
				msg = "non-string panic"
			}
		}
	}()
	f()
	return ""
}
