package dlms_test

import (
	"encoding/hex"
	"fmt"

	"github.com/metertrust/metertrust/commands/dlms"
)

// Build the ECS43 request that opens the load switch, then read it back.
func Example() {
	req := dlms.LoadSwitchRequest(dlms.InvokeID(0x1a230d51280), dlms.ScriptOpenLoadSwitch)
	b, err := req.MarshalBinary()
	if err != nil {
		panic(err)
	}
	fmt.Println(hex.EncodeToString(b))

	a, err := dlms.Parse(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Kind(), a.AccessRequest.Specs[0])
	d, err := dlms.Describe(dlms.CodeECS43, a)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %+v\n", d.UseCase, d.Value)
	// Output:
	// d920d51280000103000900000a006aff0101120034
	// access-request action 9 0-0:10.0.106.255 method 1 (script table (load switch): execute)
	// ECS43 remotely open the load switch: {Script:52}
}

// Find the ciphered block of an ECS17b response so that the caller, who
// holds the key, can decrypt it.
func ExampleCipheredBlocks() {
	pp := dlms.NewProtectionParameters(0x1a230f089c0, [8]byte{0x00, 0xdb, 0, 0, 0, 0, 0, 0xa1}, [8]byte{0x90, 0xb3, 0xd5, 0x1f, 0x30, 0x01, 0, 1})
	block := append([]byte{0x31, 0, 0, 0, 0}, make([]byte, 12+4)...)
	resp := dlms.NewProtectedResponse(dlms.InvokeID(0x1a230f089c0), dlms.ProtectedResult{Protection: pp, Ciphered: block})
	for _, d := range dlms.CipheredBlocks(&dlms.APDU{AccessResponse: resp}) {
		cb, err := dlms.ParseCipheredBlock(d.Bytes)
		if err != nil {
			panic(err)
		}
		fmt.Printf("security control %#x, %d bytes of ciphertext\n", cb.SecurityControl, len(cb.Ciphertext))
	}
	// Output:
	// security control 0x31, 4 bytes of ciphertext
}

func ExampleParseOBIS() {
	o, err := dlms.ParseOBIS("0-0:96.3.10.255")
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", o[:])
	// Output:
	// 00 00 60 03 0a ff
}
