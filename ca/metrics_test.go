package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics checks that the CA counts what it does where it does it: an
// issuance (its certificate and its "good" OCSP response signed), a
// refused issuance (no such batch), a revocation (a "revoked" OCSP
// response), a CRL and a refresher run.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(c *Config) { c.Metrics = m })
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "M1", 10); err != nil {
		t.Fatal(err)
	}
	before := series(t, reg)
	rec, err := e.a.IssueDevice(ctx, "M1", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.IssueDevice(ctx, "no-such-batch", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)); err == nil {
		t.Fatal("issued from a batch that does not exist")
	}
	if _, err := e.a.Revoke(ctx, "M1", rec.Serial, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.CRL(ctx, "M1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got := series(t, reg)
	diff := func(k string) float64 { return got[k] - before[k] }
	for k, want := range map[string]float64{
		`metertrust_ca_issuance_total{action="ca.issue.device",outcome="issued"}`: 1,
		`metertrust_ca_ocsp_presigned_total{status="good"}`:                       1,
		`metertrust_ca_ocsp_presigned_total{status="revoked"}`:                    1,
		`metertrust_ca_refresh_runs_total{outcome="ok"}`:                          1,
	} {
		if d := diff(k); d != want {
			t.Errorf("%s went up by %v, want %v", k, d, want)
		}
	}
	if d := diff(`metertrust_ca_issuance_total{action="ca.issue.device",outcome="refused"}`) +
		diff(`metertrust_ca_issuance_total{action="ca.issue.device",outcome="failed"}`); d != 1 {
		t.Errorf("the issuance from no batch counted %v times, want once", d)
	}
	for _, what := range []string{signedCertificate, signedOCSP, signedCRL} {
		if d := diff(`metertrust_ca_signing_duration_seconds{what="` + what + `"}`); d < 1 {
			t.Errorf("signatures of %s went up by %v, want at least 1", what, d)
		}
	}
	if got[`metertrust_ca_refresh_last_success_timestamp_seconds`] != float64(e.clock.Now().Unix()) {
		t.Errorf("last refresh at %v, want the clock's %v", got[`metertrust_ca_refresh_last_success_timestamp_seconds`], e.clock.Now().Unix())
	}
}

// TestIssueOutcome checks how an issuance's error is counted.
func TestIssueOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "issued"},
		{ErrRequest, "refused"},
		{ErrBatchClosed, "refused"},
		{context.Canceled, "refused"},
		{errors.New("ca: storing: disk full"), "failed"},
	} {
		if got := issueOutcome(tc.err); got != tc.want {
			t.Errorf("issueOutcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// series returns each series of reg as name{label="value",...} with its
// value, or a histogram's sample count.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if ls := m.GetLabel(); len(ls) > 0 {
				key += "{"
				for i, l := range ls {
					if i > 0 {
						key += ","
					}
					key += l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}
