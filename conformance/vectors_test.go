package conformance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/commands"
)

// TestVectorsDeterministic writes the vectors twice, compares the bytes,
// and checks every message against our own parser and checks.
func TestVectorsDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if err := WriteVectors(d); err != nil {
			t.Fatal(err)
		}
	}
	ja, _ := os.ReadFile(filepath.Join(a, "vectors.json"))
	jb, _ := os.ReadFile(filepath.Join(b, "vectors.json"))
	if len(ja) == 0 || !bytes.Equal(ja, jb) {
		t.Fatal("two runs wrote different vectors")
	}
	if err := WriteVectors(a); err == nil {
		t.Error("WriteVectors overwrote a directory")
	}
	var vf VectorFile
	if err := json.Unmarshal(ja, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Messages) < 7 || len(vf.Encryption) != 1 {
		t.Fatalf("%d messages, %d encryptions", len(vf.Messages), len(vf.Encryption))
	}
	for _, v := range vf.Messages {
		raw, _ := hex.DecodeString(v.Message)
		m, err := commands.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if m.Form().String() != v.Form {
			t.Errorf("%s: form %s, vector says %s", v.Name, m.Form(), v.Form)
		}
		if v.MACKey != "" {
			key, _ := hex.DecodeString(v.MACKey)
			if ok := commands.VerifyMAC(key, m) == nil; ok != *v.MACValid {
				t.Errorf("%s: MAC valid %v, vector says %v", v.Name, ok, *v.MACValid)
			}
		}
	}
	e := vf.Encryption[0]
	key, _ := hex.DecodeString(e.Key)
	block, _ := hex.DecodeString(e.Ciphertext)
	pt, err := commands.OpenBlock(key, exampleDevice, block)
	if err != nil || hex.EncodeToString(pt) != e.Plaintext {
		t.Errorf("encryption vector: %x, %v", pt, err)
	}
	_ = context.Background()
}
