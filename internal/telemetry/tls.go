package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/internal/tlscert"
)

// tlsMetrics follow the certificate a node serves (cairn serve --tls-cert).
type tlsMetrics struct {
	reloads  *prometheus.CounterVec // outcome
	notAfter *prometheus.GaugeVec   // no labels: a series only once set
}

func newTLSMetrics(f factory) tlsMetrics {
	m := tlsMetrics{
		reloads: f.counterVec("cairn_tls_certificate_reloads_total",
			"Reloads of the TLS certificate files (SIGHUP or a change of the files), by outcome (ok or error; on error the previous certificate is still served).", "outcome"),
		notAfter: f.gaugeVec("cairn_tls_certificate_expiry_timestamp_seconds",
			"When the TLS certificate being served expires, in Unix seconds: the earlier NotAfter of the leaf and of the intermediate given with it that issued it; absent without TLS."),
	}
	// Both outcomes exist at zero, so increase() sees the first failure.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	return m
}

// TLSCertificate records when the certificate a node serves from its start
// expires.
func (m *Metrics) TLSCertificate(notAfter time.Time) {
	m.tls.notAfter.WithLabelValues().Set(float64(notAfter.Unix()))
}

// TLSReload counts a reload of the certificate files and records the
// certificate served after it (the previous one when err is not nil); it
// is a tlscert.Options.OnReload.
func (m *Metrics) TLSReload(served tlscert.Served, err error) {
	m.TLSCertificate(served.NotAfter)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.tls.reloads.WithLabelValues(outcome).Inc()
}
