package server

import (
	"errors"
	"strconv"
)

// Conditional requests.
//
// ETags are strong. If-Match uses the strong comparison (a W/ tag never
// matches), If-None-Match the weak one (RFC 9110 §8.8.3.2). On PUT and
// DELETE both are passed to Docs as a [doc.Precondition] and evaluated
// atomically with the write; "If-None-Match: *" makes a PUT create-only. On
// GET and HEAD a matching If-None-Match gives 304 and a failing If-Match
// 412. A malformed list, or an empty one on a write, is a 400.

// This file parses the entity-tag lists of If-Match and If-None-Match
// (RFC 9110 §8.8.3, §13.1.1–2):
//
//	If-Match      = "*" / #entity-tag
//	entity-tag    = [ "W/" ] DQUOTE *etagc DQUOTE
//	etagc         = %x21 / %x23-7E / obs-text
//
// A "#" list is comma-separated with optional whitespace and tolerates empty
// elements; several header lines form one list. "*" must stand alone.
// The scanner does not allocate, so the GET hot path can evaluate
// If-None-Match for free.

// errETag is wrapped with the position of the problem.
var errETag = errors.New("malformed entity-tag list")

// etagScanner walks one header value element by element.
type etagScanner struct {
	s   string
	pos int
}

// next returns the next element ("*" or an entity-tag, W/ prefix and quotes
// included). ok is false at the end of the value; err reports a malformed
// element together with its byte position.
func (sc *etagScanner) next() (tag string, ok bool, err error) {
	s := sc.s
	i := sc.pos
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	if i >= len(s) {
		sc.pos = i
		return "", false, nil
	}
	start := i
	if s[i] == '*' {
		i++
	} else {
		if len(s)-i >= 2 && s[i] == 'W' && s[i+1] == '/' {
			i += 2
		}
		if i >= len(s) || s[i] != '"' {
			return "", false, sc.fail(i)
		}
		i++
		for i < len(s) && s[i] != '"' {
			if c := s[i]; c < 0x21 || c == 0x7f {
				return "", false, sc.fail(i)
			}
			i++
		}
		if i >= len(s) {
			return "", false, sc.fail(i)
		}
		i++ // closing quote
	}
	tag = s[start:i]
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < len(s) && s[i] != ',' {
		return "", false, sc.fail(i)
	}
	sc.pos = i
	return tag, true, nil
}

func (sc *etagScanner) fail(i int) error {
	sc.pos = len(sc.s)
	return &etagError{at: i}
}

type etagError struct{ at int }

func (e *etagError) Error() string {
	return errETag.Error() + " at byte " + strconv.Itoa(e.at)
}

func (e *etagError) Unwrap() error { return errETag }

// etagList is the parsed form of one conditional header.
type etagList struct {
	present bool     // the header was sent (even if empty)
	star    bool     // "*"
	tags    []string // entity-tags as sent, W/ prefix and quotes included
}

// parseETagList parses every line of a conditional header into a list. It
// allocates; use matchETag on paths that only need an answer.
func parseETagList(lines []string) (etagList, error) {
	l := etagList{present: len(lines) > 0}
	for _, line := range lines {
		sc := etagScanner{s: line}
		for {
			tag, ok, err := sc.next()
			if err != nil {
				return etagList{}, err
			}
			if !ok {
				break
			}
			if tag == "*" {
				if l.star {
					return etagList{}, errors.New(`"*" must be the only element`)
				}
				l.star = true
			} else {
				l.tags = append(l.tags, tag)
			}
		}
	}
	if l.star && len(l.tags) > 0 {
		return etagList{}, errors.New(`"*" must be the only element`)
	}
	return l, nil
}

// matchETag reports whether the current etag (strong, quoted) matches one of
// the elements of the header lines, with the weak comparison function when
// weak is true (If-None-Match) and the strong one otherwise (If-Match). A
// "*" matches any current representation. It does not allocate.
func matchETag(lines []string, etag string, weak bool) (bool, error) {
	matched, star, tags := false, false, false
	for _, line := range lines {
		sc := etagScanner{s: line}
		for {
			tag, ok, err := sc.next()
			if err != nil {
				return false, err
			}
			if !ok {
				break
			}
			if tag == "*" {
				if star {
					return false, errors.New(`"*" must be the only element`)
				}
				star = true
				matched = true
				continue
			}
			tags = true
			if weak {
				tag = opaque(tag)
				etag = opaque(etag)
			}
			if tag == etag {
				matched = true
			}
		}
	}
	if star && tags {
		return false, errors.New(`"*" must be the only element`)
	}
	return matched, nil
}

// opaque strips the weakness indicator: W/"x" → "x".
func opaque(tag string) string {
	if len(tag) >= 2 && tag[0] == 'W' && tag[1] == '/' {
		return tag[2:]
	}
	return tag
}
