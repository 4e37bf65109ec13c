package commands_test

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// The GBCS section 18.4 command (ECS04b, reset meter balance), as in
// testdata/gbcs-18-4.json.
const vectorHex = "DD00000000000081A91100000000DF0901000000000000000108123456789ABCDEF008FFFFFFFFFFFFFFFE000200B335D92000000100030300700000130A00FF020300700000130A01FF020300700000130A02FF02030500000000050000000005000000004059045AB0F554622B0360340B9D87B5A23ED5723B41DE3F206E58CDD10F915B9FE2E12E2DA3632478A8DF678E418895869AC1E55318CCE04D120D2D6B44DC167B5D832D15B57A56D620F198B3"

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func ExampleParse() {
	m, err := commands.Parse(mustHex(vectorHex))
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := commands.LookupCode(m.Code)
	fmt.Println(m.CRA, m.Code, u.Name, "critical:", u.Critical())
	fmt.Println("from", m.Originator, "to", m.Recipient, "counter", m.Counter)
	fmt.Println("payload", len(m.Payload), "bytes, signed:", m.Signed(), "MAC:", hex.EncodeToString(m.MAC))
	// Output:
	// command 0x00B3 ECS04b critical: true
	// from 123456789ABCDEF0 to FFFFFFFFFFFFFFFE counter 1
	// payload 53 bytes, signed: true MAC: 5d832d15b57a56d620f198b3
}

// ExampleCheckMAC checks the vector's MAC as the device's mirror would, here
// with the access control broker's key and the device's public key.
func ExampleCheckMAC() {
	m, _ := commands.Parse(mustHex(vectorHex))
	acb, _ := commands.ParseRawPrivateKey(mustHex("E4A6CFB431471CFCAE491FD566D19C87082CF9FA7722D7FA24B2B3F5669DBEFB"))
	dev, _ := commands.ParseRawPublicKey(mustHex("2DB45A3F21889438B42C8F464C75292BACF5FDDB5DA0B492501B299CBFE92D8FDB90FC8FF4026129838B1BCAD1402CAE47FE7D8084E409A41AFCE16D63579C5F"))
	devKA, _ := commands.ECDHPublicKey(dev)
	fmt.Println(commands.CheckMAC(context.Background(), acb, devKA, m))
	// Output: <nil>
}

// ExampleDeriveKey shows the router's cached-Z path: Z is computed once per
// device and each message gets its own key from its OtherInfo.
func ExampleDeriveKey() {
	m, _ := commands.Parse(mustHex(vectorHex))
	z := mustHex("9aacf2e6d51bd5ff8f37bf368019a691cb5b2fcb7b5f030a00063647b20e13fe")
	info := m.MACInfo()
	fmt.Printf("OtherInfo %x\n", info[:])
	key := commands.DeriveKey(z, info)
	fmt.Println(commands.VerifyMAC(key, m))
	// Output:
	// OtherInfo 60857406080300123456789abcdef009010000000000000001fffffffffffffffe
	// <nil>
}

func ExampleUseCase_Eligible() {
	u, _ := commands.LookupCode(0x0037) // ECS22b, half-hourly profile data
	for _, r := range []smki.UserRole{smki.UserImportSupplier, smki.UserOther, smki.UserRegisteredSupplierAgent} {
		fmt.Println(u.Name, r, u.Eligible(r))
	}
	// Output:
	// ECS22b IS true
	// ECS22b OU true
	// ECS22b RSA false
}
