package router

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validServeConfig() ServeConfig {
	return ServeConfig{ACBEUI: "90B3D51F30000001", ACBKey: "acb.key", TLSCert: "router.pem", TLSKey: "router.key", CSP: "https://csp.example"}
}

func TestServeConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *ServeConfig)
		wantErr string // empty: valid
	}{
		{"valid", func(c *ServeConfig) {}, ""},
		{"with operators", func(c *ServeConfig) { c.OperatorListen, c.Operators = "127.0.0.1:8445", "ops.json" }, ""},
		{"no ACB EUI", func(c *ServeConfig) { c.ACBEUI = "" }, "acbEUI: --acb-eui is required"},
		{"bad ACB EUI", func(c *ServeConfig) { c.ACBEUI = "90B3D51F" }, "acbEUI: --acb-eui:"},
		{"no ACB key", func(c *ServeConfig) { c.ACBKey = "" }, "acbKey: --acb-key is required"},
		{"no TLS certificate", func(c *ServeConfig) { c.TLSCert = "" }, "tlsCert: --tls-cert is required"},
		{"no TLS key", func(c *ServeConfig) { c.TLSKey = "" }, "tlsKey: --tls-key is required"},
		{"no CSP", func(c *ServeConfig) { c.CSP = "" }, "csp: --csp is required"},
		{"relative CSP", func(c *ServeConfig) { c.CSP = "csp.example/v1" }, "csp: --csp"},
		{"CSP certificate without key", func(c *ServeConfig) { c.CSPCert = "c.pem" }, "cspCert: --csp-cert and --csp-key go together"},
		{"operators without listener", func(c *ServeConfig) { c.Operators = "ops.json" }, "operatorListen: --operator-listen and --operators go together"},
		{"bad listen", func(c *ServeConfig) { c.Listen = "8443" }, "listen: --listen"},
		{"bad port", func(c *ServeConfig) { c.Listen = "127.0.0.1:99999" }, "listen: --listen"},
		{"bad operator listen", func(c *ServeConfig) { c.OperatorListen, c.Operators = "nowhere", "ops.json" }, "operatorListen: --operator-listen"},
		{"unknown log level", func(c *ServeConfig) { c.LogLevel = "loud" }, `logLevel: --log-level "loud"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validServeConfig()
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
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("relative paths against the file's directory", func(t *testing.T) {
		c, err := LoadServeConfig(write("paths.json", `{"data":"data","store":"db/m.db","acbKey":"keys/acb.key","tlsCert":"tls/r.pem",
			"tlsKey":"/abs/r.key","clientCA":"ca.pem","cspCA":"csp-ca.pem","cspCert":"c.pem","cspKey":"c.key","operators":"ops.json"}`))
		if err != nil {
			t.Fatal(err)
		}
		for got, want := range map[string]string{
			c.Data: filepath.Join(dir, "data"), c.Store: filepath.Join(dir, "db/m.db"), c.ACBKey: filepath.Join(dir, "keys/acb.key"),
			c.TLSCert: filepath.Join(dir, "tls/r.pem"), c.TLSKey: "/abs/r.key", c.ClientCA: filepath.Join(dir, "ca.pem"),
			c.CSPCA: filepath.Join(dir, "csp-ca.pem"), c.CSPCert: filepath.Join(dir, "c.pem"), c.CSPKey: filepath.Join(dir, "c.key"),
			c.Operators: filepath.Join(dir, "ops.json"),
		} {
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		}
	})
	t.Run("URIs left alone", func(t *testing.T) {
		c, err := LoadServeConfig(write("uris.json", `{"store":"postgres://u@h/db","acbKey":"softkms:path=acb.key"}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.Store != "postgres://u@h/db" || c.ACBKey != "softkms:path=acb.key" {
			t.Errorf("got store %q, acbKey %q", c.Store, c.ACBKey)
		}
	})
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", `{"acbEui":"90B3D51F30000001"}`, `unknown field "acbEui"`},
		{"trailing data", `{} {}`, "trailing data"},
		{"wrong type", `{"listen":8443}`, "field listen"},
		{"not JSON", `listen: 1`, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-")+".json", tc.body)
			_, err := LoadServeConfig(p)
			if !errors.Is(err, ErrServeConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want ErrServeConfig naming %s and saying %q", err, p, tc.want)
			}
		})
	}
	if _, err := LoadServeConfig(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrServeConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
