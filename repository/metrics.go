package repository

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/apiserver"
)

// Metrics are the repository's Prometheus metrics: its requests
// (metertrust_repository_http_...) and its OCSP answers by outcome. A nil
// *Metrics records nothing.
type Metrics struct {
	http *apiserver.HTTPMetrics
	ocsp *prometheus.CounterVec
}

// The outcomes of an OCSP request, as metertrust_repository_ocsp_responses_total
// labels them.
const (
	ocspAnswered     = "answered"
	ocspMalformed    = "malformed"
	ocspUnauthorized = "unauthorized"
	ocspError        = "error"
)

// NewMetrics creates the repository's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	h, err := apiserver.NewHTTPMetrics(reg, "repository")
	if err != nil {
		return nil, err
	}
	m := &Metrics{http: h, ocsp: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metertrust", Subsystem: "repository", Name: "ocsp_responses_total",
		Help: "OCSP requests answered, by outcome: answered (a pre-signed response), malformed, " +
			"unauthorized (no response for that certificate, or an unknown CA) or error (including tryLater).",
	}, []string{"outcome"})}
	if err := reg.Register(m.ocsp); err != nil {
		return nil, err
	}
	for _, o := range []string{ocspAnswered, ocspMalformed, ocspUnauthorized, ocspError} {
		m.ocsp.WithLabelValues(o)
	}
	return m, nil
}

func (m *Metrics) httpMetrics() *apiserver.HTTPMetrics {
	if m == nil {
		return nil
	}
	return m.http
}

func (m *Metrics) ocspAnswer(outcome string) {
	if m != nil {
		m.ocsp.WithLabelValues(outcome).Inc()
	}
}
