package ingest

import (
	"math"
	"strconv"
	"testing"
)

// FuzzFastNumbers checks the one-pass number paths against the general ones:
// whenever fastFloat or fastUint accepts a number, scanNumber ends it at the
// same byte and strconv.ParseFloat / parseUint give the same value, bit for
// bit.
func FuzzFastNumbers(f *testing.F) {
	for _, s := range []string{"0", "-0", "-0.0", "187.25", "0.1", "123456789012345.6", "9007199254740993",
		"9007199254740992", "0.30000000000000004", "1.5,", "12}", "01", "1.", "1.e", "-", "1e5", "18446744073709551615",
		"9999999999999999999", "10000000000000000000", "0.0000000000000000000001", "1.2.3", "7-"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, end := fastFloat(b, 0); end > 0 {
			e, c := scanNumber(b, 0)
			if c != ok || e != end {
				t.Fatalf("fastFloat(%q) ends at %d; scanNumber: %d %v", b, end, e, c)
			}
			want, err := strconv.ParseFloat(string(b[:end]), 64)
			if err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("fastFloat(%q) = %v; ParseFloat: %v %v", b, got, want, err)
			}
		}
		if got, end := fastUint(b, 0); end > 0 {
			e, c := scanNumber(b, 0)
			if c != ok || e != end {
				t.Fatalf("fastUint(%q) ends at %d; scanNumber: %d %v", b, end, e, c)
			}
			want, ve := parseUint(b[:end])
			if ve != volOK || got != want {
				t.Fatalf("fastUint(%q) = %d; parseUint: %d %v", b, got, want, ve)
			}
		}
	})
}
