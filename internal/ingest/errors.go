package ingest

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/cairnstore/cairn/internal/fault"
)

// SyntaxError reports input that is not valid JSON (RFC 8259). Offset is the
// byte offset of the offending byte: relative to the slice passed to
// Validate or Decode, absolute in the stream for records from Process.
// It matches fault.ErrInvalid under errors.Is.
type SyntaxError struct {
	Offset int64
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "ingest: invalid JSON at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Is makes every syntax error an invalid-input fault.
func (e *SyntaxError) Is(target error) bool { return target == fault.ErrInvalid }

// FieldError reports valid JSON that does not fit the MarketData schema: a
// missing required field, a wrong type, an out-of-range number. Field is the
// dotted path ("metadata.exchange"). It matches fault.ErrInvalid.
type FieldError struct {
	Field  string
	Offset int64
	Msg    string
}

func (e *FieldError) Error() string {
	return "ingest: field " + e.Field + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Is makes every field error an invalid-input fault.
func (e *FieldError) Is(target error) bool { return target == fault.ErrInvalid }

// ErrSkip, returned (possibly wrapped) by a Handler, skips the batch (or, via
// PerRecord, the record) and lets the stream continue. Any other handler
// error is fatal.
var ErrSkip = errors.New("ingest: skip")

// bodyOversize rejects a record whose document (Options.BodyPointer) is
// over Options.MaxRecordSize; it wraps ErrOversize.
type bodyOversize struct{ size, max int }

func (e *bodyOversize) Error() string {
	return fmt.Sprintf("%v: the document is %d bytes, over the limit of %d", ErrOversize, e.size, e.max)
}

func (e *bodyOversize) Unwrap() error { return ErrOversize }

// ErrOversize is the cause of a Reject for a line over Options.MaxRecordSize.
var ErrOversize = errors.New("ingest: record exceeds the maximum size")

// code is a syntax error kind. The scanners return codes, not errors, so the
// hot path never builds an error value; the caller turns a code into a
// *SyntaxError once, at the top.
type code uint8

const (
	ok code = iota
	errEOF
	errUnexpected
	errLeadingZero
	errBadNumber
	errBadEscape
	errBadUTF8
	errControl
	errTrailing
	errDepth
	errExpectColon
	errExpectKey
	errExpectCommaObj
	errExpectCommaArr
	errBadLiteral
)

var codeMsg = [...]string{
	ok:                "ok",
	errEOF:            "unexpected end of input",
	errUnexpected:     "unexpected character, expected a value",
	errLeadingZero:    "number has a leading zero",
	errBadNumber:      "malformed number",
	errBadEscape:      "invalid escape sequence in string",
	errBadUTF8:        "invalid UTF-8 in string",
	errControl:        "unescaped control character in string",
	errTrailing:       "trailing data after the JSON value",
	errDepth:          "nesting too deep",
	errExpectColon:    "expected ':' after object key",
	errExpectKey:      "expected a string object key",
	errExpectCommaObj: "expected ',' or '}' in object",
	errExpectCommaArr: "expected ',' or ']' in array",
	errBadLiteral:     "invalid literal (expected true, false or null)",
}

func syntaxErr(c code, off int, base int64) *SyntaxError {
	return &SyntaxError{Offset: base + int64(off), Msg: codeMsg[c]}
}

// bomMsg replaces the message of an error met at a UTF-8 byte order mark,
// which editors on some systems put at the start of a file: "unexpected
// character" would not say which.
const bomMsg = "a UTF-8 byte order mark (EF BB BF), which JSON text must not begin with: save the file without it"

// namedBOM returns err with bomMsg when the value it failed on, at b[i],
// begins with a byte order mark.
func namedBOM(err error, b []byte, i int) error {
	if se, ok := err.(*SyntaxError); ok && i+3 <= len(b) && b[i] == 0xEF && b[i+1] == 0xBB && b[i+2] == 0xBF {
		se.Msg = bomMsg
	}
	return err
}
