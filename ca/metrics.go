package ca

import (
	"context"
	"crypto"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/store"
)

// Metrics are the CA's Prometheus metrics (metertrust_ca_...): issuances
// by action and outcome, every signature by what it signs, OCSP responses
// signed ahead of time, and the refresher's runs. A nil *Metrics records
// nothing.
type Metrics struct {
	issuance    *prometheus.CounterVec
	signing     *prometheus.HistogramVec
	signErrors  *prometheus.CounterVec
	ocspSigned  *prometheus.CounterVec
	refreshRuns *prometheus.CounterVec
	refreshed   *prometheus.CounterVec
	lastRefresh prometheus.Gauge
}

// What a signature signs, as the label "what" says.
const (
	signedCertificate = "certificate"
	signedCRL         = "crl"
	signedOCSP        = "ocsp"
)

// NewMetrics creates the CA's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		issuance: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "issuance_total",
			Help: "Certificate issuances, by action (ca.issue.device, ca.issue.org, ca.issue.devices for bulk " +
				"issuance, counting certificates) and outcome (issued, refused, failed).",
		}, []string{"action", "outcome"}),
		signing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "signing_duration_seconds",
			Help: "Time to prepare, lint, sign and read back one object with a CA key, by what it signs " +
				"(certificate, crl, ocsp).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 12),
		}, []string{"what"}),
		signErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "signing_errors_total",
			Help: "Signatures that failed (a lint, the key, the read-back), by what they were to sign.",
		}, []string{"what"}),
		ocspSigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "ocsp_presigned_total",
			Help: "OCSP responses signed ahead of time for the repository to serve (at issuance, revocation " +
				"and refresh), by certificate status (good, revoked).",
		}, []string{"status"}),
		refreshRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "refresh_runs_total",
			Help: "Runs of the refresher that re-signs OCSP responses and CRLs close to expiry, by outcome (ok, error).",
		}, []string{"outcome"}),
		refreshed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "refresh_signed_total",
			Help: "Objects the refresher re-signed, by what (ocsp, crl).",
		}, []string{"what"}),
		lastRefresh: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "metertrust", Subsystem: "ca", Name: "refresh_last_success_timestamp_seconds",
			Help: "Unix time of the refresher's last run without error; alert when it falls behind.",
		}),
	}
	for _, c := range []prometheus.Collector{m.issuance, m.signing, m.signErrors, m.ocspSigned, m.refreshRuns, m.refreshed, m.lastRefresh} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every label value the CA can give, so that each series is there
	// (at zero) from the start.
	for _, a := range []string{"ca.issue.device", "ca.issue.org", "ca.issue.devices"} {
		for _, o := range []string{"issued", "refused", "failed"} {
			m.issuance.WithLabelValues(a, o)
		}
	}
	for _, w := range []string{signedCertificate, signedCRL, signedOCSP} {
		m.signing.WithLabelValues(w)
		m.signErrors.WithLabelValues(w)
	}
	m.ocspSigned.WithLabelValues("good")
	m.ocspSigned.WithLabelValues("revoked")
	m.refreshRuns.WithLabelValues("ok")
	m.refreshRuns.WithLabelValues("error")
	m.refreshed.WithLabelValues(signedOCSP)
	m.refreshed.WithLabelValues(signedCRL)
	return m, nil
}

func (m *Metrics) signed(what string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.signing.WithLabelValues(what).Observe(time.Since(start).Seconds())
	if err != nil {
		m.signErrors.WithLabelValues(what).Inc()
	}
}

func (m *Metrics) issued(action, outcome string, n int) {
	if m != nil {
		m.issuance.WithLabelValues(action, outcome).Add(float64(n))
	}
}

// issueOutcome names the outcome of an issuance that returned err:
// refused for what the caller asked wrongly or a closed batch, failed
// for the rest.
func issueOutcome(err error) string {
	switch {
	case err == nil:
		return "issued"
	case errors.Is(err, ErrRequest), errors.Is(err, ErrBatchClosed), errors.Is(err, context.Canceled):
		return "refused"
	}
	return "failed"
}

// sign is signUntimed, timed and counted.
func (a *Authority) sign(ctx context.Context, iss *issuer, selfKey crypto.Signer, t *template) (*issued, error) {
	start := time.Now()
	is, err := a.signUntimed(ctx, iss, selfKey, t)
	a.metrics.signed(signedCertificate, start, err)
	return is, err
}

// signOCSP is signOCSPUntimed, timed and counted: every OCSP response the
// CA signs is signed ahead of time, for the repository to serve.
func (a *Authority) signOCSP(s *ocspSigner, c store.Certificate) (store.OCSPResponse, error) {
	start := time.Now()
	r, err := a.signOCSPUntimed(s, c)
	a.metrics.signed(signedOCSP, start, err)
	if err == nil && a.metrics != nil {
		status := "good"
		if !c.RevokedAt.IsZero() {
			status = "revoked"
		}
		a.metrics.ocspSigned.WithLabelValues(status).Inc()
	}
	return r, err
}

// signCRL is signCRLUntimed, timed and counted.
func (a *Authority) signCRL(ctx context.Context, iss *issuer, ttl time.Duration) (store.CRL, error) {
	start := time.Now()
	crl, err := a.signCRLUntimed(ctx, iss, ttl)
	a.metrics.signed(signedCRL, start, err)
	return crl, err
}

// issue is issueUncounted, counted by action and outcome.
func (a *Authority) issue(ctx context.Context, action, object string, details map[string]any, reserve bool, prepare func() (*issuer, *template, error)) (recorded, error) {
	rec, err := a.issueUncounted(ctx, action, object, details, reserve, prepare)
	a.metrics.issued(action, issueOutcome(err), 1)
	return rec, err
}

// refreshed records one refresher run.
func (m *Metrics) refreshDone(ocspN, crlN int, err error, now time.Time) {
	if m == nil {
		return
	}
	m.refreshed.WithLabelValues(signedOCSP).Add(float64(ocspN))
	m.refreshed.WithLabelValues(signedCRL).Add(float64(crlN))
	if err != nil {
		m.refreshRuns.WithLabelValues("error").Inc()
		return
	}
	m.refreshRuns.WithLabelValues("ok").Inc()
	m.lastRefresh.Set(float64(now.Unix()))
}
