package provision_test

import (
	"fmt"
	"os"

	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/smki"
)

// Open checks the signature, reads the file and checks that its header
// names the signer.
func ExampleOpen() {
	data, _ := os.ReadFile("testdata/devices.jsonl")
	sig, _ := os.ReadFile("testdata/devices.jsonl.sig")
	pemCert, _ := os.ReadFile("testdata/manufacturer-ds.pem")
	certs, err := smki.ParseCertificates(pemCert)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := provision.Open(data, sig, certs[0], provision.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("manufacturer", f.Header.Manufacturer)
	for _, e := range f.Entries {
		fmt.Println("line", e.Line, e.EUI, e.DeviceType, len(e.CSRs), "requests")
	}
	// Output:
	// manufacturer 90B3D51F300A0001
	// line 2 00DB123456780001 ESME 2 requests
	// line 3 00DB123456780002 ESME 2 requests
	// line 4 00DB123456780003 ESME 2 requests
}
