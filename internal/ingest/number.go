package ingest

import (
	"strconv"
	"unsafe"
)

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat converts a validated JSON number to the float64 that
// strconv.ParseFloat returns. The fast path is Clinger's: a mantissa below
// 2^53 and a power of ten up to 22 are both exact, so one IEEE multiply or
// divide is correctly rounded. Everything else goes to strconv (which takes
// the same fast path first, but only after re-scanning the text). The second
// result is false when the value overflows float64.
func parseFloat(num []byte) (float64, bool) {
	i, neg := 0, false
	if num[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, exp := 0, 0
	for ; i < len(num) && isDigit(num[i]); i++ {
		mant = mant*10 + uint64(num[i]-'0')
		digits++
	}
	if i < len(num) && num[i] == '.' {
		for i++; i < len(num) && isDigit(num[i]); i++ {
			mant = mant*10 + uint64(num[i]-'0')
			digits++
			exp--
		}
	}
	if i == len(num) && digits <= 15 && exp >= -22 { // 15 digits < 2^53
		f := float64(mant) / pow10[-exp]
		if neg {
			f = -f
		}
		return f, true
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(num), len(num)), 64)
	return f, err == nil
}

// volumeErr explains why a validated JSON number is not a uint64.
type volumeErr uint8

const (
	volOK volumeErr = iota
	volNegative
	volFraction
	volOverflow
)

var volumeMsg = [...]string{
	volNegative: "must not be negative",
	volFraction: "must be an integer without fraction or exponent",
	volOverflow: "overflows uint64",
}

// parseUint converts a validated JSON number that must be a plain unsigned
// integer, as encoding/json does for uint64 (no exponent, even "1e3").
func parseUint(num []byte) (uint64, volumeErr) {
	if num[0] == '-' {
		return 0, volNegative
	}
	var v uint64
	for _, c := range num {
		if !isDigit(c) {
			return 0, volFraction
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, volOverflow
		}
		v = v*10 + d
	}
	return v, volOK
}
