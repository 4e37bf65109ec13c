package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/device"
)

// TestConformanceCommands writes an example keystore, serves its reference
// meter over HTTP and GFI, runs the suite through the command line (both
// transports pass, reports written), and runs it against an endpoint that
// fails every exchange (exit status 1).
func TestConformanceCommands(t *testing.T) {
	dir := t.TempDir()
	ks := filepath.Join(dir, "ks")
	mustRun(t, "conformance", "keystore", "--out", ks)
	if _, err := run(t, "conformance", "keystore", "--out", ks); err == nil {
		t.Error("keystore overwrote a directory")
	}
	cfg, err := device.LoadServeConfig(filepath.Join(ks, "fleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("fleet.json: %v", err)
	}
	anchors, err := cfg.Anchors()
	if err != nil {
		t.Fatal(err)
	}
	newFleet := func() *device.Fleet {
		ps, err := device.ReadBatchDir(cfg.Path(cfg.BatchDir), device.Electricity)
		if err != nil {
			t.Fatal(err)
		}
		f := device.NewFleet(device.Config{})
		if err := f.AddBatch(ps, anchors); err != nil {
			t.Fatal(err)
		}
		return f
	}

	h, err := device.NewHTTPHandler(newFleet(), device.HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	junit, html := filepath.Join(dir, "report.xml"), filepath.Join(dir, "report.html")
	out := mustRun(t, "conformance", "run", "--target", "device", "--transport", "http", "--url", srv.URL, "--keystore", ks,
		"--junit", junit, "--html", html)
	if !strings.Contains(out, "PASS  MAC-01") || !strings.HasSuffix(strings.TrimSpace(out), "PASS") {
		t.Errorf("summary:\n%s", out)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(raw, &suites); err != nil || suites.Tests < 30 || suites.Failures != 0 || len(suites.Suites) != 1 ||
		len(suites.Suites[0].Cases) != suites.Tests {
		t.Errorf("JUnit: %+v, %v", suites, err)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, external := range []string{"href=", "<script", "<link", "src=", "url(", "@import"} {
		if strings.Contains(string(page), external) {
			t.Errorf("HTML report holds %q: not self-contained", external)
		}
	}
	if !strings.Contains(string(page), "MAC-01") || !strings.Contains(string(page), `class="verdict pass"`) {
		t.Error("HTML report lacks its results")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go (&device.GFIServer{Fleet: newFleet()}).Serve(ctx, ln)
	mustRun(t, "conformance", "run", "--transport", "gfi", "--url", ln.Addr().String(), "--keystore", ks, "--case", "MAC,CTR,URP")

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte{0xDD, 0x00}) // answers everything with garbage
	}))
	defer bad.Close()
	out, err = run(t, "conformance", "run", "--transport", "http", "--url", bad.URL, "--keystore", ks, "--case", "MAC-01,MAC-02")
	var es *exitStatus
	if !errors.As(err, &es) || es.code != 1 || !strings.Contains(out, "FAIL  MAC-01") || !strings.Contains(out, "FAIL  MAC-02") {
		t.Errorf("run against a broken endpoint: %v\n%s", err, out)
	}

	vec := filepath.Join(dir, "vectors")
	mustRun(t, "conformance", "vectors", "--out", vec)
	var vf struct {
		Messages []json.RawMessage `json:"messages"`
	}
	raw, _ = os.ReadFile(filepath.Join(vec, "vectors.json"))
	if err := json.Unmarshal(raw, &vf); err != nil || len(vf.Messages) == 0 {
		t.Errorf("vectors.json: %v", err)
	}
	if out := mustRun(t, "conformance", "list"); !strings.Contains(out, "RTR-SIG-01") || !strings.Contains(out, "COS-02") {
		t.Errorf("list:\n%s", out)
	}
}

// TestConformanceGasKeystore writes a keystore for a gas meter and runs the
// MAC and signature cases against it through the command line: they send
// the GSME's use cases and pass.
func TestConformanceGasKeystore(t *testing.T) {
	ks := filepath.Join(t.TempDir(), "ks")
	mustRun(t, "conformance", "keystore", "--out", ks, "--kind", "gas")
	if _, err := run(t, "conformance", "keystore", "--out", filepath.Join(t.TempDir(), "x"), "--kind", "water"); err == nil {
		t.Error("keystore for a water meter")
	}
	cfg, err := device.LoadServeConfig(filepath.Join(ks, "fleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "gas" {
		t.Fatalf("fleet.json kind %q, want gas", cfg.Kind)
	}
	anchors, err := cfg.Anchors()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := device.ReadBatchDir(cfg.Path(cfg.BatchDir), device.Gas)
	if err != nil {
		t.Fatal(err)
	}
	f := device.NewFleet(device.Config{})
	if err := f.AddBatch(ps, anchors); err != nil {
		t.Fatal(err)
	}
	h, err := device.NewHTTPHandler(f, device.HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	out := mustRun(t, "conformance", "run", "--transport", "http", "--url", srv.URL, "--keystore", ks, "--case", "MAC,SIG-01")
	if !strings.Contains(out, "6 cases: 6 passed") {
		t.Errorf("gas run:\n%s", out)
	}
}
