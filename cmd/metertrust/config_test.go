package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/repository"
	"github.com/metertrust/metertrust/router"
)

// configOf runs the serve command newCmd makes with args up to its
// validated configuration, which it returns instead of starting the
// service.
func configOf[C any](newCmd func(func(context.Context, C) error) *cobra.Command, args ...string) (C, error) {
	var got C
	c := newCmd(func(_ context.Context, cfg C) error { got = cfg; return nil })
	c.SetArgs(args)
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	c.SilenceUsage = true
	err := c.ExecuteContext(context.Background())
	return got, err
}

// routerConfigOf is configOf for "serve router".
func routerConfigOf(t *testing.T, args ...string) (router.ServeConfig, error) {
	t.Helper()
	return configOf(newServeRouterCmdWith, args...)
}

// operatorServeConfigOf is configOf for "serve operator".
func operatorServeConfigOf(t *testing.T, args ...string) (operator.ServeConfig, error) {
	t.Helper()
	return configOf(newServeOperatorCmdWith, args...)
}

// fleetConfigOf is configOf for "serve fleet".
func fleetConfigOf(t *testing.T, args ...string) (device.ServeConfig, error) {
	t.Helper()
	return configOf(newServeFleetCmdWith, args...)
}

// TestExamples loads every file of deploy/examples through the loader its
// service uses, so that the examples cannot rot. A file no loader claims
// fails the test.
func TestExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "examples")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		seen = append(seen, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			switch e.Name() {
			case "README.md":
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, other := range entries {
					if !strings.Contains(string(b), other.Name()) && other.Name() != "README.md" {
						t.Errorf("README.md does not describe %s", other.Name())
					}
				}
			case "router.json":
				cfg, err := routerConfigOf(t, "--config", path)
				if err != nil {
					t.Fatal(err)
				}
				if ops := cfg.Operators; ops != "" {
					if _, err := operator.Load(ops); err != nil {
						t.Errorf("its operators file: %v", err)
					}
				}
			case "operator.json":
				cfg, err := operatorServeConfigOf(t, "--config", path)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := operator.Load(cfg.Operators); err != nil {
					t.Errorf("its operators file: %v", err)
				}
			case "ca.json":
				cfg, err := configOf(newServeCACmdWith, "--config", path)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := operator.LoadFile(cfg.Operators); err != nil {
					t.Errorf("its operators file: %v", err)
				}
			case "fleet.json":
				if _, err := fleetConfigOf(t, "--config", path); err != nil {
					t.Fatal(err)
				}
			case "repository.json":
				cfg, err := repository.LoadConfig(path)
				if err != nil {
					t.Fatal(err)
				}
				if repository.LegacySpelling(cfg.Operators) {
					t.Error("the example uses the deprecated operator spelling")
				}
			case "operators.json":
				if _, err := operator.LoadFile(path); err != nil {
					t.Fatal(err)
				}
				ops, err := repository.LoadOperators(path)
				if err != nil || len(ops) == 0 || repository.LegacySpelling(ops) {
					t.Fatalf("as the repository reads it: %+v, %v", ops, err)
				}
			default:
				t.Fatalf("no loader for %s: add it to TestExamples", e.Name())
			}
		})
	}
	for _, want := range []string{"README.md", "router.json", "operator.json", "ca.json", "fleet.json", "repository.json", "operators.json"} {
		if !slices.Contains(seen, want) {
			t.Errorf("deploy/examples has no %s", want)
		}
	}
}

