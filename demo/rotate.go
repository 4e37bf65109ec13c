package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// RotateSummary is the demo's key rotation: a supplier replaces its keys
// on one meter (SR 6.15.1).
type RotateSummary struct {
	Meter    string `json:"meter"`
	Supplier string `json:"supplier"`
	// Outcome is the rotation's settled state ("applied"); OldKeyID and
	// NewKeyID the supplier's digital-signing key identifiers the meter
	// held before and holds after (hex).
	Outcome  string `json:"outcome"`
	OldKeyID string `json:"oldKeyId"`
	NewKeyID string `json:"newKeyId"`
	// NewKeyExecuted says a disconnection signed with the new key ran;
	// OldKeyRefused that one signed with the old key was refused by the
	// router (signature), naming the key the meter holds.
	NewKeyExecuted bool `json:"newKeyExecuted"`
	OldKeyRefused  bool `json:"oldKeyRefused"`
}

// actRotate: the supplier that took the first meter rotates its keys on
// it. The SMKI issues its new certificates; the router builds the CS02b
// supplierBySupplier, the supplier signs it with its old key (the one the
// meter holds), the meter replaces the cells and confirms, and the router
// records the new key for that meter: a disconnection signed with the new
// key runs, one signed with the old key is refused by the router.
func (r *run) actRotate(ctx context.Context) error {
	s := r.sys
	m := s.Meters[0]
	sw := s.Party(SwitchSupplier.Name)
	if sw == nil {
		return fmt.Errorf("%w: no party %s", ErrAPI, SwitchSupplier.Name)
	}
	sum := &r.sum.Rotate
	sum.Meter, sum.Supplier = m.String(), sw.EUI.String()
	oldCert, err := smki.ParseCertificate(sw.Certificates[ca.UsageDS])
	if err != nil {
		return err
	}
	sum.OldKeyID = fmt.Sprintf("%X", oldCert.SubjectKeyID)
	r.say("%s rotates its keys on meter %s (SR 6.15.1): new certificates, a CS02b signed with the old key", sw.Organisation, m)
	var req client.RotateRequest
	var newDS crypto.Signer
	for _, u := range []struct {
		usage ca.Usage
		ku    x509.KeyUsage
		dst   *string
	}{{ca.UsageDS, x509.KeyUsageDigitalSignature, &req.DS}, {ca.UsageKA, x509.KeyUsageKeyAgreement, &req.KA},
		{ca.UsagePPKA, x509.KeyUsageKeyAgreement, &req.PrepaymentKA}} {
		k, err := custody.Generate(rand.Reader)
		if err != nil {
			return err
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: sw.Organisation,
			Role: sw.Role, EUI: sw.EUI, KeyUsage: u.ku}, k)
		if err != nil {
			return err
		}
		rec, err := s.CA.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: sw.Role, EUI: sw.EUI, Name: sw.Organisation, Usage: u.usage})
		if err != nil {
			return fmt.Errorf("issuing the new %s certificate: %w", u.usage, err)
		}
		*u.dst = fmt.Sprintf("%X", rec.Serial)
		if u.usage == ca.UsageDS {
			newDS = k
		}
	}
	r.detail("the SMKI issued %s new DS, KA and prepayment KA certificates (serials %s, %s, %s)", sw.Organisation, req.DS, req.KA, req.PrepaymentKA)
	as := func(signer crypto.Signer) (*client.Client, error) {
		return client.New(client.Config{Router: s.RouterURL, Repository: s.RepositoryURL, Signer: signer, KeyAgreement: sw.KA,
			TLS: &tls.Config{RootCAs: s.DCCKIRoots, Certificates: []tls.Certificate{*sw.TLS}, ServerName: "localhost"}})
	}
	oldC, err := as(sw.DS)
	if err != nil {
		return err
	}
	ch, err := oldC.RotateKeys(ctx, m, req)
	if err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	r.accepted() // the CS02b
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ch, err = oldC.WaitRotation(wctx, ch.CommandID); err != nil {
		return fmt.Errorf("rotation %s: %w", ch.CommandID, err)
	}
	if ch.State != "applied" {
		return fmt.Errorf("%w: rotation settled %s: %s", ErrAPI, ch.State, ch.Detail)
	}
	r.sum.Forwarded++
	sum.Outcome, sum.NewKeyID = ch.State, ch.DSKeyID
	r.detail("the CS02b supplierBySupplier (signed with key %s, MAC'd by the ACB) replaced the meter's supplier cells;", sum.OldKeyID)
	r.detail("the router recorded the change before sending it, and on the meter's confirmation the key it holds: %s", ch.DSKeyID)

	r.say("%s disconnects %s twice: signed with the new key, then with the old one", sw.Organisation, m)
	newC, err := as(newDS)
	if err != nil {
		return err
	}
	rc, err := newC.Send(ctx, "7.2", m, nil)
	if err != nil {
		return fmt.Errorf("disconnection signed with the new key: %w", err)
	}
	r.accepted()
	d, err := newC.Wait(wctx, rc.ID, 0)
	if err != nil || d.Kind != client.KindResponse {
		return fmt.Errorf("%w: the disconnection signed with the new key: %v %s", ErrAPI, err, d.Detail)
	}
	r.sum.Forwarded++
	sum.NewKeyExecuted = true
	r.detail("new key: accepted, executed, the meter's signed response checked")
	_, err = oldC.Send(ctx, "7.2", m, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "signature" {
		return fmt.Errorf("%w: the disconnection signed with the old key: %v, want refused (signature)", ErrAPI, err)
	}
	r.sum.Refused[ce.Code]++
	sum.OldKeyRefused = true
	r.detail("old key: refused by the router: %s", ce.Detail)
	return nil
}
