package client_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"time"

	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/inproc"
)

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
