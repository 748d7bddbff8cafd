package chaos

import "os"

// Ballast allocates size bytes and writes to every page of them, so they
// count against GOMEMLIMIT and the resident set: memory pressure for a
// node started with a tight limit. The caller keeps the slice reachable
// for as long as the pressure should last (runtime.KeepAlive at the end).
func Ballast(size int64) []byte {
	if size <= 0 {
		return nil
	}
	b := make([]byte, size)
	page := os.Getpagesize()
	for i := 0; i < len(b); i += page {
		b[i] = 1 // a page never written stays unbacked (the kernel's zero page)
	}
	return b
}
