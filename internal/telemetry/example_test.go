package telemetry_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"

	"github.com/cairnstore/cairn/internal/telemetry"
)

// A node's wiring: telemetry from flags, the middleware per route, the
// admin endpoints, a logger, and a client transport. (Compiled, not run: it
// would listen.)
func Example() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Exporter:    os.Getenv("CAIRN_TRACE_EXPORTER"), // --trace-exporter
		SampleRatio: 1,                                 // --trace-sample-ratio
		Version:     "v0.1.0",
		NodeID:      "node-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Shutdown(ctx)

	var level slog.LevelVar // turned up to Debug for the access log
	logger, _ := telemetry.NewLogger(os.Stderr, "json", &level)
	slog.SetDefault(logger)

	api := http.NewServeMux()
	mw := tel.Middleware(nil) // route = r.Pattern, known because it runs inside the mux
	api.Handle("GET /v1/tenants/{tenant}/docs/{key...}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slog.InfoContext(r.Context(), "served") // carries trace_id, span_id, request_id, tenant
	})))

	admin := http.NewServeMux()
	admin.Handle("/metrics", tel.MetricsHandler())
	admin.Handle("/admin/tenants", tel.TenantStatsHandler())
	admin.Handle("/debug/pprof/", telemetry.PprofHandler())

	client := &http.Client{Transport: telemetry.InjectTransport(nil)}
	_ = client
	go http.ListenAndServe("127.0.0.1:9091", admin)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", api))
}
