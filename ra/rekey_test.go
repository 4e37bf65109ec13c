package ra_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// rekeyFixture is a world with a device in the inventory (DS and KA
// certificates from batch B1), a batch opened for re-keys, and a
// registered supplier.
type rekeyFixture struct {
	*world
	device   smki.EUI
	ds, ka   *ecdsa.PrivateKey
	supplier smki.EUI
	sc       *http.Client // the supplier's client certificate
	counter  uint64
}

const rekeyBatch = "RK1"

func newRekeyFixture(t *testing.T) *rekeyFixture {
	t.Helper()
	ctx := context.Background()
	f := &rekeyFixture{world: newWorld(t), device: smki.MustParseEUI("F000000000000101"), ds: newKey(t), ka: newKey(t),
		supplier: smki.MustParseEUI("90B3D51F30010000"), counter: 1}
	for _, k := range []struct {
		key *ecdsa.PrivateKey
		ku  x509.KeyUsage
	}{{f.ds, x509.KeyUsageDigitalSignature}, {f.ka, x509.KeyUsageKeyAgreement}} {
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: f.device, KeyUsage: k.ku, HWType: smki.OIDHWTypeReferenceMeter}, k.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.IssueDevice(ctx, batch, csr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.auth.OpenBatchFor(ctx, rekeyBatch, 10, ca.PurposeRekey); err != nil {
		t.Fatal(err)
	}
	if code, p := f.call(f.client, "PUT", "/v1/organisations/"+f.supplier.String(), "carol", ra.OrganisationRecord{Name: "Supplier A", Roles: []string{"supplier"}}, nil); code != http.StatusCreated {
		t.Fatalf("register: %d %+v", code, p)
	}
	f.sc = f.httpClient(ptr(f.clientCert(f.supplier)))
	return f
}

// response is a device response of code with payload, from `from` to `to`,
// signed with key.
func (f *rekeyFixture) response(t *testing.T, from, to smki.EUI, code uint16, payload []byte, key *ecdsa.PrivateKey) string {
	t.Helper()
	f.counter++
	m := &commands.Message{CRA: commands.Response, Counter: f.counter, Originator: from, Recipient: to, Code: commands.MessageCode(code), Payload: payload}
	if err := commands.Sign(rand.Reader, key, m); err != nil {
		t.Fatal(err)
	}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw)
}

