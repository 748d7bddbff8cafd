package store

import "testing"

// TestExpectBack: the committer holds the open group while writers that
// the last group answered are expected back, stops expecting them when a
// linger runs out, and, when half of them or more did not come, expects nobody for
// noExpectGroups groups.
func TestExpectBack(t *testing.T) {
	s := openT(t, "", Options{})
	open := func(n int) *group { return &group{reqs: make([]*request, n)} }

	s.expectBack(&group{writers: 3})
	if !s.handOver(open(3)) {
		t.Fatal("no writer in flight and none expected: the group of 3 is not handed over")
	}
	s.cameBack()
	if s.handOver(open(1)) {
		t.Fatal("two of three writers expected back: the group of 1 is handed over")
	}
	s.cameBack()
	s.cameBack()
	if !s.handOver(open(1)) {
		t.Fatal("every writer expected is back: the group is not handed over")
	}
	s.cameBack() // a writer that was not expected
	if got := s.returning.Load(); got != 0 {
		t.Fatalf("returning = %d after more writers than expected, want 0", got)
	}

	// A linger runs out with one of three missing: the next group expects
	// its writers again.
	s.expectBack(&group{writers: 3})
	s.cameBack()
	s.cameBack()
	s.notBack()
	if got := s.returning.Load(); got != 0 {
		t.Fatalf("returning = %d after the linger ran out, want 0", got)
	}
	s.expectBack(&group{writers: 2})
	if got := s.returning.Load(); got != 2 {
		t.Fatalf("returning = %d after a linger that ran out with most writers back, want 2", got)
	}

	// It runs out with half missing: nobody is expected for noExpectGroups
	// groups, then their writers are again.
	s.cameBack() // one of two
	s.notBack()
	for i := range noExpectGroups {
		s.expectBack(&group{writers: 4})
		if got := s.returning.Load(); got != 0 {
			t.Fatalf("group %d after the linger ran out with half missing: returning = %d, want 0", i, got)
		}
		if !s.handOver(open(1)) {
			t.Fatalf("group %d after the linger ran out with half missing: the group is not handed over", i)
		}
	}
	s.expectBack(&group{writers: 4})
	if got := s.returning.Load(); got != 4 {
		t.Fatalf("returning = %d after %d groups, want 4", got, noExpectGroups)
	}
}

// TestExpectBackCountsWriters: the syncer expects back a group's single
// writes, each a writer, and not the members of a batch, which is one
// writer and comes back whole.
func TestExpectBackCountsWriters(t *testing.T) {
	s := openT(t, "", Options{})
	mustPut(t, s, "t", "a", `{}`)
	if got := s.expected.Load(); got != 1 {
		t.Fatalf("after one write, expected = %d, want 1", got)
	}
	items := []Item{{Key: "b", Body: []byte(`{}`)}, {Key: "c", Body: []byte(`{}`)}, {Key: "d", Body: []byte(`{}`)}}
	if _, err := s.PutBatch(bg, "t", items); err != nil {
		t.Fatal(err)
	}
	if got := s.expected.Load(); got != 0 {
		t.Fatalf("after a batch of %d, expected = %d, want 0", len(items), got)
	}
}
