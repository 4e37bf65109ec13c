package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

func TestIssueOrgRefusals(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	good := orgCSR(t, newKey(t), smki.RoleSupplier, supplierEUI, "Supplier A", x509.KeyUsageDigitalSignature)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-3] ^= 0xff
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384CSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, p384)
	if err != nil {
		t.Fatal(err)
	}
	// A request crypto/x509 writes with an off-profile subject attribute.
	offProfile, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "Supplier A", OrganizationalUnit: []string{"02"}, Country: []string{"GB"}},
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: []byte{3, 2, 7, 0x80}}},
	}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	device := deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature)
	base := OrgRequest{CSR: good, Role: smki.RoleSupplier, EUI: supplierEUI, Name: "Supplier A", Usage: UsageDS}
	tests := []struct {
		name   string
		change func(*OrgRequest)
		want   error
	}{
		{"bad signature", func(r *OrgRequest) { r.CSR = badSig }, ErrCSR},
		{"P-384 key", func(r *OrgRequest) { r.CSR = p384CSR }, ErrCSR},
		{"off-profile subject", func(r *OrgRequest) { r.CSR = offProfile }, ErrCSR},
		{"device request", func(r *OrgRequest) { r.CSR = device }, ErrCSR},
		{"garbage", func(r *OrgRequest) { r.CSR = []byte("not a request") }, ErrCSR},
		{"usage disagrees", func(r *OrgRequest) { r.Usage = UsageKA }, ErrCSR},
		{"EUI disagrees", func(r *OrgRequest) { r.EUI = deviceEUI }, ErrCSR},
		{"role disagrees", func(r *OrgRequest) { r.Role = smki.RoleNetworkOperator }, ErrCSR},
		{"name disagrees", func(r *OrgRequest) { r.Name = "Someone Else" }, ErrCSR},
		{"root role", func(r *OrgRequest) { r.Role = smki.RoleRoot }, ErrRequest},
		{"pp-ka for a network operator", func(r *OrgRequest) { r.Role, r.Usage = smki.RoleNetworkOperator, UsagePPKA }, ErrRequest},
		{"no EUI", func(r *OrgRequest) { r.EUI = smki.EUI{} }, ErrRequest},
		{"bad usage", func(r *OrgRequest) { r.Usage = "sign" }, ErrRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.change(&r)
			_, err := e.a.IssueOrg(ctx, r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Nothing above reached the store.
	certs, err := e.db.SMKI().FindCertificates(ctx, store.CertQuery{Kind: store.KindOrg, IncludeRevoked: true})
	if err != nil || len(certs) != 0 {
		t.Errorf("refused requests stored %d certificates (%v)", len(certs), err)
	}
}

func TestLintRefusesOffProfile(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	iss, err := e.a.onlineIssuer(ctx, NameOCA)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	tests := []struct {
		name  string
		bend  func(*template)
		lints []string
	}{
		{"two key usages", func(tp *template) { tp.cert.KeyUsage |= x509.KeyUsageKeyAgreement }, []string{"e_smki_ee_one_key_usage"}},
		{"short key identifier", func(tp *template) { tp.cert.SubjectKeyId = tp.cert.SubjectKeyId[:4] }, []string{"e_smki_ski_method2"}},
		{"policies dropped", func(tp *template) { tp.extraExts = nil }, []string{"e_smki_policies_critical"}},
		{"expired before issue", func(tp *template) { tp.cert.NotAfter = tp.cert.NotBefore.Add(-time.Hour) }, []string{"e_smki_validity_current"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := orgTemplate(&k.PublicKey, "S", smki.RoleSupplier, supplierEUI, UsageDS, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			tc.bend(tp)
			_, err = e.a.sign(ctx, iss, nil, tp)
			if !errors.Is(err, ErrLint) {
				t.Fatalf("got %v, want ErrLint", err)
			}
			for _, l := range tc.lints {
				if !strings.Contains(err.Error(), l) {
					t.Errorf("refusal %q does not name %s", err, l)
				}
			}
		})
	}
}

func TestIssueWithoutLint(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.DisableLint = true })
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "NL", 10); err != nil {
		t.Fatal(err)
	}
	rec, err := e.a.IssueDevice(ctx, "NL", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageKeyAgreement))
	if err != nil {
		t.Fatalf("IssueDevice without lint: %v", err)
	}
	c, err := smki.ParseCertificate(rec.DER)
	if err != nil || c.Profile != smki.ProfileDeviceKA || !c.NotAfter.Equal(smki.NeverExpires) {
		t.Errorf("read back %v, %v", c, err)
	}
}

