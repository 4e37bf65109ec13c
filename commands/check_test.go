package commands

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/metertrust/metertrust/smki"
)

// fakeKeys is an in-memory Keys.
type fakeKeys struct {
	sig  map[smki.EUI]*ecdsa.PublicKey
	priv map[smki.EUI]*ECDHKey
	pub  map[smki.EUI]*ecdh.PublicKey
	fail error // returned for every look-up when set
}

func (f *fakeKeys) SignatureKey(_ context.Context, e smki.EUI) (*ecdsa.PublicKey, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if k, ok := f.sig[e]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("DS key of %s: %w", e, ErrNoKey)
}

func (f *fakeKeys) AgreementKey(_ context.Context, e smki.EUI) (KeyAgreement, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if k, ok := f.priv[e]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("KA private key of %s: %w", e, ErrNoKey)
}

func (f *fakeKeys) AgreementPublicKey(_ context.Context, e smki.EUI) (*ecdh.PublicKey, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if k, ok := f.pub[e]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("KA public key of %s: %w", e, ErrNoKey)
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	supDS := genECDSA(t)
	acbKA, devKA, supKA := genKA(t), genKA(t), genKA(t)
	all := func() *fakeKeys {
		return &fakeKeys{
			sig:  map[smki.EUI]*ecdsa.PublicKey{testSupplier: &supDS.PublicKey},
			priv: map[smki.EUI]*ECDHKey{testACB: acbKA, testDevice: devKA, testSupplier: supKA},
			pub:  map[smki.EUI]*ecdh.PublicKey{testACB: acbKA.PublicKey(), testDevice: devKA.PublicKey(), testSupplier: supKA.PublicKey()},
		}
	}
	only := func(privs ...smki.EUI) *fakeKeys {
		k := all()
		for e := range k.priv {
			keep := false
			for _, p := range privs {
				keep = keep || p == e
			}
			if !keep {
				delete(k.priv, e)
			}
		}
		return k
	}
	cmd := &Message{CRA: Command, Counter: 10, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, Payload: []byte{1}}
	if err := Sign(rand.Reader, supDS, cmd); err != nil {
		t.Fatal(err)
	}
	if err := AddMAC(ctx, acbKA, devKA.PublicKey(), cmd); err != nil {
		t.Fatal(err)
	}
	resp := &Message{CRA: Response, Counter: 10, Originator: testDevice, Recipient: testSupplier, Code: 0x00B3, Payload: []byte{0}}
	if err := AddMAC(ctx, devKA, supKA.PublicKey(), resp); err != nil {
		t.Fatal(err)
	}
	unsignedCritical := &Message{CRA: Command, Counter: 11, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, MAC: make([]byte, 12)}
	acb := testACB
	tests := []struct {
		name     string
		keys     Keys
		m        *Message
		acb      *smki.EUI
		sig, mac Verdict
	}{
		{"command, ACB key", only(testACB), cmd, &acb, VerdictValid, VerdictValid},
		{"command, device key", only(testDevice), cmd, &acb, VerdictValid, VerdictValid},
		{"command, no ACB named", all(), cmd, nil, VerdictValid, VerdictNoKey},
		{"command, no private key", only(), cmd, &acb, VerdictValid, VerdictNoKey},
		{"command, wrong ACB", all(), cmd, &[]smki.EUI{testSupplier}[0], VerdictValid, VerdictInvalid},
		{"response, recipient key", only(testSupplier), resp, nil, VerdictAbsent, VerdictValid},
		{"response, device key", only(testDevice), resp, nil, VerdictAbsent, VerdictValid},
		{"unsigned critical", all(), unsignedCritical, &acb, VerdictInvalid, VerdictInvalid},
		// A key that cannot be loaded is no key, with the reason: no check
		// ran, so nothing is invalid.
		{"store failure", &fakeKeys{fail: errors.New("disk on fire")}, cmd, &acb, VerdictNoKey, VerdictNoKey},
		{"no signature key", &fakeKeys{}, cmd, &acb, VerdictNoKey, VerdictNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(ctx, tt.keys, tt.m, tt.acb)
			if r.SignatureVerdict != tt.sig || r.MACVerdict != tt.mac {
				t.Errorf("signature %s (%s), MAC %s (%s); want %s, %s", r.SignatureVerdict, r.SignatureReason,
					r.MACVerdict, r.MACReason, tt.sig, tt.mac)
			}
			if r.Invalid() != (tt.sig == VerdictInvalid || tt.mac == VerdictInvalid) {
				t.Errorf("Invalid() = %t", r.Invalid())
			}
		})
	}
	t.Run("summary", func(t *testing.T) {
		s := Summarize(cmd)
		if s.UseCase != "ECS04b" || !s.Critical || !s.Signed || !s.MACed || s.PreCommand || s.Counter != 10 {
			t.Errorf("Summarize = %+v", s)
		}
	})
}

func TestDecryptWithKeys(t *testing.T) {
	ctx := context.Background()
	devKA, thirdKA := genKA(t), genKA(t)
	keys := &fakeKeys{
		priv: map[smki.EUI]*ECDHKey{testOther: thirdKA},
		pub:  map[smki.EUI]*ecdh.PublicKey{testDevice: devKA.PublicKey(), testOther: thirdKA.PublicKey()},
	}
	m := &Message{CRA: Response, Counter: 3, Originator: testDevice, Recipient: testACB, Code: 0x0060,
		URP: &UnknownRemoteParty{EUI: testOther, Counter: 3}}
	sealedResponse(t, devKA, thirdKA.PublicKey(), m, []byte("profile data"))
	got, err := Decrypt(ctx, keys, m)
	if err != nil || len(got) != 1 || string(got[0]) != "profile data" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	if _, err := Decrypt(ctx, &fakeKeys{}, m); !errors.Is(err, ErrNoKey) {
		t.Errorf("no keys: %v, want ErrNoKey", err)
	}
	if _, err := Decrypt(ctx, &fakeKeys{fail: errors.New("boom")}, m); err == nil || errors.Is(err, ErrNoKey) {
		t.Errorf("store failure: %v", err)
	}
}

func TestMACCommand(t *testing.T) {
	ctx := context.Background()
	acbKA, devKA := genKA(t), genKA(t)
	keys := &fakeKeys{
		priv: map[smki.EUI]*ECDHKey{testACB: acbKA},
		pub:  map[smki.EUI]*ecdh.PublicKey{testDevice: devKA.PublicKey()},
	}
	base := func() *Message {
		return &Message{CRA: Command, Counter: 5, Originator: testSupplier, Recipient: testDevice, Code: 0x0027, Payload: []byte{1}}
	}
	m := base()
	if err := MACCommand(ctx, keys, testACB, m); err != nil {
		t.Fatal(err)
	}
	if err := CheckMAC(ctx, devKA, acbKA.PublicKey(), m); err != nil {
		t.Errorf("device cannot check the ACB's MAC: %v", err)
	}
	tests := []struct {
		name string
		m    func() *Message
		acb  smki.EUI
		is   error
	}{
		{"response", func() *Message { m := base(); m.CRA = Response; return m }, testACB, ErrInvalid},
		{"already MACed", func() *Message { m := base(); m.MAC = make([]byte, 12); return m }, testACB, ErrInvalid},
		{"unsigned pre-command", func() *Message { m := base(); m.Code = 0x00B3; return m }, testACB, ErrNoSignature},
		{"unknown ACB", base, testOther, ErrNoKey},
		{"unknown device", func() *Message { m := base(); m.Recipient = testOther; return m }, testACB, ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := MACCommand(ctx, keys, tt.acb, tt.m()); !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
		})
	}
}
