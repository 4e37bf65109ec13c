package repository

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

const (
	supplierEUI = "90B3D51F30010000"
	networkEUI  = "90B3D51F30020000"
	deviceEUI   = "0012A3FFFE000001"

	adminToken   = "admin-token-not-a-real-secret"
	publishToken = "publisher-token-not-a-real-secret"
	revokeToken  = "revoker-token-not-a-real-secret"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	pki    *testPKI
	st     *fakeStore
	ocsp   *fakeResponder
	srv    *Server
	h      http.Handler
	logs   *bytes.Buffer
	orgDS  store.Certificate // supplier DS from the OCA
	orgKA  store.Certificate // supplier KA from the OCA
	devKA  store.Certificate // device KA from the DCA
	ocspRq []byte            // a well-formed OCSP request for orgDS
}

// certRow is the store row for a certificate, read with smki.
func certRow(t testing.TB, id int64, ca string, der []byte) store.Certificate {
	t.Helper()
	sc, err := smki.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := store.Certificate{ID: id, CA: ca, Serial: sc.SerialNumber.Bytes(), Kind: storeKind(sc.Kind), Role: storeRole(sc),
		Usage: storeUsage(sc), NotBefore: sc.NotBefore, NotAfter: sc.NotAfter, DER: der}
	if !sc.EUI.IsZero() {
		c.EUI = sc.EUI.String()
	}
	return c
}

func newFixture(t *testing.T, mutate ...func(*Config, *Deps)) *fixture {
	t.Helper()
	return buildFixture(t, mutate...)
}

// newFuzzFixture is newFixture for fuzz targets.
func newFuzzFixture(f *testing.F) *fixture { return buildFixture(f) }

func buildFixture(t testing.TB, mutate ...func(*Config, *Deps)) *fixture {
	t.Helper()
	p := newTestPKI(t)
	f := &fixture{pki: p, st: &fakeStore{crls: map[string]store.CRL{}}, logs: &bytes.Buffer{}}
	f.st.cas = []store.CA{p.root.storeCA("root", ""), p.oca.storeCA("oca", "root"), p.dca.storeCA("dca", "root")}
	f.orgDS = certRow(t, 1, "oca", p.orgCert(t, p.oca, supplierEUI, smki.RoleSupplier, x509.KeyUsageDigitalSignature))
	f.orgKA = certRow(t, 2, "oca", p.orgCert(t, p.oca, supplierEUI, smki.RoleSupplier, x509.KeyUsageKeyAgreement))
	f.devKA = certRow(t, 3, "E357", p.deviceCert(t, p.dca, deviceEUI, x509.KeyUsageKeyAgreement))
	f.st.certs = []store.Certificate{f.orgDS, f.orgKA, f.devKA,
		certRow(t, 4, "oca", p.orgCert(t, p.oca, networkEUI, smki.RoleNetworkOperator, x509.KeyUsageDigitalSignature))}
	f.st.crls["oca"] = store.CRL{CA: "oca", Number: 7, ThisUpdate: testNow.Add(-time.Hour), NextUpdate: testNow.Add(23 * time.Hour), DER: []byte("crl-der-oca")}
	f.st.crls["E357"] = store.CRL{CA: "E357", Number: 2, ThisUpdate: testNow.Add(-48 * time.Hour), NextUpdate: testNow.Add(-24 * time.Hour), DER: []byte("crl-der-dca")}

	leaf := &x509.Certificate{SerialNumber: new(big.Int).SetBytes(f.orgDS.Serial)}
	var err error
	f.ocspRq, err = ocsp.CreateRequest(leaf, p.oca.cert, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.CreateResponse(p.oca.cert, p.oca.cert, ocsp.Response{
		Status: ocsp.Good, SerialNumber: leaf.SerialNumber,
		ThisUpdate: testNow.Add(-time.Hour), NextUpdate: testNow.Add(3 * time.Hour),
	}, p.oca.key)
	if err != nil {
		t.Fatal(err)
	}
	f.ocsp = &fakeResponder{resp: resp}

	cfg := Config{Operators: []Operator{
		{Name: "alice", TokenSHA256: HashToken(adminToken), Permissions: []Permission{PermPublish, PermRevoke}},
		{Name: "bob", TokenSHA256: strings.ToUpper(HashToken(publishToken)), Permissions: []Permission{PermPublish}},
		// carol holds only revoke, which grants nothing in the repository.
		{Name: "carol", TokenSHA256: HashToken(revokeToken), Permissions: []Permission{PermRevoke}},
	}}
	deps := Deps{Certs: f.st, CAs: f.st, CRLs: f.st, Audit: f.st, Publisher: f.st, OCSP: f.ocsp,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return testNow }}
	for _, m := range mutate {
		m(&cfg, &deps)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	f.srv = New(cfg, deps)
	f.h = f.srv.Handler()
	return f
}

type req struct {
	method  string
	target  string
	headers map[string]string
	body    []byte
}

func (f *fixture) do(t testing.TB, r req) *httptest.ResponseRecorder {
	t.Helper()
	hr := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, hr)
	return w
}

