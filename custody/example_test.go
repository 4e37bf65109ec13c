package custody_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"

	"github.com/metertrust/metertrust/custody"
)

// A custody of key files makes a signing key and a key-agreement key by
// name, hands them back by URI, and destroys them.
func ExampleCustody() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keys-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keys, err := custody.Open(ctx, "softkms", dir, rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()

	caURI, _, err := keys.CreateKey(ctx, "oca")
	if err != nil {
		log.Fatal(err)
	}
	acbURI, _, err := keys.CreateAgreement(ctx, "acb-ka")
	if err != nil {
		log.Fatal(err)
	}
	acb, err := keys.Agreement(ctx, acbURI)
	if err != nil {
		log.Fatal(err)
	}
	meter, err := custody.Generate(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	z1, _ := acb.ECDH(ctx, meter.PublicKey())
	z2, _ := meter.ECDH(ctx, acb.PublicKey())
	fmt.Println(caURI, acbURI, string(z1) == string(z2))
	fmt.Println(keys.Destroy(ctx, caURI), keys.Destroy(ctx, acbURI))
	// Output:
	// softkms:path=keys/oca.key softkms:path=keys/acb-ka.key true
	// <nil> <nil>
}
