package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

// VectorFile is vectors.json, the file WriteVectors writes.
type VectorFile struct {
	// Note says how the file was made.
	Note string `json:"note"`
	// Keys are the parties' keys: private scalars and public points, hex.
	Keys []VectorKey `json:"keys"`
	// Messages are GBCS messages in each form with what a checker must
	// conclude about them.
	Messages []VectorMessage `json:"messages"`
	// Encryption is a payload encryption (section 6) with its key inputs.
	Encryption []VectorEncryption `json:"encryption"`
}

// VectorKey is one P-256 key: its party, use ("ds" or "ka"), the private
// scalar and the uncompressed public point, in hex.
type VectorKey struct {
	Party   string   `json:"party"`
	EUI     smki.EUI `json:"eui"`
	Use     string   `json:"use"`
	Private string   `json:"private_hex"`
	Public  string   `json:"public_hex"`
}

// VectorMessage is one message and the verdicts it must get.
type VectorMessage struct {
	Name string `json:"name"`
	// Form is the commands.Form name ("mac", "signed", "pre-command", ...).
	Form    string `json:"form"`
	Message string `json:"message_hex"`
	// SignedData is what the signature covers (section 4); MACData what
	// the MAC covers (section 5), hex; empty when not applicable.
	SignedData string `json:"signed_data_hex,omitempty"`
	MACData    string `json:"mac_data_hex,omitempty"`
	// MACKey is the derived MAC key and OtherInfo its KDF input (section
	// 5); MAC the expected 12-byte tag.
	OtherInfo string `json:"kdf_other_info_hex,omitempty"`
	MACKey    string `json:"mac_key_hex,omitempty"`
	MAC       string `json:"mac_hex,omitempty"`
	// Signature is the raw r||s; SignatureValid the verdict with the
	// originator's DS key.
	Signature      string `json:"signature_hex,omitempty"`
	SignatureValid *bool  `json:"signature_valid,omitempty"`
	// MACValid is the verdict of the MAC with the right keys.
	MACValid *bool `json:"mac_valid,omitempty"`
	// Accept says whether a device must execute it (given its counter is
	// fresh).
	Accept bool   `json:"device_accepts"`
	Why    string `json:"why"`
}

// VectorEncryption is one encrypted block (section 6).
type VectorEncryption struct {
	Name       string `json:"name"`
	OtherInfo  string `json:"kdf_other_info_hex"`
	Key        string `json:"key_hex"`
	IV         string `json:"iv_hex"`
	Plaintext  string `json:"plaintext_hex"`
	Ciphertext string `json:"ciphered_block_hex"`
}

// vectorKey derives a vector party's key: the scalar is
// SHA-256("metertrust-conformance-vector-" + name) mod n.
func vectorKey(name string) *ecdsa.PrivateKey {
	h := sha256.Sum256([]byte("metertrust-conformance-vector-" + name))
	d := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), elliptic.P256().Params().N)
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		panic(err) // a scalar mod n is a valid key but for 0, which SHA-256 does not give here
	}
	return k
}

func keyHex(k *ecdsa.PrivateKey) (string, string) {
	d, _ := k.Bytes()
	p, _ := k.PublicKey.Bytes()
	return hex.EncodeToString(d), hex.EncodeToString(p)
}

func ptr[T any](v T) *T { return &v }

