package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

const testACBEUI = "90B3D51F30000002"

func loadGBCSVector(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "commands", "testdata", "gbcs-18-4.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func field(v map[string]any, path ...string) string {
	var cur any = v
	for _, p := range path {
		cur = cur.(map[string]any)[p]
	}
	return cur.(string)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorKeystore builds a keystore in a temporary directory from the raw keys
// of the vector: the supplier's DS private key (PKCS#8), the ACB's KA private
// key (SEC 1; the vector gives no ACB EUI, so testACBEUI stands in) and the
// device's KA public key (PUBLIC KEY).
func vectorKeystore(t *testing.T, v map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	sup, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(t, field(v, "supplier", "ds_private")))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sup)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, field(v, "supplier", "eui")+"-ds.key"), "PRIVATE KEY", der)
	acb, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(t, field(v, "access_control_broker", "ka_private")))
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.MarshalECPrivateKey(acb)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, testACBEUI+"-ka.key"), "EC PRIVATE KEY", der)
	dev, err := commands.ParseRawPublicKey(mustHex(t, field(v, "device", "ka_public")))
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.MarshalPKIXPublicKey(dev)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, field(v, "device", "eui")+"-ka.pem"), "PUBLIC KEY", der)
	return dir
}

func runGBCS(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(bytes.NewReader(stdin))
	root.SetArgs(append([]string{"gbcs"}, args...))
	err := root.Execute()
	return out.String(), err
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGBCSVerifyVector(t *testing.T) {
	v := loadGBCSVector(t)
	ks := vectorKeystore(t, v)
	msgHex := field(v, "message_hex")
	raw := mustHex(t, msgHex)
	tmp := t.TempDir()
	// Hex text with whitespace and line breaks, as people paste it.
	var spaced strings.Builder
	for i := 0; i < len(msgHex); i += 32 {
		spaced.WriteString(msgHex[i:min(i+32, len(msgHex))])
		spaced.WriteString(" \n")
	}
	hexFile := writeFile(t, tmp, "vector.hex", []byte(spaced.String()))
	tampered := bytes.Clone(raw)
	tampered[60] ^= 1
	tamperedFile := writeFile(t, tmp, "tampered.bin", tampered)
	badMAC := bytes.Clone(raw)
	badMAC[len(badMAC)-1] ^= 1
	badMACFile := writeFile(t, tmp, "badmac.bin", badMAC)
	garbage := writeFile(t, tmp, "garbage.bin", []byte{0xDD, 0x01})

	tests := []struct {
		name     string
		stdin    []byte
		args     []string
		wantCode int // 0: success
		want     []string
	}{
		{"hex file", nil, []string{"verify", "--keystore", ks, "--acb", testACBEUI, hexFile}, 0,
			[]string{"command 0x00B3, mac+signed form ECS04b", "signature: valid", "mac: valid", "counter 1"}},
		{"raw bytes on stdin", raw, []string{"verify", "--keystore", ks, "--acb", testACBEUI, "-"}, 0,
			[]string{"signature: valid", "mac: valid"}},
		{"without --acb the MAC has no key", nil, []string{"verify", "--keystore", ks, hexFile}, 0,
			[]string{"signature: valid", "mac: no-key"}},
		{"at a time", nil, []string{"verify", "--keystore", ks, "--acb", testACBEUI, "--at", "2026-11-23T00:00:00Z", hexFile}, 0,
			[]string{"mac: valid"}},
		{"tampered payload", nil, []string{"verify", "--keystore", ks, "--acb", testACBEUI, tamperedFile}, 1,
			[]string{"signature: invalid", "mac: invalid"}},
		{"tampered MAC", nil, []string{"verify", "--keystore", ks, "--acb", testACBEUI, hexFile, badMACFile}, 1,
			[]string{"signature: valid", "mac: invalid"}},
		{"malformed", nil, []string{"verify", "--keystore", ks, garbage}, 1,
			[]string{"malformed"}},
		{"empty keystore", nil, []string{"verify", "--keystore", t.TempDir(), "--acb", testACBEUI, hexFile}, 0,
			[]string{"signature: no-key", "mac: no-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runGBCS(t, tt.stdin, tt.args...)
			code := 0
			if err != nil {
				code = exitCode(err)
				var es *exitStatus
				if tt.wantCode != 0 && !errors.As(err, &es) {
					t.Errorf("error %v is not an exitStatus", err)
				}
			}
			if code != tt.wantCode {
				t.Fatalf("exit code %d (%v), want %d\n%s", code, err, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		out, err := runGBCS(t, nil, "verify", "--json", "--keystore", ks, "--acb", testACBEUI, hexFile)
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if len(got) != 1 || got[0]["signature_check"] != "valid" || got[0]["mac_check"] != "valid" ||
			got[0]["message_code"] != "0x00B3" || got[0]["originator"] != "123456789ABCDEF0" || got[0]["use_case"] != "ECS04b" {
			t.Errorf("JSON report %v", got)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"verify", "--keystore", ks, "--acb", "nothex", hexFile},
			{"verify", "--keystore", ks, "--at", "yesterday", hexFile},
			{"verify", "--keystore", filepath.Join(ks, "missing"), hexFile},
			{"verify", hexFile},
		} {
			if _, err := runGBCS(t, nil, args...); err == nil {
				t.Errorf("%v accepted", args)
			}
		}
	})
}

func TestGBCSInspect(t *testing.T) {
	v := loadGBCSVector(t)
	f := writeFile(t, t.TempDir(), "m.hex", []byte(field(v, "message_hex")+"\n"))
	out, err := runGBCS(t, nil, "inspect", "--json", f)
	if err != nil {
		t.Fatal(err)
	}
	var got []commands.Summary
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 1 || got[0].CRAFlag != 1 || got[0].Counter != 1 || got[0].MessageCode != "0x00B3" || !got[0].Critical ||
		!got[0].Signed || !got[0].MACed || got[0].Recipient != smki.MustParseEUI("FFFFFFFFFFFFFFFE") {
		t.Errorf("inspect --json = %+v", got)
	}
	out, err = runGBCS(t, nil, "inspect", f)
	if err != nil || !strings.Contains(out, "ECS04b (Reset Meter Balance on the ESME)") {
		t.Errorf("inspect = %q, %v", out, err)
	}
	if _, err := runGBCS(t, []byte("DF 09"), "inspect", "-"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("inspect of a truncated message: %v", err)
	}
	if _, err := runGBCS(t, []byte("ABC"), "inspect", "-"); err == nil {
		t.Error("odd hex accepted")
	}
}

// TestGBCSSignAndMAC takes the vector's command back to a pre-command,
// signs it through the command line, then MACs the vector's own signed
// pre-command, which must give back the vector byte for byte.
func TestGBCSSignAndMAC(t *testing.T) {
	v := loadGBCSVector(t)
	ks := vectorKeystore(t, v)
	raw := mustHex(t, field(v, "message_hex"))
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	m.MAC = nil
	signed, _ := m.Marshal()
	signedFile := writeFile(t, tmp, "signed.hex", []byte(hex.EncodeToString(signed)))
	m.Signature = nil
	pre, _ := m.Marshal()
	preFile := writeFile(t, tmp, "pre.bin", pre)

	out, err := runGBCS(t, nil, "mac", "--keystore", ks, "--acb", testACBEUI, signedFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); !strings.EqualFold(got, field(v, "message_hex")) {
		t.Errorf("mac of the vector's signed pre-command:\n got %s\nwant %s", got, field(v, "message_hex"))
	}

	out, err = runGBCS(t, nil, "sign", "--keystore", ks, "--signer", field(v, "supplier", "eui"), preFile)
	if err != nil {
		t.Fatal(err)
	}
	nowSigned := writeFile(t, tmp, "now-signed.hex", []byte(out))
	out, err = runGBCS(t, nil, "mac", "--keystore", ks, "--acb", testACBEUI, nowSigned)
	if err != nil {
		t.Fatal(err)
	}
	maced := writeFile(t, tmp, "maced.hex", []byte(out))
	out, err = runGBCS(t, nil, "verify", "--keystore", ks, "--acb", testACBEUI, maced)
	if err != nil || !strings.Contains(out, "signature: valid") || !strings.Contains(out, "mac: valid") {
		t.Errorf("verify of our signed and MACed command: %v\n%s", err, out)
	}

	refusals := []struct {
		name string
		args []string
	}{
		{"MAC of an unsigned critical command", []string{"mac", "--keystore", ks, "--acb", testACBEUI, preFile}},
		{"MAC twice", []string{"mac", "--keystore", ks, "--acb", testACBEUI, maced}},
		{"sign a signed message", []string{"sign", "--keystore", ks, "--signer", field(v, "supplier", "eui"), signedFile}},
		{"sign without the key", []string{"sign", "--keystore", ks, "--signer", "0000000000000001", preFile}},
		{"MAC without the ACB key", []string{"mac", "--keystore", ks, "--acb", "0000000000000001", signedFile}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := runGBCS(t, nil, tt.args...); err == nil {
				t.Errorf("accepted: %s", out)
			}
		})
	}
}

func TestGBCSDecrypt(t *testing.T) {
	// The constructed ECS17b response (a DLMS protected result, one
	// ciphered block) and the URP ECS22b response in the 26-byte form.
	vs := constructedVectors(t)
	dir := constructedKeystore(t, vs)
	for _, name := range []string{"ecs17b-response", "urp-ecs22b-response-oi26"} {
		v := vs[name]
		want := v["expected"].(map[string]any)["encryption"].([]any)[0].(map[string]any)["plaintext"].(string)
		f := writeFile(t, t.TempDir(), "resp.hex", []byte(v["message_hex"].(string)))
		out, err := runGBCS(t, nil, "decrypt", "--keystore", dir, f)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != strings.ToUpper(want) {
			t.Errorf("%s: decrypt = %s, want %s", name, got, want)
		}
		out, err = runGBCS(t, nil, "decrypt", "--json", "--keystore", dir, f)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: decrypt --json = %s, %v", name, out, err)
		}
	}
	f := writeFile(t, t.TempDir(), "resp.hex", []byte(vs["ecs17b-response"]["message_hex"].(string)))
	if _, err := runGBCS(t, nil, "decrypt", "--keystore", t.TempDir(), f); !errors.Is(err, commands.ErrNoKey) {
		t.Errorf("decrypt without keys: %v, want ErrNoKey", err)
	}
}

func TestGBCSInspectCS02(t *testing.T) {
	payload, err := (&asn.IssueSecurityCredentialsCommand{KeyUsage: asn.KeyUsageFromX509(x509.KeyUsageKeyAgreement)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dt, _ := commands.EncodeDateTime(time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC))
	m := &commands.Message{CRA: commands.Command, Counter: 3, Originator: smki.MustParseEUI("123456789ABCDEF0"),
		Recipient: smki.MustParseEUI("FFFFFFFFFFFFFFFE"), DateTime: dt, Code: 0x000A, Payload: payload}
	b, _ := m.Marshal()
	out, err := runGBCS(t, b, "inspect", "-")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CS02c (Issue Security Credentials)", "pre-command form", "pre-command true", "payload ASN.1", `"names":["keyAgreement"]`, "2026-11-23T18:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	bad := bytes.Clone(b)
	bad[len(bad)-2] = 0x05 // key-usage bits set in the three unused positions: not DER
	out, err = runGBCS(t, bad, "inspect", "-")
	if err != nil || !strings.Contains(out, "payload (ASN.1) does not decode") || !strings.Contains(out, "unused bits") {
		t.Errorf("inspect of a bad CS02c payload: %v\n%s", err, out)
	}
}
