// Package register is the porcupine model the linearizability checks share:
// a map of registers, one per document key, that puts set, deletes clear
// and gets read. "" is an absent document, so a test must not write the
// empty string.
//
// Sharp edge: a delete whose outcome is unknown (Output.Unknown) is taken
// to have cleared the register; a check that needs "maybe" for deletes must
// record two histories or model it itself.
package register

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Input is one operation on one key's register: Op is 'p'ut, 'g'et or
// 'd'elete; Value is what a put writes.
type Input struct {
	Op         byte
	Key, Value string
}

// Output is what the operation returned: for a get, the value read and
// whether the document was found; for a delete, whether it was found
// (false: not found), or Unknown when the client did not learn that (its
// outcome is unknown, or the delete is blind: the cache's tests write a
// tombstone whatever is there).
type Output struct {
	Value   string
	Found   bool
	Unknown bool
}

// Model checks each key's history on its own (Partition), keys in order,
// so that a caller may name the keys whose histories fail.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(Input), output.(Output)
		switch in.Op {
		case 'p':
			return true, in.Value
		case 'g':
			return out.Found == (st != "") && out.Value == st, st
		default:
			return out.Unknown || out.Found == (st != ""), ""
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		return fmt.Sprintf("%c(%s,%s) → %q found=%v", in.Op, in.Key, short(in.Value), short(out.Value), out.Found)
	},
}

func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// Record runs clients goroutines at once, each making ops operations on
// keys registers named prefix0, prefix1, …: 3 in 10 puts of a value unique
// to the client and the operation (a JSON object), 1 in 10 deletes, the
// rest gets, drawn from a generator seeded by (client, seed). Each goes
// through do, and the history of calls and returns is what it gives back.
func Record(clients, ops, keys int, prefix string, seed uint64, do func(client int, in Input) Output) []porcupine.Operation {
	var (
		mu      sync.Mutex // guards history
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	start := time.Now()
	for id := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), seed))
			for i := range ops {
				in := Input{Key: fmt.Sprintf("%s%d", prefix, rng.IntN(keys))}
				switch r := rng.IntN(10); {
				case r < 3:
					in.Op, in.Value = 'p', fmt.Sprintf(`{"c":%d,"i":%d}`, id, i)
				case r < 4:
					in.Op = 'd'
				default:
					in.Op = 'g'
				}
				call := time.Since(start).Nanoseconds()
				out := do(id, in)
				ret := time.Since(start).Nanoseconds()
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return history
}
