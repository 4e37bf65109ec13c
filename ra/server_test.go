package ra_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// world is a CA service on SQLite and softkms in a TempDir, served over
// mutual TLS, with DCCKI client certificates and operator tokens.
type world struct {
	t      testing.TB
	dir    string
	db     *store.DB
	keys   *custody.Custody
	auth   *ca.Authority
	srv    *ra.Server
	url    string
	roots  *x509.CertPool
	client *http.Client // a good DCCKI client certificate
	caller tls.Certificate
	tokens map[string]string // operator name -> token
	// skew moves the service's clock forward (nanoseconds), for the
	// proposals' expiry.
	skew atomic.Int64
}

const batch = "B1"

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, dir: t.TempDir(), tokens: map[string]string{}}
	var err error
	if w.db, err = store.OpenDataDir(ctx, w.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.db.Close() })
	if w.keys, err = custody.Open(ctx, "softkms", w.dir, rand.Reader); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.keys.Close() })
	w.auth = w.newAuthority()
	if _, err := w.auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.auth.OpenBatch(ctx, batch, 10); err != nil {
		t.Fatal(err)
	}
	var creds []operator.Credential
	for name, roles := range map[string][]operator.Role{
		"alice": {operator.RoleRevoke, operator.RoleIssue},
		"bob":   {operator.RoleViewer},
		"carol": {operator.RoleRegister, operator.RoleIssue},
		"dave":  {operator.RoleIssue},
	} {
		tok, c, err := operator.Mint(rand.Reader, name, roles)
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[name] = tok
		creds = append(creds, c)
	}
	cs, err := operator.NewCredentials(creds)
	if err != nil {
		t.Fatal(err)
	}
	if w.srv, err = ra.New(ra.Deps{Authority: w.auth, Store: w.db.SMKI(), Registry: w.db.SMKI(), Audit: w.db, Credentials: cs,
		ClientIssuer: ca.NameDCCKITLS, Logger: slog.New(slog.DiscardHandler), Proposals: w.db.Proposals(),
		Now: func() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) }}); err != nil {
		t.Fatal(err)
	}
	serverCert := w.tlsPair(w.issueTLS(func() (ca.TLSIssued, error) {
		return w.auth.IssueTLSServer(ctx, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	}))
	rootRec, err := w.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootRec.CertDER)
	w.roots = x509.NewCertPool()
	w.roots.AddCert(root)
	ts := httptest.NewUnstartedServer(w.srv.Handler())
	ts.TLS = ra.TLSConfig(serverCert, w.roots)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	w.url = ts.URL
	w.caller = w.clientCert(smki.MustParseEUI("90B3D51F30000004"))
	w.client = w.httpClient(&w.caller)
	return w
}

func (w *world) newAuthority() *ca.Authority {
	a, err := ca.New(ca.Config{Store: w.db.SMKI(), Keys: w.keys, Logger: slog.New(slog.DiscardHandler), Actor: "ca"})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

func (w *world) issueTLS(issue func() (ca.TLSIssued, error)) ca.TLSIssued {
	w.t.Helper()
	iss, err := issue()
	if err != nil {
		w.t.Fatal(err)
	}
	return iss
}

// tlsPair is an issued DCCKI certificate with its issuing CA, as a client
// or server presents it.
func (w *world) tlsPair(iss ca.TLSIssued) tls.Certificate {
	w.t.Helper()
	issuer, err := w.db.SMKI().CA(context.Background(), ca.NameDCCKITLS)
	if err != nil {
		w.t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Record.DER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.CertDER})...)
	c, err := tls.X509KeyPair(chain, iss.KeyPEM)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) clientCert(eui smki.EUI) tls.Certificate {
	return w.tlsPair(w.issueTLS(func() (ca.TLSIssued, error) {
		return w.auth.IssueTLSClient(context.Background(), eui, smki.UserOther)
	}))
}

func (w *world) httpClient(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: w.roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// call sends body (JSON-encoded unless it is a string or []byte) with the
// operator's token ("" for none) and decodes the answer into out, if given.
func (w *world) call(client *http.Client, method, path, op string, body any, out any) (int, problem.Details) {
	w.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, w.url+path, r)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if op != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[op])
	}
	resp, err := client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p problem.Details
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			w.t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, ct)
		}
		json.Unmarshal(raw, &p)
	} else if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, p
}