func decodeJSON[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T from %q: %v", v, w.Body.String(), err)
	}
	return v
}

func problemOf(t *testing.T, w *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != MediaProblem {
		t.Fatalf("Content-Type = %q, want %q (body %q)", ct, MediaProblem, w.Body.String())
	}
	p := decodeJSON[Problem](t, w)
	if p.Status != w.Code {
		t.Errorf("problem status %d != HTTP status %d", p.Status, w.Code)
	}
	if !strings.HasPrefix(p.Type, ProblemTypeBase) || p.Title == "" || p.Detail == "" {
		t.Errorf("incomplete problem %+v", p)
	}
	return p
}

func serialOf(c store.Certificate) string { return FormatSerial(c.Serial) }

// TestReadRoutes exercises every read route with good and bad input.
func TestReadRoutes(t *testing.T) {
	f := newFixture(t)
	dsPath := "/v1/certificates/oca/" + serialOf(f.orgDS)
	tests := []struct {
		name      string
		req       req
		status    int
		ctype     string
		param     string // for problems: the parameter named
		check     func(t *testing.T, w *httptest.ResponseRecorder)
		wantQuery func(t *testing.T, q store.CertQuery)
	}{
		{name: "healthz", req: req{method: "GET", target: "/healthz"}, status: 200, ctype: MediaJSON},
		{name: "all certificates", req: req{method: "GET", target: "/v1/certificates"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				l := decodeJSON[CertificateList](t, w)
				if len(l.Certificates) != 4 || l.Next != "" {
					t.Errorf("got %d certificates, next %q; want 4, none", len(l.Certificates), l.Next)
				}
			},
			wantQuery: func(t *testing.T, q store.CertQuery) {
				if q.Limit != DefaultPageSize+1 {
					t.Errorf("store asked for %d, want default page size + 1 = %d", q.Limit, DefaultPageSize+1)
				}
			}},
		{name: "by grouped EUI and role name", req: req{method: "GET", target: "/v1/certificates?eui=90-b3-d5-1f-30-01-00-00&role=supplier&usage=ds"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				l := decodeJSON[CertificateList](t, w)
				if len(l.Certificates) != 1 {
					t.Fatalf("got %d certificates, want 1", len(l.Certificates))
				}
				c := l.Certificates[0]
				if c.Serial != serialOf(f.orgDS) || c.EUI != supplierEUI || c.Role == nil || c.Role.Code != 2 || c.Role.Name != "supplier" ||
					c.Usage != store.UsageDS || c.Status != StatusGood || c.Kind != store.KindOrg {
					t.Errorf("unexpected view %+v", c)
				}
				if c.Links.Self != dsPath || c.Links.DER != dsPath+".der" || c.Links.CA != "/v1/cas/oca" || c.Links.CRL != "/v1/crl/oca" {
					t.Errorf("links %+v", c.Links)
				}
			},
			wantQuery: func(t *testing.T, q store.CertQuery) {
				if q.EUI != supplierEUI || q.Role == nil || *q.Role != 2 || q.Usage != store.UsageDS || !q.IncludeRevoked {
					t.Errorf("query %+v", q)
				}
			}},
		{name: "by role code and kind", req: req{method: "GET", target: "/v1/certificates?role=3&kind=org"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if l := decodeJSON[CertificateList](t, w); len(l.Certificates) != 1 || l.Certificates[0].EUI != networkEUI {
					t.Errorf("got %+v", l)
				}
			}},
		{name: "device by EUI has no role", req: req{method: "GET", target: "/v1/certificates?eui=" + deviceEUI + "&kind=device&usage=keyAgreement"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				l := decodeJSON[CertificateList](t, w)
				if len(l.Certificates) != 1 || l.Certificates[0].Role != nil || l.Certificates[0].CA != "E357" {
					t.Errorf("got %+v", l)
				}
			}},
		{name: "by serial and CA", req: req{method: "GET", target: "/v1/certificates?ca=oca&serial=" + strings.ToLower(serialOf(f.orgKA))}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if l := decodeJSON[CertificateList](t, w); len(l.Certificates) != 1 || l.Certificates[0].Usage != store.UsageKA {
					t.Errorf("got %+v", l)
				}
			}},
		{name: "by user role", req: req{method: "GET", target: "/v1/certificates?userRole=is"}, status: 200, ctype: MediaJSON,
			wantQuery: func(t *testing.T, q store.CertQuery) {
				if q.UserRole != "IS" {
					t.Errorf("query %+v", q)
				}
			}},
		{name: "good only", req: req{method: "GET", target: "/v1/certificates?status=good&kind=organisation&usage=keyAgreement"}, status: 200, ctype: MediaJSON,
			wantQuery: func(t *testing.T, q store.CertQuery) {
				if q.IncludeRevoked || q.Kind != store.KindOrg || q.Usage != store.UsageKA {
					t.Errorf("query %+v", q)
				}
			}},
		{name: "bad status", req: req{method: "GET", target: "/v1/certificates?status=revoked"}, status: 400, param: "status"},
		{name: "no match is an empty list", req: req{method: "GET", target: "/v1/certificates?eui=0000000000000001"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if !strings.Contains(w.Body.String(), `"certificates":[]`) {
					t.Errorf("body %s, want an empty array", w.Body)
				}
			}},
		{name: "max limit", req: req{method: "GET", target: "/v1/certificates?limit=1000"}, status: 200, ctype: MediaJSON},
		{name: "bad EUI", req: req{method: "GET", target: "/v1/certificates?eui=90B3D51F3001"}, status: 400, param: "eui"},
		{name: "malformed escape", req: req{method: "GET", target: "/v1/certificates?eui=%zz"}, status: 400, param: "query"},
		{name: "semicolon separator", req: req{method: "GET", target: "/v1/certificates?eui=90B3D51F30010000;role=2"}, status: 400, param: "query"},
		{name: "bad EUI hex", req: req{method: "GET", target: "/v1/certificates?eui=ZZB3D51F30010000"}, status: 400, param: "eui"},
		{name: "bad role", req: req{method: "GET", target: "/v1/certificates?role=king"}, status: 400, param: "role"},
		{name: "bad user role", req: req{method: "GET", target: "/v1/certificates?userRole=XX"}, status: 400, param: "userRole"},
		{name: "bad usage", req: req{method: "GET", target: "/v1/certificates?usage=keyCertSign"}, status: 400, param: "usage"},
		{name: "bad kind", req: req{method: "GET", target: "/v1/certificates?kind=leaf"}, status: 400, param: "kind"},
		{name: "bad serial", req: req{method: "GET", target: "/v1/certificates?serial=xyz"}, status: 400, param: "serial"},
		{name: "bad ca", req: req{method: "GET", target: "/v1/certificates?ca=" + url.QueryEscape("a/b")}, status: 400, param: "ca"},
		{name: "bad cursor", req: req{method: "GET", target: "/v1/certificates?after=-1"}, status: 400, param: "after"},
		{name: "limit zero", req: req{method: "GET", target: "/v1/certificates?limit=0"}, status: 400, param: "limit"},
		{name: "limit too big", req: req{method: "GET", target: "/v1/certificates?limit=1001"}, status: 400, param: "limit"},
		{name: "unknown parameter", req: req{method: "GET", target: "/v1/certificates?colour=red"}, status: 400, param: "colour"},
		{name: "overlong value", req: req{method: "GET", target: "/v1/certificates?ca=" + strings.Repeat("a", 129)}, status: 400, param: "ca"},
		{name: "repeated parameter", req: req{method: "GET", target: "/v1/certificates?role=2&role=3"}, status: 400, param: "role"},

		{name: "certificate JSON", req: req{method: "GET", target: dsPath}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if v := decodeJSON[CertificateView](t, w); v.Serial != serialOf(f.orgDS) || v.Links.PEM != dsPath+".pem" {
					t.Errorf("got %+v", v)
				}
			}},
		{name: "certificate lower-case serial with leading zeros", req: req{method: "GET", target: "/v1/certificates/oca/00" + strings.ToLower(serialOf(f.orgDS))}, status: 200, ctype: MediaJSON},
		{name: "certificate DER by suffix", req: req{method: "GET", target: dsPath + ".der"}, status: 200, ctype: MediaPKIXCert,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if !bytes.Equal(w.Body.Bytes(), f.orgDS.DER) {
					t.Error("DER differs")
				}
			}},
		{name: "certificate DER by Accept", req: req{method: "GET", target: dsPath, headers: map[string]string{"Accept": "application/json;q=0.5, application/pkix-cert"}}, status: 200, ctype: MediaPKIXCert},
		{name: "certificate JSON by Accept q", req: req{method: "GET", target: dsPath, headers: map[string]string{"Accept": "application/pkix-cert;q=0.1, application/json"}}, status: 200, ctype: MediaJSON},
		{name: "certificate PEM by suffix", req: req{method: "GET", target: dsPath + ".pem"}, status: 200, ctype: MediaPEM,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				b, _ := pem.Decode(w.Body.Bytes())
				if b == nil || b.Type != "CERTIFICATE" || !bytes.Equal(b.Bytes, f.orgDS.DER) {
					t.Error("PEM does not hold the certificate")
				}
			}},
		{name: "certificate unknown serial", req: req{method: "GET", target: "/v1/certificates/oca/0BADC0DE"}, status: 404, param: "serial"},
		{name: "certificate wrong CA", req: req{method: "GET", target: "/v1/certificates/E357/" + serialOf(f.orgDS)}, status: 404, param: "serial"},
		{name: "certificate bad serial", req: req{method: "GET", target: "/v1/certificates/oca/not-hex"}, status: 400, param: "serial"},
		{name: "certificate serial too long", req: req{method: "GET", target: "/v1/certificates/oca/" + strings.Repeat("7F", 21)}, status: 400, param: "serial"},
		{name: "certificate bad CA", req: req{method: "GET", target: "/v1/certificates/o%20ca/01"}, status: 400, param: "ca"},

		{name: "CAs", req: req{method: "GET", target: "/v1/cas"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if strings.Contains(w.Body.String(), "pin-value") || strings.Contains(w.Body.String(), "pkcs11") {
					t.Fatal("CA list leaks key URIs")
				}
				l := decodeJSON[CAList](t, w)
				if len(l.CAs) != 3 || l.CAs[1].Name != "oca" || l.CAs[1].Links.Parent != "/v1/cas/root" || l.CAs[0].Links.Parent != "" {
					t.Errorf("got %+v", l)
				}
			}},
		{name: "CA JSON", req: req{method: "GET", target: "/v1/cas/E357"}, status: 200, ctype: MediaJSON,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if strings.Contains(w.Body.String(), "pkcs11") {
					t.Fatal("CA view leaks its key URI")
				}
				if v := decodeJSON[CAView](t, w); v.Kind != "dca" || v.State != "active" || v.Links.Certificate != "/v1/cas/E357/certificate" {
					t.Errorf("got %+v", v)
				}
			}},
		{name: "CA DER by suffix", req: req{method: "GET", target: "/v1/cas/oca.der"}, status: 200, ctype: MediaPKIXCert,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if !bytes.Equal(w.Body.Bytes(), f.pki.oca.der) {
					t.Error("DER differs")
				}
			}},
		{name: "CA certificate", req: req{method: "GET", target: "/v1/cas/root/certificate"}, status: 200, ctype: MediaPKIXCert,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if !bytes.Equal(w.Body.Bytes(), f.pki.root.der) {
					t.Error("DER differs")
				}
			}},
		{name: "CA certificate PEM", req: req{method: "GET", target: "/v1/cas/root/certificate", headers: map[string]string{"Accept": MediaPEM}}, status: 200, ctype: MediaPEM},
		{name: "CA certificate ignores JSON", req: req{method: "GET", target: "/v1/cas/root/certificate", headers: map[string]string{"Accept": MediaJSON}}, status: 200, ctype: MediaPKIXCert},
		{name: "unknown CA", req: req{method: "GET", target: "/v1/cas/nope"}, status: 404, param: "name"},
		{name: "unknown CA certificate", req: req{method: "GET", target: "/v1/cas/nope/certificate"}, status: 404, param: "name"},
		{name: "bad CA name", req: req{method: "GET", target: "/v1/cas/%24x"}, status: 400, param: "name"},

		{name: "CRL", req: req{method: "GET", target: "/v1/crl/oca"}, status: 200, ctype: MediaPKIXCRL,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if w.Body.String() != "crl-der-oca" {
					t.Errorf("body %q", w.Body)
				}
				if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=82800, no-transform, must-revalidate" {
					t.Errorf("Cache-Control %q, want max-age of the 23 h left", cc)
				}
				if e := w.Header().Get("Expires"); e != testNow.Add(23*time.Hour).Format(http.TimeFormat) {
					t.Errorf("Expires %q", e)
				}
				if lm := w.Header().Get("Last-Modified"); lm != testNow.Add(-time.Hour).Format(http.TimeFormat) {
					t.Errorf("Last-Modified %q", lm)
				}
			}},
		{name: "stale CRL", req: req{method: "GET", target: "/v1/crl/E357"}, status: 200, ctype: MediaPKIXCRL,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
					t.Errorf("Cache-Control %q, want no-cache past nextUpdate", cc)
				}
			}},
		{name: "no CRL", req: req{method: "GET", target: "/v1/crl/root"}, status: 404, param: "ca"},
		{name: "CRL bad CA", req: req{method: "GET", target: "/v1/crl/a%20b"}, status: 400, param: "ca"},

		{name: "unknown route", req: req{method: "GET", target: "/v2/nothing"}, status: 404},
		{name: "wrong method", req: req{method: "DELETE", target: "/v1/cas"}, status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(t, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if tc.status >= 400 {
				p := problemOf(t, w)
				if p.Param != tc.param {
					t.Errorf("problem names %q, want %q (%+v)", p.Param, tc.param, p)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q, want %q", ct, tc.ctype)
			}
			if tc.check != nil {
				tc.check(t, w)
			}
			if tc.wantQuery != nil {
				tc.wantQuery(t, f.st.lastQ)
			}
		})
	}
}

