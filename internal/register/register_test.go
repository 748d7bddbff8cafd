package register

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// The model can fail: a get that starts after put(v2) returned must not
// see v1, and a delete that found nothing must not follow a put. And it
// accepts what a register allows.
func TestModel(t *testing.T) {
	for _, c := range []struct {
		name string
		h    []porcupine.Operation
		ok   bool
	}{
		{"stale read", []porcupine.Operation{
			{Input: Input{Op: 'p', Key: "k", Value: "v1"}, Output: Output{}, Call: 0, Return: 1},
			{Input: Input{Op: 'p', Key: "k", Value: "v2"}, Output: Output{}, Call: 2, Return: 3},
			{Input: Input{Op: 'g', Key: "k"}, Output: Output{Value: "v1", Found: true}, Call: 4, Return: 5},
		}, false},
		{"delete of a present key found nothing", []porcupine.Operation{
			{Input: Input{Op: 'p', Key: "k", Value: "v1"}, Output: Output{}, Call: 0, Return: 1},
			{Input: Input{Op: 'd', Key: "k"}, Output: Output{}, Call: 2, Return: 3},
		}, false},
		{"overlapping put and get, an unknown delete", []porcupine.Operation{
			{Input: Input{Op: 'p', Key: "k", Value: "v1"}, Output: Output{}, Call: 0, Return: 4},
			{Input: Input{Op: 'g', Key: "k"}, Output: Output{}, Call: 1, Return: 2},
			{Input: Input{Op: 'd', Key: "k"}, Output: Output{Unknown: true}, Call: 5, Return: 6},
			{Input: Input{Op: 'g', Key: "k"}, Output: Output{}, Call: 7, Return: 8},
		}, true},
	} {
		if got := porcupine.CheckOperations(Model, c.h); got != c.ok {
			t.Errorf("%s: linearizable = %v, want %v", c.name, got, c.ok)
		}
	}
}