func TestDeviceCertificateValidates(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "V1", 10); err != nil {
		t.Fatal(err)
	}
	dev, err := e.a.IssueDevice(ctx, "V1", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	org, err := e.a.IssueOrg(ctx, OrgRequest{CSR: orgCSR(t, newKey(t), smki.RoleSupplier, supplierEUI, "", x509.KeyUsageKeyAgreement),
		Role: smki.RoleSupplier, EUI: supplierEUI, Usage: UsageKA})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.a.CloseBatch(ctx, "V1", "test"); err != nil {
		t.Fatal(err)
	}
	// Years later, with the batch key long destroyed, the device path is
	// still valid: the DCA certificate stays published.
	opts, err := VerifyOptions(ctx, e.db.SMKI(), e.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, der := range [][]byte{dev.DER, org.DER} {
		c, err := smki.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		path, err := smki.Verify(c, opts)
		if err != nil || len(path) != 3 {
			t.Errorf("Verify %s: path of %d, %v", c.Kind, len(path), err)
		}
	}
	if dev.NotAfter.Year() != 9999 {
		t.Errorf("device notAfter %s", dev.NotAfter)
	}
}

func TestCRLAndOCSP(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "R1", 10); err != nil {
		t.Fatal(err)
	}
	var recs []store.Certificate
	for i := range 3 {
		r, err := e.a.IssueDevice(ctx, "R1", deviceCSR(t, newKey(t), euiAdd(deviceEUI, uint64(i)), x509.KeyUsageDigitalSignature))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	e.clock.t = e.clock.t.Add(time.Hour)
	if _, err := e.a.Revoke(ctx, "", recs[0].Serial, 1); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := e.a.Revoke(ctx, "", []byte{1, 2, 3}, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown serial: %v", err)
	}
	crl, err := e.a.CRL(ctx, "R1")
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Number != 2 || rl.Number.Int64() != 2 || !rl.NextUpdate.Equal(e.clock.t.Add(7*24*time.Hour)) ||
		len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Errorf("CRL number %d, nextUpdate %s, entries %+v", rl.Number, rl.NextUpdate, rl.RevokedCertificateEntries)
	}
	if latest, err := e.a.LatestCRL(ctx, "R1"); err != nil || latest.Number != 2 {
		t.Errorf("LatestCRL: %d %v", latest.Number, err)
	}

	info, err := e.a.CA(ctx, "R1")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(info.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	// Each certificate got its OCSP response at issuance, the revoked one a
	// new one at revocation; all are signed by the batch.
	stored := func(t *testing.T, c store.Certificate) *ocsp.Response {
		t.Helper()
		r, err := e.db.SMKI().OCSPResponse(ctx, c.CA, c.Serial)
		if err != nil {
			t.Fatalf("stored OCSP response of %X: %v", c.Serial, err)
		}
		resp, err := ocsp.ParseResponse(r.DER, issuer)
		if err != nil {
			t.Fatal(err)
		}
		if resp.SerialNumber.Cmp(new(big.Int).SetBytes(c.Serial)) != 0 || resp.Status != r.Status ||
			!resp.ThisUpdate.Equal(r.ThisUpdate) || !resp.NextUpdate.Equal(r.NextUpdate) {
			t.Errorf("stored %+v does not match its DER: serial %X status %d %s-%s", r, resp.SerialNumber, resp.Status, resp.ThisUpdate, resp.NextUpdate)
		}
		return resp
	}
	tests := []struct {
		name       string
		cert       store.Certificate
		status     int
		thisUpdate time.Time
	}{
		{"revoked", recs[0], ocsp.Revoked, e.clock.t},
		{"good", recs[1], ocsp.Good, e.clock.t.Add(-time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := stored(t, tc.cert)
			if r.Status != tc.status || !r.ThisUpdate.Equal(tc.thisUpdate) || !r.NextUpdate.Equal(tc.thisUpdate.Add(24*time.Hour)) {
				t.Errorf("status %d, %s to %s", r.Status, r.ThisUpdate, r.NextUpdate)
			}
			if tc.status == ocsp.Revoked && (r.RevocationReason != 1 || !r.RevokedAt.Equal(e.clock.t)) {
				t.Errorf("reason %d at %s", r.RevocationReason, r.RevokedAt)
			}
		})
	}

	// The refresher re-signs those within the margin of expiring: at +13h
	// with a 12h margin, the two good ones issued at 12:00 (expiring at
	// +23h from now) but not the revoked one (signed an hour later).
	if _, err := e.a.RefreshOCSP(ctx, 24*time.Hour); !errors.Is(err, ErrRequest) {
		t.Errorf("margin of the whole validity: %v, want ErrRequest", err)
	}
	e.clock.t = e.clock.t.Add(11*time.Hour + 30*time.Minute)
	n, err := e.a.RefreshOCSP(ctx, 12*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("RefreshOCSP = %d, %v; want 2", n, err)
	}
	if r := stored(t, recs[1]); r.Status != ocsp.Good || !r.ThisUpdate.Equal(e.clock.t) {
		t.Errorf("refreshed good: status %d from %s", r.Status, r.ThisUpdate)
	}
	if r := stored(t, recs[0]); r.Status != ocsp.Revoked || !r.ThisUpdate.Equal(e.clock.t.Add(-11*time.Hour-30*time.Minute)) {
		t.Errorf("revoked response re-signed too early: %s", r.ThisUpdate)
	}
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 0 {
		t.Errorf("second RefreshOCSP = %d, %v; want 0", n, err)
	}

	if err := e.a.CloseBatch(ctx, "R1", "test"); err != nil {
		t.Fatal(err)
	}
	// A closed batch cannot sign, but its delegated OCSP responder re-signs
	// its responses (decision record 013; responder_test.go has the rest).
	e.clock.t = e.clock.t.Add(20 * time.Hour)
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 3 {
		t.Errorf("RefreshOCSP after closing = %d, %v; want 3 (by the responder)", n, err)
	}
	if _, err := e.a.CRL(ctx, "R1"); !errors.Is(err, ErrBatchClosed) {
		t.Errorf("CRL of a closed batch: %v, want ErrBatchClosed", err)
	}
	// Closing signed a final CRL that still lists the revocation and
	// never expires.
	final, err := e.a.LatestCRL(ctx, "R1")
	if err != nil {
		t.Fatal(err)
	}
	frl, err := x509.ParseRevocationList(final.DER)
	if err != nil || final.Number != 3 || !frl.NextUpdate.Equal(smki.NeverExpires) || len(frl.RevokedCertificateEntries) != 1 {
		t.Errorf("final CRL %d: %v, nextUpdate %s", final.Number, err, frl.NextUpdate)
	}
	if err := frl.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("final CRL signature: %v", err)
	}
	// Revoking from the closed batch goes through its responder; the final
	// CRL stays as it was.
	if _, err := e.a.Revoke(ctx, "R1", recs[2].Serial, 1); err != nil {
		t.Errorf("revoking from a closed batch: %v", err)
	}
	if after, err := e.a.LatestCRL(ctx, "R1"); err != nil || after.Number != final.Number {
		t.Errorf("final CRL after a revocation: %d, %v; want %d unchanged", after.Number, err, final.Number)
	}
}

