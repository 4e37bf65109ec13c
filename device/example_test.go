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
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
)

// A supplier reads the import register of a meter in a fleet (ECS17b): it
// builds the DLMS command with package dlms, the access control broker MACs
// it, the fleet delivers it, and the supplier checks the response's MAC,
// decrypts its ciphered block with its own key-agreement key and reads the
// register with package dlms.
func Example() {
	ctx := context.Background()
	key := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	acbKA, supDS, supKA := key(), key(), key()
	acbEUI, supEUI := smki.MustParseEUI("90B3D51F30000004"), smki.MustParseEUI("90B3D51F30000002")

	cell := func(u device.KeyUsage, eui smki.EUI, k *ecdsa.PrivateKey) *device.Cell {
		c, _ := device.NewCell(u, asn.CellManagement, eui, &k.PublicKey)
		return c
	}
	anchors, _ := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, cell(device.UsageKeyAgreement, acbEUI, acbKA))
	anchors, _ = anchors.With(smki.RoleSupplier, 1, cell(device.UsageDigitalSignature, supEUI, supDS), cell(device.UsageKeyAgreement, supEUI, supKA))

	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	fleet := device.NewFleet(device.Config{Now: func() time.Time { return now }})
	euis, _ := fleet.Generate(ctx, 1, smki.MustParseEUI("0012A3FFFE000001"), device.Electricity, anchors)
	meter, _ := fleet.Meter(euis[0])

	req, _ := dlms.ImportEnergyRequest(dlms.InvokeID(1), dlms.NewProtectionParameters(1, supEUI, meter.EUI())).MarshalBinary()
	cmd := &commands.Message{CRA: commands.Command, Counter: 1, Originator: supEUI, Recipient: meter.EUI(),
		Code: commands.MessageCode(device.CodeECS17b), Payload: req}
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
	plain, _ := commands.OpenPayload(ctx, sup, meter.AgreementPublicKey(), resp)
	v, _ := dlms.ParseData(plain[0])
	e, _ := dlms.ReadImportEnergy(v)
	fmt.Println("import register matches the meter:", uint64(e.ActiveImport.Value) == meter.Register(now), "unit:", e.ActiveImport.Unit)

	// The same bytes again are a replay: no response, a counted reason.
	_, err = fleet.Deliver(ctx, meter.EUI(), msg)
	fmt.Println("again:", errors.Is(err, device.ErrReplay), fleet.Stats().DiscardedFor(device.ReasonReplay))
	// Output:
	// MAC: <nil>
	// import register matches the meter: true unit: 30
	// again: true 1
}
