package inproc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// holdingTransport delivers to the fleet, holding each CS02b
// supplierByTransCoS until the test releases it, so that a change of
// supplier stays pending for as long as the test needs.
type holdingTransport struct {
	inner   router.Transport
	held    chan struct{}
	release chan struct{}
	// lose, when set for a target, loses the CS02b to it ("command"),
	// its answer ("answer", reported as a final failure) or its answer
	// silently ("silent", as if it would come later).
	mu   sync.Mutex
	lose map[smki.EUI]string
}

func (h *holdingTransport) loses(target smki.EUI) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lose[target]
}

func (h *holdingTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	if m, err := commands.Parse(msg); err == nil && m.Code == 0x0107 && h.loses(target) != "" {
		switch h.loses(target) {
		case "command":
			return nil, fmt.Errorf("%w: the CS02b was lost", router.ErrDeviceRefused)
		case "answer":
			_, err := h.inner.Send(ctx, target, msg)
			return nil, fmt.Errorf("%w: the answer was lost (%v)", router.ErrDeviceRefused, err)
		default:
			_, err := h.inner.Send(ctx, target, msg)
			return nil, err
		}
	}
	if m, err := commands.Parse(msg); err == nil && m.Code == 0x0107 {
		h.held <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.inner.Send(ctx, target, msg)
}

// TestChangeOfSupplier runs a change of supplier through the whole system
// (decision 014): refused without registration data; recorded pending and
// sent; while pending, a second change is refused change-pending and both
// suppliers' critical commands ownership-unsettled; the meter applies it
// and ownership moves; then the old supplier's critical command is refused
// by the router (not-owner) and, delivered straight to the meter, by the
// meter (not in its anchors), while the new supplier's goes through.
func TestChangeOfSupplier(t *testing.T) {
	ctx := context.Background()
	newSupplier := PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	ht := &holdingTransport{held: make(chan struct{}, 4), release: make(chan struct{})}
	s, err := Start(ctx, Config{Meters: 2, Parties: append(DefaultParties(), newSupplier), RouterAddr: "127.0.0.1:0",
		Transport: func(f *device.Fleet) (router.Transport, error) { ht.inner = NewFleetTransport(f); return ht, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Router.Changes == nil {
		t.Fatal("the router has no change desk: no TCoS key")
	}
	meter := s.Meters[0]
	old, nw := s.Party(PartySupplier), s.Party(newSupplier.Name)
	oldCaller, newCaller := router.Caller{EUI: old.EUI, Role: old.UserRole}, router.Caller{EUI: nw.EUI, Role: nw.UserRole}

	// The new supplier's certificates, by serial as the repository lists
	// them.
	certs, err := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: nw.EUI.String(), Kind: store.KindOrg})
	if err != nil {
		t.Fatal(err)
	}
	serial := func(u ca.Usage) string {
		for _, c := range certs {
			if string(c.DER) == string(nw.Certificates[u]) {
				return fmt.Sprintf("%X", c.Serial)
			}
		}
		t.Fatalf("no %s certificate of the new supplier in the repository", u)
		return ""
	}
	req := router.ChangeRequest{Target: meter, DS: serial(ca.UsageDS), KA: serial(ca.UsageKA), PrepaymentKA: serial(ca.UsagePPKA)}

	// Through the API: refused without registration data.
	hc, err := s.Client(nw)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	res, err := hc.Post(s.RouterURL+"/v1/changes-of-supplier", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Code string `json:"code"`
	}
	json.NewDecoder(res.Body).Decode(&p)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || p.Code != "not-owner" {
		t.Fatalf("change without registration data: %s %q, want 403 not-owner", res.Status, p.Code)
	}
	reg := router.NewRegistrar(s.DB.Router(), nil)
	if err := reg.RegisterSupply(ctx, "operator", meter, nw.EUI, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Router.Changes.RequestChange(ctx, oldCaller, req); !errors.Is(err, router.ErrNotOwner) {
		t.Fatalf("change by a supplier the registration data do not name: %v, want not-owner", err)
	}
	bad := req
	bad.DS = req.KA
	if _, err := s.Router.Changes.RequestChange(ctx, newCaller, bad); !errors.Is(err, router.ErrCertPath) {
		t.Fatalf("a key-agreement certificate for the DS cell: %v, want certificate-path", err)
	}

	st, err := s.Router.Changes.RequestChange(ctx, newCaller, req)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "pending" || st.OldOwner != old.EUI || st.NewOwner != nw.EUI {
		t.Fatalf("change %+v", st)
	}
	select {
	case <-ht.held:
	case <-time.After(20 * time.Second):
		t.Fatal("the CS02b never reached the transport")
	}
	res, err = hc.Post(s.RouterURL+"/v1/changes-of-supplier", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&p)
	res.Body.Close()
	if res.StatusCode != http.StatusConflict || p.Code != "change-pending" {
		t.Fatalf("second change while the first is pending: %s %q, want 409 change-pending", res.Status, p.Code)
	}
	critical := func(p *Party) error {
		t.Helper()
		c := router.Caller{EUI: p.EUI, Role: p.UserRole}
		pc, err := s.Router.Router.BuildServiceRequest(ctx, c, router.ServiceRequestInput{Ref: "7.2", Target: meter})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Router.Router.Submit(ctx, c, signed(t, p, pc))
		return err
	}
	for _, p := range []*Party{old, nw} {
		if err := critical(p); !errors.Is(err, router.ErrOwnershipUnsettled) {
			t.Errorf("%s's critical command while the change is pending: %v, want ownership-unsettled", p.Name, err)
		}
	}

	close(ht.release)
	deadline := time.Now().Add(20 * time.Second)
	for st.State == "pending" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if st, err = s.Router.Changes.Change(ctx, newCaller, st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != "applied" {
		t.Fatalf("change %+v, want applied", st)
	}
	res, err = hc.Get(s.RouterURL + "/v1/changes-of-supplier/" + st.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got router.ChangeStatus
	json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || got.State != "applied" || got.NewOwner != nw.EUI {
		t.Fatalf("GET the change: %s %+v", res.Status, got)
	}
	if _, err := s.Router.Changes.Change(ctx, oldCaller, st.ID); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("another supplier reading the change: %v, want not-found", err)
	}
	d, err := s.Router.Storage.Device(ctx, meter)
	if err != nil || d.Supplier != nw.EUI || d.ChangeState != "" {
		t.Fatalf("device after the change: %+v, %v", d, err)
	}

	// The old supplier: refused by the router, and by the meter when its
	// command reaches it another way (MAC'd as the broker would).
	if err := critical(old); !errors.Is(err, router.ErrNotOwner) {
		t.Errorf("old supplier's critical command after the change: %v, want not-owner", err)
	}
	last, _, err := s.Router.Storage.LastCounter(ctx, old.EUI, meter)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := s.Router.Router.BuildServiceRequest(ctx, oldCaller, router.ServiceRequestInput{Ref: "7.2", Target: meter, Counter: last + 1000})
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.Parse(signed(t, old, pc))
	if err != nil {
		t.Fatal(err)
	}
	mtr, _ := s.Fleet.Meter(meter)
	if err := commands.AddMAC(ctx, s.ACBKeyAgreement(), mtr.AgreementPublicKey(), m); err != nil {
		t.Fatal(err)
	}
	direct, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fleet.Deliver(ctx, meter, direct); !errors.Is(err, device.ErrUnknownSigner) {
		t.Errorf("old supplier's command straight to the meter: %v, want the meter's unknown signer", err)
	}
	// The new supplier's critical command is accepted and executed.
	if err := critical(nw); err != nil {
		t.Errorf("new supplier's critical command: %v", err)
	}
	// Every refusal audited once; the change attempted and settled with
	// its old and new owner.
	events, err := s.DB.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Action+"/"+e.Outcome]++
		if e.Action == "router.device.credentials.change" && e.Outcome == store.OutcomeSuccess &&
			(e.Details["oldOwner"] != old.EUI.String() || e.Details["newOwner"] != nw.EUI.String()) {
			t.Errorf("settlement audited as %+v", e.Details)
		}
	}
	if counts["router.change-of-supplier.refused/"+store.OutcomeRefused] != 4 || counts["router.device.credentials.change/"+store.OutcomeAttempt] != 1 ||
		counts["router.device.credentials.change/"+store.OutcomeSuccess] != 1 || counts["router.supply.register/"+store.OutcomeSuccess] != 1 {
		t.Errorf("audit log: %v", counts)
	}
}

// signed returns the pre-command pc signed by p.
func signed(t *testing.T, p *Party, pc router.PreCommand) []byte {
	t.Helper()
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.SignPreCommand(rand.Reader, p.DS, m); err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChangeOfSupplierUnsettled: a change whose outcome the router cannot
// know is unsettled, and settled by the broker's CS02a read of the meter's
// anchors (decision 014, steps 4 to 6): the answer lost after the meter
// applied it (applied); the CS02b lost on its way (not applied); no answer
// at all, settled by the sweep a restarted router runs (applied).
func TestChangeOfSupplierUnsettled(t *testing.T) {
	ctx := context.Background()
	newSupplier := PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	ht := &holdingTransport{held: make(chan struct{}, 4), release: make(chan struct{}), lose: map[smki.EUI]string{}}
	s, err := Start(ctx, Config{Meters: 3, Parties: append(DefaultParties(), newSupplier),
		Transport: func(f *device.Fleet) (router.Transport, error) { ht.inner = NewFleetTransport(f); return ht, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	old, nw := s.Party(PartySupplier), s.Party(newSupplier.Name)
	newCaller := router.Caller{EUI: nw.EUI, Role: nw.UserRole}
	certs, err := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: nw.EUI.String(), Kind: store.KindOrg})
	if err != nil {
		t.Fatal(err)
	}
	serial := func(u ca.Usage) string {
		for _, c := range certs {
			if string(c.DER) == string(nw.Certificates[u]) {
				return fmt.Sprintf("%X", c.Serial)
			}
		}
		t.Fatalf("no %s certificate", u)
		return ""
	}
	reg := router.NewRegistrar(s.DB.Router(), nil)
	tests := []struct {
		lose, want string
		owner      *Party
	}{
		{"answer", "applied", nw},
		{"command", "not-applied", old},
		{"silent", "applied", nw},
	}
	for i, tt := range tests {
		t.Run(tt.lose, func(t *testing.T) {
			meter := s.Meters[i]
			ht.mu.Lock()
			ht.lose[meter] = tt.lose
			ht.mu.Unlock()
			if err := reg.RegisterSupply(ctx, "operator", meter, nw.EUI, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			st, err := s.Router.Changes.RequestChange(ctx, newCaller, router.ChangeRequest{Target: meter, DS: serial(ca.UsageDS),
				KA: serial(ca.UsageKA), PrepaymentKA: serial(ca.UsagePPKA)})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if st, err = s.Router.Changes.Change(ctx, newCaller, st.ID); err != nil {
					t.Fatal(err)
				}
				if st.State == tt.want {
					break
				}
				if tt.lose == "silent" && st.State == "pending" {
					// The CS02b went and no answer comes: a router
					// starting now marks it unsettled and reads.
					if c, err := s.Router.Storage.Command(ctx, st.CommandID); err == nil && c.State == "forwarded" {
						if err := s.Router.Changes.Sweep(ctx, true); err != nil {
							t.Fatal(err)
						}
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			if st.State != tt.want || !strings.Contains(st.Detail, "supplier cells hold") {
				t.Fatalf("change %+v, want %s settled by the read", st, tt.want)
			}
			d, err := s.Router.Storage.Device(ctx, meter)
			if err != nil || d.Supplier != tt.owner.EUI || d.ChangeState != "" {
				t.Fatalf("device after the change: %+v, %v, want owner %s", d, err, tt.owner.Name)
			}
		})
	}
}
