//go:build !cairndebug

package streambuf

// Debug reports whether the cairndebug build tag is set.
const Debug = false

// guard is empty without the cairndebug tag, so View is just a slice header
// and the accessor check inlines to nothing.
type guard struct{}

func (guard) check() {}

func (b *Buffer) guard() guard { return guard{} }