// Vectors builds the test vectors. They are deterministic: keys from
// fixed seeds, signatures with RFC 6979 nonces (crypto/ecdsa signs
// deterministically when given no randomness).
func Vectors() (*VectorFile, error) {
	ctx := context.Background()
	parties := []struct {
		name string
		eui  smki.EUI
	}{{"acb", exampleACB}, {"supplier", exampleSupplier}, {"device", exampleDevice}, {"other-user", exampleOther}}
	keys := map[string]*ecdsa.PrivateKey{}
	vf := &VectorFile{Note: "written by metertrust conformance vectors; deterministic: keys are SHA-256(\"metertrust-conformance-vector-\" + party + \"-\" + use) mod n, signatures use RFC 6979 nonces"}
	for _, p := range parties {
		for _, use := range []string{"ds", "ka"} {
			k := vectorKey(p.name + "-" + use)
			keys[p.name+"-"+use] = k
			d, pub := keyHex(k)
			vf.Keys = append(vf.Keys, VectorKey{Party: p.name, EUI: p.eui, Use: use, Private: d, Public: pub})
		}
	}
	ka := func(name string) *commands.ECDHKey {
		k, err := commands.NewECDHKeyFromECDSA(keys[name])
		if err != nil {
			panic(err)
		}
		return k
	}
	acbKA, devKA := ka("acb-ka"), ka("device-ka")
	const counter = 1_765_000_000_000                               // 2025-12-06 in Unix ms
	payload, err := dlms.LoadSwitchStatusRequest(1).MarshalBinary() // ECS45, read the load switch status
	if err != nil {
		return nil, err
	}
	critPayload, err := dlms.LoadSwitchRequest(2, dlms.ScriptCloseLoadSwitch).MarshalBinary() // ECS42, close the load switch
	if err != nil {
		return nil, err
	}

	base := func(code uint16, c uint64, p []byte) *commands.Message {
		return &commands.Message{CRA: commands.Command, Counter: c, Originator: exampleSupplier, Recipient: exampleDevice,
			Code: commands.MessageCode(code), Payload: p}
	}
	add := func(name string, m *commands.Message, accept bool, why string) error {
		b, err := m.Marshal()
		if err != nil {
			return fmt.Errorf("conformance: vector %s: %w", name, err)
		}
		v := VectorMessage{Name: name, Form: m.Form().String(), Message: hex.EncodeToString(b), Accept: accept, Why: why}
		if sd, err := m.SignedData(); err == nil {
			v.SignedData = hex.EncodeToString(sd)
		}
		if m.Signature != nil {
			v.Signature = hex.EncodeToString(m.Signature)
			v.SignatureValid = ptr(commands.VerifySignature(&keys["supplier-ds"].PublicKey, m) == nil)
		}
		if m.MAC != nil {
			md, err := m.MACData()
			if err != nil {
				return err
			}
			z, err := acbKA.ECDH(ctx, devKA.PublicKey())
			if err != nil {
				return err
			}
			info := m.MACInfo()
			key := commands.DeriveKey(z, info)
			v.MACData, v.OtherInfo, v.MACKey, v.MAC = hex.EncodeToString(md), hex.EncodeToString(info[:]), hex.EncodeToString(key), hex.EncodeToString(m.MAC)
			v.MACValid = ptr(commands.VerifyMAC(key, m) == nil)
		}
		vf.Messages = append(vf.Messages, v)
		return nil
	}
	mac := func(m *commands.Message) *commands.Message {
		if err := commands.AddMAC(ctx, acbKA, devKA.PublicKey(), m); err != nil {
			panic(err)
		}
		return m
	}
	sign := func(m *commands.Message) *commands.Message {
		if err := commands.Sign(nil, keys["supplier-ds"], m); err != nil {
			panic(err)
		}
		return m
	}
	steps := []struct {
		name   string
		m      *commands.Message
		accept bool
		why    string
	}{
		{"mac-good", mac(base(0x0052, counter, payload)), true, "non-critical command MAC'd by the ACB (section 5)"},
		{"mac-flipped", flip(mac(base(0x0052, counter+1, payload))), false, "the last MAC bit flipped"},
		{"pre-command", base(0x004F, counter+2, critPayload), false, "no MAC header and no signature field (section 3): the router signs nothing, a device executes nothing"},
		{"signed-pre-command", sign(base(0x004F, counter+2, critPayload)), false, "signed by the supplier, not yet MAC'd: a device discards it"},
		{"mac-signed", mac(sign(base(0x004F, counter+2, critPayload))), true, "the critical command as the device receives it: the signed pre-command inside the ACB's MAC"},
		{"mac-signed-bad-signature", mac(badSig(sign(base(0x004F, counter+3, critPayload)))), false, "MAC valid, signature's last bit flipped"},
		{"mac-unsigned-critical", mac(base(0x004F, counter+4, critPayload)), false, "a critical command MAC'd with signature field 00"},
	}
	for _, s := range steps {
		if err := add(s.name, s.m, s.accept, s.why); err != nil {
			return nil, err
		}
	}
	// Encryption (section 6): a block from the device to the other user.
	info := commands.NewOtherInfo(exampleDevice, commands.ModeEncryption, counter, exampleOther)
	var z []byte
	z, err = ka("other-user-ka").ECDH(ctx, devKA.PublicKey())
	if err != nil {
		return nil, err
	}
	key := commands.DeriveKey(z, info)
	pt := []byte("metertrust conformance vector plaintext: 48 half-hour readings")
	block, err := commands.SealBlock(key, exampleDevice, pt)
	if err != nil {
		return nil, err
	}
	iv := append(exampleDevice[:], 0, 0, 0, 0)
	vf.Encryption = append(vf.Encryption, VectorEncryption{Name: "device-to-other-user", OtherInfo: hex.EncodeToString(info[:]),
		Key: hex.EncodeToString(key), IV: hex.EncodeToString(iv), Plaintext: hex.EncodeToString(pt), Ciphertext: hex.EncodeToString(block)})
	return vf, nil
}

func flip(m *commands.Message) *commands.Message {
	m.MAC[len(m.MAC)-1] ^= 1
	return m
}

func badSig(m *commands.Message) *commands.Message {
	m.Signature[63] ^= 1
	return m
}

// WriteVectors writes vectors.json and README.md into dir (created; it must
// not exist or be empty).
func WriteVectors(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("conformance: %s is not empty: not overwriting", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	vf, err := Vectors()
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "vectors.json"), vf); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(vectorsReadme), 0o644)
}

const vectorsReadme = `# metertrust conformance test vectors

Written by ` + "`metertrust conformance vectors --out DIR`" + `; the same bytes every time.
For implementers of the GB smart-metering security layer in any language.

vectors.json holds:

- keys: P-256 keys of an access control broker (acb), a supplier, a device and
  an other user, each a DS and a KA key: private scalar and uncompressed point,
  hex. The scalar is SHA-256("metertrust-conformance-vector-<party>-<use>") mod n.
  These keys are public: never trust them outside a test.
- messages: GBCS commands in each form (MAC'd, pre-command, signed pre-command,
  MAC'd and signed) with what each check covers and concludes:
  signed_data_hex (what the ECDSA signature covers: the general-signing block
  without its DF tag up to the end of the payload), mac_data_hex (the GMAC's
  authenticated data: 11 00 00 00 00 00 then the block from DF through the
  signature field), kdf_other_info_hex (the 33-byte OtherInfo of the
  single-step KDF), mac_key_hex (SHA-256(00000001 || Z || OtherInfo)[0:16]),
  mac_hex (the expected 12-byte tag), signature_valid and mac_valid (the
  verdicts), device_accepts (whether a device executes it, its counter fresh)
  and why. Signatures are deterministic (RFC 6979 nonces).
- encryption: a payload block the device encrypts to the other user (section 6):
  OtherInfo with mode byte 04, the key, the IV (originator EUI || 00000000),
  the plaintext and the ciphered block (31 00000000 || ciphertext || 12-byte tag,
  authenticated data the single byte 31).

Sections refer to the project's gbcs-security.md; docs/conformance.md in the
metertrust repository explains the suite these vectors come with.
`
