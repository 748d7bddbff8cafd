package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/proctest"
)

// harness are the import paths, or their prefixes, that the serving binary
// must not link: the chaos harness and the load generator (the cairn-lab
// command, in the lab module) with what they bring (toxiproxy, which brings
// gorilla/mux and zerolog; porcupine through register), the test-support
// packages, the testing package, the client library of the RESP front's
// tests, and the benchmark peers (the bench module).
var harness = []string{
	"testing",
	"github.com/Shopify/toxiproxy/",
	"github.com/gorilla/mux",
	"github.com/rs/zerolog",
	"github.com/anishathalye/porcupine",
	"github.com/cairnstore/cairn/lab/",
	"github.com/cairnstore/cairn/bench/",
	"github.com/cairnstore/cairn/internal/chaosrun",
	"github.com/cairnstore/cairn/internal/loadgen",
	"github.com/cairnstore/cairn/internal/register",
	"github.com/cairnstore/cairn/internal/proctest",
	// The console's browser tests drive Chromium with chromedp (lab module).
	"github.com/chromedp/",
	// The OpenAPI validator of the conformance tests: the binary serves
	// the description as bytes and never reads it.
	"github.com/getkin/kin-openapi",
	"github.com/redis/go-redis/", // the RESP front's tests' client
}

// peers are the modules the benchmarks compare cairn with; they live in
// the bench module's go.mod.
var peers = []string{
	"github.com/bytedance/sonic",
	"github.com/goccy/go-json",
	"github.com/valyala/fastjson",
	"github.com/minio/simdjson-go",
	"github.com/maypok86/otter",
	"github.com/puzpuzpuz/xsync",
	"go.etcd.io/bbolt",
}

// matches reports whether import path p is prefix or lies under it.
func matches(p, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// TestBinaryLinksNoHarness: the serving binary links what it serves with,
// not the harness that tests it nor the peers it is measured against, nor
// any test-support package of cairn (named …test).
func TestBinaryLinksNoHarness(t *testing.T) {
	for _, p := range proctest.Deps(t) {
		for _, bad := range append(harness, peers...) {
			if matches(p, bad) {
				t.Errorf("cmd/cairn links %s (matches %s)", p, bad)
			}
		}
		if strings.HasPrefix(p, "github.com/cairnstore/cairn/") && strings.HasSuffix(p, "test") {
			t.Errorf("cmd/cairn links the test-support package %s", p)
		}
	}
}

// TestModuleRequiresNoPeers: the product's go.mod lists what the product
// uses. The benchmark peers are the bench module's, toxiproxy (and its
// gorilla/mux and zerolog) the lab module's. porcupine stays: the
// linearizability checks of the node's and the cache's tests use it
// through internal/register, and TestBinaryLinksNoHarness keeps it out
// of the binary.
func TestModuleRequiresNoPeers(t *testing.T) {
	out, err := exec.Command("go", "mod", "edit", "-json", "../../go.mod").Output()
	if err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	var mod struct {
		Module  struct{ Path string }
		Require []struct{ Path string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Module.Path != "github.com/cairnstore/cairn" || len(mod.Require) == 0 {
		t.Fatalf("../../go.mod is module %q with %d requirements, want cairn's", mod.Module.Path, len(mod.Require))
	}
	banned := append([]string{"github.com/Shopify/toxiproxy/", "github.com/gorilla/mux", "github.com/rs/zerolog", "github.com/chromedp/"}, peers...)
	for _, r := range mod.Require {
		for _, bad := range banned {
			if matches(r.Path, bad) {
				t.Errorf("go.mod requires %s", r.Path)
			}
		}
	}
}
