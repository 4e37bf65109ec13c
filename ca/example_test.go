package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Example runs the init ceremony, opens a batch Device CA and issues a
// device certificate from a GB device request, on softkms key files and the
// embedded store in a temporary directory.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ca-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	keys, err := custody.Open(ctx, "softkms", dir, rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	a, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler), Actor: "example"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := a.Init(ctx, ca.InitRequest{RootName: "ZA", OCAName: "Z1"}); err != nil {
		log.Fatal(err)
	}
	if _, err := a.OpenBatch(ctx, "E357", 100); err != nil {
		log.Fatal(err)
	}

	// The meter makes a key pair and a request (GBCS CS02c).
	meterKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice,
		EUI: smki.MustParseEUI("00-0D-6F-00-00-00-00-01"), KeyUsage: x509.KeyUsageKeyAgreement,
		HWType: smki.OIDHWTypeReferenceMeter}, meterKey)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := a.IssueDevice(ctx, "E357", csr)
	if err != nil {
		log.Fatal(err)
	}
	c, err := smki.ParseCertificate(rec.DER)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.CA, rec.Kind, rec.Usage, c.EUI, c.Profile, c.NotAfter.Format("20060102150405Z"))
	// Output: E357 device ka 000D6F0000000001 device-ka 99991231235959Z
}

func ExampleParseReason() {
	code, err := ca.ParseReason("keyCompromise")
	fmt.Println(code, err)
	_, err = ca.ParseReason("certificateHold")
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// ca: invalid request: reason certificateHold: certificate holds are not supported, revocation is final
}

func ExampleTLSUserURI() {
	fmt.Println(ca.TLSUserURI(smki.MustParseEUI("90-B3-D5-1F-30-01-00-00"), smki.UserImportSupplier))
	// Output: urn:metertrust:user:90B3D51F30010000:IS
}
