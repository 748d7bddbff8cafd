package ingest

// DefaultMaxDepth is the nesting limit of Validate and of the stream decoders
// when Options.MaxDepth is zero.
const DefaultMaxDepth = 512

// Validate reports whether b is exactly one valid JSON value (RFC 8259),
// optionally surrounded by whitespace, nested at most DefaultMaxDepth deep.
// It returns nil or a *SyntaxError whose Offset is relative to b. It never
// allocates on valid input and is safe for concurrent use.
//
// Strictness: invalid UTF-8 (including encoded surrogates and overlongs),
// unescaped control characters, bad escapes, leading zeros and trailing data
// are all rejected. Escaped lone surrogates ("\uD800") are accepted, as the
// RFC 8259 grammar allows; decoders replace them with U+FFFD (see package doc).
func Validate(b []byte) error { return ValidateDepth(b, DefaultMaxDepth) }

// ValidateDepth is Validate with a nesting limit (values < 1 mean 1).
func ValidateDepth(b []byte, maxDepth int) error {
	i := skipWS(b, 0)
	if err := wholeValue(b, i, maxDepth, 0); err != nil {
		return namedBOM(err, b, i)
	}
	return nil
}

// wholeValue checks that b[i:] is one JSON value followed by nothing but
// whitespace; offsets in its error are relative to base.
func wholeValue(b []byte, i, maxDepth int, base int64) error {
	end, c := skipValue(b, i, maxDepth)
	if c != ok {
		return syntaxErr(c, end, base)
	}
	if end = skipWS(b, end); end != len(b) {
		return syntaxErr(errTrailing, end, base)
	}
	return nil
}

// depthStack records, per open container, whether it is an array. It is a
// bitset so typical depths need no allocation.
type depthStack struct {
	small [8]uint64 // depth up to 512
	big   []uint64
}

func (s *depthStack) bits(maxDepth int) []uint64 {
	if maxDepth <= 64*len(s.small) {
		return s.small[:]
	}
	s.big = make([]uint64, (maxDepth+63)/64)
	return s.big
}

// skipValue validates the value starting at b[i] (no leading whitespace) and
// returns the index after it. It is iterative: depth is bounded by maxDepth,
// not by the goroutine stack.
//
// It is one long function on purpose: a state machine split into helpers
// would pass the stack and index back and forth on the hottest path. For the
// same reason whitespace is not skipped eagerly between tokens: each state
// dispatches on the byte it expects and treats whitespace as one more (rare)
// case, so compact input pays nothing for it.
func skipValue(b []byte, i int, maxDepth int) (int, code) {
	var st depthStack
	stack := st.bits(max(maxDepth, 1))
	depth := 0
	inArray := false // the innermost open container is an array (bit depth-1 of stack)
	var c code
value:
	if i >= len(b) {
		return i, errEOF
	}
	switch ch := b[i]; ch {
	case '{':
		if depth >= maxDepth {
			return i, errDepth
		}
		stack[depth>>6] &^= 1 << (depth & 63)
		depth++
		inArray = false
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == '}' {
			i++
			goto closed
		}
		goto key
	case '[':
		if depth >= maxDepth {
			return i, errDepth
		}
		stack[depth>>6] |= 1 << (depth & 63)
		depth++
		inArray = true
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == ']' {
			i++
			goto closed
		}
		goto value
	case '"':
		if i = plainRun(b, i+1); i < len(b) && b[i] == '"' {
			i++
		} else if i, _, c = scanString(b, i); c != ok {
			return i, c
		}
	case 't', 'f', 'n':
		if i, c = scanLiteral(b, i); c != ok {
			return i, c
		}
	case ' ', '\t', '\n', '\r':
		i = skipWS(b, i+1)
		goto value
	default:
		if ch != '-' && !isDigit(ch) {
			return i, errUnexpected
		}
		if i, c = scanNumber(b, i); c != ok {
			return i, c
		}
	}
next: // after a value
	if depth == 0 {
		return i, ok
	}
	if i >= len(b) {
		return i, errEOF
	}
	switch b[i] {
	case ',':
		i++
		if inArray {
			goto value
		}
		goto key
	case ']':
		if inArray {
			i++
			goto closed
		}
	case '}':
		if !inArray {
			i++
			goto closed
		}
	case ' ', '\t', '\n', '\r':
		i = skipWS(b, i+1)
		goto next
	}
	if inArray {
		return i, errExpectCommaArr
	}
	return i, errExpectCommaObj
closed: // after the ']' or '}' that closed the container at depth
	depth--
	inArray = depth > 0 && stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
	goto next
key: // after '{' and its whitespace, or after ','
	if i >= len(b) {
		return i, errEOF
	}
	if b[i] != '"' {
		if isSpace[b[i]] {
			i = skipWS(b, i+1)
			goto key
		}
		return i, errExpectKey
	}
	if i = plainRun(b, i+1); i < len(b) && b[i] == '"' {
		i++
	} else if i, _, c = scanString(b, i); c != ok {
		return i, c
	}
	if i < len(b) && b[i] == ':' {
		i++
		goto value
	}
	if i = skipWS(b, i); i >= len(b) {
		return i, errEOF
	}
	if b[i] != ':' {
		return i, errExpectColon
	}
	i++
	goto value
}