func TestParseReason(t *testing.T) {
	tests := []struct {
		in   string
		code int
		ok   bool
	}{
		{"keyCompromise", 1, true},
		{"KEYCOMPROMISE", 1, true},
		{"cACompromise", 2, true},
		{"affiliationChanged", 3, true},
		{"superseded", 4, true},
		{"cessationOfOperation", 5, true},
		{"privilegeWithdrawn", 9, true},
		{"certificateHold", 0, false},
		{"removeFromCRL", 0, false},
		{"nonsense", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReason(tc.in)
			if (err == nil) != tc.ok || got != tc.code {
				t.Fatalf("ParseReason(%q) = %d, %v", tc.in, got, err)
			}
			if tc.ok && !strings.EqualFold(ReasonName(got), tc.in) {
				t.Errorf("ReasonName(%d) = %s", got, ReasonName(got))
			}
		})
	}
}

func TestKeyIDMatchesSMKI(t *testing.T) {
	for range 20 {
		k := newKey(t)
		got, err := KeyID(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if want := smki.KeyID(&k.PublicKey); string(got) != string(want) || len(got) != 8 || got[0]>>4 != 4 {
			t.Fatalf("KeyID %X, smki.KeyID %X", got, want)
		}
	}
}

func TestTLSUser(t *testing.T) {
	good := &x509.Certificate{Subject: pkix.Name{CommonName: supplierEUI.String(), OrganizationalUnit: []string{"IS"}},
		URIs: []*url.URL{TLSUserURI(supplierEUI, smki.UserImportSupplier)}}
	tests := []struct {
		name string
		c    *x509.Certificate
		ok   bool
	}{
		{"good", good, true},
		{"no URI", &x509.Certificate{Subject: good.Subject}, false},
		{"subject disagrees", &x509.Certificate{Subject: pkix.Name{CommonName: deviceEUI.String(), OrganizationalUnit: []string{"IS"}}, URIs: good.URIs}, false},
		{"bad role", &x509.Certificate{Subject: good.Subject, URIs: []*url.URL{{Scheme: "urn", Opaque: "metertrust:user:" + supplierEUI.String() + ":XX"}}}, false},
		{"bad EUI", &x509.Certificate{Subject: good.Subject, URIs: []*url.URL{{Scheme: "urn", Opaque: "metertrust:user:ZZZZZZZZZZZZZZZZ:IS"}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eui, role, err := TLSUser(tc.c)
			if (err == nil) != tc.ok {
				t.Fatalf("TLSUser: %v", err)
			}
			if tc.ok && (eui != supplierEUI || role != smki.UserImportSupplier) {
				t.Errorf("got %s %s", eui, role)
			}
			if !tc.ok && !errors.Is(err, ErrRequest) {
				t.Errorf("error %v does not wrap ErrRequest", err)
			}
		})
	}
}

func TestOpenBatchRefusals(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "B", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("batch before init: %v, want ErrNotFound", err)
	}
	e.init(t)
	if _, err := e.a.OpenBatch(ctx, "B", 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		quota int64
		want  error
	}{
		{"B", 1, ErrExists},
		{"root", 1, ErrRequest},
		{"bad/name", 1, ErrRequest},
		{"", 1, ErrRequest},
		{"C", 0, ErrRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.a.OpenBatch(ctx, tc.name, tc.quota); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.a.onlineIssuer(ctx, NameRoot); !errors.Is(err, ErrRequest) {
		t.Errorf("the root as an online issuer: %v, want ErrRequest", err)
	}
}

func TestHardwareModuleNameRoundTrip(t *testing.T) {
	ext, err := hardwareModuleNameSAN(smki.OIDHWTypeReferenceMeter, deviceEUI)
	if err != nil {
		t.Fatal(err)
	}
	typ, eui, err := readHWName(ext.Value)
	if err != nil || eui != deviceEUI || !typ.Equal(smki.OIDHWTypeReferenceMeter) || !ext.Critical {
		t.Errorf("round trip: %v %s %v", typ, eui, err)
	}
	if _, _, err := readHWName([]byte{0x30, 0x00}); err == nil {
		t.Error("empty GeneralNames accepted")
	}
}

func TestReadInitRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"full", `{"root_name":"ZA","oca_name":"Z1","dccki_root_name":"R","dccki_tls_name":"T"}`, true},
		{"partial", `{"root_name":"ZA"}`, true},
		{"unknown field", `{"root_name":"ZA","quota":5}`, false},
		{"trailing", `{"root_name":"ZA"} {}`, false},
		{"blank name", `{"oca_name":"   "}`, false},
		{"long name", `{"oca_name":"` + strings.Repeat("x", 65) + `"}`, false},
		{"not JSON", `root_name: ZA`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadInitRequest(strings.NewReader(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("ReadInitRequest: %v", err)
			}
			if err != nil && !errors.Is(err, ErrRequest) {
				t.Errorf("%v does not wrap ErrRequest", err)
			}
		})
	}
}

