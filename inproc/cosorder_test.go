package inproc

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// orderTransport delivers to the fleet, failing the first attempt of each
// disconnection (ECS43) as a transient error (the router retries it after
// a backoff), and logs the message codes of the attempts that reached the
// meter, in order.
type orderTransport struct {
	inner  router.Transport
	failed chan struct{}
	mu     sync.Mutex
	tried  map[string]bool
	log    []commands.MessageCode
}

func (o *orderTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	m, err := commands.Parse(msg)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	key := fmt.Sprintf("%s/%d", m.Originator, m.Counter)
	if m.Code == 0x0050 && !o.tried[key] {
		o.tried[key] = true
		o.mu.Unlock()
		o.failed <- struct{}{}
		return nil, errors.New("the WAN is down (test)")
	}
	o.log = append(o.log, m.Code)
	o.mu.Unlock()
	return o.inner.Send(ctx, target, msg)
}

// TestChangeOfSupplierOrder: the old supplier's disconnection, accepted
// before the change of supplier was recorded, fails its first attempt and
// backs off; the CS02b (another pair: the TCoS's) waits in the outbox
// until the disconnection has been delivered, and only then goes
// (decision 014 step 2, decision 019): the meter executes the
// disconnection under the old supplier's anchors, then the change.
func TestChangeOfSupplierOrder(t *testing.T) {
	ctx := context.Background()
	newSupplier := PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	ot := &orderTransport{failed: make(chan struct{}, 4), tried: map[string]bool{}}
	s, err := Start(ctx, Config{Meters: 1, Parties: append(DefaultParties(), newSupplier), RouterAddr: "127.0.0.1:0",
		Transport: func(f *device.Fleet) (router.Transport, error) { ot.inner = NewFleetTransport(f); return ot, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	meter := s.Meters[0]
	old, nw := s.Party(PartySupplier), s.Party(newSupplier.Name)
	oldCaller, newCaller := router.Caller{EUI: old.EUI, Role: old.UserRole}, router.Caller{EUI: nw.EUI, Role: nw.UserRole}
	pc, err := s.Router.Router.BuildServiceRequest(ctx, oldCaller, router.ServiceRequestInput{Ref: "7.2", Target: meter})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Router.Router.Submit(ctx, oldCaller, signed(t, old, pc))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ot.failed:
	case <-time.After(20 * time.Second):
		t.Fatal("the disconnection never reached the transport")
	}
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
		t.Fatalf("no %s certificate of the new supplier", u)
		return ""
	}
	if err := router.NewRegistrar(s.DB.Router(), nil).RegisterSupply(ctx, "operator", meter, nw.EUI, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Router.Changes.RequestChange(ctx, newCaller,
		router.ChangeRequest{Target: meter, DS: serial(ca.UsageDS), KA: serial(ca.UsageKA), PrepaymentKA: serial(ca.UsagePPKA)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.State == "pending" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if st, err = s.Router.Changes.Change(ctx, newCaller, st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != "applied" {
		t.Fatalf("change %+v, want applied", st)
	}
	ot.mu.Lock()
	log := slices.Clone(ot.log)
	ot.mu.Unlock()
	if i, j := slices.Index(log, 0x0050), slices.Index(log, 0x0107); i < 0 || j < 0 || i > j {
		t.Fatalf("messages reached the meter in the order %v: want the disconnection (0050) before the CS02b (0107)", log)
	}
	c, err := s.DB.Router().RouterCommand(ctx, rc.ID)
	if err != nil || c.State != store.CommandResponded {
		t.Fatalf("the disconnection: %s, %v; want responded", c.State, err)
	}
	if m, _ := s.Fleet.Meter(meter); m.Supply() != device.SupplyDisabled {
		t.Fatalf("the meter's supply is %v, want disabled by the old supplier's command", m.Supply())
	}
}
