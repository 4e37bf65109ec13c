package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// TestRefreshCRLs checks that the refresher signs a CRL for each online CA
// that has none or whose CRL is within the margin of its nextUpdate, and
// leaves roots and closed batches alone.
func TestRefreshCRLs(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "C1", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.RefreshCRLs(ctx, 7*24*time.Hour); !errors.Is(err, ErrRequest) {
		t.Errorf("margin of the whole validity: %v, want ErrRequest", err)
	}
	// The ceremony and the batch opening signed their first CRLs.
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 0 {
		t.Fatalf("RefreshCRLs at once = %d, %v; want 0", n, err)
	}
	first, err := e.a.LatestCRL(ctx, NameOCA)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := e.a.LatestCRL(ctx, NameRoot)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(4 * 24 * time.Hour)
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 3 {
		t.Errorf("RefreshCRLs four days on = %d, %v; want 3 (OCA, batch, DCCKI TLS CA)", n, err)
	}
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 0 {
		t.Errorf("again = %d, %v; want 0", n, err)
	}
	if c, err := e.a.LatestCRL(ctx, NameRoot); err != nil || c.Number != rootCRL.Number {
		t.Errorf("the root's CRL changed: %d, %v", c.Number, err)
	}
	if err := e.a.CloseBatch(ctx, "C1", "test"); err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(4 * 24 * time.Hour)
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 2 {
		t.Errorf("RefreshCRLs after closing = %d, %v; want 2 (the batch is closed)", n, err)
	}
	c, err := e.a.LatestCRL(ctx, NameOCA)
	if err != nil || c.Number != first.Number+2 || !c.ThisUpdate.Equal(e.clock.t) {
		t.Errorf("OCA's CRL %d from %s, %v; want %d from now", c.Number, c.ThisUpdate, err, first.Number+2)
	}
	// Refresh does both: nothing due now.
	if o, n, err := e.a.Refresh(ctx); err != nil || o != 0 || n != 0 {
		t.Errorf("Refresh = %d, %d, %v; want nothing to do", o, n, err)
	}
}

// TestLoadOnlineKeys checks that the online CAs' keys are loaded and the
// roots' are not.
func TestLoadOnlineKeys(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	loaded, err := e.a.LoadOnlineKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, k := range loaded {
		got[k.CA] = true
	}
	if len(got) != 2 || !got[NameOCA] || !got[NameDCCKITLS] {
		t.Errorf("loaded %v, want the OCA and the DCCKI TLS CA only", loaded)
	}
}

func TestParseReasonCodes(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "keycompromise": 1, "0": 0, "9": 9, "privilegeWithdrawn": 9} {
		if got, err := ParseReason(in); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"6", "8", "10", "aACompromise", "7", "99", "-1", "", "hold\n"} {
		if _, err := ParseReason(in); !errors.Is(err, ErrRequest) {
			t.Errorf("ParseReason(%q) = %v, want ErrRequest", in, err)
		}
	}
}

// TestIssueTLSClientCSR issues a DCCKI client certificate for the user's
// own key from an ordinary PKCS#10 request, and refuses one with a bad
// self-signature or a key that is not P-256.
func TestIssueTLSClientCSR(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	k := newKey(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "anything"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	eui := smki.MustParseEUI("90B3D51F30010000")
	rec, err := e.a.IssueTLSClientCSR(ctx, der, eui, smki.UserImportSupplier)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	gotEUI, role, err := TLSUser(c)
	if err != nil || gotEUI != eui || role != smki.UserImportSupplier || !k.PublicKey.Equal(c.PublicKey) {
		t.Errorf("certificate for %s/%s (%v), key matches: %v", gotEUI, role, err, k.PublicKey.Equal(c.PublicKey))
	}
	bad := slices.Clone(der)
	bad[len(bad)-5] ^= 1
	if _, err := e.a.IssueTLSClientCSR(ctx, bad, eui, smki.UserImportSupplier); !errors.Is(err, ErrCSR) {
		t.Errorf("a tampered request: %v, want ErrCSR", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, p384)
	if _, err := e.a.IssueTLSClientCSR(ctx, der384, eui, smki.UserImportSupplier); !errors.Is(err, ErrCSR) {
		t.Errorf("a P-384 key: %v, want ErrCSR", err)
	}
}
