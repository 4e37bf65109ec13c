package smki_test

import (
	"encoding/pem"
	"fmt"
	"os"

	"github.com/metertrust/metertrust/smki"
)

func ExampleParseEUI() {
	for _, s := range []string{"90B3D51F30010000", "90-b3-d5-1f-30-01-00-00", "90B3"} {
		e, err := smki.ParseEUI(s)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(e, e.Grouped())
	}
	// Output:
	// 90B3D51F30010000 90-B3-D5-1F-30-01-00-00
	// 90B3D51F30010000 90-B3-D5-1F-30-01-00-00
	// error: smki: invalid EUI-64: "90B3": want 16 hex digits, optionally grouped as 90-B3-D5-1F-30-01-00-00
}

func ExampleParseCertificate() {
	data, err := os.ReadFile("testdata/org-ds.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	block, _ := pem.Decode(data)
	c, err := smki.ParseCertificate(block.Bytes)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Profile, c.Kind)
	fmt.Println(c.Subject)
	fmt.Println(c.Role, c.EUI, smki.KeyUsageString(c.KeyUsage))
	fmt.Println(len(c.SubjectKeyID), "byte key id, issuer", c.Issuer)
	// Output:
	// org-ds organisation
	// CN=Acme Energy, OU=02, x500UniqueIdentifier=90B3D51F30010000
	// supplier 90B3D51F30010000 digitalSignature
	// 8 byte key id, issuer CN=metertrust test OCA, OU=07
}

func ExampleVerify() {
	load := func(name string) *smki.Certificate {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			panic(err)
		}
		cs, err := smki.ParseCertificates(data)
		if err != nil {
			panic(err)
		}
		return cs[0]
	}
	root, dca, dev := load("root.pem"), load("dca.pem"), load("device-ka.pem")
	path, err := smki.Verify(dev, smki.VerifyOptions{
		Roots:         []*smki.Certificate{root},
		Intermediates: []*smki.Certificate{dca},
		At:            dca.NotBefore.AddDate(1, 0, 0),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range path {
		fmt.Println(c.Profile, c.EUI)
	}
	// Output:
	// device-ka 00DB1234567890A0
	// dca 0000000000000000
	// root 0000000000000000
}
