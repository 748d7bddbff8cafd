//go:build tools

// Package tools pins modules that the project depends on before the code that
// imports them lands, so parallel work does not race on go.mod.
package tools

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/bytedance/sonic"
	_ "github.com/cockroachdb/pebble/v2"
	_ "github.com/edsrzf/mmap-go"
	_ "github.com/failsafe-go/failsafe-go"
	_ "github.com/goccy/go-json"
	_ "github.com/maypok86/otter/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/puzpuzpuz/xsync/v4"
	_ "github.com/valyala/fastjson"
	_ "go.etcd.io/bbolt"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.uber.org/goleak"
	_ "golang.org/x/term"
)
