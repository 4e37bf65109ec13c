package e2e

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConformanceAgainstServedFleet writes the example keystore with the
// binary, serves its reference meter with "serve fleet --config
// fleet.json --gfi-listen", and runs "conformance run" over HTTP and GFI
// through the binary: every case passes (CTR-04 a warning), the reports
// are written, and the exit status is 0; a run against an address nobody
// serves exits 1.
func TestConformanceAgainstServedFleet(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	ks := filepath.Join(dir, "ks")
	cli(t, "conformance", "keystore", "--out", ks)
	httpAddr, gfiAddr := freeAddr(t), freeAddr(t)
	fleet := start(t, "fleet", "serve", "fleet", "--config", filepath.Join(ks, "fleet.json"), "--listen", httpAddr, "--gfi-listen", gfiAddr)
	eventually(t, 20*time.Second, "the fleet's endpoints", func() error {
		if fleet.exited() {
			t.Fatalf("serve fleet exited: %v", fleet.err)
		}
		if _, err := http.Get("http://" + httpAddr + "/v1/stats"); err != nil {
			return err
		}
		c, err := net.Dial("tcp", gfiAddr)
		if err != nil {
			return err
		}
		return c.Close()
	})

	junit, html := filepath.Join(dir, "report.xml"), filepath.Join(dir, "report.html")
	out := cli(t, "conformance", "run", "--target", "device", "--transport", "http", "--url", "http://"+httpAddr, "--keystore", ks,
		"--junit", junit, "--html", html)
	if !strings.Contains(out, "0 failed") || !strings.Contains(out, "WARN  CTR-04") {
		t.Errorf("HTTP run:\n%s", out)
	}
	for _, p := range []string{junit, html} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("report %s: %v", p, err)
		}
	}
	// The meter's state has moved on (a new supplier, counters ahead): a
	// second run on it gets a fresh meter.
	fleet.stop(t)
	fleet = start(t, "fleet-2", "serve", "fleet", "--config", filepath.Join(ks, "fleet.json"), "--listen", freeAddr(t), "--gfi-listen", gfiAddr)
	eventually(t, 20*time.Second, "the fleet's GFI endpoint", func() error {
		c, err := net.Dial("tcp", gfiAddr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	out = cli(t, "conformance", "run", "--transport", "gfi", "--url", gfiAddr, "--keystore", ks)
	if !strings.Contains(out, "0 failed") || strings.Contains(out, "SKIP") {
		t.Errorf("GFI run:\n%s", out)
	}

	out, err := cliErr(t, "conformance", "run", "--transport", "gfi", "--url", freeAddr(t), "--keystore", ks, "--case", "MAC-01")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, "FAIL  MAC-01") {
		t.Errorf("run against nothing: %v\n%s", err, out)
	}
}
