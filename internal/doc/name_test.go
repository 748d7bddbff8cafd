package doc

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/fault"
)

func TestValidateTenant(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want string // substring of the error
	}{
		{"demo", true, ""},
		{"a", true, ""},
		{"0", true, ""},
		{"acme-prod-2", true, ""},
		{strings.Repeat("a", 63), true, ""},
		{"", false, "empty"},
		{strings.Repeat("a", 64), false, "longer than 63"},
		{"-acme", false, "must start"},
		{"Acme", false, "byte 0"},
		{"ac_me", false, "byte 2"},
		{"a/b", false, "byte 1"},
		{"a\x00", false, "byte 1"},
		{"é", false, "byte 0 (0xc3)"},
		{"Acme", false, "byte 0 ('A')"},
	}
	for _, tt := range tests {
		err := ValidateTenant(tt.in)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateTenant(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("ValidateTenant(%q): class %v, want invalid", tt.in, fault.ClassOf(err))
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("ValidateTenant(%q) = %q, want it to name the tenant and say %q", tt.in, err, tt.want)
		}
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want string
	}{
		{"a", true, ""},
		{"users/42/profile.json", true, ""},
		{"日本語/キー", true, ""},
		{"with space and %2F", true, ""},
		{"../../etc/passwd", true, ""}, // a key, not a path: backends must encode it
		{strings.Repeat("k", 1024), true, ""},
		{"", false, "empty"},
		{strings.Repeat("k", 1025), false, "longer than 1024"},
		{"a\x00b", false, "byte 1 is NUL"},
		{"a\nb", false, "control character U+000A"},
		{"\x7f", false, "control character U+007F"},
		{"a\u0085", false, "control character U+0085"},
		{"bad\xffutf8", false, "byte 3 is not valid UTF-8"},
		{"\xed\xa0\x80", false, "not valid UTF-8"}, // encoded surrogate
	}
	for _, tt := range tests {
		err := ValidateKey(tt.in)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), tt.want) || !errors.Is(err, fault.ErrInvalid)) {
			t.Errorf("ValidateKey(%q) = %q (class %v), want invalid saying %q", tt.in, err, fault.ClassOf(err), tt.want)
		}
	}
}

func FuzzValidateTenant(f *testing.F) {
	for _, s := range []string{"demo", "", "-a", "a-", "A", strings.Repeat("z", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateTenant(s)
		if got, want := err == nil, tenantOracle(s); got != want {
			t.Fatalf("ValidateTenant(%q) = %v, oracle says ok=%v", s, err, want)
		}
	})
}

// tenantOracle is the regular expression of DESIGN.md, spelled differently.
func tenantOracle(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] == '-' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "\x00", "\xff", "日本", strings.Repeat("k", 1025)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateKey(s)
		if err != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxKeyLen || strings.ContainsRune(s, 0) || !utf8ValidNoControl(s) {
			t.Fatalf("ValidateKey(%q) accepted a bad key", s)
		}
	})
}

func utf8ValidNoControl(s string) bool {
	for _, r := range s {
		if r == 0xFFFD || r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return strings.ContainsRune(s, 0xFFFD) && r == 0xFFFD && validEncodedReplacement(s)
		}
	}
	return true
}

// validEncodedReplacement reports whether every U+FFFD in s is really encoded
// as such (and so valid), rather than the decoder's marker for a bad byte.
func validEncodedReplacement(s string) bool {
	return strings.ToValidUTF8(s, "") == s
}
