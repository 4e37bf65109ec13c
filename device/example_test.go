package device_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// A supplier reads the import register of a meter in a fleet: it builds
// the command with the device payload encoder, the access control broker
// MACs it, the fleet delivers it, and the supplier checks the response's
// MAC and decrypts its payload with its own key-agreement key.
func Example() {
	ctx := context.Background()
	key := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	acbKA, supDS, supKA := key(), key(), key()
	acbEUI, supEUI := smki.MustParseEUI("90B3D51F30000004"), smki.MustParseEUI("90B3D51F30000002")

	cell := func(u device.KeyUsage, eui smki.EUI, k *ecdsa.PrivateKey) *device.Cell {
		c, _ := device.NewCell(u, device.Management, eui, &k.PublicKey)
		return c
	}
	anchors, _ := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, cell(device.UsageKeyAgreement, acbEUI, acbKA))
	anchors, _ = anchors.With(smki.RoleSupplier, 1, cell(device.UsageDigitalSignature, supEUI, supDS), cell(device.UsageKeyAgreement, supEUI, supKA))

	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	fleet := device.NewFleet(device.Config{Now: func() time.Time { return now }})
	euis, _ := fleet.Generate(ctx, 1, smki.MustParseEUI("0012A3FFFE000001"), device.Electricity, anchors)
	meter, _ := fleet.Meter(euis[0])

	cmd := &commands.Message{CRA: commands.Command, Counter: 1, Originator: supEUI, Recipient: meter.EUI(),
		Code: commands.MessageCode(device.CodeECS17b), Payload: device.EncodeReadRequest()}
	acb, _ := commands.NewECDHKeyFromECDSA(acbKA)
	_ = commands.AddMAC(ctx, acb, meter.AgreementPublicKey(), cmd)
	msg, _ := cmd.Marshal()

	raw, err := fleet.Deliver(ctx, meter.EUI(), msg)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	resp, _ := commands.Parse(raw)
	sup, _ := commands.NewECDHKeyFromECDSA(supKA)
	fmt.Println("MAC:", commands.CheckMAC(ctx, sup, meter.AgreementPublicKey(), resp))
	plain, _ := commands.DecryptPayload(ctx, sup, meter.AgreementPublicKey(), resp)
	reading, _ := device.DecodeRegisterReading(plain)
	fmt.Println("read at:", reading.At, "matches the meter:", reading.ImportWh == meter.Register(now))

	// The same bytes again are a replay: no response, a counted reason.
	_, err = fleet.Deliver(ctx, meter.EUI(), msg)
	fmt.Println("again:", errors.Is(err, device.ErrReplay), fleet.Stats().DiscardedFor(device.ReasonReplay))
	// Output:
	// MAC: <nil>
	// read at: 2026-11-23 12:00:00 +0000 UTC matches the meter: true
	// again: true 1
}