func TestLintOCSP(t *testing.T) {
	k := newKey(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "R"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := x509.ParseCertificate(der)
	good := ocsp.Response{SerialNumber: big.NewInt(7), Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	tests := []struct {
		name   string
		change func(*ocsp.Response)
		lint   string
	}{
		{"good", func(*ocsp.Response) {}, ""},
		{"serial", func(r *ocsp.Response) { r.SerialNumber = big.NewInt(8) }, "e_ocsp_serial_matches_request"},
		{"validity", func(r *ocsp.Response) { r.NextUpdate = now.Add(-time.Hour) }, "e_ocsp_validity"},
		{"future", func(r *ocsp.Response) { r.ThisUpdate, r.NextUpdate = now.Add(time.Hour), now.Add(2*time.Hour) }, "e_ocsp_validity"},
		{"revoked later", func(r *ocsp.Response) { r.Status, r.RevokedAt = ocsp.Revoked, now.Add(time.Minute) }, "e_ocsp_revocation_fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := good
			tc.change(&r)
			resp, err := ocsp.CreateResponse(issuer, issuer, r, k)
			if err != nil {
				t.Fatal(err)
			}
			err = lintOCSP(resp, issuer, big.NewInt(7), now)
			if tc.lint == "" {
				if err != nil {
					t.Fatalf("lintOCSP: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLint) || !strings.Contains(err.Error(), tc.lint) {
				t.Errorf("got %v, want ErrLint naming %s", err, tc.lint)
			}
		})
	}
}

// TestRefreshOCSPBackfill checks that the refresher signs a response for a
// certificate stored without one (published, or from before responses were
// stored), and none for a root's certificates.
func TestRefreshOCSPBackfill(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "R2", 10); err != nil {
		t.Fatal(err)
	}
	rec, err := e.a.IssueDevice(ctx, "R2", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	bare := rec
	bare.Serial = []byte{0x42}
	if err := e.db.SMKI().PutCertificates(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SMKI().OCSPResponse(ctx, "R2", bare.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("response before the refresh: %v", err)
	}
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 1 {
		t.Fatalf("RefreshOCSP = %d, %v; want 1", n, err)
	}
	r, err := e.db.SMKI().OCSPResponse(ctx, "R2", bare.Serial)
	if err != nil || r.Status != store.OCSPGood {
		t.Fatalf("backfilled response %+v, %v", r, err)
	}
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 0 {
		t.Errorf("second RefreshOCSP = %d, %v; want 0", n, err)
	}
}
