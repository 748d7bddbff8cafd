package doc

import (
	"errors"
	"testing"

	"github.com/cairnstore/cairn/internal/fault"
)

func TestPreconditionCheck(t *testing.T) {
	const cur = `"abc"`
	tests := []struct {
		name string
		p    Precondition
		etag string
		live bool
		ok   bool
	}{
		{"none on absent", Precondition{}, "", false, true},
		{"none on live", Precondition{}, cur, true, true},
		{"if-match hit", Precondition{IfMatch: []string{`"x"`, cur}}, cur, true, true},
		{"if-match miss", Precondition{IfMatch: []string{`"x"`}}, cur, true, false},
		{"if-match on absent", Precondition{IfMatch: []string{cur}}, cur, false, false},
		{"if-match star live", Precondition{IfMatch: []string{"*"}}, cur, true, true},
		{"if-match star absent", Precondition{IfMatch: []string{"*"}}, "", false, false},
		{"create-only absent", Precondition{IfNoneMatch: []string{"*"}}, "", false, true},
		{"create-only tombstone", Precondition{IfNoneMatch: []string{"*"}}, cur, false, true},
		{"create-only live", Precondition{IfNoneMatch: []string{"*"}}, cur, true, false},
		{"if-none-match etag hit", Precondition{IfNoneMatch: []string{cur}}, cur, true, false},
		{"if-none-match etag miss", Precondition{IfNoneMatch: []string{`"x"`}}, cur, true, true},
	}
	for _, tt := range tests {
		err := tt.p.Check(tt.etag, tt.live)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Check = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, fault.ErrPreconditionFailed) {
			t.Errorf("%s: class %v, want precondition_failed", tt.name, fault.ClassOf(err))
		}
	}
}