// audit returns the audit events after seq.
func (w *world) audit(after int64) []store.AuditEvent {
	w.t.Helper()
	evs, err := w.db.AuditEvents(context.Background(), after, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

func (w *world) lastSeq() int64 {
	evs := w.audit(0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func deviceCSR(t *testing.T, eui smki.EUI) string {
	der, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui,
		KeyUsage: x509.KeyUsageDigitalSignature, HWType: smki.OIDHWTypeReferenceMeter}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestIssueRevokeCRL issues a device certificate through the API, revokes
// it, and finds the revocation in the CRL signed at once and in the OCSP
// response the repository serves, each step audited under the operator.
func TestIssueRevokeCRL(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	seq := w.lastSeq()

	var cert ra.CertificateView
	code, p := w.call(w.client, "POST", "/v1/certificates/device", "alice",
		ra.DeviceRequest{Batch: batch, CSR: deviceCSR(t, smki.MustParseEUI("F000000000000001"))}, &cert)
	if code != http.StatusCreated {
		t.Fatalf("issue: %d %+v", code, p)
	}
	if cert.CA != batch || cert.Kind != "device" || cert.EUI != "F000000000000001" || !strings.HasPrefix(cert.Certificate, "-----BEGIN CERTIFICATE") {
		t.Errorf("issued %+v", cert)
	}

	var rv ra.RevocationView
	code, p = w.call(w.client, "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": cert.Serial, "reason": "keyCompromise"}, &rv)
	if code != http.StatusOK {
		t.Fatalf("revoke: %d %+v", code, p)
	}
	if rv.Certificate.RevokedAt == "" || rv.Certificate.RevocationReason != "keyCompromise" || rv.CRL == nil || rv.CRLPending != "" {
		t.Fatalf("revocation answered %+v", rv)
	}
	crl, err := w.db.SMKI().LatestCRL(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Number != rv.CRL.Number || len(rl.RevokedCertificateEntries) != 1 ||
		!bytes.Equal(rl.RevokedCertificateEntries[0].SerialNumber.Bytes(), mustSerial(t, cert.Serial)) {
		t.Errorf("CRL %d lists %d entries, want number %d listing %s", crl.Number, len(rl.RevokedCertificateEntries), rv.CRL.Number, cert.Serial)
	}
	serial, _ := smki.ParseSerial(cert.Serial)
	resp, err := w.db.SMKI().OCSPResponse(ctx, batch, serial)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ocsp.ParseResponse(resp.DER, nil); err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("stored OCSP response: %v, %+v", err, r)
	}

	// Again: already revoked, refused and audited, nothing changes.
	code, p = w.call(w.client, "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": cert.Serial, "reason": 1}, nil)
	if code != http.StatusConflict || p.Param != "serial" {
		t.Errorf("second revocation: %d %+v", code, p)
	}
	if again, _ := w.db.SMKI().LatestCRL(ctx, batch); again.Number != crl.Number {
		t.Errorf("a refused revocation signed CRL %d", again.Number)
	}

	var got []string
	for _, e := range w.audit(seq) {
		if strings.HasPrefix(e.Action, "ca-api.") {
			got = append(got, e.Actor+" "+e.Action+" "+e.Outcome)
			if e.Details["client"] == nil || !strings.Contains(fmt.Sprint(e.Details["client"]), "90B3D51F30000004/OU") {
				t.Errorf("%s %s: client %v, want the DCCKI caller", e.Action, e.Outcome, e.Details["client"])
			}
		}
	}
	want := []string{"alice ca-api.issue.device attempt", "alice ca-api.issue.device success",
		"alice ca-api.revoke attempt", "alice ca-api.revoke success", "alice ca-api.revoke refused"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A CRL on demand: the next number.
	var cv ra.CRLView
	if code, p := w.call(w.client, "POST", "/v1/crls/"+batch, "alice", nil, &cv); code != http.StatusCreated || cv.Number != crl.Number+1 {
		t.Errorf("CRL now: %d %+v %+v", code, p, cv)
	}
}

func pemDER(t *testing.T, s string) []byte {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM in %q", s)
	}
	return b.Bytes
}

// TestRefusals checks that every refused request gets its status and
// problem, is audited, and changes nothing.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var cert ra.CertificateView
	if code, p := w.call(w.client, "POST", "/v1/certificates/device", "alice",
		ra.DeviceRequest{Batch: batch, CSR: deviceCSR(t, smki.MustParseEUI("F000000000000002"))}, &cert); code != http.StatusCreated {
		t.Fatalf("issue: %d %+v", code, p)
	}
	good := map[string]any{"ca": batch, "serial": cert.Serial, "reason": "superseded"}
	big := `{"batch":"` + batch + `","csr":"` + strings.Repeat("A", 70<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, op string
		body                   any
		rawType                string // Content-Type other than JSON
		code                   int
		param                  string
	}{
		{"no token", "POST", "/v1/revocations", "", good, "", 401, "Authorization"},
		{"viewer", "POST", "/v1/revocations", "bob", good, "", 403, ""},
		{"viewer issues", "POST", "/v1/certificates/device", "bob", ra.DeviceRequest{Batch: batch}, "", 403, ""},
		{"form body", "POST", "/v1/revocations", "alice", "ca=x", "application/x-www-form-urlencoded", 415, "Content-Type"},
		{"unknown field", "POST", "/v1/revocations", "alice", `{"ca":"B1","serial":"01","reason":"unspecified","x":1}`, "", 400, "body"},
		{"trailing data", "POST", "/v1/revocations", "alice", `{"ca":"B1","serial":"01","reason":"unspecified"} {}`, "", 400, "body"},
		{"bad serial", "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": "xyz", "reason": 0}, "", 400, "serial"},
		{"hold", "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": cert.Serial, "reason": "certificateHold"}, "", 400, "reason"},
		{"code 10", "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": cert.Serial, "reason": 10}, "", 400, "reason"},
		{"bad CA name", "POST", "/v1/revocations", "alice", map[string]any{"ca": "a/b", "serial": cert.Serial, "reason": 0}, "", 400, "ca"},
		{"unknown serial", "POST", "/v1/revocations", "alice", map[string]any{"ca": batch, "serial": "0123", "reason": 0}, "", 404, "serial"},
		{"root CRL", "POST", "/v1/crls/" + ca.NameRoot, "alice", nil, "", 409, "ca"},
		{"unknown CA CRL", "POST", "/v1/crls/nope", "alice", nil, "", 404, "ca"},
		{"bad CSR", "POST", "/v1/certificates/device", "alice", ra.DeviceRequest{Batch: batch, CSR: "MIIB"}, "", 400, ""},
		{"no CSR", "POST", "/v1/certificates/device", "alice", ra.DeviceRequest{Batch: batch}, "", 400, "csr"},
		{"unknown batch", "POST", "/v1/certificates/device", "alice", ra.DeviceRequest{Batch: "B9", CSR: deviceCSR(t, smki.MustParseEUI("F000000000000003"))}, "", 404, ""},
		{"too large", "POST", "/v1/certificates/device", "alice", big, "", 413, ""},
		{"bad role", "PUT", "/v1/organisations/90B3D51F30010000", "carol", ra.OrganisationRecord{Name: "X", Roles: []string{"king"}}, "", 400, "roles"},
		{"no register role", "PUT", "/v1/organisations/90B3D51F30010000", "alice", ra.OrganisationRecord{Name: "X", Roles: []string{"supplier"}}, "", 403, ""},
		{"unregistered submits", "POST", "/v1/requests", "", ra.SubmitRequest{Role: "supplier", Usage: "ds", CSR: "x"}, "", 403, ""},
		{"approve unknown", "POST", "/v1/requests/req-nope0000/approve", "alice", nil, "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := w.lastSeq()
			crlBefore, _ := w.db.SMKI().LatestCRL(ctx, batch)
			var r io.Reader
			switch b := tc.body.(type) {
			case nil:
			case string:
				r = strings.NewReader(b)
			default:
				j, _ := json.Marshal(b)
				r = bytes.NewReader(j)
			}
			req, _ := http.NewRequest(tc.method, w.url+tc.path, r)
			req.Header.Set("Content-Type", "application/json")
			if tc.rawType != "" {
				req.Header.Set("Content-Type", tc.rawType)
			}
			if tc.op != "" {
				req.Header.Set("Authorization", "Bearer "+w.tokens[tc.op])
			}
			resp, err := w.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p problem.Details
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != tc.code || (tc.param != "" && p.Param != tc.param) {
				t.Errorf("%d param %q (%s), want %d param %q", resp.StatusCode, p.Param, p.Detail, tc.code, tc.param)
			}
			if tc.code == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without a WWW-Authenticate challenge")
			}
			refused := 0
			for _, e := range w.audit(seq) {
				if strings.HasPrefix(e.Action, "ca-api.") {
					if e.Outcome != ra.OutcomeRefused && e.Outcome != ra.OutcomeAttempt && e.Outcome != ra.OutcomeFailure {
						t.Errorf("audited %s %s", e.Action, e.Outcome)
					}
					refused++
				}
			}
			if refused == 0 {
				t.Error("refusal not audited")
			}
			if c, _ := w.db.SMKI().Certificate(ctx, batch, mustSerial(t, cert.Serial)); !c.RevokedAt.IsZero() {
				t.Fatal("a refused request revoked the certificate")
			}
			if crlAfter, _ := w.db.SMKI().LatestCRL(ctx, batch); crlAfter.Number != crlBefore.Number {
				t.Errorf("a refused request signed a CRL")
			}
		})
	}
}

