package resp

import "testing"

func TestUTF8Prefix(t *testing.T) {
	for p, want := range map[string]bool{"": true, "abc": true, "é": true, "a\xc3": true, "a\xe2\x82": true, "\xff": false, "a\xffb": false, "\xc3\x28": false} {
		if got := utf8Prefix(p); got != want {
			t.Errorf("utf8Prefix(%q) = %v, want %v", p, got, want)
		}
	}
}