// TestPaging walks a search page by page through the next links.
func TestPaging(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 7; i++ {
		c := f.orgKA
		c.ID = int64(10 + i)
		c.Serial = []byte{0x7F, byte(i)}
		f.st.certs = append(f.st.certs, c)
	}
	tests := []struct {
		name      string
		start     string
		wantPages []int
		wantTotal int
	}{
		{"pages of three", "/v1/certificates?usage=ka&limit=3", []int{3, 3, 3}, 9},
		{"exact fit", "/v1/certificates?usage=ka&kind=org&limit=4", []int{4, 4}, 8},
		{"remainder", "/v1/certificates?usage=ka&limit=4", []int{4, 4, 1}, 9},
		{"one page", "/v1/certificates?usage=ka", []int{9}, 9},
		{"filter kept across pages", "/v1/certificates?eui=" + supplierEUI + "&usage=ds&limit=1", []int{1}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target, seen, pages := tc.start, map[string]bool{}, []int{}
			for target != "" {
				w := f.do(t, req{method: "GET", target: target})
				if w.Code != 200 {
					t.Fatalf("%s: status %d: %s", target, w.Code, w.Body)
				}
				l := decodeJSON[CertificateList](t, w)
				pages = append(pages, len(l.Certificates))
				for _, c := range l.Certificates {
					if seen[c.Serial] {
						t.Fatalf("serial %s on two pages", c.Serial)
					}
					seen[c.Serial] = true
				}
				if l.Next != "" {
					u, err := url.Parse(l.Next)
					if err != nil {
						t.Fatal(err)
					}
					orig, _ := url.Parse(tc.start)
					for k := range orig.Query() {
						if u.Query().Get(k) != orig.Query().Get(k) {
							t.Errorf("next link %q lost %s", l.Next, k)
						}
					}
				}
				target = l.Next
				if len(pages) > 10 {
					t.Fatal("paging does not end")
				}
			}
			if len(seen) != tc.wantTotal || !slices.Equal(pages, tc.wantPages) {
				t.Errorf("pages %v (%d items), want %v (%d)", pages, len(seen), tc.wantPages, tc.wantTotal)
			}
		})
	}
}