func mustSerial(t *testing.T, s string) []byte {
	b, err := smki.ParseSerial(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientCertificate checks the mutual TLS: no client certificate fails
// the handshake; a revoked one is refused with 401 and audited.
func TestClientCertificate(t *testing.T) {
	w := newWorld(t)
	if _, err := w.httpClient(nil).Get(w.url + "/healthz"); err == nil {
		t.Error("a client without a certificate got through the handshake")
	}
	if code, _ := w.call(w.client, "GET", "/healthz", "", nil, nil); code != http.StatusOK {
		t.Errorf("healthz with a client certificate: %d", code)
	}
	revoked := w.clientCert(smki.MustParseEUI("90B3D51F30000099"))
	leaf, _ := x509.ParseCertificate(revoked.Certificate[0])
	if _, err := w.auth.Revoke(context.Background(), ca.NameDCCKITLS, leaf.SerialNumber.Bytes(), 1); err != nil {
		t.Fatal(err)
	}
	seq := w.lastSeq()
	code, p := w.call(w.httpClient(&revoked), "POST", "/v1/crls/"+batch, "alice", nil, nil)
	if code != http.StatusUnauthorized || !strings.Contains(p.Detail, "revoked") {
		t.Errorf("revoked client: %d %+v", code, p)
	}
	evs := w.audit(seq)
	if len(evs) != 1 || evs[0].Outcome != ra.OutcomeRefused || evs[0].Details["refusal"] != "client certificate revoked" {
		t.Errorf("audit %+v", evs)
	}
}

// TestNoKey checks that a CA whose key cannot be loaded answers 503 "no
// key", not a bad request or a signature failure.
func TestNoKey(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	rec, err := w.db.SMKI().CA(ctx, ca.NameOCA)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.dir, strings.TrimPrefix(rec.KeyURI, "softkms:path="))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	fresh := w.newAuthority() // nothing loaded yet
	srv, err := ra.New(ra.Deps{Authority: fresh, Store: w.db.SMKI(), Registry: w.db.SMKI(), Audit: w.db, Credentials: mustCreds(t, w), ClientIssuer: ca.NameDCCKITLS})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = ra.TLSConfig(mustServerCert(t, w), w.roots)
	ts.StartTLS()
	defer ts.Close()
	w.url = ts.URL
	code, p := w.call(w.client, "POST", "/v1/crls/"+ca.NameOCA, "alice", nil, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "no key") {
		t.Errorf("CRL with the OCA key gone: %d %+v", code, p)
	}
	if loaded, err := fresh.LoadOnlineKeys(ctx); err == nil || len(loaded) == 0 {
		t.Errorf("LoadOnlineKeys = %v, %v; want the batch and TLS CA loaded and the OCA reported", loaded, err)
	}
}

func mustCreds(t *testing.T, w *world) *operator.Credentials {
	var cs []operator.Credential
	for name, tok := range w.tokens {
		cs = append(cs, operator.Credential{Name: name, TokenSHA256: operator.HashToken(tok), Roles: operator.Roles})
	}
	c, err := operator.NewCredentials(cs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustServerCert(t *testing.T, w *world) tls.Certificate {
	return w.tlsPair(w.issueTLS(func() (ca.TLSIssued, error) {
		return w.auth.IssueTLSServer(context.Background(), []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	}))
}
