package repository

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

func bearer(tok string) string { return "Bearer " + tok }

// TestAuth covers credential checks on the write route.
func TestAuth(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		auth      string
		status    int
		actor     string
		refusal   string
		challenge bool
	}{
		{"publish with basic auth", "/v1/certificates", "Basic YWxpY2U6cHc=", 401, ActorUnknown, "malformed", true},
		{"publish with empty bearer", "/v1/certificates", "Bearer ", 401, ActorUnknown, "malformed", true},
		{"publish by revoker only", "/v1/certificates", bearer(revokeToken), 403, "carol", "lacks the publish permission", false},
		{"publish without token", "/v1/certificates", "", 401, ActorAnonymous, "no operator credential", true},
		{"publish with wrong token", "/v1/certificates", bearer(adminToken + "x"), 401, ActorUnknown, "unknown operator credential", true},
		{"publish with token prefix", "/v1/certificates", bearer(adminToken[:10]), 401, ActorUnknown, "unknown operator credential", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h := map[string]string{"Content-Type": MediaJSON}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			w := f.do(t, req{method: "POST", target: tc.target, headers: h, body: []byte(`{}`)})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			problemOf(t, w)
			if got := w.Header().Get("WWW-Authenticate") != ""; got != tc.challenge {
				t.Errorf("WWW-Authenticate present %t, want %t", got, tc.challenge)
			}
			ev := f.st.events()
			if len(ev) != 1 || ev[0].Actor != tc.actor || ev[0].Outcome != OutcomeRefused || !strings.Contains(ev[0].Details["refusal"].(string), tc.refusal) {
				t.Errorf("audit %+v, want one refusal by %s mentioning %q", ev, tc.actor, tc.refusal)
			}
		})
	}
}