// TestServeRouterConfig checks how "serve router" combines --config and
// its flags: the file's fields, flags given overriding them, the flags'
// defaults for what neither sets, validation naming the field, and the
// file read strictly.
func TestServeRouterConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "router.json")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"acbEUI":"90B3D51F30000001","acbKey":"acb.key","tlsCert":"tls/r.pem","tlsKey":"tls/r.key","csp":"https://csp.example","listen":"127.0.0.1:9443"}`)

	cfg, err := routerConfigOf(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9443" || cfg.LogLevel != router.DefaultLogLevel || cfg.TLSCert != filepath.Join(dir, "tls/r.pem") ||
		cfg.ACBKey != filepath.Join(dir, "acb.key") {
		t.Errorf("from the file: %+v", cfg)
	}

	cfg, err = routerConfigOf(t, "--config", file, "--listen", "127.0.0.1:7443", "--tls-cert", "other.pem", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7443" || cfg.TLSCert != "other.pem" || cfg.LogLevel != "debug" || cfg.TLSKey != filepath.Join(dir, "tls/r.key") {
		t.Errorf("flags over the file: %+v", cfg)
	}

	cfg, err = routerConfigOf(t, "--acb-eui", "90B3D51F30000001", "--acb-key", "k", "--tls-cert", "c", "--tls-key", "k", "--csp", "http://csp")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != router.DefaultListen || cfg.TLSCert != "c" || cfg.MetricsListen != router.DefaultMetricsListen {
		t.Errorf("flags alone: %+v", cfg)
	}

	for _, tc := range []struct {
		name string
		body string
		args []string
		want string
	}{
		{"flag makes it invalid", "", []string{"--acb-eui", "nonsense"}, "acbEUI: --acb-eui"},
		{"missing TLS key", `{"acbEUI":"90B3D51F30000001","acbKey":"k","tlsCert":"c","csp":"https://csp"}`, nil, "tlsKey: --tls-key is required"},
		{"bad listen", `{"acbEUI":"90B3D51F30000001","acbKey":"k","tlsCert":"c","tlsKey":"k","csp":"https://csp","listen":"nowhere"}`, nil, "listen: --listen"},
		{"unknown log level", `{"acbEUI":"90B3D51F30000001","acbKey":"k","tlsCert":"c","tlsKey":"k","csp":"https://csp","logLevel":"loud"}`, nil, "logLevel: --log-level"},
		{"bad metrics listen", `{"acbEUI":"90B3D51F30000001","acbKey":"k","tlsCert":"c","tlsKey":"k","csp":"https://csp","metricsListen":"9101"}`, nil, "metricsListen: --metrics-listen"},
		{"unknown field", `{"acbEUI":"90B3D51F30000001","colour":"red"}`, nil, `unknown field "colour"`},
		{"field in the wrong case", `{"acbEui":"90B3D51F30000001"}`, nil, `did you mean "acbEUI"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.body != "" {
				write(tc.body)
			}
			_, err := routerConfigOf(t, append([]string{"--config", file}, tc.args...)...)
			if !errors.Is(err, router.ErrServeConfig) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("err = %v, want ErrServeConfig naming %s and saying %q", err, file, tc.want)
			}
		})
	}
}

