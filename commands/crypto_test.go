package commands

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"math/big"
	"testing"

	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
)

func genECDSA(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func genKA(t testing.TB) *ECDHKey {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewECDHKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// badSigner returns fixed bytes as its "signature".
type badSigner struct {
	pub crypto.PublicKey
	out []byte
	err error
}

func (b badSigner) Public() crypto.PublicKey { return b.pub }
func (b badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return b.out, b.err
}

func TestSignVerify(t *testing.T) {
	k := genECDSA(t)
	other := genECDSA(t)
	pre := func() *Message {
		return &Message{CRA: Command, Counter: 42, Originator: testSupplier, Recipient: testDevice, Code: 0x00B3, Payload: []byte{1, 2, 3}}
	}
	t.Run("pre-command signed then verified", func(t *testing.T) {
		m := pre()
		if !m.IsPreCommand() {
			t.Fatal("IsPreCommand = false for an unsigned critical command")
		}
		if err := SignPreCommand(rand.Reader, k, m); err != nil {
			t.Fatal(err)
		}
		if len(m.Signature) != 64 || m.IsPreCommand() {
			t.Fatalf("signature %d bytes, IsPreCommand %t", len(m.Signature), m.IsPreCommand())
		}
		b, _ := m.Marshal()
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifySignature(&k.PublicKey, p); err != nil {
			t.Errorf("VerifySignature: %v", err)
		}
		if err := VerifySignature(&other.PublicKey, p); !errors.Is(err, ErrSignature) {
			t.Errorf("wrong key: %v, want ErrSignature", err)
		}
		p.Payload = []byte{1, 2, 4}
		if err := VerifySignature(&k.PublicKey, p); !errors.Is(err, ErrSignature) {
			t.Errorf("tampered payload: %v, want ErrSignature", err)
		}
	})
	t.Run("high S accepted", func(t *testing.T) {
		m := pre()
		if err := Sign(rand.Reader, k, m); err != nil {
			t.Fatal(err)
		}
		n := elliptic.P256().Params().N
		s := new(big.Int).SetBytes(m.Signature[32:])
		s.Sub(n, s)
		s.FillBytes(m.Signature[32:])
		if err := VerifySignature(&k.PublicKey, m); err != nil {
			t.Errorf("n-s signature: %v, want valid", err)
		}
	})
	refuse := []struct {
		name string
		m    func() *Message
	}{
		{"response", func() *Message { m := pre(); m.CRA = Response; return m }},
		{"already signed", func() *Message { m := pre(); m.Signature = make([]byte, 64); return m }},
		{"maced", func() *Message { m := pre(); m.MAC = make([]byte, 12); return m }},
	}
	for _, tt := range refuse {
		t.Run("SignPreCommand refuses "+tt.name, func(t *testing.T) {
			if err := SignPreCommand(rand.Reader, k, tt.m()); !errors.Is(err, ErrNotPreCommand) {
				t.Errorf("error %v, want ErrNotPreCommand", err)
			}
		})
	}
	bad := []struct {
		name   string
		signer crypto.Signer
		is     error
	}{
		{"P-384 key", func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return k }(), ErrKey},
		{"garbage signature", badSigner{pub: &k.PublicKey, out: []byte{1, 2, 3}}, ErrSignature},
		{"zero r", badSigner{pub: &k.PublicKey, out: []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}}, ErrSignature},
		{"signer fails", badSigner{pub: &k.PublicKey, err: io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF},
	}
	for _, tt := range bad {
		t.Run("Sign with "+tt.name, func(t *testing.T) {
			if err := Sign(rand.Reader, tt.signer, pre()); !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		if err := VerifySignature(&k.PublicKey, pre()); !errors.Is(err, ErrNoSignature) {
			t.Errorf("error %v, want ErrNoSignature", err)
		}
	})
	t.Run("VerifyData short signature", func(t *testing.T) {
		if err := VerifyData(&k.PublicKey, []byte{1}, make([]byte, 63)); !errors.Is(err, ErrSignature) {
			t.Errorf("error %v, want ErrSignature", err)
		}
		if err := VerifyData(nil, []byte{1}, make([]byte, 64)); !errors.Is(err, ErrKey) {
			t.Errorf("nil key: %v, want ErrKey", err)
		}
	})
}

func TestMACDirections(t *testing.T) {
	ctx := context.Background()
	acb, device, supplier := genKA(t), genKA(t), genKA(t)
	tests := []struct {
		name         string
		m            *Message
		sender, recv KeyAgreement
		senderPeer   *ecdh.PublicKey
		recvPeer     *ecdh.PublicKey
	}{
		{"command: ACB x device", &Message{CRA: Command, Counter: 7, Originator: testSupplier, Recipient: testDevice, Code: 0x0027, Payload: []byte{1}},
			acb, device, device.PublicKey(), acb.PublicKey()},
		{"response: device x recipient", &Message{CRA: Response, Counter: 7, Originator: testDevice, Recipient: testSupplier, Code: 0x0027, Payload: []byte{2}},
			device, supplier, supplier.PublicKey(), device.PublicKey()},
		{"alert: device x recipient", &Message{CRA: Alert, Counter: 8, Originator: testDevice, Recipient: testSupplier, Code: 0x0067, Payload: []byte{3}},
			device, supplier, supplier.PublicKey(), device.PublicKey()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if info := tt.m.MACInfo(); info[16] != byte(tt.m.CRA) {
				t.Errorf("OtherInfo mode byte %d, want CRA %d", info[16], tt.m.CRA)
			}
			if err := AddMAC(ctx, tt.sender, tt.senderPeer, tt.m); err != nil {
				t.Fatal(err)
			}
			b, err := tt.m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckMAC(ctx, tt.recv, tt.recvPeer, p); err != nil {
				t.Errorf("receiver CheckMAC: %v", err)
			}
			p.Counter++
			if err := CheckMAC(ctx, tt.recv, tt.recvPeer, p); !errors.Is(err, ErrMAC) {
				t.Errorf("changed counter: %v, want ErrMAC", err)
			}
			p.Counter--
			p.MAC[0] ^= 1
			if err := CheckMAC(ctx, tt.recv, tt.recvPeer, p); !errors.Is(err, ErrMAC) {
				t.Errorf("flipped MAC bit: %v, want ErrMAC", err)
			}
		})
	}
	t.Run("no MAC", func(t *testing.T) {
		m := &Message{CRA: Command, Originator: testSupplier, Recipient: testDevice}
		if err := CheckMAC(ctx, acb, device.PublicKey(), m); !errors.Is(err, ErrNoMAC) {
			t.Errorf("error %v, want ErrNoMAC", err)
		}
		if err := VerifyMAC(make([]byte, 16), m); !errors.Is(err, ErrNoMAC) {
			t.Errorf("error %v, want ErrNoMAC", err)
		}
	})
	t.Run("bad key length", func(t *testing.T) {
		m := &Message{CRA: Command, Originator: testSupplier, Recipient: testDevice}
		if _, err := MAC(make([]byte, 15), m); !errors.Is(err, ErrKey) {
			t.Errorf("error %v, want ErrKey", err)
		}
	})
	t.Run("nil peer", func(t *testing.T) {
		m := &Message{CRA: Command, Originator: testSupplier, Recipient: testDevice}
		if err := AddMAC(ctx, acb, nil, m); !errors.Is(err, ErrKey) {
			t.Errorf("error %v, want ErrKey", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		m := &Message{CRA: Command, Originator: testSupplier, Recipient: testDevice}
		if err := AddMAC(c, acb, device.PublicKey(), m); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

// sealedResponse builds m's payload with one ciphered block per plaintext,
// each sealed under m's transport key from device's key and peer: a DLMS
// protected result for one plaintext, encrypted GBZ components for more.
func sealedResponse(t *testing.T, device *ECDHKey, peer *ecdh.PublicKey, m *Message, plain ...[]byte) {
	t.Helper()
	key, err := EncryptionKey(context.Background(), device, peer, m)
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	for _, p := range plain {
		b, err := SealBlock(key, m.Originator, p)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	if len(plain) == 1 {
		pp := dlms.NewProtectionParameters(m.Counter, m.Originator, m.Recipient)
		m.Payload, err = dlms.NewProtectedResponse(dlms.InvokeID(m.Counter), dlms.ProtectedResult{Protection: pp, Ciphered: blocks[0]}).MarshalBinary()
	} else {
		var comps []gbz.Component
		for i, b := range blocks {
			comps = append(comps, gbz.Component{Cluster: gbz.ClusterMetering, ZCL: gbz.Header{FrameControl: 0x09, Sequence: uint8(i), Command: 0x06},
				Encryption: &gbz.Encryption{Ciphered: b}})
		}
		m.Payload, err = gbz.NewResponse(comps...).Marshal()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestEncryption(t *testing.T) {
	ctx := context.Background()
	device, supplier, third := genKA(t), genKA(t), genKA(t)
	plain := []byte("daily consumption log: 12.5 kWh")
	dev := uint64(0x7E5)
	tests := []struct {
		name      string
		m         *Message
		recipient *ECDHKey
		blocks    [][]byte
	}{
		{"to the recipient", &Message{CRA: Response, Counter: 9, Originator: testDevice, Recipient: testSupplier, Code: 0x0060}, supplier, [][]byte{plain}},
		{"to a supplementary remote party", &Message{CRA: Response, Counter: 10, Originator: testDevice, Recipient: testACB, Code: 0x0060,
			URP: &UnknownRemoteParty{EUI: testOther, Counter: 5}}, third, [][]byte{plain}},
		{"26-byte form: the device's own counter", &Message{CRA: Response, Counter: 10, Originator: testDevice, Recipient: testACB, Code: 0x0060,
			URP: &UnknownRemoteParty{EUI: testOther, Counter: 5, OriginatorCounter: &dev}}, third, [][]byte{plain}},
		{"empty plaintext", &Message{CRA: Alert, Counter: 11, Originator: testDevice, Recipient: testSupplier, Code: 0x0061}, supplier, [][]byte{{}}},
		{"long plaintext", &Message{CRA: Response, Counter: 12, Originator: testDevice, Recipient: testSupplier, Code: 0x0060}, supplier, [][]byte{bytes.Repeat(plain, 40)}},
		{"three GBZ blocks under one key", &Message{CRA: Response, Counter: 13, Originator: testDevice, Recipient: testSupplier, Code: 0x0074}, supplier,
			[][]byte{plain, []byte("second"), bytes.Repeat([]byte{7}, 100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if info := tt.m.EncryptionInfo(); info[16] != ModeEncryption {
				t.Errorf("mode byte %d, want 4", info[16])
			}
			sealedResponse(t, device, tt.recipient.PublicKey(), tt.m, tt.blocks...)
			if bytes.Contains(tt.m.Payload, []byte("kWh")) {
				t.Fatalf("payload in clear: %X", tt.m.Payload)
			}
			tt.m.MAC = make([]byte, 12) // the form a device sends; the MAC is not checked here
			b, err := tt.m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenPayload(ctx, tt.recipient, device.PublicKey(), m)
			if err != nil {
				t.Fatalf("OpenPayload: %v", err)
			}
			if len(got) != len(tt.blocks) {
				t.Fatalf("%d plaintexts, want %d", len(got), len(tt.blocks))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.blocks[i]) {
					t.Errorf("block %d: %q, want %q", i, got[i], tt.blocks[i])
				}
			}
			if _, err := OpenPayload(ctx, genKA(t), device.PublicKey(), m); !errors.Is(err, ErrDecrypt) {
				t.Errorf("wrong key: %v, want ErrDecrypt", err)
			}
		})
	}
	t.Run("malformed ciphered blocks", func(t *testing.T) {
		key := make([]byte, 16)
		good, err := SealBlock(key, testDevice, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := OpenBlock(key, testDevice, good); err != nil || string(got) != "x" {
			t.Fatalf("OpenBlock(SealBlock) = %q, %v", got, err)
		}
		for name, in := range map[string][]byte{
			"empty":            {},
			"wrong header":     func() []byte { b := bytes.Clone(good); b[0] = 0x30; return b }(),
			"shorter than tag": good[:5+11],
		} {
			t.Run(name, func(t *testing.T) {
				if _, err := OpenBlock(key, testDevice, in); !errors.Is(err, ErrMalformed) {
					t.Errorf("OpenBlock error %v, want ErrMalformed", err)
				}
			})
		}
		flipped := bytes.Clone(good)
		flipped[5] ^= 1
		if _, err := OpenBlock(key, testDevice, flipped); !errors.Is(err, ErrDecrypt) {
			t.Errorf("flipped ciphertext: %v, want ErrDecrypt", err)
		}
		m := &Message{CRA: Response, Originator: testDevice, Recipient: testSupplier, Code: 0x0052, Payload: []byte{0xDA, 0x20, 0, 0, 1, 0, 0, 1, 0x16, 1, 1, 1, 0}}
		if _, err := OpenPayload(ctx, device, supplier.PublicKey(), m); err == nil || errors.Is(err, ErrDecrypt) {
			t.Errorf("OpenPayload of a clear payload: %v, want an error naming no ciphered block", err)
		}
	})
}

func TestKeys(t *testing.T) {
	if _, err := ParseRawPublicKey(make([]byte, 64)); !errors.Is(err, ErrKey) {
		t.Errorf("zero point: %v, want ErrKey", err)
	}
	if _, err := ParseRawPrivateKey(make([]byte, 31)); !errors.Is(err, ErrKey) {
		t.Errorf("short scalar: %v, want ErrKey", err)
	}
	if _, err := NewECDHKey(nil); !errors.Is(err, ErrKey) {
		t.Errorf("nil: %v, want ErrKey", err)
	}
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := NewECDHKey(x); !errors.Is(err, ErrKey) {
		t.Errorf("X25519: %v, want ErrKey", err)
	}
	k := genECDSA(t)
	e, err := NewECDHKeyFromECDSA(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ECDHPublicKey(&k.PublicKey)
	if err != nil || !pub.Equal(e.PublicKey()) {
		t.Errorf("ECDHPublicKey = %v, %v", pub, err)
	}
	if _, err := ECDHPublicKey(nil); !errors.Is(err, ErrKey) {
		t.Errorf("nil: %v, want ErrKey", err)
	}
}
