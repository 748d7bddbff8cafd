package doc

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/fault"
)

// Limits on names.
const (
	MaxTenantLen = 63
	MaxKeyLen    = 1024
)

// ValidateTenant checks a tenant id against [a-z0-9][a-z0-9-]{0,62}.
func ValidateTenant(t string) error {
	bad := func(msg string) error {
		return fault.New(fault.Invalid, fault.Context{Op: "validate.tenant"}, "tenant "+quote(t)+": "+msg)
	}
	switch {
	case t == "":
		return bad("empty")
	case len(t) > MaxTenantLen:
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(t), MaxTenantLen))
	case t[0] == '-':
		return bad("must start with a lowercase letter or digit")
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			shown := fmt.Sprintf("%q", c)
			if c >= 0x80 { // a byte of a UTF-8 sequence, not the character %q would print
				shown = fmt.Sprintf("0x%02x", c)
			}
			return bad(fmt.Sprintf("byte %d (%s) is not a lowercase letter, digit or '-'", i, shown))
		}
	}
	return nil
}

// ValidateKey checks that a key is 1–1024 bytes of UTF-8 without NUL or
// control characters.
func ValidateKey(k string) error {
	bad := func(msg string) error {
		return fault.New(fault.Invalid, fault.Context{Op: "validate.key"}, "key "+quote(k)+": "+msg)
	}
	switch {
	case k == "":
		return bad("empty")
	case len(k) > MaxKeyLen:
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(k), MaxKeyLen))
	}
	for i := 0; i < len(k); {
		r, size := utf8.DecodeRuneInString(k[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return bad(fmt.Sprintf("byte %d is not valid UTF-8", i))
		case r == 0:
			return bad(fmt.Sprintf("byte %d is NUL", i))
		case unicode.IsControl(r):
			return bad(fmt.Sprintf("byte %d is control character %U", i, r))
		}
		i += size
	}
	return nil
}

// quote shortens a name for an error message; keys may be 1 KiB.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
