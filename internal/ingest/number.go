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

// numCont marks the bytes that can continue a JSON number after its digits.
var numCont = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true,
	'5': true, '6': true, '7': true, '8': true, '9': true, '.': true, 'e': true, 'E': true}

// fastFloat validates and converts, in one pass, a number at b[i] of the form
// -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most 19 digits in all, a mantissa
// (the digits without the point) of at most 2^53 and at most 22 fraction
// digits. For those Clinger's fast path is exact: float64(mantissa) is exact,
// so is the power of ten, and one IEEE division is correctly rounded, giving
// bit for bit what strconv.ParseFloat returns. It returns end 0 for every
// other input, valid or not, so the caller's general path decides; it never
// accepts what scanNumber would reject, and it stops where scanNumber stops.
func fastFloat(b []byte, i int) (f float64, end int) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return 0, 0
	}
	var mant uint64
	start := j
	switch c := b[j]; {
	case c == '0':
		j++
	case c-'1' < 9:
		for j < len(b) && isDigit(b[j]) {
			mant = mant*10 + uint64(b[j]-'0')
			j++
		}
	default:
		return 0, 0
	}
	digits, frac := j-start, 0
	if j < len(b) && b[j] == '.' {
		k := j + 1
		for k < len(b) && isDigit(b[k]) {
			mant = mant*10 + uint64(b[k]-'0')
			k++
		}
		frac = k - (j + 1)
		if frac == 0 {
			return 0, 0 // "1." or "1.x": a syntax error, reported by the general path
		}
		digits += frac
		j = k
	}
	// Digits (a leading zero included) after "0" or an exponent go to the
	// general path; so does anything that could overflow or round.
	if digits > 19 || mant > 1<<53 || frac > 22 || (j < len(b) && numCont[b[j]]) {
		return 0, 0
	}
	f = float64(mant) / pow10[frac]
	if b[i] == '-' {
		f = -f
	}
	return f, j
}

// fastUint converts a plain unsigned integer at b[i] (0 or [1-9][0-9]*, at
// most 19 digits, so it fits uint64) in one pass. It returns end 0 for
// anything else (sign, fraction, exponent, leading zero, 20 or more digits,
// not a number) and leaves that to the general path.
func fastUint(b []byte, i int) (v uint64, end int) {
	j := i
	if j >= len(b) {
		return 0, 0
	}
	switch c := b[j]; {
	case c == '0':
		j++
	case c-'1' < 9:
		for j < len(b) && j-i < 19 && isDigit(b[j]) {
			v = v*10 + uint64(b[j]-'0')
			j++
		}
	default:
		return 0, 0
	}
	if j < len(b) && numCont[b[j]] {
		return 0, 0
	}
	return v, j
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
