package server

import (
	"encoding/json"
	"errors"
	"strconv"
)

// ValidJSON returns the default body validator: the body must be one
// well-formed JSON value nested at most maxDepth arrays and objects deep.
// Its errors carry the byte offset of the problem ([json.SyntaxError], or a
// ByteOffset method for the depth limit). The node supplies a faster strict
// validator; this one keeps the server usable on its own.
func ValidJSON(maxDepth int) func([]byte) error {
	return func(b []byte) error {
		if !json.Valid(b) {
			// Valid says no; Unmarshal checks validity first and reports
			// where, without decoding anything.
			var v struct{}
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			return errors.New("not valid JSON")
		}
		return checkDepth(b, maxDepth)
	}
}

// DepthError is a body nested deeper than the limit.
type DepthError struct {
	Offset int64 // of the bracket that went too deep
	Max    int
}

func (e *DepthError) Error() string {
	return "nested deeper than " + strconv.Itoa(e.Max) + " levels"
}

// ByteOffset is the position of the offending bracket.
func (e *DepthError) ByteOffset() int64 { return e.Offset }

// checkDepth scans well-formed JSON for the nesting depth.
func checkDepth(b []byte, max int) error {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte; \u sequences are hex digits only
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return &DepthError{Offset: int64(i), Max: max}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// offsetOf finds the byte offset a validation error carries, if any.
func offsetOf(err error) (int64, bool) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset, true
	}
	var bo interface{ ByteOffset() int64 }
	if errors.As(err, &bo) {
		return bo.ByteOffset(), true
	}
	var o interface{ Offset() int64 }
	if errors.As(err, &o) {
		return o.Offset(), true
	}
	return 0, false
}