// TestNoRevocationRoute checks that the repository revokes nothing:
// revocation moved to metertrust serve ca. POST /v1/revocations is no
// route, whatever the credential, and nothing is audited or revoked.
func TestNoRevocationRoute(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"ca":"oca","serial":"` + serialOf(f.orgKA) + `","reason":"keyCompromise"}`)
	for _, auth := range []string{"", bearer(adminToken), bearer(publishToken)} {
		h := map[string]string{"Content-Type": MediaJSON}
		if auth != "" {
			h["Authorization"] = auth
		}
		w := f.do(t, req{method: "POST", target: "/v1/revocations", headers: h, body: body})
		if w.Code != 404 && w.Code != 405 {
			t.Errorf("POST /v1/revocations (%q): status %d, want 404 or 405: %s", auth, w.Code, w.Body)
		}
		problemOf(t, w)
	}
	if ev := f.st.events(); len(ev) != 0 {
		t.Errorf("audit events %+v, want none", ev)
	}
	for _, c := range f.st.certs {
		if !c.RevokedAt.IsZero() {
			t.Errorf("certificate %s revoked", serialOf(c))
		}
	}
	for _, r := range f.srv.Routes() {
		if strings.Contains(r.Path, "revocation") {
			t.Errorf("route %v", r)
		}
	}
}

// TestPublish covers POST /v1/certificates.
func TestPublish(t *testing.T) {
	p := newTestPKI(t)
	orgDER := p.orgCert(t, p.oca, "90B3D51F300A0000", smki.RoleNetworkOperator, x509.KeyUsageDigitalSignature)
	kaDER := p.orgCert(t, p.oca, "90B3D51F300B0000", smki.RoleSupplier, x509.KeyUsageKeyAgreement)
	kaNotSupplier := p.orgCert(t, p.oca, "90B3D51F300C0000", smki.RoleNetworkOperator, x509.KeyUsageKeyAgreement)
	devDER := p.deviceCert(t, p.dca, "0012A3FFFE0000AA", x509.KeyUsageDigitalSignature)
	foreign := p.orgCert(t, p.other, "90B3D51F300D0000", smki.RoleSupplier, x509.KeyUsageDigitalSignature)
	pemOf := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	jsonOf := func(v any) []byte { b, _ := json.Marshal(v); return b }
	tamper := append([]byte(nil), orgDER...)
	tamper[len(tamper)-5] ^= 0xFF // inside the signature

	tests := []struct {
		name    string
		token   string
		ctype   string
		body    []byte
		mutate  func(f *fixture)
		status  int
		param   string
		check   func(t *testing.T, v CertificateView)
		audited []string
	}{
		{name: "DER organisation", ctype: MediaPKIXCert, body: orgDER, status: 201, audited: []string{OutcomeAttempt, OutcomeSuccess},
			check: func(t *testing.T, v CertificateView) {
				if v.CA != "oca" || v.Kind != store.KindOrg || v.EUI != "90B3D51F300A0000" || v.Role == nil || v.Role.Code != 3 || v.Usage != store.UsageDS || v.Status != StatusGood {
					t.Errorf("view %+v", v)
				}
			}},
		{name: "PEM device by publisher", token: publishToken, ctype: MediaPEM, body: pemOf(devDER), status: 201, audited: []string{OutcomeAttempt, OutcomeSuccess},
			check: func(t *testing.T, v CertificateView) {
				if v.CA != "E357" || v.Kind != store.KindDevice || v.EUI != "0012A3FFFE0000AA" || v.Role != nil || !v.NotAfter.Equal(smki.NeverExpires) {
					t.Errorf("view %+v", v)
				}
			}},
		{name: "JSON base64 top-up", ctype: MediaJSON, body: jsonOf(PublishRequest{Certificate: base64.StdEncoding.EncodeToString(kaDER), PrepaymentTopUp: true}), status: 201, audited: []string{OutcomeAttempt, OutcomeSuccess},
			check: func(t *testing.T, v CertificateView) {
				if v.Usage != store.UsagePPKA {
					t.Errorf("usage %q, want pp-ka", v.Usage)
				}
			}},
		{name: "JSON PEM", ctype: MediaJSON, body: jsonOf(PublishRequest{Certificate: string(pemOf(kaDER))}), status: 201, audited: []string{OutcomeAttempt, OutcomeSuccess},
			check: func(t *testing.T, v CertificateView) {
				if v.Usage != store.UsageKA {
					t.Errorf("usage %q, want ka", v.Usage)
				}
			}},
		{name: "top-up for a network operator", ctype: MediaJSON, body: jsonOf(PublishRequest{Certificate: base64.StdEncoding.EncodeToString(kaNotSupplier), PrepaymentTopUp: true}), status: 400, param: "prepaymentTopUp", audited: []string{OutcomeRefused}},
		{name: "duplicate", ctype: MediaPKIXCert, body: orgDER, mutate: func(f *fixture) {
			f.st.certs = append(f.st.certs, certRow(t, 99, "oca", orgDER))
		}, status: 409, param: "certificate", audited: []string{OutcomeAttempt, OutcomeFailure}},
		{name: "unknown issuer", ctype: MediaPKIXCert, body: foreign, status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "bad signature", ctype: MediaPKIXCert, body: tamper, status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "root certificate", ctype: MediaPKIXCert, body: p.root.der, status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "closed CA", ctype: MediaPKIXCert, body: devDER, mutate: func(f *fixture) {
			f.st.cas[2].State, f.st.cas[2].ClosedAt = store.CAStateClosed, p.notBefore.Add(-1)
		}, status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "garbage DER", ctype: MediaPKIXCert, body: []byte{0x30, 0x03, 1, 2, 3}, status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "empty body", ctype: MediaPKIXCert, body: nil, status: 400, param: "body", audited: []string{OutcomeRefused}},
		{name: "PEM of a key", ctype: MediaPEM, body: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), status: 400, param: "body", audited: []string{OutcomeRefused}},
		{name: "two PEM blocks", ctype: MediaPEM, body: append(pemOf(orgDER), pemOf(kaDER)...), status: 400, param: "body", audited: []string{OutcomeRefused}},
		{name: "no PEM", ctype: MediaPEM, body: []byte("hello"), status: 400, param: "body", audited: []string{OutcomeRefused}},
		{name: "JSON unknown field", ctype: MediaJSON, body: []byte(`{"certificate":"AA==","ca":"oca"}`), status: 400, param: "body", audited: []string{OutcomeRefused}},
		{name: "JSON no certificate", ctype: MediaJSON, body: []byte(`{}`), status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "JSON not base64", ctype: MediaJSON, body: []byte(`{"certificate":"%%%"}`), status: 400, param: "certificate", audited: []string{OutcomeRefused}},
		{name: "unsupported media type", ctype: "text/plain", body: orgDER, status: 415, param: "Content-Type", audited: []string{OutcomeRefused}},
		{name: "no media type", body: orgDER, status: 415, param: "Content-Type", audited: []string{OutcomeRefused}},
		{name: "too large", ctype: MediaPKIXCert, body: make([]byte, DefaultMaxBodyBytes+1), status: 413, param: "body", audited: []string{OutcomeRefused}},
		{name: "audit log down", ctype: MediaPKIXCert, body: orgDER, mutate: func(f *fixture) { f.st.auditErr = errBoom }, status: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.mutate != nil {
				tc.mutate(f)
			}
			before := len(f.st.certs)
			tok := tc.token
			if tok == "" {
				tok = adminToken
			}
			h := map[string]string{"Authorization": bearer(tok)}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			w := f.do(t, req{method: "POST", target: "/v1/certificates", headers: h, body: tc.body})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			stored := len(f.st.certs) - before
			if tc.status == 201 {
				v := decodeJSON[CertificateView](t, w)
				if loc := w.Header().Get("Location"); loc != v.Links.Self || loc == "" {
					t.Errorf("Location %q, self %q", loc, v.Links.Self)
				}
				if stored != 1 {
					t.Errorf("%d certificates stored, want 1", stored)
				}
				if tc.check != nil {
					tc.check(t, v)
				}
				// The published certificate is now served.
				if g := f.do(t, req{method: "GET", target: v.Links.DER}); g.Code != 200 || g.Body.Len() == 0 {
					t.Errorf("GET %s: %d", v.Links.DER, g.Code)
				}
			} else {
				if p := problemOf(t, w); p.Param != tc.param {
					t.Errorf("problem names %q, want %q: %+v", p.Param, tc.param, p)
				}
				if stored != 0 {
					t.Errorf("%d certificates stored by a refused request", stored)
				}
			}
			var outcomes []string
			for _, e := range f.st.events() {
				if e.Action != ActionPublish {
					t.Errorf("unexpected audit event %+v", e)
				}
				outcomes = append(outcomes, e.Outcome)
			}
			if strings.Join(outcomes, ",") != strings.Join(tc.audited, ",") {
				t.Errorf("audit outcomes %v, want %v", outcomes, tc.audited)
			}
		})
	}
}

// TestNoOperators checks that with no operators configured every write is
// refused.
func TestNoOperators(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.Operators = nil })
	for _, target := range []string{"/v1/certificates"} {
		w := f.do(t, req{method: "POST", target: target, headers: map[string]string{"Authorization": bearer(adminToken), "Content-Type": MediaJSON}, body: []byte(`{}`)})
		if w.Code != 401 {
			t.Errorf("%s: status %d, want 401", target, w.Code)
		}
	}
}
