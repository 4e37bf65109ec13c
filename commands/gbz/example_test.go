package gbz_test

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/commands/gbz"
)

// Build the GCS32 "close the valve" command of section 5.3.
func ExampleNewChangeSupply() {
	issuer, err := gbz.NewUTC(time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	p := gbz.NewChangeSupply(gbz.ChangeSupply{
		IssuerEventID:        issuer,
		ProposedSupplyStatus: gbz.SupplyOff,
		SupplyControlBits:    0x01,
	})
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	fmt.Println(hex.EncodeToString(b))
	// Output: 010901010702001501000b0000000060d5a63200000000000000000001
}

// Read a GCS32 response and say what it is.
func ExampleDescribe() {
	b, _ := hex.DecodeString("010901010702001009000c0000000060d5a6320000000000")
	p, err := gbz.Parse(b)
	if err != nil {
		panic(err)
	}
	u, err := gbz.Describe(gbz.CodeGCS32, p)
	if err != nil {
		panic(err)
	}
	r := u.Value.(*gbz.SupplyStatusResponse)
	fmt.Println(u.Name, u.Message, r.SupplyStatus, r.IssuerEventID)
	// Output: GCS32 response off 2026-12-05T14:00:00Z
}

// Read a future-dated execution alert; the message code chooses the layout.
func ExampleParseAlert() {
	b, _ := hex.DecodeString("0109018f6632aab4c80e0081000001a246812b000702010b")
	a, err := gbz.ParseAlert(gbz.CodeFutureDatedGBZ, b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%04X %s 0x%04X %x %s\n", a.AlertCode, a.Timestamp, a.FutureDated.MessageCode, a.FutureDated.OriginatorCounter, a.FutureDated.Cluster)
	// Output: 8F66 2026-12-08T12:30:00Z 0x0081 1a246812b00 metering
}
