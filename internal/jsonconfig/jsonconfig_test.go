package jsonconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name string `json:"name"`
}

type embedded struct {
	Shared string `json:"shared"`
}

type testConfig struct {
	embedded
	ACBEUI  string           `json:"acbEUI"`
	List    []inner          `json:"list"`
	ByName  map[string]inner `json:"byName"`
	Untaged int
	Skipped string        `json:"-"`
	Wait    time.Duration `json:"wait"`
}

func TestDecode(t *testing.T) {
	tests := []struct{ name, json, wantErr string }{
		{"valid", `{"shared":"s","acbEUI":"x","list":[{"name":"a"}],"byName":{"k":{"name":"b"}},"Untaged":1,"wait":5}`, ""},
		{"unknown field", `{"colour":"red"}`, `unknown field "colour"`},
		{"case differs", `{"acbEui":"x"}`, `did you mean "acbEUI"`},
		{"case differs in a list", `{"list":[{"Name":"a"}]}`, `unknown field "Name" in list[0]`},
		{"case differs in a map", `{"byName":{"k":{"NAME":"a"}}}`, `unknown field "NAME" in byName.k`},
		{"skipped field", `{"Skipped":"x"}`, `unknown field "Skipped"`},
		{"wrong type", `{"acbEUI":1}`, "field acbEUI: want a JSON string"},
		{"trailing data", `{} []`, "trailing data"},
		{"syntax", `{"acbEUI":}`, "invalid JSON at byte"},
		{"too large", `{"acbEUI":"` + strings.Repeat("x", MaxBytes) + `"}`, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c testConfig
			err := Decode([]byte(tc.json), &c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Shared != "s" || len(c.List) != 1 || c.ByName["k"].Name != "b" || c.Untaged != 1 {
					t.Errorf("decoded %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadResolve(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"acbEUI":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var c testConfig
	got, err := Read(p, &c)
	if err != nil || got != dir || c.ACBEUI != "x" {
		t.Fatalf("Read = %q, %+v, %v", got, c, err)
	}
	for in, want := range map[string]string{"": "", "/abs/f": "/abs/f", "f.pem": filepath.Join(dir, "f.pem"), "a/../b": filepath.Join(dir, "b")} {
		if r := Resolve(dir, in); r != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, r, want)
		}
	}
	if err := os.WriteFile(p, []byte(`{"nope":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p, &c); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Read(bad) = %v, want an error naming the file", err)
	}
}

// FuzzDecode checks that Decode never panics and that what it accepts
// encoding/json accepts too.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"acbEUI":"x","list":[{"name":"a"}]}`, `{"byName":{"k":{"NAME":1}}}`, `[]`, `{"list":{"name":1}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c testConfig
		if Decode(data, &c) == nil {
			var again testConfig
			if err := json.Unmarshal(data, &again); err != nil {
				t.Fatalf("Decode accepted what encoding/json refuses: %v", err)
			}
		}
	})
}

// TestReadResolvesTaggedPaths checks that Read resolves the fields tagged
// path:"file" and path:"uri" (the latter only when it holds no ":"), and
// leaves untagged fields as they are.
func TestReadResolvesTaggedPaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"cert": "tls/c.pem", "abs": "/etc/k", "certs": ["a.pem", "/b.pem"],
		"store": "db.sqlite", "dsn": "postgres://h/db", "plain": "rel", "empty": ""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cert  string   `json:"cert" path:"file"`
		Abs   string   `json:"abs" path:"file"`
		Certs []string `json:"certs" path:"file"`
		Store string   `json:"store" path:"uri"`
		DSN   string   `json:"dsn" path:"uri"`
		Plain string   `json:"plain"`
		Empty string   `json:"empty" path:"file"`
	}
	if _, err := Read(p, &c); err != nil {
		t.Fatal(err)
	}
	if c.Cert != filepath.Join(dir, "tls/c.pem") || c.Abs != "/etc/k" || c.Certs[0] != filepath.Join(dir, "a.pem") || c.Certs[1] != "/b.pem" ||
		c.Store != filepath.Join(dir, "db.sqlite") || c.DSN != "postgres://h/db" || c.Plain != "rel" || c.Empty != "" {
		t.Errorf("resolved %+v", c)
	}
}
