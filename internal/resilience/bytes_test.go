package resilience

import "testing"

// TestByteBudget: bytes are taken up to the limit and given back; one
// request larger than the limit passes alone, in one take or several; a
// nil budget admits all.
func TestByteBudget(t *testing.T) {
	b := NewByteBudget(100)
	if !b.Take(60, 0) || b.Take(50, 0) || !b.Take(40, 0) {
		t.Fatal("takes of 60, 50, 40 under a limit of 100: want yes, no, yes")
	}
	b.Give(60)
	b.Give(40)
	if !b.Take(500, 0) || b.Take(1, 0) {
		t.Fatal("one take over the limit must pass alone, and only alone")
	}
	// A request alone goes on taking past the limit, in parts.
	if !b.Take(300, 500) {
		t.Fatal("a request holding all that is charged was refused more")
	}
	b.Give(800)
	if b.Refused() != 2 {
		t.Errorf("Refused() = %d, want 2", b.Refused())
	}
	var none *ByteBudget
	if !none.Take(1<<40, 0) || NewByteBudget(0) != nil || none.Limit() != 0 {
		t.Fatal("a nil budget admits all")
	}
}
