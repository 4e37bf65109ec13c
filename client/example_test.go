package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
)

// The examples run a whole metertrust in the process (package inproc: CAs,
// repository, router, a fleet of reference meters) to have something to
// answer; a user's system has none of it, only its DCCKI certificate and
// its keys.

// exampleSystem starts metertrust in the process with its default parties
// and the extra ones given.
func exampleSystem(extra ...inproc.PartySpec) *inproc.System {
	cfg := inproc.Config{Meters: 1, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"}
	if extra != nil {
		cfg.Parties = append(inproc.DefaultParties(), extra...)
	}
	sys, err := inproc.Start(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	return sys
}

// clientOf is party p's client of sys, as New in ExampleNew.
func clientOf(sys *inproc.System, p *inproc.Party) *client.Client {
	c, err := client.New(client.Config{Router: sys.RouterURL, Repository: sys.RepositoryURL, Signer: p.DS, KeyAgreement: p.KA,
		TLS: &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*p.TLS}, ServerName: "localhost"}})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// Example is a supplier's system reading a meter's registers and
// disconnecting it. A real system loads its DCCKI certificate with
// tls.LoadX509KeyPair and its keys with custody.OpenKey ("ds.key",
// "pkcs11:..."); here a whole metertrust runs in the process to answer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer sys.Close()
	sup := sys.Party(inproc.PartySupplier)

	c, err := client.New(client.Config{
		Router:       sys.RouterURL,
		Repository:   sys.RepositoryURL,
		TLS:          &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*sup.TLS}, ServerName: "localhost"},
		Signer:       sup.DS, // digital signing: critical commands
		KeyAgreement: sup.KA, // key agreement: MACs and decryption
	})
	if err != nil {
		log.Fatal(err)
	}
	meter := sys.Meters[0]

	// A register read (service request 4.1.1): not critical, no signature.
	rc, err := c.Send(ctx, "4.1.1", meter, nil)
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.Open(ctx, d.Body) // MAC checked, payload decrypted
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("register read:", r.Payload.Structure, len(r.Plaintexts), "block decrypted")

	// A disconnection (7.2) is critical: Send signs it with Signer.
	rc, err = c.Send(ctx, "7.2", meter, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("disconnection:", rc.Status)
	// Output:
	// register read: DLMS 1 block decrypted
	// disconnection: accepted
}

// ExampleNew connects a supplier's system to the router: its DCCKI client
// certificate and the DCCKI root for TLS, its digital-signing key for
// critical commands, its key-agreement key to check and decrypt responses,
// and the SMKI repository for the devices' certificates. A real system
// reads them from files or a token:
//
//	cert, err := tls.LoadX509KeyPair("supplier-tls.pem", "supplier-tls.key")
//	ds, closeDS, err := custody.OpenKey("pkcs11:token=supplier;object=ds?pin-source=/etc/pin", "")
//	ka, closeKA, err := custody.OpenKey("ka.key", "")
func ExampleNew() {
	sys := exampleSystem()
	defer sys.Close()
	sup := sys.Party(inproc.PartySupplier)

	c, err := client.New(client.Config{
		Router:       sys.RouterURL,     // https://router.dcc.example:8443
		Repository:   sys.RepositoryURL, // https://smki.dcc.example
		TLS:          &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*sup.TLS}, ServerName: "localhost"},
		Signer:       sup.DS,
		KeyAgreement: sup.KA,
	})
	if err != nil {
		log.Fatal(err)
	}
	// The user, as its DCCKI certificate names it.
	fmt.Println(c.EUI(), c.Role())
	// Output: 90B3D51F30010000 IS
}

// ExampleClient_Send sends a disconnection (service request 7.2, critical)
// in one call, then in the two steps apart, and shows how refusals are
// told apart: by the router's stable codes, with errors.Is.
func ExampleClient_Send() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys := exampleSystem()
	defer sys.Close()
	c := clientOf(sys, sys.Party(inproc.PartySupplier))
	meter := sys.Meters[0]

	// One call: the service request, the signature, the submission.
	rc, err := c.Send(ctx, "7.2", meter, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("7.2:", rc.Status)

	// The steps apart, for a system that signs elsewhere.
	pc, err := c.ServiceRequest(ctx, "7.3", meter, nil) // arm the supply
	if err != nil {
		log.Fatal(err)
	}
	signed, err := c.Sign(pc) // only what was asked for: from the user, to meter, 7.3
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Submit(ctx, signed); err != nil {
		log.Fatal(err)
	}
	// The same command twice: refused, its counter already used.
	_, err = c.Submit(ctx, signed)
	fmt.Println("again:", errors.Is(err, client.ErrReplay))

	// A meter the router does not know.
	_, err = c.Send(ctx, "4.1.1", smki.MustParseEUI("0012A3FFFEFFFFFF"), nil)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("unknown meter:", errors.Is(err, client.ErrUnknownDevice), e.Status, e.Code)
	}
	// Output:
	// 7.2: accepted
	// again: true
	// unknown meter: true 404 unknown-device
}

// ExampleClient_Watch follows the user's event stream until the response
// to a register read arrives. A real system keeps Watch running, and
// restarts it after the last event it handled (Event.ID) if it stops.
func ExampleClient_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys := exampleSystem()
	defer sys.Close()
	c := clientOf(sys, sys.Party(inproc.PartySupplier))

	rc, err := c.Send(ctx, "4.1.1", sys.Meters[0], nil)
	if err != nil {
		log.Fatal(err)
	}
	errSeen := errors.New("seen")
	err = c.Watch(ctx, "", func(ev client.Event) error {
		switch {
		case ev.Alert != nil:
			// An anomaly alert about the user's own commands.
		case ev.Delivery.CommandID == rc.ID:
			fmt.Println(ev.Delivery.Kind, "to", ev.Delivery.CommandID == rc.ID)
			return errSeen // ends Watch
		}
		return nil
	})
	if !errors.Is(err, errSeen) {
		log.Fatal(err)
	}
	// Output: response to true
}

