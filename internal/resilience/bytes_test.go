package resilience

import "testing"

// TestByteBudget: bytes are taken up to the limit and given back; one
// request larger than the limit passes alone, in one take or several; a
// nil budget admits all.
func TestByteBudget(t *testing.T) {
	b := NewByteBudget(100)
	if !b.Take("a", 40, 0) || !b.Take("b", 40, 0) || b.Take("c", 30, 0) || !b.Take("c", 20, 0) {
		t.Fatal("takes of 40, 40, 30, 20 under a limit of 100: want yes, yes, no, yes")
	}
	b.Give("a", 40)
	b.Give("b", 40)
	b.Give("c", 20)
	if !b.Take("a", 500, 0) || b.Take("b", 1, 0) {
		t.Fatal("one take over the limit must pass alone, and only alone")
	}
	// A request alone goes on taking past the limit, in parts.
	if !b.Take("a", 300, 500) {
		t.Fatal("a request holding all that is charged was refused more")
	}
	b.Give("a", 800)
	if b.Refused() != 2 {
		t.Errorf("Refused() = %d, want 2", b.Refused())
	}
	var none *ByteBudget
	if !none.Take("a", 1<<40, 0) || NewByteBudget(0) != nil || none.Limit() != 0 {
		t.Fatal("a nil budget admits all")
	}
}

// TestByteBudgetTenantShare: one tenant holds at most half of the budget,
// leaving the rest to the others; a tenant's one request past its half
// passes while the tenant holds nothing else.
func TestByteBudgetTenantShare(t *testing.T) {
	b := NewByteBudget(100)
	if !b.Take("greedy", 30, 0) || !b.Take("greedy", 20, 0) || b.Take("greedy", 10, 0) {
		t.Fatal("a tenant's takes of 30, 20, 10 under a limit of 100: want yes, yes, no (its half is 50)")
	}
	if !b.Take("other", 50, 0) {
		t.Fatal("another tenant was refused the half the first left")
	}
	b.Give("greedy", 50)
	b.Give("other", 50)
	if !b.Take("greedy", 70, 0) {
		t.Fatal("a tenant's one request past its half, holding nothing else, was refused")
	}
}