// TestBaseURL checks absolute links when a base URL is configured.
func TestBaseURL(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Deps) { c.BaseURL = "https://smki.example.org/" })
	w := f.do(t, req{method: "GET", target: "/v1/certificates?limit=1"})
	l := decodeJSON[CertificateList](t, w)
	if !strings.HasPrefix(l.Next, "https://smki.example.org/v1/certificates?") {
		t.Errorf("next %q is not absolute", l.Next)
	}
	if got := l.Certificates[0].Links.Self; !strings.HasPrefix(got, "https://smki.example.org/v1/certificates/oca/") {
		t.Errorf("self %q is not absolute", got)
	}
}

// TestStoreFailure checks that a failing dependency gives a 500 whose
// detail does not leak the cause, and that the cause is logged.
func TestStoreFailure(t *testing.T) {
	f := newFixture(t)
	f.st.failWith = errBoom
	for _, target := range []string{"/v1/certificates", "/v1/certificates/oca/01", "/v1/cas", "/v1/cas/oca", "/v1/crl/oca"} {
		t.Run(target, func(t *testing.T) {
			w := f.do(t, req{method: "GET", target: target})
			if w.Code != 500 {
				t.Fatalf("status %d, want 500", w.Code)
			}
			p := problemOf(t, w)
			if strings.Contains(p.Detail, "fire") {
				t.Errorf("problem leaks the internal cause: %q", p.Detail)
			}
		})
	}
	if !strings.Contains(f.logs.String(), "disk on fire") {
		t.Error("internal cause not logged")
	}
}

