package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/server"
	"github.com/cairnstore/cairn/internal/server/servertest"
	"github.com/cairnstore/cairn/internal/telemetry"
)

// BenchmarkOverviewPoll is one poll of the overview page against a
// registry that has seen requests on a few routes: what an open overview
// costs the node every 2 s.
func BenchmarkOverviewPoll(b *testing.B) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{NoGlobal: true, Exporter: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	mem := &servertest.Mem{}
	api, err := server.New(server.Options{Docs: mem, Auth: server.Auth{Admin: [][32]byte{server.HashToken(admin)}},
		Middleware: []server.Middleware{tel.Middleware(nil)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []string{"PUT", "GET", "GET", "DELETE"} {
		r := httptest.NewRequest(m, "/v1/tenants/acme/docs/k", strings.NewReader(`{"i":1}`))
		r.Header.Set("Authorization", "Bearer "+admin)
		api.ServeHTTP(httptest.NewRecorder(), r)
	}
	f := newFixture(b, func(o *Options) { o.API, o.Registry = api, tel.Metrics.Registry() })
	s := f.c.sess.create()
	ck := f.c.cookie(s)
	b.ReportAllocs()
	for b.Loop() {
		f.clock.add(2 * time.Second)
		r := httptest.NewRequest("GET", "/console/api/overview", nil)
		r.RemoteAddr, r.Host = local, "127.0.0.1:7071"
		r.AddCookie(ck)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("overview: %d %s", w.Code, w.Body)
		}
	}
}
