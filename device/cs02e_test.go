package device

import (
	"bytes"
	"testing"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// TestCS02eReadsCertificates reads the meter's device certificates back
// with CS02e (gbcs-payloads.md 3.5): noCertificateHeld (2) for a usage the
// meter holds none of, invalidKeyUsage (1) for a usage other than exactly
// one of DS and KA, and after a re-key (CS02c, CS02d) the certificate
// installed, in a response signed with the new key.
func TestCS02eReadsCertificates(t *testing.T) {
	w := newWorld(t, Electricity)
	read := func(ku asn.KeyUsage) *asn.ProvideDeviceCertificateResponse {
		t.Helper()
		b, cmd := w.command(CodeCS02e, asnBytes(t, &asn.ProvideDeviceCertificateCommand{KeyUsage: ku}), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatalf("CS02e: %v", err)
		}
		r, err := asn.Parse[asn.ProvideDeviceCertificateResponse](w.open(resp, cmd, w.supplier).Payload)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	code := func(r *asn.ProvideDeviceCertificateResponse) int64 {
		if r.ResponseCode == nil {
			return -1
		}
		return int64(*r.ResponseCode)
	}
	ds, ka := asn.NewKeyUsage(asn.DigitalSignature), asn.NewKeyUsage(asn.KeyAgreement)
	for _, tc := range []struct {
		name string
		ku   asn.KeyUsage
		want int64
	}{
		{"no DS certificate held", ds, 2},
		{"no KA certificate held", ka, 2},
		{"both usages", asn.NewKeyUsage(asn.DigitalSignature, asn.KeyAgreement), 1},
		{"keyCertSign", asn.NewKeyUsage(asn.KeyCertSign), 1},
	} {
		if got := code(read(tc.ku)); got != tc.want {
			t.Errorf("%s: response code %d, want %d", tc.name, got, tc.want)
		}
	}

	b, cmd := w.command(CodeCS02c, asnBytes(t, &asn.IssueSecurityCredentialsCommand{KeyUsage: ds}), cmdOpts{})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := asn.Parse[asn.IssueSecurityCredentialsResponse](w.open(resp, cmd, w.supplier).Payload)
	if err != nil || r.CertificationRequest == nil {
		t.Fatalf("CS02c: %+v, %v", r, err)
	}
	csr, err := r.CertificationRequest.Parse()
	if err != nil {
		t.Fatal(err)
	}
	cert := issue(t, smki.ProfileDeviceDS, 0, w.meter.EUI(), csr.PublicKey)
	b, _ = w.command(CodeCS02d, asnBytes(t, &asn.UpdateDeviceCertificateCommand{Certificate: asn.Certificate{Raw: cert}}), cmdOpts{})
	if _, err := w.meter.Handle(w.ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := read(ds); got.Certificate == nil || !bytes.Equal(got.Certificate.Raw, cert) {
		t.Errorf("CS02e after the re-key: %+v, want the installed certificate", got)
	}
	if got := code(read(ka)); got != 2 {
		t.Errorf("CS02e KA after a DS re-key: %d, want noCertificateHeld", got)
	}
}
