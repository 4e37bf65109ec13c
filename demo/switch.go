package demo

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// SwitchSupplier is the supplier the consumer switches to in the demo's
// change of supplier.
var SwitchSupplier = inproc.PartySpec{Name: "switch-supplier", Organisation: "Switch Energy",
	EUI: smki.MustParseEUI("90B3D51F30040000"), Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier,
	Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}

// SwitchSummary is the demo's change of supplier.
type SwitchSummary struct {
	Meter string `json:"meter"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Outcome is the change's settled state ("applied").
	Outcome string `json:"outcome"`
	// RefusedByRouter and RefusedByMeter say the old supplier's next
	// disconnection was refused by the router (not the owner) and, sent
	// to the meter another way, by the meter (not in its anchors).
	RefusedByRouter bool `json:"oldSupplierRefusedByRouter"`
	RefusedByMeter  bool `json:"oldSupplierRefusedByMeter"`
	// NewSupplierExecuted says the new supplier's disconnection ran.
	NewSupplierExecuted bool `json:"newSupplierExecuted"`
}

// actSwitch is the change of supplier: the consumer of the first meter
// switches to Switch Energy.
func (r *run) actSwitch(ctx context.Context) error {
	s := r.sys
	m := s.Meters[0]
	old, sw := s.Party(inproc.PartySupplier), s.Party(SwitchSupplier.Name)
	if sw == nil {
		return fmt.Errorf("%w: no party %s", inproc.ErrConfig, SwitchSupplier.Name)
	}
	sum := &r.sum.Switch
	sum.Meter, sum.From, sum.To = m.String(), old.EUI.String(), sw.EUI.String()
	r.say("The consumer of meter %s switches supplier, from %s to %s (change of supplier, DUIS 6.23)", m, old.Organisation, sw.Organisation)
	if err := router.NewRegistrar(s.DB.Router(), nil).RegisterSupply(ctx, inproc.OperatorName, m, sw.EUI, time.Now().Add(-time.Minute)); err != nil {
		return err
	}
	r.detail("the DCC records the registration data: %s supplies %s from now (audited)", sw.Organisation, m)
	c, err := client.New(client.Config{Router: s.RouterURL, Repository: s.RepositoryURL, Signer: sw.DS, KeyAgreement: sw.KA,
		TLS: &tls.Config{RootCAs: s.DCCKIRoots, Certificates: []tls.Certificate{*sw.TLS}, ServerName: "localhost"}})
	if err != nil {
		return err
	}
	certs, err := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: sw.EUI.String(), Kind: store.KindOrg})
	if err != nil {
		return err
	}
	serial := map[string]string{}
	for _, ct := range certs {
		serial[ct.Usage] = fmt.Sprintf("%X", ct.Serial)
	}
	ch, err := c.ChangeSupplier(ctx, m, serial[store.UsageDS], serial[store.UsageKA], serial[store.UsagePPKA])
	if err != nil {
		return fmt.Errorf("change of supplier: %w", err)
	}
	r.accepted() // the transitional change-of-supplier party's CS02b
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ch, err = c.WaitChange(wctx, ch.ID); err != nil {
		return fmt.Errorf("change of supplier %s: %w", ch.ID, err)
	}
	if ch.State != "applied" {
		return fmt.Errorf("%w: change of supplier %s settled %s: %s", ErrAPI, ch.ID, ch.State, ch.Detail)
	}
	r.sum.Forwarded++
	sum.Outcome = ch.State
	r.detail("the transitional CoS party's CS02b (signed with its key, MAC'd by the ACB) replaced the meter's supplier cells;")
	r.detail("the router moved ownership on the meter's confirmation: %s -> %s (audited)", ch.OldOwner, ch.NewOwner)

	r.say("%s's next disconnection of %s is refused twice", old.Organisation, m)
	_, _, err = r.supplier.request(ctx, "7.2", m, nil)
	if err := r.refused(err, router.ErrNotOwner.Code()); err != nil {
		return err
	}
	sum.RefusedByRouter = true
	// The same command reaching the meter another way, MAC'd as the ACB
	// would: the meter no longer trusts the old supplier's key.
	last, _, err := s.Router.Storage.LastCounter(ctx, old.EUI, m)
	if err != nil {
		return err
	}
	pc, err := s.Router.Router.BuildServiceRequest(ctx, router.Caller{EUI: old.EUI, Role: old.UserRole},
		router.ServiceRequestInput{Ref: "7.2", Target: m, Counter: last + 1000})
	if err != nil {
		return err
	}
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		return err
	}
	msg, err := commands.Parse(raw)
	if err != nil {
		return err
	}
	if err := commands.SignPreCommand(rand.Reader, old.DS, msg); err != nil {
		return err
	}
	mtr, ok := s.Fleet.Meter(m)
	if !ok {
		return fmt.Errorf("%w: no meter %s in the fleet", ErrAPI, m)
	}
	if err := commands.AddMAC(ctx, s.ACBKeyAgreement(), mtr.AgreementPublicKey(), msg); err != nil {
		return err
	}
	direct, err := msg.Marshal()
	if err != nil {
		return err
	}
	if _, err := s.Fleet.Deliver(ctx, m, direct); !errors.Is(err, device.ErrUnknownSigner) {
		return fmt.Errorf("%w: the old supplier's command delivered to the meter: %v, want refused (unknown signer)", ErrAPI, err)
	}
	sum.RefusedByMeter = true
	r.detail("by the router: not-owner; sent to the meter directly: refused, its signer is no longer in the meter's anchors")

	r.say("%s disconnects %s: signed with its own key, accepted and executed", sw.Organisation, m)
	rc, err := c.Send(ctx, "7.2", m, nil)
	if err != nil {
		return err
	}
	r.accepted()
	d, err := c.Wait(wctx, rc.ID, 0)
	if err != nil || d.Kind != client.KindResponse {
		return fmt.Errorf("%w: the new supplier's disconnection: %v %s", ErrAPI, err, d.Detail)
	}
	if _, err := c.Open(ctx, d.Body); err != nil {
		return fmt.Errorf("the new supplier's disconnection response: %w", err)
	}
	r.sum.Forwarded++
	sum.NewSupplierExecuted = true
	r.detail("the meter's response, signed by the meter, checked by the new supplier")
	return nil
}