// TestUnconfigured checks the 503 answers of a server without dependencies.
func TestUnconfigured(t *testing.T) {
	f := newFixture(t, func(_ *Config, d *Deps) { *d = Deps{} })
	tests := []req{
		{method: "GET", target: "/v1/certificates"},
		{method: "GET", target: "/v1/certificates/oca/01"},
		{method: "GET", target: "/v1/cas"},
		{method: "GET", target: "/v1/cas/oca"},
		{method: "GET", target: "/v1/crl/oca"},
		{method: "POST", target: "/v1/certificates", headers: map[string]string{"Authorization": "Bearer " + adminToken}},
		{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}},
		{method: "GET", target: "/ocsp/MAA="},
	}
	for _, r := range tests {
		t.Run(r.method+" "+r.target, func(t *testing.T) {
			w := f.do(t, r)
			if w.Code != 503 {
				t.Fatalf("status %d, want 503", w.Code)
			}
			p := problemOf(t, w)
			if strings.HasPrefix(r.target, "/ocsp") && p.Detail != "OCSP responder not configured" {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
	if w := f.do(t, req{method: "GET", target: "/healthz"}); w.Code != 200 {
		t.Errorf("healthz %d", w.Code)
	}
}

// TestOCSP covers both OCSP transports of RFC 6960 appendix A.
func TestOCSP(t *testing.T) {
	f := newFixture(t)
	b64 := base64.StdEncoding.EncodeToString(f.ocspRq)
	tests := []struct {
		name      string
		req       req
		responder *fakeResponder
		status    int
		want      []byte // nil: the responder's response
		cacheable bool
	}{
		{name: "POST", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}, body: f.ocspRq}, status: 200},
		{name: "GET", req: req{method: "GET", target: "/ocsp/" + url.PathEscape(b64)}, status: 200, cacheable: true},
		{name: "GET unescaped base64", req: req{method: "GET", target: "/ocsp/" + b64}, status: 200, cacheable: true},
		{name: "GET url-safe base64", req: req{method: "GET", target: "/ocsp/" + base64.RawURLEncoding.EncodeToString(f.ocspRq)}, status: 200, cacheable: true},
		{name: "POST wrong type", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": "text/plain"}, body: f.ocspRq}, status: 415},
		{name: "POST too large", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}, body: make([]byte, maxOCSPRequestBytes+1)}, status: 413},
		{name: "POST malformed", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}, body: []byte("hello")}, status: 200, want: ocsp.MalformedRequestErrorResponse},
		{name: "GET not base64", req: req{method: "GET", target: "/ocsp/!!!"}, status: 200, want: ocsp.MalformedRequestErrorResponse},
		{name: "GET base64 of junk", req: req{method: "GET", target: "/ocsp/aGVsbG8="}, status: 200, want: ocsp.MalformedRequestErrorResponse},
		{name: "responder fails", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}, body: f.ocspRq},
			responder: &fakeResponder{err: errBoom}, status: 200, want: ocsp.InternalErrorErrorResponse},
		{name: "unknown issuer", req: req{method: "POST", target: "/ocsp", headers: map[string]string{"Content-Type": MediaOCSPRequest}, body: f.ocspRq},
			responder: &fakeResponder{err: store.ErrNotFound}, status: 200, want: ocsp.UnauthorizedErrorResponse},
		{name: "responder's own error response", req: req{method: "GET", target: "/ocsp/" + b64},
			responder: &fakeResponder{resp: ocsp.TryLaterErrorResponse, err: errBoom}, status: 200, want: ocsp.TryLaterErrorResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.ocsp.got = nil
			if tc.responder != nil {
				f.srv.deps.OCSP = tc.responder
				defer func() { f.srv.deps.OCSP = f.ocsp }()
			}
			w := f.do(t, tc.req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				problemOf(t, w)
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != MediaOCSPResponse {
				t.Errorf("Content-Type %q", ct)
			}
			want := tc.want
			if want == nil {
				want = f.ocsp.resp
				if len(f.ocsp.got) != 1 || !bytes.Equal(f.ocsp.got[0], f.ocspRq) {
					t.Errorf("responder got %d requests, want the one sent", len(f.ocsp.got))
				}
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("body %x, want %x", w.Body.Bytes(), want)
			}
			cc := w.Header().Get("Cache-Control")
			if tc.cacheable != strings.HasPrefix(cc, "public, max-age=10800") {
				t.Errorf("Cache-Control %q (cacheable %t)", cc, tc.cacheable)
			}
			if tc.cacheable && w.Header().Get("ETag") == "" {
				t.Error("no ETag on a cacheable response")
			}
		})
	}
}

