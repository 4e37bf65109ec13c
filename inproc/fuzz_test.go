package inproc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadManifest feeds inproc.json files to the manifest reader: it must
// refuse what it cannot use with ErrManifest and never panic, and what it
// accepts must name valid parties and an ACB key.
func FuzzReadManifest(f *testing.F) {
	good, err := json.Marshal(manifest{Version: 1, ACBKey: "softkms:path=keys/acb-ka-90B3D51F30000004.key", Batch: DefaultBatch,
		Parties: DefaultParties()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"acbKey":"x","batch":"B","parties":[{"name":"acb","eui":"90B3D51F30000004","role":4,"usages":["ka"]}]}`))
	f.Add([]byte(`{"version":1,"acbKey":"x","parties":[{"name":"acb","eui":"90-B3-D5-1F-30-00-00-04","role":4,"usages":["ka","ka"]}]}`))
	f.Add([]byte(`{"version":1,"acbKey":"x","parties":[{"name":"acb","eui":"zz","role":4,"usages":["ka"]}]}`))
	f.Add([]byte(`{"version":1,"acbKey":"x","parties":[{"name":"acb","eui":"90B3D51F30000004","role":4,"usages":["ka"]}],"x":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, manifestFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		m, ok, err := readManifest(dir)
		if err != nil {
			return
		}
		if !ok {
			t.Fatal("a manifest file that exists was reported absent")
		}
		if m.ACBKey == "" || validateParties(m.Parties) != nil {
			t.Fatalf("accepted an unusable manifest %+v", m)
		}
	})
}
