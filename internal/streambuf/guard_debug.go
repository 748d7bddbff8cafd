//go:build cairndebug

package streambuf

// Debug reports whether the cairndebug build tag is set.
const Debug = true

// guard ties a short-lived View to the generation of the Buffer that made it.
// A nil buf marks a long-lived view, which is never checked.
type guard struct {
	buf *Buffer
	gen uint64
}

func (g guard) check() {
	if g.buf != nil && g.buf.gen.Load() != g.gen {
		panic("streambuf: use of short-lived view after Reset (view from generation " +
			itoa(g.gen) + ", buffer now at " + itoa(g.buf.gen.Load()) +
			"); copy or intern data that must outlive its batch")
	}
}

func (b *Buffer) guard() guard { return guard{buf: b, gen: b.gen.Load()} }

// itoa avoids importing strconv just for a panic message.
func itoa(n uint64) string {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(d[i:])
		}
	}
}
