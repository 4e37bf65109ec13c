package commands

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"
)

// benchFixture is the 18.4 vector, parsed, with its keys.
type benchFixture struct {
	raw    []byte
	m      *Message
	acb    *ECDHKey
	devKA  *ecdh.PublicKey
	supPub *ecdsa.PublicKey
	z      []byte
}

func newBenchFixture(b testing.TB) *benchFixture {
	v := loadVector(b)
	f := &benchFixture{raw: unhex(b, v.MessageHex)}
	var err error
	if f.m, err = Parse(f.raw); err != nil {
		b.Fatal(err)
	}
	if f.acb, err = ParseRawPrivateKey(unhex(b, v.ACB.KAPrivate)); err != nil {
		b.Fatal(err)
	}
	dev, err := ParseRawPublicKey(unhex(b, v.Device.KAPublic))
	if err != nil {
		b.Fatal(err)
	}
	if f.devKA, err = ECDHPublicKey(dev); err != nil {
		b.Fatal(err)
	}
	if f.supPub, err = ParseRawPublicKey(unhex(b, v.Supplier.DSPublic)); err != nil {
		b.Fatal(err)
	}
	if f.z, err = f.acb.ECDH(context.Background(), f.devKA); err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkParse(b *testing.B) {
	f := newBenchFixture(b)
	b.SetBytes(int64(len(f.raw)))
	for b.Loop() {
		if _, err := Parse(f.raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	f := newBenchFixture(b)
	b.SetBytes(int64(len(f.raw)))
	for b.Loop() {
		if _, err := f.m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMACCachedZ is what a router pays per command when it caches Z per
// device: KDF and GMAC.
func BenchmarkMACCachedZ(b *testing.B) {
	f := newBenchFixture(b)
	for b.Loop() {
		if err := VerifyMAC(DeriveKey(f.z, f.m.MACInfo()), f.m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMACFull adds the ECDH: ECDH, KDF and GMAC.
func BenchmarkMACFull(b *testing.B) {
	f := newBenchFixture(b)
	ctx := context.Background()
	for b.Loop() {
		if err := CheckMAC(ctx, f.acb, f.devKA, f.m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	f := newBenchFixture(b)
	for b.Loop() {
		if err := VerifySignature(f.supPub, f.m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDH is crypto/ecdh alone, what BenchmarkMACFull wraps.
func BenchmarkRawECDH(b *testing.B) {
	f := newBenchFixture(b)
	for b.Loop() {
		if _, err := f.acb.key.ECDH(f.devKA); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawECDSAVerify is crypto/ecdsa alone over the same data, what
// BenchmarkVerifySignature wraps.
func BenchmarkRawECDSAVerify(b *testing.B) {
	f := newBenchFixture(b)
	data, _ := f.m.SignedData()
	d := sha256.Sum256(data)
	sig := asn1Signature(f.m.Signature)
	for b.Loop() {
		if !ecdsa.VerifyASN1(f.supPub, d[:], sig) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkRawGCMSeal is crypto/cipher AES-GCM alone, sealing no plaintext
// with the same authenticated data as the MAC, with the key schedule done
// each time as MAC does it.
func BenchmarkRawGCMSeal(b *testing.B) {
	f := newBenchFixture(b)
	aad, _ := f.m.MACData()
	key := DeriveKey(f.z, f.m.MACInfo())
	nonce := iv(f.m.Originator)
	b.SetBytes(int64(len(aad)))
	for b.Loop() {
		blk, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCMWithTagSize(blk, 12)
		g.Seal(nil, nonce, nil, aad)
	}
}

// parseEncodeFull parses raw, decodes its payload by structure, and encodes
// both back: what reading and rebuilding a message with its payload costs.
func parseEncodeFull(tb testing.TB, raw []byte) {
	m, err := Parse(raw)
	if err != nil {
		tb.Fatal(err)
	}
	_, tree, err := ParsePayload(m)
	if err != nil {
		tb.Fatal(err)
	}
	var enc []byte
	switch t := tree.(type) {
	case interface{ MarshalBinary() ([]byte, error) }:
		enc, err = t.MarshalBinary()
	case interface{ Marshal() ([]byte, error) }:
		enc, err = t.Marshal()
	}
	if err != nil || len(enc) != len(m.Payload) {
		tb.Fatalf("payload re-encoding: %d bytes, %v", len(enc), err)
	}
	m.Payload = enc
	if _, err := m.Marshal(); err != nil {
		tb.Fatal(err)
	}
}

// codecMessages are the two messages of the codec's cost budget: the GBCS
// 18.4 vector (ECS04b, a DLMS ACCESS-Request) and an ECS17b response with
// its protected result (constructed vector 06).
func codecMessages(tb testing.TB) map[string][]byte {
	out := map[string][]byte{"gbcs-18.4": unhex(tb, loadVector(tb).MessageHex)}
	for _, v := range loadConstructed(tb) {
		if v.Name == "ecs17b-response" {
			out["ecs17b-response"] = unhex(tb, v.MessageHex)
		}
	}
	if len(out) != 2 {
		tb.Fatal("constructed vector ecs17b-response missing")
	}
	return out
}

// BenchmarkParseEncodePayload reads a message with its payload tree and
// encodes both back; compare with BenchmarkRawECDSAVerify.
func BenchmarkParseEncodePayload(b *testing.B) {
	for name, raw := range codecMessages(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parseEncodeFull(b, raw)
			}
		})
	}
}
