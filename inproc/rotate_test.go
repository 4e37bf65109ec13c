package inproc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// newOrgCerts issues p fresh organisation certificates of its role for
// usages, returning their repository serials (hex) and the new DS key.
func newOrgCerts(t *testing.T, s *System, p *Party, usages ...ca.Usage) (map[ca.Usage]string, *ecdsa.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	out := map[ca.Usage]string{}
	var ds *ecdsa.PrivateKey
	for _, u := range usages {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ku := x509.KeyUsageKeyAgreement
		if u == ca.UsageDS {
			ku, ds = x509.KeyUsageDigitalSignature, key
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: p.Role, EUI: p.EUI,
			CommonName: p.Organisation, KeyUsage: ku}, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.CA.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: p.Role, EUI: p.EUI, Usage: u})
		if err != nil {
			t.Fatal(err)
		}
		out[u] = fmt.Sprintf("%X", c.Serial)
	}
	return out, ds
}

// signWith returns the pre-command pc signed with key.
func signWith(t *testing.T, key *ecdsa.PrivateKey, pc router.PreCommand) []byte {
	t.Helper()
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.SignPreCommand(rand.Reader, key, m); err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitRotation polls the rotation of command id until it settles.
func waitRotation(t *testing.T, s *System, c router.Caller, id string) router.ChangeStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.Router.Changes.Rotation(context.Background(), c, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != store.ChangePending && st.State != store.ChangeUnsettled || time.Now().After(deadline) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRotation: the supplier rotates its keys on one meter (SR 6.15.1,
// CS02b supplierBySupplier signed with its current key) through the
// change desk, with the real reference meter: the meter applies it, the
// router records the new key id for that meter only, and then checks the
// supplier's signatures per meter with the key each holds (decision 016).
// The refusals (not-owner, certificate-path, wrong role) are audited.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{Meters: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rotated, other := s.Meters[0], s.Meters[1]
	sup := s.Party(PartySupplier)
	caller := router.Caller{EUI: sup.EUI, Role: sup.UserRole}
	serials, newDS := newOrgCerts(t, s, sup, ca.UsageDS, ca.UsageKA, ca.UsagePPKA)
	req := router.RotationRequest{Target: rotated, DS: serials[ca.UsageDS], KA: serials[ca.UsageKA], PrepaymentKA: serials[ca.UsagePPKA]}
	desk := s.Router.Changes

	// Refusals before anything is recorded.
	var no *Party
	for _, p := range s.PartyList {
		if p.Role == smki.RoleNetworkOperator && p.UserRole != "" {
			no = p
		}
	}
	if no != nil {
		if _, err := desk.PrepareRotation(ctx, router.Caller{EUI: no.EUI, Role: no.UserRole}, req); !errors.Is(err, router.ErrCertPath) && !errors.Is(err, router.ErrBadRequest) {
			t.Errorf("a network operator rotating with supplier certificates: %v, want certificate-path or bad-request", err)
		}
	}
	bad := req
	bad.DS = req.KA
	if _, err := desk.PrepareRotation(ctx, caller, bad); !errors.Is(err, router.ErrCertPath) {
		t.Errorf("a KA certificate for the DS cell: %v, want certificate-path", err)
	}
	if _, err := desk.PrepareRotation(ctx, router.Caller{EUI: smki.MustParseEUI("90B3D51F30990000"), Role: smki.UserImportSupplier}, req); !errors.Is(err, router.ErrNotOwner) {
		t.Errorf("a supplier that does not own the meter: %v, want not-owner", err)
	}

	pc, err := desk.PrepareRotation(ctx, caller, req)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Code != "0x0102" || !pc.Critical || pc.Ref != "6.15.1" {
		t.Fatalf("pre-command %+v", pc)
	}
	// Signed with the new key, which the meter does not hold yet: refused.
	if _, err := s.Router.Router.Submit(ctx, caller, signWith(t, newDS, pc)); !errors.Is(err, router.ErrSignature) {
		t.Fatalf("rotation signed with the new key: %v, want signature", err)
	}
	rc, err := s.Router.Router.Submit(ctx, caller, signed(t, sup, pc))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Change == "" {
		t.Fatalf("receipt %+v names no change", rc)
	}
	st := waitRotation(t, s, caller, rc.ID)
	if st.State != store.OutcomeApplied || st.Kind != "supplierBySupplier" {
		t.Fatalf("rotation %+v, want applied", st)
	}
	d, err := s.Router.Storage.Device(ctx, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%X", d.SupplierKeyID) != st.DSKeyID || d.Supplier != sup.EUI || d.ChangeState != "" {
		t.Fatalf("device after the rotation: %+v, want key %s", d, st.DSKeyID)
	}
	dOther, err := s.Router.Storage.Device(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%X", dOther.SupplierKeyID) == st.DSKeyID {
		t.Fatal("the other meter's key id changed too")
	}

	critical := func(target smki.EUI, sign func(router.PreCommand) []byte) error {
		t.Helper()
		pc, err := s.Router.Router.BuildServiceRequest(ctx, caller, router.ServiceRequestInput{Ref: "7.2", Target: target})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Router.Router.Submit(ctx, caller, sign(pc))
		return err
	}
	withNew := func(pc router.PreCommand) []byte { return signWith(t, newDS, pc) }
	withOld := func(pc router.PreCommand) []byte { return signed(t, sup, pc) }
	if err := critical(rotated, withNew); err != nil {
		t.Errorf("disconnection signed with the new key on the rotated meter: %v", err)
	}
	err = critical(rotated, withOld)
	if !errors.Is(err, router.ErrSignature) || !strings.Contains(err.Error(), st.DSKeyID) {
		t.Errorf("disconnection signed with the old key on the rotated meter: %v, want signature naming key %s", err, st.DSKeyID)
	}
	if err := critical(other, withOld); err != nil {
		t.Errorf("disconnection signed with the old key on the other meter: %v", err)
	}
	if err := critical(other, withNew); !errors.Is(err, router.ErrSignature) {
		t.Errorf("disconnection signed with the new key on the other meter: %v, want signature", err)
	}

	// The network operator rotates its keys on the other meter
	// (networkOperatorByNetworkOperator): its anchor key id changes, the
	// supplier's does not.
	if no == nil {
		t.Fatal("no network operator party")
	}
	noCaller := router.Caller{EUI: no.EUI, Role: no.UserRole}
	noSerials, _ := newOrgCerts(t, s, no, ca.UsageDS, ca.UsageKA)
	noReq := router.RotationRequest{Target: other, DS: noSerials[ca.UsageDS], KA: noSerials[ca.UsageKA]}
	if _, err := desk.PrepareRotation(ctx, noCaller, router.RotationRequest{Target: other, DS: noSerials[ca.UsageDS],
		KA: noSerials[ca.UsageKA], PrepaymentKA: noSerials[ca.UsageKA]}); !errors.Is(err, router.ErrBadRequest) {
		t.Errorf("a network operator's prepayment cell: %v, want bad-request", err)
	}
	pc, err = desk.PrepareRotation(ctx, noCaller, noReq)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Code != "0x0103" {
		t.Fatalf("network operator's pre-command %+v", pc)
	}
	rc, err = s.Router.Router.Submit(ctx, noCaller, signed(t, no, pc))
	if err != nil {
		t.Fatal(err)
	}
	st = waitRotation(t, s, noCaller, rc.ID)
	if st.State != store.OutcomeApplied || st.Kind != "networkOperatorByNetworkOperator" {
		t.Fatalf("network operator's rotation %+v, want applied", st)
	}
	dNO, err := s.Router.Storage.Device(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%X", dNO.NetworkOperatorKeyID) != st.DSKeyID || !bytes.Equal(dNO.SupplierKeyID, dOther.SupplierKeyID) ||
		dNO.NetworkOperator != no.EUI || dNO.Supplier != sup.EUI {
		t.Fatalf("device after the network operator's rotation: %+v", dNO)
	}
	mtr, _ := s.Fleet.Meter(other)
	if an, ok := mtr.Anchors().Role(smki.RoleNetworkOperator); !ok || fmt.Sprintf("%X", an.Cells[0].SubjectKeyID) != st.DSKeyID {
		t.Fatalf("meter's network operator anchor %+v, want DS key %s", an, st.DSKeyID)
	}

	// Audited: the attempts and the settlements.
	events, err := s.DB.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Action+"/"+e.Outcome]++
	}
	if counts["router.device.credentials.change/"+store.OutcomeAttempt] != 2 || counts["router.device.credentials.change/"+store.OutcomeSuccess] != 2 ||
		counts["router.key-rotation.refused/"+store.OutcomeRefused] < 2 {
		t.Errorf("audit log: %v", counts)
	}
}
