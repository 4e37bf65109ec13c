package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/commands"
)

// constructedVectors reads the 25 constructed GBCS vectors that the commands
// package holds in its testdata (see its README there): messages in every
// form, built from the spec by an independent implementation, with their
// parties' keys.
func constructedVectors(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob("../../commands/testdata/constructed/*.json")
	if err != nil || len(files) != 25 {
		t.Fatalf("want 25 constructed vectors, have %d (%v)", len(files), err)
	}
	out := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out[v["name"].(string)] = v
	}
	return out
}

// constructedKeystore writes every key of the vectors into a keystore
// directory: <EUI>-ds|ka|pp-ka.key (PKCS#8) and .pem (public key).
func constructedKeystore(t *testing.T, vs map[string]map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range vs {
		for _, k := range v["keys"].([]any) {
			k := k.(map[string]any)
			use := map[string]string{"DS": "ds", "KA": "ka", "KA-prepayment": "pp-ka"}[k["usage"].(string)]
			if use == "" {
				continue
			}
			base := filepath.Join(dir, strings.ToUpper(k["eui"].(string))+"-"+use)
			if err := os.WriteFile(base+".key", []byte(k["private_pem"].(string)), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(base+".pem", []byte(k["public_pem"].(string)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestGBCSInspectEncodeConstructed: inspect --json then encode gives back
// every constructed message byte for byte, and inspect --keystore decrypts
// the encrypted ones.
func TestGBCSInspectEncodeConstructed(t *testing.T) {
	vs := constructedVectors(t)
	ks := constructedKeystore(t, vs)
	dir := t.TempDir()
	for name, v := range vs {
		t.Run(name, func(t *testing.T) {
			msg := v["message_hex"].(string)
			f := writeFile(t, dir, name+".hex", []byte(msg))
			js, err := runGBCS(t, nil, "inspect", "--json", "--keystore", ks, f)
			if err != nil {
				t.Fatalf("inspect: %v\n%s", err, js)
			}
			var got []struct {
				Form      string   `json:"form"`
				Decrypted []string `json:"decrypted"`
				Payload   struct {
					Decoded bool `json:"decoded"`
				} `json:"payload"`
			}
			if err := json.Unmarshal([]byte(js), &got); err != nil || len(got) != 1 {
				t.Fatalf("inspect --json: %v\n%s", err, js)
			}
			if got[0].Form != v["decoder_form"] || !got[0].Payload.Decoded {
				t.Errorf("form %s, decoded %t; want %s, decoded", got[0].Form, got[0].Payload.Decoded, v["decoder_form"])
			}
			if enc, ok := v["expected"].(map[string]any)["encryption"].([]any); ok {
				if len(got[0].Decrypted) != len(enc) || got[0].Decrypted[0] != enc[0].(map[string]any)["plaintext"] {
					t.Errorf("decrypted %v, want the vector's plaintexts", got[0].Decrypted)
				}
			}
			out, err := runGBCS(t, nil, "encode", writeFile(t, dir, name+".json", []byte(js)))
			if err != nil {
				t.Fatalf("encode: %v\n%s", err, out)
			}
			if strings.TrimSpace(out) != strings.ToUpper(msg) {
				t.Errorf("encode:\n got %s\nwant %s", strings.TrimSpace(out), msg)
			}
		})
	}
}

// TestGBCSInspectEncodeVector184: the GBCS 18.4 vector too goes inspect
// --json, then encode, back to its bytes.
func TestGBCSInspectEncodeVector184(t *testing.T) {
	msg := field(loadGBCSVector(t), "message_hex")
	dir := t.TempDir()
	js, err := runGBCS(t, nil, "inspect", "--json", writeFile(t, dir, "v.hex", []byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := runGBCS(t, nil, "encode", writeFile(t, dir, "v.json", []byte(js)))
	if err != nil || !strings.EqualFold(strings.TrimSpace(out), msg) {
		t.Errorf("encode: %v\n got %s\nwant %s", err, strings.TrimSpace(out), msg)
	}
}

// TestGBCSEncodeEdited edits the script id of the constructed ECS43 command
// in the JSON tree (open the switch, 0x0034, becomes close, 0x0033), and
// re-signs and re-MACs it: the rebuilt command verifies, and differs from
// the original only in that byte, the signature and the MAC.
func TestGBCSEncodeEdited(t *testing.T) {
	vs := constructedVectors(t)
	ks := constructedKeystore(t, vs)
	dir := t.TempDir()
	v := vs["ecs43-command"]
	f := writeFile(t, dir, "cmd.hex", []byte(v["message_hex"].(string)))
	js, err := runGBCS(t, nil, "inspect", "--json", f)
	if err != nil {
		t.Fatal(err)
	}
	var doc []map[string]any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	data := doc[0]["payload"].(map[string]any)["tree"].(map[string]any)["access-request"].(map[string]any)["data"].([]any)
	data[0].(map[string]any)["value"] = 0x33
	edited, _ := json.Marshal(doc)
	ef := writeFile(t, dir, "edited.json", edited)

	if out, err := runGBCS(t, nil, "encode", "--keystore", ks, "--sign", "90B3D51F30010001", ef); err == nil {
		t.Errorf("re-signing a MAC'd command without --mac succeeded: %s", out)
	}
	out, err := runGBCS(t, nil, "encode", "--keystore", ks, "--sign", "90B3D51F30010001", "--mac", "--acb", "90B3D51F30000002", ef)
	if err != nil {
		t.Fatalf("encode: %v\n%s", err, out)
	}
	b := mustHex(t, strings.TrimSpace(out))
	orig := mustHex(t, v["message_hex"].(string))
	m, err := commands.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(orig) || m.Payload[len(m.Payload)-1] != 0x33 {
		t.Fatalf("edited command %X", b)
	}
	diff := 0
	for i := range orig[:len(orig)-12-64] {
		if b[i] != orig[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Errorf("%d bytes differ before the signature, want the one edited", diff)
	}
	vf := writeFile(t, dir, "edited.hex", []byte(strings.TrimSpace(out)))
	out, err = runGBCS(t, nil, "verify", "--keystore", ks, "--acb", "90B3D51F30000002", vf)
	if err != nil || !strings.Contains(out, "signature: valid") || !strings.Contains(out, "mac: valid") {
		t.Errorf("verify of the rebuilt command: %v\n%s", err, out)
	}
	out, err = runGBCS(t, nil, "verify", "--keystore", ks, "--acb", "90B3D51F30000002", f)
	if err != nil || !strings.Contains(out, "signature: valid") {
		t.Errorf("verify of the original: %v\n%s", err, out)
	}
}

// TestGBCSSignMACRealForms: gbcs sign turns the real pre-command (no
// signature field) into the signed pre-command; gbcs mac MACs it and MACs
// the unsigned CS02b 0x0104 command the ACB itself sends.
func TestGBCSSignMACRealForms(t *testing.T) {
	vs := constructedVectors(t)
	ks := constructedKeystore(t, vs)
	dir := t.TempDir()
	pre := vs["ecs43-precommand"]["message_hex"].(string)
	out, err := runGBCS(t, nil, "sign", "--keystore", ks, "--signer", "90B3D51F30010001", writeFile(t, dir, "pre.hex", []byte(pre)))
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	signed := strings.TrimSpace(out)
	if !strings.HasPrefix(signed, strings.ToUpper(pre)+"40") || len(signed) != len(pre)+130 {
		t.Fatalf("signed pre-command %s", signed)
	}
	out, err = runGBCS(t, nil, "mac", "--keystore", ks, "--acb", "90B3D51F30000002", writeFile(t, dir, "signed.hex", []byte(signed)))
	if err != nil {
		t.Fatalf("mac: %v\n%s", err, out)
	}
	m, err := commands.Parse(mustHex(t, strings.TrimSpace(out)))
	if err != nil || m.Form() != commands.FormMACSigned {
		t.Fatalf("MAC'd command: %v %v", m, err)
	}
	v := vs["cs02b-0104-command"]
	orig := mustHex(t, v["message_hex"].(string))
	m, err = commands.Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	m.MAC = nil
	bare, _ := m.Marshal()
	out, err = runGBCS(t, nil, "mac", "--keystore", ks, "--acb", "90B3D51F30000002", writeFile(t, dir, "0104.bin", bare))
	if err != nil {
		t.Fatalf("mac of 0x0104: %v\n%s", err, out)
	}
	if got := mustHex(t, strings.TrimSpace(out)); !bytes.Equal(got, orig) {
		t.Errorf("MAC'd 0x0104:\n got %X\nwant %X", got, orig)
	}
}

// TestGBCSVerifyNoKey: a signer whose key file cannot be read is reported
// as no-key with the reason, never as an invalid signature, and the exit
// status stays 0.
func TestGBCSVerifyNoKey(t *testing.T) {
	vs := constructedVectors(t)
	ks := constructedKeystore(t, vs)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ks, "90B3D51F30010001-ds.pem"), []byte("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, dir, "resp.hex", []byte(vs["ecs43-signed-precommand"]["message_hex"].(string)))
	out, err := runGBCS(t, nil, "verify", "--keystore", ks, f)
	if err != nil || !strings.Contains(out, "signature: no-key (") || strings.Contains(out, "invalid") {
		t.Errorf("verify with an unreadable key: %v\n%s", err, out)
	}
}
