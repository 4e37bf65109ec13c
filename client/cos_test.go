package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestChangeSupplier: the incoming supplier, named by the registration
// data, takes a meter through the client; a second change is refused while
// the first runs; once applied, the old supplier's disconnection is refused
// (not-owner) and the new supplier's accepted.
func TestChangeSupplier(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	incoming := inproc.PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, Parties: append(inproc.DefaultParties(), incoming),
		RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	meter := sys.Meters[0]
	clientOf := func(p *inproc.Party) *client.Client {
		c, err := client.New(client.Config{Router: sys.RouterURL, Repository: sys.RepositoryURL, Signer: p.DS, KeyAgreement: p.KA,
			TLS: &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*p.TLS}, ServerName: "localhost"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oldC, newC := clientOf(sys.Party(inproc.PartySupplier)), clientOf(sys.Party(incoming.Name))
	serial := map[string]string{}
	certs, err := sys.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: incoming.EUI.String(), Kind: store.KindOrg})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		serial[c.Usage] = fmt.Sprintf("%X", c.Serial)
	}
	if err := router.NewRegistrar(sys.DB.Router(), nil).RegisterSupply(ctx, "operator", meter, incoming.EUI, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	ch, err := newC.ChangeSupplier(ctx, meter, serial[store.UsageDS], serial[store.UsageKA], serial[store.UsagePPKA])
	if err != nil {
		t.Fatal(err)
	}
	// A second change: refused while the first runs (change-pending), or
	// once it applied because the caller already supplies the meter.
	if _, err := newC.ChangeSupplier(ctx, meter, serial[store.UsageDS], serial[store.UsageKA], serial[store.UsagePPKA]); !errors.Is(err, client.ErrChangePending) &&
		!errors.Is(err, client.ErrConflict) {
		t.Errorf("a second change: %v, want change-pending or conflict", err)
	}
	done, err := newC.WaitChange(ctx, ch.ID)
	if err != nil || done.State != "applied" || done.NewOwner != incoming.EUI {
		t.Fatalf("change = %+v, %v; want applied to the new supplier", done, err)
	}
	if _, err := oldC.Send(ctx, "7.2", meter, nil); !errors.Is(err, client.ErrNotOwner) {
		t.Errorf("the old supplier's disconnection: %v, want not-owner", err)
	}
	if _, err := newC.Send(ctx, "7.2", meter, nil); err != nil {
		t.Errorf("the new supplier's disconnection: %v", err)
	}
}
