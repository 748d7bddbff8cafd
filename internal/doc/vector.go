package doc

import "slices"

// Dot is one version-vector entry: a node incarnation and how many writes it
// has made to the document.
type Dot struct {
	Replica uint64 // node incarnation
	Counter uint64
}

// Vector is a version vector: entries sorted by Replica, no duplicates, no
// zero counters. Methods never modify the receiver.
type Vector []Dot

// Ordering is the causal relation between two versions.
type Ordering int8

const (
	Equal      Ordering = iota // same history
	Before                     // a is dominated by b: b saw everything a did and more
	After                      // a dominates b
	Concurrent                 // each saw something the other did not: a conflict
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	}
	return "concurrent"
}

// Get returns the counter of replica r (0 if absent).
func (v Vector) Get(r uint64) uint64 {
	i, ok := slices.BinarySearchFunc(v, r, cmpReplica)
	if !ok {
		return 0
	}
	return v[i].Counter
}

// Increment returns a copy of v with replica r's counter one higher.
func (v Vector) Increment(r uint64) Vector {
	i, ok := slices.BinarySearchFunc(v, r, cmpReplica)
	out := make(Vector, len(v), len(v)+1)
	copy(out, v)
	if ok {
		out[i].Counter++
		return out
	}
	return slices.Insert(out, i, Dot{Replica: r, Counter: 1})
}

// Merge returns the pointwise maximum of v and o: the vector of a version
// that has seen both.
func (v Vector) Merge(o Vector) Vector {
	out := make(Vector, 0, max(len(v), len(o)))
	i, j := 0, 0
	for i < len(v) && j < len(o) {
		switch a, b := v[i], o[j]; {
		case a.Replica < b.Replica:
			out = append(out, a)
			i++
		case a.Replica > b.Replica:
			out = append(out, b)
			j++
		default:
			out = append(out, Dot{a.Replica, max(a.Counter, b.Counter)})
			i++
			j++
		}
	}
	out = append(out, v[i:]...)
	return append(out, o[j:]...)
}

// Compare returns the causal relation of v to o.
func Compare(v, o Vector) Ordering {
	less, greater := false, false // some entry of v is below / above o's
	i, j := 0, 0
	for i < len(v) || j < len(o) {
		switch {
		case j == len(o) || (i < len(v) && v[i].Replica < o[j].Replica):
			greater = true // v has an entry o lacks
			i++
		case i == len(v) || v[i].Replica > o[j].Replica:
			less = true
			j++
		default:
			if v[i].Counter < o[j].Counter {
				less = true
			} else if v[i].Counter > o[j].Counter {
				greater = true
			}
			i++
			j++
		}
		if less && greater {
			return Concurrent
		}
	}
	switch {
	case less:
		return Before
	case greater:
		return After
	}
	return Equal
}

// valid reports whether v is sorted, duplicate-free and without zero counters.
func (v Vector) valid() bool {
	for i, d := range v {
		if d.Counter == 0 || (i > 0 && v[i-1].Replica >= d.Replica) {
			return false
		}
	}
	return true
}

func cmpReplica(d Dot, r uint64) int {
	switch {
	case d.Replica < r:
		return -1
	case d.Replica > r:
		return 1
	}
	return 0
}
