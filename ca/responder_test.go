package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestClosedBatchResponder: closing a batch certifies its delegated OCSP
// responder; a certificate of the closed batch can then be revoked (the
// responder signs the "revoked" response, the final CRL stays), path
// validation refuses it, the refresher re-signs the batch's responses with
// the responder, and LoadOnlineKeys loads the responder key.
func TestClosedBatchResponder(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	st := e.db.SMKI()
	if _, err := e.a.OpenBatch(ctx, "B1", 5); err != nil {
		t.Fatal(err)
	}
	var devs []store.Certificate
	for i := range 2 {
		d, err := e.a.IssueDevice(ctx, "B1", deviceCSR(t, newKey(t), euiAdd(deviceEUI, uint64(i)), x509.KeyUsageDigitalSignature))
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	if err := e.a.CloseBatch(ctx, "B1", "test"); err != nil {
		t.Fatalf("CloseBatch: %v", err)
	}
	final, err := e.a.LatestCRL(ctx, "B1")
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.a.Batch(ctx, "B1")
	if err != nil || info.State != store.CAStateClosed || info.Key != "destroyed" {
		t.Fatalf("batch after closing: %+v, %v", info, err)
	}
	batchCert, err := x509.ParseCertificate(info.CertDER)
	if err != nil {
		t.Fatal(err)
	}

	// The responder: issued by the batch, OCSP signing only, nocheck, not a
	// CA, never expiring, its key in the custody.
	r, err := st.OCSPResponder(ctx, "B1")
	if err != nil {
		t.Fatalf("OCSPResponder: %v", err)
	}
	rc, err := x509.ParseCertificate(r.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	nocheck := false
	for _, x := range rc.Extensions {
		if x.Id.Equal(oidOCSPNoCheck) {
			nocheck = !x.Critical && bytes.Equal(x.Value, asn1.NullBytes)
		}
	}
	switch {
	case !bytes.Equal(rc.RawIssuer, batchCert.RawSubject) || rc.CheckSignatureFrom(batchCert) != nil:
		t.Errorf("responder issuer %q, want the batch %q, signed by it", rc.Issuer, batchCert.Subject)
	case len(rc.ExtKeyUsage) != 1 || rc.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning || len(rc.UnknownExtKeyUsage) != 0:
		t.Errorf("responder EKU %v %v, want id-kp-OCSPSigning only", rc.ExtKeyUsage, rc.UnknownExtKeyUsage)
	case rc.KeyUsage != x509.KeyUsageDigitalSignature:
		t.Errorf("responder key usage %v, want digitalSignature", rc.KeyUsage)
	case !nocheck:
		t.Errorf("responder has no non-critical id-pkix-ocsp-nocheck")
	case rc.IsCA:
		t.Errorf("responder is a CA")
	case !rc.NotAfter.Equal(smki.NeverExpires) || rc.Subject.CommonName != "B1 OCSP responder":
		t.Errorf("responder %q valid to %s", rc.Subject, rc.NotAfter)
	}
	if !strings.Contains(r.KeyURI, responderLabel("B1")) {
		t.Errorf("responder key URI %s does not name its label %s", r.KeyURI, responderLabel("B1"))
	}
	if k, err := e.keys.Signer(ctx, r.KeyURI); err != nil || !publicKeysEqual(rc.PublicKey, k.Public()) {
		t.Errorf("responder key in custody: %v", err)
	}
	if c, err := st.Certificate(ctx, "B1", r.Serial); err != nil || c.Kind != store.KindOCSPResponder || c.Usage != store.UsageOCSP {
		t.Errorf("published responder certificate: %+v, %v", c, err)
	}
	if _, err := e.a.Revoke(ctx, "B1", r.Serial, 1); !errors.Is(err, ErrRequest) {
		t.Errorf("revoking the responder itself: %v, want ErrRequest", err)
	}

	// Revoking a device certificate of the closed batch.
	e.clock.t = e.clock.t.Add(time.Hour)
	if _, err := e.a.Revoke(ctx, "B1", devs[0].Serial, 1); err != nil {
		t.Fatalf("Revoke from the closed batch: %v", err)
	}
	if c, err := st.Certificate(ctx, "B1", devs[0].Serial); err != nil || !c.RevokedAt.Equal(e.clock.t) || c.Reason != 1 {
		t.Errorf("stored revocation: %+v, %v", c, err)
	}
	if after, err := e.a.LatestCRL(ctx, "B1"); err != nil || after.Number != final.Number {
		t.Errorf("final CRL changed: %d, %v; want %d", after.Number, err, final.Number)
	}
	parse := func(t *testing.T, c store.Certificate) *ocsp.Response {
		t.Helper()
		sr, err := st.OCSPResponse(ctx, c.CA, c.Serial)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ocsp.ParseResponseForCert(sr.DER, leaf, batchCert)
		if err != nil {
			t.Fatalf("ParseResponseForCert: %v", err)
		}
		return resp
	}
	if resp := parse(t, devs[0]); resp.Status != ocsp.Revoked || resp.RevocationReason != 1 || resp.Certificate == nil || !resp.Certificate.Equal(rc) {
		t.Errorf("revoked response: status %d reason %d, responder %v", resp.Status, resp.RevocationReason, resp.Certificate != nil)
	}

	// Path validation refuses the revoked certificate, through the stored
	// response, and accepts the other.
	opts, err := VerifyOptions(ctx, st, e.clock.t)
	if err != nil {
		t.Fatal(err)
	}
	opts.RequireRevocationInfo = true
	for i, want := range []error{smki.ErrRevoked, nil} {
		leaf, err := smki.ParseCertificate(devs[i].DER)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := smki.Verify(leaf, opts); !errors.Is(err, want) {
			t.Errorf("Verify(device %d) = %v, want %v", i, err, want)
		}
	}

	// The refresher re-signs the good response, signed at issuance, near
	// its expiry, with the responder.
	e.clock.t = e.clock.t.Add(12 * time.Hour)
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 1 {
		t.Fatalf("RefreshOCSP = %d, %v; want 1", n, err)
	}
	if resp := parse(t, devs[1]); resp.Status != ocsp.Good || !resp.ThisUpdate.Equal(e.clock.t) || resp.Certificate == nil || !resp.Certificate.Equal(rc) {
		t.Errorf("refreshed response: status %d from %s, by the responder %v", resp.Status, resp.ThisUpdate, resp.Certificate != nil)
	}
	e.clock.t = e.clock.t.Add(2 * time.Hour)
	if n, err := e.a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 1 {
		t.Fatalf("second RefreshOCSP = %d, %v; want 1 (the revoked one)", n, err)
	}
	if resp := parse(t, devs[0]); resp.Status != ocsp.Revoked || !resp.ThisUpdate.Equal(e.clock.t) {
		t.Errorf("refreshed revoked response: status %d from %s", resp.Status, resp.ThisUpdate)
	}

	// A service starting on the same store loads the responder key.
	a2 := newEnvWith(t, e.db, e.keys, e.dir).a
	loaded, err := a2.LoadOnlineKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range loaded {
		if k.CA == "B1" {
			found = k.Purpose == PurposeOCSPResponder && k.KeyURI == r.KeyURI
		}
	}
	if !found {
		t.Errorf("LoadOnlineKeys = %+v, want B1's OCSP responder", loaded)
	}
}

// TestClosedWithoutResponder: a batch closed before responders existed
// (its key destroyed, no responder recorded) still refuses revocation,
// saying why, and its responses are left to run out.
func TestClosedWithoutResponder(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	st := e.db.SMKI()
	if _, err := e.a.OpenBatch(ctx, "L1", 5); err != nil {
		t.Fatal(err)
	}
	dev, err := e.a.IssueDevice(ctx, "L1", deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
	if err != nil {
		t.Fatal(err)
	}
	// Closed as before decision record 013: key destroyed, no responder.
	rec, err := st.CA(ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Destroy(ctx, rec.KeyURI); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseCA(ctx, "L1", e.clock.t); err != nil {
		t.Fatal(err)
	}
	a := newEnvWith(t, e.db, e.keys, e.dir).a // no issuer cached
	_, err = a.Revoke(ctx, "L1", dev.Serial, 1)
	if !errors.Is(err, ErrBatchClosed) || !strings.Contains(err.Error(), "without a delegated OCSP responder") {
		t.Errorf("Revoke = %v, want ErrBatchClosed naming the missing responder", err)
	}
	if c, err := st.Certificate(ctx, "L1", dev.Serial); err != nil || !c.RevokedAt.IsZero() {
		t.Errorf("certificate after the refusal: %+v, %v; want unrevoked", c, err)
	}
	e.clock.t = e.clock.t.Add(20 * time.Hour)
	if n, err := a.RefreshOCSP(ctx, 12*time.Hour); err != nil || n != 0 {
		t.Errorf("RefreshOCSP = %d, %v; want 0", n, err)
	}
	loaded, err := a.LoadOnlineKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range loaded {
		if k.CA == "L1" {
			t.Errorf("LoadOnlineKeys loaded %+v for a batch without a responder", k)
		}
	}
}
