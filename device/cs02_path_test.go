package device

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/internal/certtest"
	"github.com/metertrust/metertrust/smki"
)

// TestCS02bPathThroughDeviceCA: the root signed the device CA too, so a
// device CA's key could mint "supplier" certificates that chain to the root
// through it. A change of supplier whose replacement certificates are signed
// by the device CA, with the device CA as certification path, is refused:
// only an organisation CA issues organisation certificates. The meter keeps
// trusting the supplier it had.
func TestCS02bPathThroughDeviceCA(t *testing.T) {
	ctx := t.Context()
	v := loadVector(t, "11")
	cmd := v.parsed(t)
	p, err := asn.Decode(uint16(cmd.Code), asn.Command, cmd.Payload)
	if err != nil {
		t.Fatal(err)
	}
	u := p.(*asn.UpdateSecurityCredentialsCommand)
	dca := loadVector(t, "19").certificate(t, "dca")
	dcaKey := vectorKey(t, "dca")
	for i := range u.Replacements {
		u.Replacements[i].ReplacementCertificate.Raw = certtest.Reissue(t, u.Replacements[i].ReplacementCertificate.Raw, dcaKey, nil)
	}
	u.CertificationPathCertificates = []asn.Certificate{{Raw: dca}}
	if cmd.Payload, err = u.Marshal(); err != nil {
		t.Fatal(err)
	}
	cmd.MAC = nil
	if err := commands.Sign(rand.Reader, vectorKey(t, "tcos-ds"), cmd); err != nil {
		t.Fatal(err)
	}
	m := vectorMeter(t, Electricity, 11, Config{})
	if err := commands.AddMAC(ctx, vectorAgreement(t, "acb-ka"), m.AgreementPublicKey(), cmd); err != nil {
		t.Fatal(err)
	}
	resp, err := m.Handle(ctx, must(cmd.Marshal()))
	var d *DiscardError
	switch {
	case err == nil:
		r, perr := commands.Parse(resp)
		if perr != nil {
			t.Fatal(perr)
		}
		out, derr := asn.Decode(uint16(r.Code), asn.Response, r.Payload)
		if derr != nil {
			t.Fatal(derr)
		}
		if o := out.(*asn.UpdateSecurityCredentialsResponse).ExecutionOutcome; o != nil {
			for _, ro := range o.ReplacementOutcomes {
				if ro.StatusCode == 0 {
					t.Errorf("replacement of %+v succeeded through the device CA", ro.AffectedTrustAnchorCell)
				}
			}
		}
	case !errors.As(err, &d):
		t.Fatalf("Handle: %v", err)
	default:
		t.Logf("discarded: %v", err)
	}
	sup, _ := m.Anchors().Role(smki.RoleSupplier)
	for _, c := range sup.Cells {
		if c.Subject != vecSupplier {
			t.Fatalf("the meter trusts %s after a change of supplier through the device CA", c.Subject)
		}
	}
}
