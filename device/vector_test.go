package device

import (
	"context"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// gbcsVector is testdata/gbcs-18-4.json: the GBCS section 18.4 test vector.
type gbcsVector struct {
	Supplier struct {
		EUI      string `json:"eui"`
		DSPublic string `json:"ds_public"`
	} `json:"supplier"`
	ACB struct {
		KAPrivate string `json:"ka_private"`
	} `json:"access_control_broker"`
	Device struct {
		EUI      string `json:"eui"`
		KAPublic string `json:"ka_public"`
	} `json:"device"`
	Message  string `json:"message_hex"`
	Expected struct {
		Z string `json:"ecdh_shared_secret_z"`
	} `json:"expected"`
}

// vectorKA is the device's key agreement in the vector test. The vector
// gives the device's public key and Z with the ACB, not the device's private
// key, so this fake answers ECDH with the ACB's key from the vector's Z and
// any other peer (the recipient of the response) with a key of its own.
type vectorKA struct {
	acb  *ecdh.PublicKey
	z    []byte
	own  *ecdh.PrivateKey
	used int
}

func (v *vectorKA) ECDH(_ context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	if peer.Equal(v.acb) {
		v.used++
		return append([]byte(nil), v.z...), nil
	}
	return v.own.ECDH(peer)
}

func (v *vectorKA) PublicKey() *ecdh.PublicKey { return v.own.PublicKey() }

func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGBCSVectorThroughTheMeter hands the real GBCS 18.4 message (ECS04b,
// reset meter balance, signed by the supplier and MAC'd by the ACB) to a
// meter whose anchors hold the vector's keys: the meter must accept and
// execute it, and refuse it the second time.
func TestGBCSVectorThroughTheMeter(t *testing.T) {
	raw, err := os.ReadFile("testdata/gbcs-18-4.json")
	if err != nil {
		t.Fatal(err)
	}
	var v gbcsVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acbPriv, err := ecdh.P256().NewPrivateKey(hexBytes(t, v.ACB.KAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	supDS, err := commands.ParseRawPublicKey(hexBytes(t, v.Supplier.DSPublic))
	if err != nil {
		t.Fatal(err)
	}
	supEUI, devEUI := smki.MustParseEUI(v.Supplier.EUI), smki.MustParseEUI(v.Device.EUI)
	// The vector's device key and Z agree with the ACB's private key.
	devPub, err := ecdh.P256().NewPublicKey(append([]byte{4}, hexBytes(t, v.Device.KAPublic)...))
	if err != nil {
		t.Fatal(err)
	}
	if z, _ := acbPriv.ECDH(devPub); hex.EncodeToString(z) != v.Expected.Z {
		t.Fatalf("vector Z does not match ECDH(ACB, device)")
	}

	w := newWorld(t, Electricity) // for a supplier KA key and the device DS key
	acbCellPub, err := commands.ParseRawPublicKey(acbPriv.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	acbCell, err := NewCell(UsageKeyAgreement, asn.CellManagement, smki.MustParseEUI("90B3D51F30000004"), acbCellPub)
	if err != nil {
		t.Fatal(err)
	}
	supDSCell, err := NewCell(UsageDigitalSignature, asn.CellManagement, supEUI, supDS)
	if err != nil {
		t.Fatal(err)
	}
	supKACell, err := NewCell(UsageKeyAgreement, asn.CellManagement, supEUI, &w.supplier.kaS.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	an, _ := NewAnchors().With(smki.RoleAccessControlBroker, 1, acbCell)
	an, _ = an.With(smki.RoleSupplier, 1, supDSCell, supKACell)
	ka := &vectorKA{acb: acbPriv.PublicKey(), z: hexBytes(t, v.Expected.Z), own: mustECDHKey(t)}
	m, err := New(Identity{EUI: devEUI, Kind: Electricity, Signer: w.dev.ds, KeyAgreement: ka}, an, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Balance().MilliPence == 0 {
		t.Fatal("model balance starts at zero; the test could not see the reset")
	}

	msg := hexBytes(t, v.Message)
	resp, err := m.Handle(ctx, msg)
	if err != nil {
		t.Fatalf("the GBCS 18.4 message was refused: %v", err)
	}
	if ka.used != 1 || m.Balance().MilliPence != 0 {
		t.Fatalf("ECDH with the ACB %d times, balance %d; want 1 and 0", ka.used, m.Balance().MilliPence)
	}
	r, err := commands.Parse(resp)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.VerifySignature(&w.dev.ds.PublicKey, r); err != nil {
		t.Errorf("response signature: %v", err)
	}
	if r.Form() != commands.FormSigned || len(r.DateTime) != 12 {
		t.Errorf("response in form %s with a %d-byte date-time, want signed with a 12-byte one", r.Form(), len(r.DateTime))
	}
	a, err := dlms.Parse(r.Payload)
	if err != nil || a.AccessResponse == nil || a.AccessResponse.InvokeID != 0x20000001 {
		t.Fatalf("response payload %X: %v", r.Payload, err)
	}
	if res, err := dlms.ReadResults(a.AccessResponse, dlms.Action, 3); err != nil || res[0]+res[1]+res[2] != 0 {
		t.Errorf("response results %v, %v", res, err)
	}
	if _, err := m.Handle(ctx, msg); !errors.Is(err, ErrReplay) {
		t.Errorf("the vector again: err = %v, want ErrReplay", err)
	}
}

func mustECDHKey(t *testing.T) *ecdh.PrivateKey {
	k, err := ecdh.P256().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
