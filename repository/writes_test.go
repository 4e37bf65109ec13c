package repository

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

func bearer(tok string) string { return "Bearer " + tok }

// TestAuth covers credential checks on both write routes.
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
		{"revoke without token", "/v1/revocations", "", 401, ActorAnonymous, "no operator credential", true},
		{"revoke with basic auth", "/v1/revocations", "Basic YWxpY2U6cHc=", 401, ActorUnknown, "malformed", true},
		{"revoke with empty bearer", "/v1/revocations", "Bearer ", 401, ActorUnknown, "malformed", true},
		{"revoke with wrong token", "/v1/revocations", bearer("not-a-token"), 401, ActorUnknown, "unknown operator credential", true},
		{"revoke by publisher", "/v1/revocations", bearer(publishToken), 403, "bob", "lacks the revoke permission", false},
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

// TestRevoke covers POST /v1/revocations.
func TestRevoke(t *testing.T) {
	type body map[string]any
	tests := []struct {
		name     string
		ctype    string
		body     any // a body map, or a raw string
		status   int
		param    string
		outcomes []string // audit outcomes by alice, in order
		revoked  bool
	}{
		{name: "by reason name", body: body{"ca": "oca", "serial": "KA", "reason": "keyCompromise"}, status: 200, outcomes: []string{OutcomeAttempt, OutcomeSuccess}, revoked: true},
		{name: "by reason code", body: body{"ca": "oca", "serial": "KA", "reason": 4}, status: 200, outcomes: []string{OutcomeAttempt, OutcomeSuccess}, revoked: true},
		{name: "unknown certificate", body: body{"ca": "oca", "serial": "0BADC0DE", "reason": 1}, status: 404, param: "serial", outcomes: []string{OutcomeRefused}},
		{name: "wrong CA", body: body{"ca": "E357", "serial": "KA", "reason": 1}, status: 404, param: "serial", outcomes: []string{OutcomeRefused}},
		{name: "already revoked", body: body{"ca": "oca", "serial": "REVOKED", "reason": 1}, status: 409, param: "serial", outcomes: []string{OutcomeRefused}},
		{name: "certificate hold", body: body{"ca": "oca", "serial": "KA", "reason": "certificateHold"}, status: 400, param: "reason", outcomes: []string{OutcomeRefused}},
		{name: "reason 7", body: body{"ca": "oca", "serial": "KA", "reason": 7}, status: 400, param: "reason", outcomes: []string{OutcomeRefused}},
		{name: "reason of wrong type", body: body{"ca": "oca", "serial": "KA", "reason": true}, status: 400, param: "reason", outcomes: []string{OutcomeRefused}},
		{name: "missing reason", body: body{"ca": "oca", "serial": "KA"}, status: 400, param: "reason", outcomes: []string{OutcomeRefused}},
		{name: "missing CA", body: body{"serial": "KA", "reason": 1}, status: 400, param: "ca", outcomes: []string{OutcomeRefused}},
		{name: "bad CA", body: body{"ca": "../x", "serial": "KA", "reason": 1}, status: 400, param: "ca", outcomes: []string{OutcomeRefused}},
		{name: "missing serial", body: body{"ca": "oca", "reason": 1}, status: 400, param: "serial", outcomes: []string{OutcomeRefused}},
		{name: "bad serial", body: body{"ca": "oca", "serial": "xyz", "reason": 1}, status: 400, param: "serial", outcomes: []string{OutcomeRefused}},
		{name: "unknown field", body: body{"ca": "oca", "serial": "KA", "reason": 1, "force": true}, status: 400, param: "body", outcomes: []string{OutcomeRefused}},
		{name: "trailing data", body: `{"ca":"oca","serial":"01","reason":1} {}`, status: 400, param: "body", outcomes: []string{OutcomeRefused}},
		{name: "not JSON", body: `ca=oca`, status: 400, param: "body", outcomes: []string{OutcomeRefused}},
		{name: "wrong media type", ctype: "text/plain", body: body{"ca": "oca", "serial": "KA", "reason": 1}, status: 415, param: "Content-Type", outcomes: []string{OutcomeRefused}},
		{name: "too large", body: `{"ca":"oca","serial":"01","reason":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, status: 413, param: "body", outcomes: []string{OutcomeRefused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.st.certs[1].RevokedAt = testNow.Add(-time.Hour)
			f.st.certs[1].Reason = 4
			revokedSerial := serialOf(f.st.certs[1])
			target := f.st.certs[3] // a good organisation certificate
			var raw []byte
			switch b := tc.body.(type) {
			case string:
				raw = []byte(b)
			case body:
				// Placeholders stand for serials known only at run time.
				switch b["serial"] {
				case "KA":
					b["serial"] = serialOf(target)
				case "REVOKED":
					b["serial"] = revokedSerial
				}
				raw, _ = json.Marshal(b)
			}
			ctype := tc.ctype
			if ctype == "" {
				ctype = MediaJSON + "; charset=utf-8"
			}
			w := f.do(t, req{method: "POST", target: "/v1/revocations", headers: map[string]string{"Authorization": bearer(adminToken), "Content-Type": ctype}, body: raw})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status >= 400 {
				if p := problemOf(t, w); p.Param != tc.param {
					t.Errorf("problem names %q, want %q: %+v", p.Param, tc.param, p)
				}
			} else {
				v := decodeJSON[CertificateView](t, w)
				if v.Status != StatusRevoked || v.RevokedAt == nil || !v.RevokedAt.Equal(testNow) || v.RevocationReason == "" {
					t.Errorf("view %+v", v)
				}
			}
			var outcomes []string
			for _, e := range f.st.events() {
				if e.Actor != "alice" || e.Action != ActionRevoke {
					t.Errorf("unexpected audit event %+v", e)
				}
				outcomes = append(outcomes, e.Outcome)
			}
			if strings.Join(outcomes, ",") != strings.Join(tc.outcomes, ",") {
				t.Errorf("audit outcomes %v, want %v", outcomes, tc.outcomes)
			}
			if got := !f.st.certs[3].RevokedAt.IsZero(); got != tc.revoked {
				t.Errorf("revoked %t, want %t", got, tc.revoked)
			}
		})
	}
}

// TestRevokeFailures covers a revoker or audit log that fails.
func TestRevokeFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fixture)
		status   int
		outcomes []string
	}{
		{"revoker fails", func(f *fixture) { f.rev.err = errBoom }, 500, []string{OutcomeAttempt, OutcomeFailure}},
		{"revoker says not found", func(f *fixture) { f.rev.err = store.ErrNotFound }, 404, []string{OutcomeAttempt, OutcomeFailure}},
		{"revoker says conflict", func(f *fixture) { f.rev.err = store.ErrConflict }, 409, []string{OutcomeAttempt, OutcomeFailure}},
		{"audit log down", func(f *fixture) { f.st.auditErr = errBoom }, 500, nil},
		{"store down", func(f *fixture) { f.st.failWith = errBoom }, 500, []string{OutcomeRefused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(f)
			b, _ := json.Marshal(map[string]any{"ca": "oca", "serial": serialOf(f.orgKA), "reason": "superseded"})
			w := f.do(t, req{method: "POST", target: "/v1/revocations", headers: map[string]string{"Authorization": bearer(adminToken), "Content-Type": MediaJSON}, body: b})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			problemOf(t, w)
			var outcomes []string
			for _, e := range f.st.events() {
				outcomes = append(outcomes, e.Outcome)
			}
			if strings.Join(outcomes, ",") != strings.Join(tc.outcomes, ",") {
				t.Errorf("audit outcomes %v, want %v", outcomes, tc.outcomes)
			}
			if tc.name == "audit log down" && !f.st.certs[1].RevokedAt.IsZero() {
				t.Error("revoked without an audit record")
			}
		})
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
	for _, target := range []string{"/v1/certificates", "/v1/revocations"} {
		w := f.do(t, req{method: "POST", target: target, headers: map[string]string{"Authorization": bearer(adminToken), "Content-Type": MediaJSON}, body: []byte(`{}`)})
		if w.Code != 401 {
			t.Errorf("%s: status %d, want 401", target, w.Code)
		}
	}
}
