package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// The store must satisfy the interfaces the server consumes.
var (
	_ CertificateFinder = (*store.SMKIStore)(nil)
	_ CAFinder          = (*store.SMKIStore)(nil)
	_ CRLFinder         = (*store.SMKIStore)(nil)
	_ Auditor           = (*store.DB)(nil)
	_ Publisher         = (*store.SMKIStore)(nil)
	_ Responder         = (*StoredOCSP)(nil)
	_ OCSPSource        = (*store.SMKIStore)(nil)
)

// openTestStore opens a fresh store of the named dialect (see
// storetest.DSN), closed when the test ends.
func openTestStore(t *testing.T, dialect string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), storetest.DSN(t, dialect))
	if err != nil {
		t.Fatalf("opening %s store: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestIntegration runs the repository on the real store and CA, on both
// store backends: the CA's init and batch ceremonies, bulk device issuance,
// publishing an organisation certificate signed by the OCA's key outside
// the CA package, search and paging, a revocation done by the CA on the
// same store (the repository has no revocation route and holds no key),
// OCSP by POST and GET served keylessly from the store, the CRL, and the
// audit chain.
func TestIntegration(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) { runIntegration(t, openTestStore(t, dialect)) })
	}
}

func runIntegration(t *testing.T, db *store.DB) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, err := custody.Open(ctx, "softkms", dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	auth, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Actor: "repository-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatalf("init ceremony: %v", err)
	}
	if _, err := auth.OpenBatch(ctx, "B1", 10); err != nil {
		t.Fatalf("opening batch: %v", err)
	}
	if _, err := auth.IssueDevices(ctx, ca.BulkRequest{Batch: "B1", Count: 3, FirstEUI: smki.MustParseEUI("F000000000000001")}); err != nil {
		t.Fatalf("issuing devices: %v", err)
	}

	// The server, as "serve repository" builds it, gets only the store: no
	// Authority and no key custody. alice also holds the revoke role, which
	// grants nothing here.
	cfg := Config{Operators: []Operator{{Name: "alice", TokenSHA256: HashToken(adminToken), Permissions: []Permission{PermPublish, PermRevoke}}}}
	srv := New(cfg, Deps{Certs: db.SMKI(), CAs: db.SMKI(), CRLs: db.SMKI(), Audit: db, Publisher: db.SMKI(), OCSP: NewStoredOCSP(db.SMKI(), nil, nil)})
	h := srv.Handler()
	do := func(method, target, ctype string, body []byte, auth bool) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if auth {
			r.Header.Set("Authorization", bearer(adminToken))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	list := func(target string) CertificateList {
		t.Helper()
		w := do("GET", target, "", nil, false)
		if w.Code != 200 {
			t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
		}
		return decodeJSON[CertificateList](t, w)
	}

	// CAs.
	w := do("GET", "/v1/cas", "", nil, false)
	cas := decodeJSON[CAList](t, w)
	names := map[string]CAView{}
	for _, c := range cas.CAs {
		names[c.Name] = c
	}
	if names["root"].Kind != store.CAKindRoot || names["oca"].Parent != "root" || names["B1"].Quota != 10 || names["B1"].Issued == 0 {
		t.Fatalf("CAs %+v", cas)
	}
	if strings.Contains(w.Body.String(), "softkms") || strings.Contains(w.Body.String(), dir) {
		t.Error("CA list leaks key URIs")
	}
	if w := do("GET", "/v1/cas/oca/certificate", "", nil, false); w.Code != 200 {
		t.Fatalf("OCA certificate: %d", w.Code)
	}

	// Search and paging over the six device certificates.
	devs := list("/v1/certificates?ca=B1&kind=device")
	if len(devs.Certificates) != 6 {
		t.Fatalf("%d device certificates, want 6", len(devs.Certificates))
	}
	var pages, total int
	for next := "/v1/certificates?ca=B1&limit=4"; next != ""; pages++ {
		l := list(next)
		total += len(l.Certificates)
		next = l.Next
	}
	if pages != 2 || total != 6 {
		t.Errorf("paging: %d pages, %d certificates; want 2, 6", pages, total)
	}
	byEUI := list("/v1/certificates?eui=F0-00-00-00-00-00-00-02&usage=keyAgreement")
	if len(byEUI.Certificates) != 1 || byEUI.Certificates[0].Usage != store.UsageKA {
		t.Fatalf("by EUI: %+v", byEUI)
	}

	// Publish an organisation certificate signed with the OCA's key outside
	// the CA package, then find it by EUI and role.
	ocaRec, err := db.SMKI().CA(ctx, "oca")
	if err != nil {
		t.Fatal(err)
	}
	ocaSigner, err := keys.Signer(ctx, ocaRec.KeyURI)
	if err != nil {
		t.Fatal(err)
	}
	ocaCert, err := x509.ParseCertificate(ocaRec.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	pki := &testPKI{notBefore: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), nextSerial: time.Now().UnixNano()}
	orgDER := pki.orgCert(t, &testCA{name: "oca", der: ocaRec.CertDER, cert: ocaCert, key: ocaSigner}, "90B3D51F30050000", smki.RoleSupplier, x509.KeyUsageDigitalSignature)
	body, _ := json.Marshal(PublishRequest{Certificate: base64.StdEncoding.EncodeToString(orgDER)})
	if w := do("POST", "/v1/certificates", MediaJSON, body, true); w.Code != 201 {
		t.Fatalf("publish: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/v1/certificates", MediaPKIXCert, orgDER, true); w.Code != 409 {
		t.Errorf("publishing twice: %d, want 409", w.Code)
	}
	org := list("/v1/certificates?eui=90B3D51F30050000&role=supplier&usage=ds&kind=org")
	if len(org.Certificates) != 1 || org.Certificates[0].CA != "oca" {
		t.Fatalf("published certificate not found: %+v", org)
	}
	if w := do("GET", org.Certificates[0].Links.DER, "", nil, false); !bytes.Equal(w.Body.Bytes(), orgDER) {
		t.Error("published DER not served back")
	}

	// The repository revokes nothing: POST /v1/revocations is no route,
	// even for an operator holding the revoke role.
	victim := devs.Certificates[0]
	rb := []byte(fmt.Sprintf(`{"ca":"B1","serial":%q,"reason":"keyCompromise"}`, strings.ToLower(victim.Serial)))
	for _, withToken := range []bool{false, true} {
		if w := do("POST", "/v1/revocations", MediaJSON, rb, withToken); w.Code != 404 && w.Code != 405 {
			t.Errorf("POST /v1/revocations (token %t): %d %s, want 404 or 405", withToken, w.Code, w.Body)
		}
	}
	if v := decodeJSON[CertificateView](t, do("GET", victim.Links.Self, "", nil, false)); v.Status != StatusGood {
		t.Fatalf("certificate %s revoked through the repository: %+v", victim.Serial, v)
	}

	// The CA service revokes a device certificate on the same store,
	// signing its revoked OCSP response; the repository shows it.
	serial, err := ParseSerial(victim.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Revoke(ctx, "B1", serial, 1); err != nil {
		t.Fatalf("revoking through the CA: %v", err)
	}
	if v := decodeJSON[CertificateView](t, do("GET", victim.Links.Self, "", nil, false)); v.Status != StatusRevoked || v.RevocationReason != "keyCompromise" {
		t.Errorf("revoked view %+v", v)
	}
	if good := list("/v1/certificates?ca=B1&status=good"); len(good.Certificates) != 5 {
		t.Errorf("status=good lists %d, want 5", len(good.Certificates))
	}

	// OCSP for the revoked and a good certificate, by POST and by GET,
	// answered from the responses the CA signed into the store.
	batch, err := db.SMKI().CA(ctx, "B1")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(batch.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert CertificateView
		want int
	}{{victim, ocsp.Revoked}, {devs.Certificates[1], ocsp.Good}} {
		leafDER := do("GET", tc.cert.Links.DER, "", nil, false).Body.Bytes()
		leaf, err := x509.ParseCertificate(leafDER)
		if err != nil {
			t.Fatal(err)
		}
		req, err := ocsp.CreateRequest(leaf, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []*httptest.ResponseRecorder{
			do("POST", "/ocsp", MediaOCSPRequest, req, false),
			do("GET", "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "", nil, false),
		} {
			resp, err := ocsp.ParseResponseForCert(w.Body.Bytes(), leaf, issuer)
			if err != nil {
				t.Fatalf("OCSP response for %s: %v", tc.cert.Serial, err)
			}
			if resp.Status != tc.want {
				t.Errorf("OCSP status of %s = %d, want %d", tc.cert.Serial, resp.Status, tc.want)
			}
		}
	}
	// An issuer the repository does not know: unauthorized.
	foreign := newTestPKI(t)
	leaf, err := x509.ParseCertificate(foreign.deviceCert(t, foreign.dca, deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	req, err := ocsp.CreateRequest(leaf, foreign.dca.cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := do("POST", "/ocsp", MediaOCSPRequest, req, false); !bytes.Equal(w.Body.Bytes(), ocsp.UnauthorizedErrorResponse) {
		t.Errorf("OCSP for an unknown issuer: %x", w.Body.Bytes())
	}

	// The OCA's own status is the root's to say, and the root is offline:
	// unauthorized.
	rootRec, err := db.SMKI().CA(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	rootCert, err := x509.ParseCertificate(rootRec.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	req, err = ocsp.CreateRequest(ocaCert, rootCert, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := do("POST", "/ocsp", MediaOCSPRequest, req, false); !bytes.Equal(w.Body.Bytes(), ocsp.UnauthorizedErrorResponse) {
		t.Errorf("OCSP for the OCA: %x, want unauthorized", w.Body.Bytes())
	}

	// The latest CRL, which the CA signs after the revocation, lists it.
	signed, err := auth.CRL(ctx, "B1")
	if err != nil {
		t.Fatal(err)
	}
	w = do("GET", "/v1/crl/B1", "", nil, false)
	if w.Code != 200 || w.Header().Get("Content-Type") != MediaPKIXCRL || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("CRL: %d %v", w.Code, w.Header())
	}
	rl, err := x509.ParseRevocationList(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if rl.Number == nil || rl.Number.Int64() != signed.Number {
		t.Errorf("served CRL number %v, want the latest, %d", rl.Number, signed.Number)
	}
	if len(rl.RevokedCertificateEntries) != 1 || FormatSerial(rl.RevokedCertificateEntries[0].SerialNumber.Bytes()) != victim.Serial {
		t.Errorf("CRL entries %+v", rl.RevokedCertificateEntries)
	}

	// Once the batch is closed, its delegated OCSP responder (decision
	// record 013) signs the status of its certificates: a revocation after
	// closing is served, carrying the responder's certificate, which is
	// published with the batch's certificates.
	if err := auth.CloseBatch(ctx, "B1", "test"); err != nil {
		t.Fatalf("closing the batch: %v", err)
	}
	responders := list("/v1/certificates?ca=B1&kind=ocsp-responder")
	if len(responders.Certificates) != 1 || responders.Certificates[0].Usage != store.UsageOCSP {
		t.Fatalf("responder certificates %+v, want one", responders.Certificates)
	}
	late := devs.Certificates[2]
	if serial, err = ParseSerial(late.Serial); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Revoke(ctx, "B1", serial, 4); err != nil {
		t.Fatalf("revoking from the closed batch: %v", err)
	}
	leaf, err = x509.ParseCertificate(do("GET", late.Links.DER, "", nil, false).Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if req, err = ocsp.CreateRequest(leaf, issuer, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponseForCert(do("POST", "/ocsp", MediaOCSPRequest, req, false).Body.Bytes(), leaf, issuer)
	if err != nil {
		t.Fatalf("OCSP response after closing: %v", err)
	}
	responderDER := do("GET", responders.Certificates[0].Links.DER, "", nil, false).Body.Bytes()
	if resp.Status != ocsp.Revoked || resp.RevocationReason != 4 || resp.Certificate == nil || !bytes.Equal(resp.Certificate.Raw, responderDER) {
		t.Errorf("OCSP after closing: status %d reason %d, signed by the published responder: %v", resp.Status, resp.RevocationReason, resp.Certificate != nil)
	}

	// The audit log holds the operator's writes and verifies.
	events, err := db.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ actor, action, outcome string }{
		{"alice", ActionPublish, OutcomeAttempt}, {"alice", ActionPublish, OutcomeSuccess}, {"alice", ActionPublish, OutcomeFailure},
	} {
		found := false
		for _, e := range events {
			found = found || (e.Actor == want.actor && e.Action == want.action && e.Outcome == want.outcome)
		}
		if !found {
			t.Errorf("no audit event %+v", want)
		}
	}
	if _, err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}
