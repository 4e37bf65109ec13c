package ra_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store"
)

// FuzzServer sends arbitrary requests, as an authenticated DCCKI client
// with or without an operator's token, through the whole API: no input may
// make it fail with a 5xx or answer an error without a problem document.
func FuzzServer(f *testing.F) {
	for _, seed := range []struct{ method, target, ct, op, body string }{
		{"POST", "/v1/revocations", "application/json", "alice", `{"ca":"B1","serial":"01","reason":"keyCompromise"}`},
		{"POST", "/v1/revocations", "application/json", "alice", `{"ca":"B1","serial":"01","reason":1e400}`},
		{"POST", "/v1/crls/oca", "", "alice", ""},
		{"POST", "/v1/certificates/device", "application/json", "alice", `{"batch":"B1","csr":"MIIB"}`},
		{"PUT", "/v1/organisations/90B3D51F30010000", "application/json", "carol", `{"name":"A","roles":["supplier"]}`},
		{"POST", "/v1/requests", "application/json", "", `{"role":"supplier","usage":"ds","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----"}`},
		{"GET", "/v1/requests?state=all&organisation=90B3D51F30010000", "", "bob", ""},
		{"POST", "/v1/requests/req-00000000/approve", "application/json", "alice", `{"reason":"x"}`},
		{"POST", "/v1/requests/req-00000000/reject", "application/json", "carol", `{}`},
		{"GET", "/v1/requests/req-00000000", "", "", ""},
		{"POST", "/v1/requests/device-rekey", "application/json", "", `{"batch":"B1","response":"DF090200000000000000010800000000000000010890B3D51F30000004000002000A0430040302"}`},
		{"POST", "/v1/requests/device-rekey/confirm", "application/json", "", `{"response":"3082"}`},
		{"POST", "/v1/proposals", "application/json", "carol", `{"kind":"batch-open","name":"B2","quota":5,"purpose":"rekey","reason":"r"}`},
		{"GET", "/v1/proposals?state=pending&kind=batch-open&limit=3", "", "alice", ""},
		{"GET", "/v1/proposals/P-AAAAAAAAAAAAAAAA", "", "carol", ""},
		{"POST", "/v1/proposals/P-AAAAAAAAAAAAAAAA/approve", "application/json", "dave", `{"reason":"ok"}`},
		{"POST", "/v1/proposals/P-AAAAAAAAAAAAAAAA/reject", "application/json", "bob", `{"reason":"no"}`},
	} {
		f.Add(seed.method, seed.target, seed.ct, seed.op, []byte(seed.body))
	}
	w := newWorld(f)
	// The caller is a registered supplier, so that the re-key routes read
	// what they are given (the device's response) rather than refuse it
	// at once.
	if err := w.db.SMKI().PutOrganisation(context.Background(), store.Organisation{EUI: "90B3D51F30000004", Name: "Fuzz Supplier",
		Roles: []string{"supplier"}, RegisteredBy: "fuzz", RegisteredAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(w.caller.Certificate[0])
	if err != nil {
		f.Fatal(err)
	}
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	f.Fuzz(func(t *testing.T, method, target, ct, op string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return
		}
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r.TLS = state
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if tok, ok := w.tokens[op]; ok {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		w.srv.Handler().ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, target, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%s %s: error %d without problem+json", method, target, rec.Code)
		}
	})
}
