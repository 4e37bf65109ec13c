package device

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeConfigValidate(t *testing.T) {
	valid := func() ServeConfig { return ServeConfig{BatchDir: "meters", ACBCert: []string{"acb.pem"}} }
	tests := []struct {
		name    string
		edit    func(c *ServeConfig)
		wantErr string // empty: valid
	}{
		{"valid", func(c *ServeConfig) {}, ""},
		{"generated", func(c *ServeConfig) { c.BatchDir, c.Generate, c.Kind = "", 10, "GSME" }, ""},
		{"TLS with client CA", func(c *ServeConfig) { c.TLSCert, c.TLSKey, c.ClientCA = "c.pem", "c.key", "ca.pem" }, ""},
		{"no meters", func(c *ServeConfig) { c.BatchDir = "" }, "batchDir: give exactly one of --batch-dir and --generate"},
		{"both sources", func(c *ServeConfig) { c.Generate = 3 }, "batchDir: give exactly one of --batch-dir and --generate"},
		{"negative count", func(c *ServeConfig) { c.BatchDir, c.Generate = "", -3 }, "generate: --generate -3"},
		{"no ACB anchor", func(c *ServeConfig) { c.ACBCert = nil }, "acbCert: --acb-cert is required"},
		{"TLS certificate without key", func(c *ServeConfig) { c.TLSCert = "c.pem" }, "tlsCert: --tls-cert and --tls-key go together"},
		{"client CA without TLS", func(c *ServeConfig) { c.ClientCA = "ca.pem" }, "clientCA: --client-ca needs --tls-cert"},
		{"unknown kind", func(c *ServeConfig) { c.Kind = "water" }, `kind: --kind "water"`},
		{"bad first EUI", func(c *ServeConfig) { c.FirstEUI = "12" }, "firstEUI: --first-eui"},
		{"bad listen", func(c *ServeConfig) { c.Listen = "localhost" }, "listen: --listen"},
		{"unknown log level", func(c *ServeConfig) { c.LogLevel = "chatty" }, `logLevel: --log-level "chatty"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrServeConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrServeConfig saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadServeConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(p, []byte(`{"data":"d","batchDir":"meters","rootCert":"/abs/root.pem","acbCert":["acb.pem"],
		"supplierCert":["s-ds.pem","s-ka.pem"],"supplierTopUpCert":["top.pem"],"networkOperatorCert":["no.pem"],"tcosCert":["t.pem"],
		"wanProviderCert":["w.pem"],"tlsCert":"tls/c.pem","tlsKey":"tls/c.key","clientCA":"ca.pem"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	j := func(s string) string { return filepath.Join(dir, s) }
	for got, want := range map[string]string{
		c.Data: j("d"), c.BatchDir: j("meters"), c.RootCert: "/abs/root.pem", c.ACBCert[0]: j("acb.pem"), c.SupplierCert[1]: j("s-ka.pem"),
		c.SupplierTopUpCert[0]: j("top.pem"), c.NetworkOperatorCert[0]: j("no.pem"), c.TCoSCert[0]: j("t.pem"), c.WANProviderCert[0]: j("w.pem"),
		c.TLSCert: j("tls/c.pem"), c.TLSKey: j("tls/c.key"), c.ClientCA: j("ca.pem"),
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`{"batchdir":"m"}`, `did you mean "batchDir"`},
		{`{"meters":"m"}`, `unknown field "meters"`},
		{`{"acbCert":"one.pem"}`, "field acbCert"},
		{`{"generate":"10"}`, "field generate"},
	} {
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadServeConfig(p); !errors.Is(err, ErrServeConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrServeConfig naming the file and saying %q", tc.body, err, tc.want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"electricity": Electricity, "ESME": Electricity, "gas": Gas, "Gsme": Gas} {
		if k, err := ParseKind(in); err != nil || k != want {
			t.Errorf("ParseKind(%q) = %v, %v", in, k, err)
		}
	}
	if _, err := ParseKind("water"); err == nil {
		t.Error("ParseKind(water) succeeded")
	}
}