// cs02c is the device's CS02c response carrying a request for key.
func (f *rekeyFixture) cs02c(t *testing.T, eui smki.EUI, ku x509.KeyUsage, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui, KeyUsage: ku, HWType: smki.OIDHWTypeReferenceMeter}, key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&asn.IssueSecurityCredentialsResponse{CertificationRequest: &asn.CertificationRequest{Raw: csr}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRekey issues a device's re-key certificate for its owner from the
// device's signed CS02c response, then, on the device's CS02e read-back,
// revokes the certificate it superseded.
func TestRekey(t *testing.T) {
	f := newRekeyFixture(t)
	ctx := context.Background()
	newDS := newKey(t)
	var cert ra.CertificateView
	body := ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, f.cs02c(t, f.device, x509.KeyUsageDigitalSignature, newDS), f.ds)}
	if code, p := f.call(f.sc, "POST", "/v1/requests/device-rekey", "", body, &cert); code != http.StatusCreated || cert.CA != rekeyBatch || cert.EUI != f.device.String() || cert.Usage != "ds" {
		t.Fatalf("re-key: %d %+v %+v", code, p, cert)
	}
	// The same request again: the key is certified already.
	if code, p := f.call(f.sc, "POST", "/v1/requests/device-rekey", "", body, nil); code != http.StatusConflict {
		t.Errorf("the same request twice: %d %+v", code, p)
	}
	good, _ := f.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: f.device.String(), Kind: store.KindDevice, Usage: "ds"})
	if len(good) != 2 {
		t.Fatalf("%d good DS certificates before the meter confirms, want 2 (old and new)", len(good))
	}
	var newDER []byte
	for _, g := range good {
		if g.CA == rekeyBatch {
			newDER = g.DER
		}
	}
	// A read-back from before the re-key (a small counter: sent before the
	// new certificate was issued), the old certificate in it, signed with
	// the old key, would revoke the new certificate: refused.
	var oldDER []byte
	for _, g := range good {
		if g.CA != rekeyBatch {
			oldDER = g.DER
		}
	}
	po, err := (&asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: oldDER}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	stale := ra.RekeyConfirmation{Response: f.response(t, f.device, f.supplier, 0x000C, po, f.ds)}
	if code, pd := f.call(f.sc, "POST", "/v1/requests/device-rekey/confirm", "", stale, nil); code != http.StatusConflict || !strings.Contains(pd.Detail, "older than") {
		t.Errorf("a stale read-back of the old certificate: %d %+v", code, pd)
	}
	if again, _ := f.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: f.device.String(), Kind: store.KindDevice, Usage: "ds"}); len(again) != 2 {
		t.Fatalf("after the stale read-back: %d good DS certificates, want both", len(again))
	}

	// The read-back, signed with the new key, supersedes the old.
	p, err := (&asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: newDER}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var done ra.RekeyConfirmed
	confirm := ra.RekeyConfirmation{Response: f.response(t, f.device, f.supplier, 0x000C, p, newDS)}
	if code, pd := f.call(f.sc, "POST", "/v1/requests/device-rekey/confirm", "", confirm, &done); code != http.StatusOK ||
		len(done.Superseded) != 1 || done.Superseded[0].CA != batch || done.Superseded[0].RevocationReason != "superseded" {
		t.Fatalf("confirm: %d %+v %+v", code, pd, done)
	}
	good, _ = f.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: f.device.String(), Kind: store.KindDevice, Usage: "ds"})
	if len(good) != 1 || good[0].CA != rekeyBatch {
		t.Errorf("good DS certificates after the confirmation: %+v", good)
	}
	// Again: nothing left to supersede.
	if code, pd := f.call(f.sc, "POST", "/v1/requests/device-rekey/confirm", "", ra.RekeyConfirmation{Response: f.response(t, f.device, f.supplier, 0x000C, p, newDS)}, &done); code != http.StatusOK || len(done.Superseded) != 0 {
		t.Errorf("confirm twice: %d %+v %+v", code, pd, done)
	}
}

