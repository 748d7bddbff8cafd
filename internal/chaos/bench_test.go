package chaos

import (
	"testing"

	"github.com/cairnstore/cairn/internal/backend"
	"github.com/cairnstore/cairn/internal/backend/mem"
)

// BenchmarkStat prices the wrapper: passing through without a profile
// (what every backend of a --enable-chaos node pays until a profile is
// set), and drawing every fault of a profile that injects none of them.
func BenchmarkStat(b *testing.B) {
	m := mem.New("m")
	putDirect(b, m, "k", `{}`)
	quiet := Wrap(m, 1, nil)
	drawing := Wrap(m, 1, nil)
	drawing.SetProfile(Profile{FailBefore: 1e-12, FailAfter: 1e-12, Throttle: 1e-12})
	for name, be := range map[string]backend.Backend{"direct": m, "no-profile": quiet, "profile": drawing} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := be.Stat(bg, tenant, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