// TestServeFleetConfig is TestServeRouterConfig for "serve fleet": file
// paths resolved against the file's directory, flag paths against --data,
// and a source of meters given by flag replacing the file's.
func TestServeFleetConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(file, []byte(`{"batchDir":"meters","acbCert":["acb.pem"],"kind":"gas","listen":"127.0.0.1:9480"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := fleetConfigOf(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchDir != filepath.Join(dir, "meters") || cfg.ACBCert[0] != filepath.Join(dir, "acb.pem") || cfg.Kind != "gas" ||
		cfg.Listen != "127.0.0.1:9480" || cfg.FirstEUI != device.DefaultFirstEUI {
		t.Errorf("from the file: %+v", cfg)
	}
	cfg, err = fleetConfigOf(t, "--config", file, "--generate", "5", "--acb-cert", "a1.pem,a2.pem", "--kind", "electricity")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Generate != 5 || cfg.BatchDir != "" || !slices.Equal(cfg.ACBCert, []string{"a1.pem", "a2.pem"}) || cfg.Kind != "electricity" {
		t.Errorf("flags over the file: %+v", cfg)
	}
	if _, err := fleetConfigOf(t, "--config", file, "--kind", "water"); !errors.Is(err, device.ErrServeConfig) || !strings.Contains(err.Error(), `--kind "water"`) {
		t.Errorf("bad kind: %v", err)
	}
	if err := os.WriteFile(file, []byte(`{"batchDir":"meters","acbCert":["acb.pem"],"meters":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fleetConfigOf(t, "--config", file); !errors.Is(err, device.ErrServeConfig) || !strings.Contains(err.Error(), `unknown field "meters"`) {
		t.Errorf("unknown field: %v", err)
	}
}

// TestServeOperatorConfig checks how "serve operator" combines --config and
// flags: the file's fields, relative paths resolved against its directory,
// flags given overriding it, defaults for what neither sets, and refusals
// naming the field.
func TestServeOperatorConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "operator.json")
	if err := os.WriteFile(file, []byte(`{"data": "d", "tlsCert": "c.pem", "tlsKey": "c.key", "operators": "ops.json"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := operatorServeConfigOf(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	want := operator.ServeConfig{Data: filepath.Join(dir, "d"), Listen: operator.DefaultListen, TLSCert: filepath.Join(dir, "c.pem"),
		TLSKey: filepath.Join(dir, "c.key"), Operators: filepath.Join(dir, "ops.json"), LogLevel: "info",
		MetricsListen: operator.DefaultMetricsListen}
	if cfg != want {
		t.Errorf("config = %+v\nwant %+v", cfg, want)
	}
	cfg, err = operatorServeConfigOf(t, "--config", file, "--listen", "0.0.0.0:9000", "--store", "postgres://x/y", "--log-level", "debug")
	if err != nil || cfg.Listen != "0.0.0.0:9000" || cfg.Store != "postgres://x/y" || cfg.LogLevel != "debug" || cfg.TLSKey != want.TLSKey {
		t.Errorf("flags over the file: %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		field string
	}{
		{"no store", []string{"--tls-cert", "c", "--tls-key", "k", "--operators", "o"}, "store"},
		{"no cert", []string{"--data", "d", "--tls-key", "k", "--operators", "o"}, "tlsCert"},
		{"no key", []string{"--data", "d", "--tls-cert", "c", "--operators", "o"}, "tlsKey"},
		{"no operators", []string{"--data", "d", "--tls-cert", "c", "--tls-key", "k"}, "operators"},
		{"bad listen", []string{"--data", "d", "--tls-cert", "c", "--tls-key", "k", "--operators", "o", "--listen", "nope"}, "listen"},
		{"bad level", []string{"--data", "d", "--tls-cert", "c", "--tls-key", "k", "--operators", "o", "--log-level", "loud"}, "logLevel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := operatorServeConfigOf(t, tc.args...)
			if !errors.Is(err, operator.ErrConfig) || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("error %v, want ErrConfig naming %s", err, tc.field)
			}
		})
	}
	if err := os.WriteFile(file, []byte(`{"acbKey": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := operatorServeConfigOf(t, "--config", file); !errors.Is(err, operator.ErrConfig) {
		t.Errorf("a key field in the file: %v, want ErrConfig", err)
	}
}

// TestServeCAConfig checks how "serve ca" combines --config and flags, as
// TestServeOperatorConfig does for "serve operator".
func TestServeCAConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ca.json")
	if err := os.WriteFile(file, []byte(`{"data": "d", "kms": "softkms", "tlsCert": "c.pem", "tlsKey": "c.key", "operators": "ops.json"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configOf(newServeCACmdWith, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	want := ra.ServeConfig{Data: filepath.Join(dir, "d"), KMS: "softkms", Listen: ra.DefaultListen, TLSCert: filepath.Join(dir, "c.pem"),
		TLSKey: filepath.Join(dir, "c.key"), Operators: filepath.Join(dir, "ops.json"), Refresh: "1h0m0s", LogLevel: "info",
		MetricsListen: ra.DefaultMetricsListen}
	if cfg != want {
		t.Errorf("config = %+v\nwant %+v", cfg, want)
	}
	if cfg.RefreshInterval() != time.Hour {
		t.Errorf("refresh %s", cfg.RefreshInterval())
	}
	cfg, err = configOf(newServeCACmdWith, "--config", file, "--listen", "0.0.0.0:9000", "--refresh", "10m", "--log-level", "debug")
	if err != nil || cfg.Listen != "0.0.0.0:9000" || cfg.RefreshInterval() != 10*time.Minute || cfg.LogLevel != "debug" || cfg.TLSKey != want.TLSKey {
		t.Errorf("flags over the file: %+v, %v", cfg, err)
	}
	if cfg, err := configOf(newServeCACmdWith, "--config", file, "--proposal-ttl", "48h"); err != nil || cfg.ProposalTTLDuration() != 48*time.Hour {
		t.Errorf("--proposal-ttl 48h: %+v, %v", cfg, err)
	}
	ok := []string{"--data", "d", "--tls-cert", "c", "--tls-key", "k", "--operators", "o"}
	for _, tc := range []struct {
		name  string
		args  []string
		field string
	}{
		{"no data", []string{"--tls-cert", "c", "--tls-key", "k", "--operators", "o"}, "data"},
		{"no cert", []string{"--data", "d", "--tls-key", "k", "--operators", "o"}, "tlsCert"},
		{"no key", []string{"--data", "d", "--tls-cert", "c", "--operators", "o"}, "tlsKey"},
		{"no operators", []string{"--data", "d", "--tls-cert", "c", "--tls-key", "k"}, "operators"},
		{"refresh too long", append(slices.Clone(ok), "--refresh", "12h"), "refresh"},
		{"refresh nonsense", append(slices.Clone(ok), "--refresh", "hourly"), "refresh"},
		{"bad listen", append(slices.Clone(ok), "--listen", "nope"), "listen"},
		{"proposal TTL too short", append(slices.Clone(ok), "--proposal-ttl", "10s"), "proposalTTL"},
		{"proposal TTL nonsense", append(slices.Clone(ok), "--proposal-ttl", "a day"), "proposalTTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configOf(newServeCACmdWith, tc.args...)
			if !errors.Is(err, ra.ErrConfig) || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("error %v, want ErrConfig naming %s", err, tc.field)
			}
		})
	}
	if err := os.WriteFile(file, []byte(`{"acbKey": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := configOf(newServeCACmdWith, "--config", file); !errors.Is(err, ra.ErrConfig) {
		t.Errorf("an unknown field in the file: %v, want ErrConfig", err)
	}
}

// TestServeFlagsHaveFields checks that every flag of every serve command
// that reads --config names a field of its configuration (overlay finds
// fields by name): a flag without one would be silently ignored under
// --config.
func TestServeFlagsHaveFields(t *testing.T) {
	for _, tc := range []struct {
		cmd *cobra.Command
		typ reflect.Type
	}{
		{newServeRouterCmd(), reflect.TypeFor[router.ServeConfig]()},
		{newServeOperatorCmd(), reflect.TypeFor[operator.ServeConfig]()},
		{newServeCACmd(), reflect.TypeFor[ra.ServeConfig]()},
		{newServeFleetCmd(), reflect.TypeFor[device.ServeConfig]()},
	} {
		tc.cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			if _, ok := flagField(tc.typ, fl.Name); !ok && fl.Name != "config" {
				t.Errorf("serve %s --%s names no field of %s", tc.cmd.Name(), fl.Name, tc.typ)
			}
		})
	}
}

// TestMetricsListenConfig checks every service's metrics listener setting:
// its default, "off", a file's value and a flag over it, and a bad
// address refused naming the field.
func TestMetricsListenConfig(t *testing.T) {
	dir := t.TempDir()
	routerArgs := []string{"--acb-eui", "90B3D51F30000001", "--acb-key", "k", "--tls-cert", "c", "--tls-key", "k", "--csp", "http://csp"}
	operatorArgs := []string{"--data", dir, "--tls-cert", "c", "--tls-key", "k", "--operators", "o"}
	caArgs := []string{"--data", dir, "--tls-cert", "c", "--tls-key", "k", "--operators", "o"}
	fleetArgs := []string{"--generate", "1", "--acb-cert", "a.pem"}
	metricsOf := map[string]func(args ...string) (string, error){
		"router": func(args ...string) (string, error) {
			c, err := configOf(newServeRouterCmdWith, append(routerArgs, args...)...)
			return c.MetricsListen, err
		},
		"operator": func(args ...string) (string, error) {
			c, err := configOf(newServeOperatorCmdWith, append(operatorArgs, args...)...)
			return c.MetricsListen, err
		},
		"ca": func(args ...string) (string, error) {
			c, err := configOf(newServeCACmdWith, append(caArgs, args...)...)
			return c.MetricsListen, err
		},
		"fleet": func(args ...string) (string, error) {
			c, err := configOf(newServeFleetCmdWith, append(fleetArgs, args...)...)
			return c.MetricsListen, err
		},
	}
	defaults := map[string]string{"router": router.DefaultMetricsListen, "operator": operator.DefaultMetricsListen,
		"ca": ra.DefaultMetricsListen, "fleet": device.DefaultMetricsListen}
	seen := map[string]bool{}
	for svc, of := range metricsOf {
		t.Run(svc, func(t *testing.T) {
			if got, err := of(); err != nil || got != defaults[svc] {
				t.Errorf("default: %q, %v; want %q", got, err, defaults[svc])
			}
			if seen[defaults[svc]] {
				t.Errorf("default %s shared with another service", defaults[svc])
			}
			seen[defaults[svc]] = true
			if got, err := of("--metrics-listen", "off"); err != nil || got != "off" {
				t.Errorf("off: %q, %v", got, err)
			}
			if got, err := of("--metrics-listen", "0.0.0.0:9999"); err != nil || got != "0.0.0.0:9999" {
				t.Errorf("an address: %q, %v", got, err)
			}
			if _, err := of("--metrics-listen", "nowhere"); err == nil || !strings.Contains(err.Error(), "metricsListen: --metrics-listen") {
				t.Errorf("a bad address: %v", err)
			}
		})
	}
	file := filepath.Join(dir, "router.json")
	if err := os.WriteFile(file, []byte(`{"acbEUI":"90B3D51F30000001","acbKey":"k","tlsCert":"c","tlsKey":"k","csp":"https://csp","metricsListen":"127.0.0.1:19101"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := routerConfigOf(t, "--config", file); err != nil || cfg.MetricsListen != "127.0.0.1:19101" {
		t.Errorf("from a file: %q, %v", cfg.MetricsListen, err)
	}
	if cfg, err := routerConfigOf(t, "--config", file, "--metrics-listen", "off"); err != nil || cfg.MetricsListen != "off" {
		t.Errorf("a flag over the file: %q, %v", cfg.MetricsListen, err)
	}
}