// ExampleClient_Open checks and reads a meter's response: the MAC under the
// user's key-agreement key and the meter's (or the meter's signature), the
// payload read, the blocks encrypted end to end to the user decrypted.
func ExampleClient_Open() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys := exampleSystem()
	defer sys.Close()
	c := clientOf(sys, sys.Party(inproc.PartySupplier))
	meter := sys.Meters[0]

	rc, err := c.Send(ctx, "4.1.1", meter, nil)
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.Open(ctx, d.Body)
	if err != nil {
		log.Fatal(err) // a response that does not check is never read
	}
	fmt.Println("from the meter:", r.Message.Originator == meter)
	fmt.Println("payload:", r.Payload.Structure, "decrypted blocks:", len(r.Plaintexts))
	// Output:
	// from the meter: true
	// payload: DLMS decrypted blocks: 1
}

// ExampleClient_ClaimConsent is a third party (an other user) obtaining a
// consumer's consent with the CIN flow and reading the meter under it:
// the meter displays a CIN, the consumer reads it back, the third party
// claims consent with it; a read reaching back more than 13 months is
// refused.
func ExampleClient_ClaimConsent() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys := exampleSystem()
	defer sys.Close()
	tp := sys.Party(inproc.PartyThirdParty) // user role OU: a key-agreement key, no signing key
	c := clientOf(sys, tp)
	meter := sys.Meters[0]

	rc, err := c.RequestCIN(ctx, meter, "")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Wait(ctx, rc.ID, 0); err != nil { // the meter displays it
		log.Fatal(err)
	}
	m, _ := sys.Fleet.Meter(meter)
	cin, _ := m.CIN() // what the consumer reads off the meter and tells the third party

	cs, err := c.ClaimConsent(ctx, meter, cin, []string{"4.8.1"}, 30)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("consent:", cs.State, cs.Scope)

	now := time.Now().UTC()
	period := func(back time.Duration) map[string]any {
		return map[string]any{"from": now.Add(-back).Format(time.RFC3339), "to": now.Format(time.RFC3339)}
	}
	rc, err = c.Send(ctx, "4.8.1", meter, period(24*time.Hour)) // the half-hour profile of the last day
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.Open(ctx, d.Body) // encrypted to the third party's key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("profile decrypted:", len(r.Plaintexts) > 0)

	_, err = c.Send(ctx, "4.8.1", meter, period(14*31*24*time.Hour))
	fmt.Println("14 months back:", errors.Is(err, client.ErrConsentPeriod))
	// Output:
	// consent: live [4.8.1]
	// profile decrypted: true
	// 14 months back: true
}

// ExampleClient_ChangeSupplier is the incoming supplier taking over a
// meter: the DCC's registration data name it (an operator records them:
// metertrust router supply-register), it asks with the serials of its
// three organisation certificates, and ownership moves when the meter
// confirms. The old supplier's commands are then refused.
func ExampleClient_ChangeSupplier() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	incoming := inproc.PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	sys := exampleSystem(incoming)
	defer sys.Close()
	meter := sys.Meters[0]
	// The DCC's side: the registration data.
	if err := router.NewRegistrar(sys.DB.Router(), nil).RegisterSupply(ctx, "operator", meter, incoming.EUI, time.Now().Add(-time.Minute)); err != nil {
		log.Fatal(err)
	}
	newSupplier := sys.Party(incoming.Name)
	serial := func(u ca.Usage) string { // as the repository lists it
		c, err := smki.ParseCertificate(newSupplier.Certificates[u])
		if err != nil {
			log.Fatal(err)
		}
		return fmt.Sprintf("%X", c.SerialNumber)
	}

	c := clientOf(sys, newSupplier)
	ch, err := c.ChangeSupplier(ctx, meter, serial(ca.UsageDS), serial(ca.UsageKA), serial(ca.UsagePPKA))
	if err != nil {
		log.Fatal(err)
	}
	ch, err = c.WaitChange(ctx, ch.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("change:", ch.State, "to", ch.NewOwner)

	_, err = clientOf(sys, sys.Party(inproc.PartySupplier)).Send(ctx, "7.2", meter, nil)
	fmt.Println("the old supplier's disconnection:", errors.Is(err, client.ErrNotOwner))
	rc, err := c.Send(ctx, "7.2", meter, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the new supplier's:", rc.Status)
	// Output:
	// change: applied to 90B3D51F30040000
	// the old supplier's disconnection: true
	// the new supplier's: accepted
}

// ExampleClient_SetThreshold sets a threshold of the supplier's own,
// stricter than the DCC's: one register read per hour. The second read is
// quarantined.
func ExampleClient_SetThreshold() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys := exampleSystem()
	defer sys.Close()
	c := clientOf(sys, sys.Party(inproc.PartySupplier))

	t, err := c.SetThreshold(ctx, anomaly.Threshold{ID: "reads", Scope: anomaly.ScopeUserService, ServiceRef: "4.1.1",
		Limit: 1, Window: time.Hour})
	if err != nil {
		log.Fatal(err) // ErrNotStricter when the DCC's is as strict
	}
	fmt.Println("set:", t.ID, t.Limit, t.Window)
	for i := range 2 {
		_, err := c.Send(ctx, "4.1.1", sys.Meters[0], nil)
		fmt.Println("read", i+1, "quarantined:", errors.Is(err, client.ErrQuarantined))
	}
	// Output:
	// set: reads 1 1h0m0s
	// read 1 quarantined: false
	// read 2 quarantined: true
}