// TestOCSPGetSlash checks a GET request whose base64 holds '/' and '+'.
func TestOCSPGetSlash(t *testing.T) {
	u, err := url.Parse("/ocsp/ab%2Fc+d%2B/ef==")
	if err != nil {
		t.Fatal(err)
	}
	der, ok := decodeOCSPPath(u)
	want, _ := base64.StdEncoding.DecodeString("ab/c+d+/ef==")
	if !ok || !bytes.Equal(der, want) {
		t.Errorf("decodeOCSPPath = %x, %t; want %x", der, ok, want)
	}
}

// TestLogsHoldNoSecrets checks that tokens never reach the log.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFixture(t)
	for _, tok := range []string{adminToken, publishToken, "wrong-token-xyz"} {
		f.do(t, req{method: "POST", target: "/v1/certificates", headers: map[string]string{"Authorization": "Bearer " + tok, "Content-Type": MediaJSON},
			body: []byte(`{"certificate":"AA=="}`)})
		f.do(t, req{method: "GET", target: "/v1/certificates?eui=bad", headers: map[string]string{"Authorization": "Bearer " + tok}})
	}
	logs := f.logs.String()
	for _, secret := range []string{adminToken, publishToken, "wrong-token-xyz", "pin-value"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q", secret)
		}
	}
	for _, e := range f.st.events() {
		for _, secret := range []string{adminToken, publishToken, "wrong-token-xyz"} {
			if strings.Contains(fmt.Sprint(e.Details)+e.Object+e.Actor, secret) {
				t.Errorf("audit event %+v holds a token", e)
			}
		}
	}
	for _, want := range []string{`"component":"repository"`, `"path":"/v1/certificates"`, `"operator":"alice"`, `"status":401`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s: %s", want, logs)
		}
	}
}

// TestServe runs the server on a real listener and shuts it down.
func TestServe(t *testing.T) {
	f := newFixture(t)
	ln, err := listenLocal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Errorf("healthz: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

// TestErrorKinds checks that every *Error matches its kind's sentinel and
// its cause with errors.Is, and that each kind has an error status.
func TestErrorKinds(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			e := problem.Wrap(k, errBoom, "p", "detail")
			if !errors.Is(e, k) || !errors.Is(e, errBoom) {
				t.Errorf("errors.Is fails for %v", e)
			}
			if k.Status() < 400 {
				t.Errorf("status %d", k.Status())
			}
			if !strings.Contains(e.Error(), "repository: p: detail") {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}