// TestRekeyRefusals checks every refusal of the re-key endpoints: each
// answered with its status, audited as refused or failed, and nothing
// issued or revoked.
func TestRekeyRefusals(t *testing.T) {
	f := newRekeyFixture(t)
	ctx := context.Background()
	other := smki.MustParseEUI("F000000000000999")
	stranger := smki.MustParseEUI("90B3D51F30010001") // registered as a manufacturer only
	if code, p := f.call(f.client, "PUT", "/v1/organisations/"+stranger.String(), "carol", ra.OrganisationRecord{Name: "Meters Ltd", Manufacturer: true}, nil); code != http.StatusCreated {
		t.Fatalf("register: %d %+v", code, p)
	}
	unregistered := smki.MustParseEUI("90B3D51F30010002")
	good := func() []byte { return f.cs02c(t, f.device, x509.KeyUsageDigitalSignature, newKey(t)) }
	oldDSCert, _ := f.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: f.device.String(), Kind: store.KindDevice, Usage: "ds"})
	sameKey := f.cs02c(t, f.device, x509.KeyUsageDigitalSignature, f.ds)
	tests := []struct {
		name   string
		client *http.Client
		body   any
		want   int
	}{
		{"unregistered organisation", f.httpClient(ptr(f.clientCert(unregistered))),
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, unregistered, 0x000A, good(), f.ds)}, http.StatusForbidden},
		{"manufacturer, not an owner's role", f.httpClient(ptr(f.clientCert(stranger))),
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, stranger, 0x000A, good(), f.ds)}, http.StatusForbidden},
		{"response to another party", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, stranger, 0x000A, good(), f.ds)}, http.StatusForbidden},
		{"signature not the device's", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, good(), newKey(t))}, http.StatusForbidden},
		{"signed with the device's key-agreement key", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, good(), f.ka)}, http.StatusForbidden},
		{"not a CS02c response", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000C, good(), f.ds)}, http.StatusBadRequest},
		{"device not in the inventory", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, other, f.supplier, 0x000A, f.cs02c(t, other, x509.KeyUsageDigitalSignature, newKey(t)), f.ds)}, http.StatusForbidden},
		{"request for another device", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, f.cs02c(t, other, x509.KeyUsageDigitalSignature, newKey(t)), f.ds)}, http.StatusBadRequest},
		{"key already certified", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, sameKey, f.ds)}, http.StatusConflict},
		{"batch for new devices", f.sc,
			ra.RekeyRequest{Batch: batch, Response: f.response(t, f.device, f.supplier, 0x000A, good(), f.ds)}, http.StatusConflict},
		{"unknown batch", f.sc,
			ra.RekeyRequest{Batch: "NOPE", Response: f.response(t, f.device, f.supplier, 0x000A, good(), f.ds)}, http.StatusNotFound},
		{"the device answered with a code", f.sc,
			ra.RekeyRequest{Batch: rekeyBatch, Response: f.response(t, f.device, f.supplier, 0x000A, []byte{0x02, 0x01, 0x02}, f.ds)}, http.StatusBadRequest},
		{"not a GBCS message", f.sc, ra.RekeyRequest{Batch: rekeyBatch, Response: "00ff"}, http.StatusBadRequest},
		{"no response", f.sc, ra.RekeyRequest{Batch: rekeyBatch}, http.StatusBadRequest},
		{"unknown field", f.sc, map[string]string{"batch": rekeyBatch, "csr": "x"}, http.StatusBadRequest},
	}
	before, _ := f.db.SMKI().CA(ctx, rekeyBatch)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := f.lastSeq()
			if code, p := f.call(tt.client, "POST", "/v1/requests/device-rekey", "", tt.body, nil); code != tt.want {
				t.Errorf("status %d %+v, want %d", code, p, tt.want)
			}
			refused := false
			for _, e := range f.audit(seq) {
				if e.Action == ra.ActionRekey && (e.Outcome == ra.OutcomeRefused || e.Outcome == ra.OutcomeFailure) {
					refused = true
				}
			}
			if !refused {
				t.Error("the refusal is not audited")
			}
		})
	}
	if after, _ := f.db.SMKI().CA(ctx, rekeyBatch); after.Issued != before.Issued {
		t.Errorf("refusals used quota: %d -> %d", before.Issued, after.Issued)
	}

	// The confirmation's refusals: nothing revoked.
	foreign := f.response(t, f.device, f.supplier, 0x000C, mustMarshal(t, &asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: oldDSCert[0].DER}}), newKey(t))
	unknownCert := f.response(t, f.device, f.supplier, 0x000C, mustMarshal(t, &asn.ProvideDeviceCertificateResponse{Certificate: &asn.Certificate{Raw: f.otherCert(t)}}), f.ds)
	for _, tt := range []struct {
		name string
		body ra.RekeyConfirmation
		want int
	}{
		{"signature not the device's", ra.RekeyConfirmation{Response: foreign}, http.StatusForbidden},
		{"certificate not the device's in the repository", ra.RekeyConfirmation{Response: unknownCert}, http.StatusConflict},
		{"not a CS02e response", ra.RekeyConfirmation{Response: f.response(t, f.device, f.supplier, 0x000A, good(), f.ds)}, http.StatusBadRequest},
	} {
		t.Run("confirm/"+tt.name, func(t *testing.T) {
			if code, p := f.call(f.sc, "POST", "/v1/requests/device-rekey/confirm", "", tt.body, nil); code != tt.want {
				t.Errorf("status %d %+v, want %d", code, p, tt.want)
			}
		})
	}
	if all, _ := f.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: f.device.String(), Kind: store.KindDevice}); len(all) != 2 {
		t.Errorf("%d good certificates of the device after refused confirmations, want 2", len(all))
	}
}

// otherCert is a device certificate of another device.
func (f *rekeyFixture) otherCert(t *testing.T) []byte {
	t.Helper()
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: smki.MustParseEUI("F000000000000555"), KeyUsage: x509.KeyUsageDigitalSignature, HWType: smki.OIDHWTypeReferenceMeter}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.auth.IssueDevice(context.Background(), batch, csr)
	if err != nil {
		t.Fatal(err)
	}
	return c.DER
}

func mustMarshal(t *testing.T, v interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
