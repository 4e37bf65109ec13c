package e2e

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
)

// TestServeFleetRefusesBadFlags runs "serve fleet" with flags it must
// refuse: each exits non-zero, saying what is wrong, without serving.
func TestServeFleetRefusesBadFlags(t *testing.T) {
	needBinary(t)
	w := newWorld(t, "sqlite", 2)
	devDir := filepath.Join(w.data, "devices")
	empty := t.TempDir()
	broken := t.TempDir()
	for _, f := range []string{"0012A3FFFE000001-ds.pem", "0012A3FFFE000001-ka.pem"} {
		b, err := os.ReadFile(filepath.Join(devDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, "-ka.pem") {
			b = b[strings.Index(string(b), "-----BEGIN CERTIFICATE"):] // the key removed
		}
		if err := os.WriteFile(filepath.Join(broken, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	acb := []string{"--acb-cert", w.acb.kaCert}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no meters", acb, "exactly one of --batch-dir and --generate"},
		{"both sources", append([]string{"--batch-dir", devDir, "--generate", "3"}, acb...), "exactly one of --batch-dir and --generate"},
		{"negative count", append([]string{"--generate", "-3"}, acb...), "--generate -3"},
		{"no ACB anchor", []string{"--batch-dir", devDir}, "--acb-cert is required"},
		{"ACB anchor of another role", []string{"--batch-dir", devDir, "--acb-cert", w.supplier.dsCert}, "want an organisation certificate of role"},
		{"supplier anchor that is no certificate", append([]string{"--batch-dir", devDir, "--supplier-cert", w.supplier.keyFiles["ds"]}, acb...), "holds no PEM certificate"},
		{"root anchor that is not a root", append([]string{"--batch-dir", devDir, "--root-cert", w.supplier.dsCert}, acb...), "want the SMKI root"},
		{"unknown kind", append([]string{"--batch-dir", devDir, "--kind", "water"}, acb...), `--kind "water"`},
		{"empty batch directory", append([]string{"--batch-dir", empty}, acb...), "holds no <EUI>-ds.pem files"},
		{"device file without its key", append([]string{"--batch-dir", broken}, acb...), "no PRIVATE KEY or EC PRIVATE KEY PEM block"},
		{"TLS certificate without key", append([]string{"--batch-dir", devDir, "--tls-cert", w.srvCert}, acb...), "--tls-cert and --tls-key go together"},
		{"client CA without TLS", append([]string{"--batch-dir", devDir, "--client-ca", w.srvCert}, acb...), "--client-ca needs --tls-cert"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "fleet", "--listen", freeAddr(t)}, tc.args...)
			_, err := cliErr(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Fatalf("error quotes a key: %v", err)
			}
		})
	}
}

// TestRouterToFleetOverMutualTLS runs the fleet behind TLS with client
// certificates required and the router forwarding to it with --csp-ca,
// --csp-cert and --csp-key: a disconnect goes through and is executed, a
// client without a certificate is refused, and the fleet stops cleanly on
// SIGTERM.
func TestRouterToFleetOverMutualTLS(t *testing.T) {
	needBinary(t)
	w := newWorld(t, "sqlite", 2)
	w.fleet.stop(t) // replaced below by a TLS fleet on the same address
	dir := t.TempDir()

	// The fleet's clients must chain to the DCCKI root; the router's CSP
	// trust anchors are the DCCKI root and TLS CA (the server certificate
	// is sent without its chain). DCCKI has no profile for a CSP client, so
	// the router presents a DCCKI client certificate issued to the ACB.
	dccki := func(names ...string) string {
		var b []byte
		for _, n := range names {
			c, err := w.db.SMKI().CA(t.Context(), n)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CertDER})...)
		}
		p := filepath.Join(dir, names[len(names)-1]+".pem")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cspCA := dccki(ca.NameDCCKIRoot)
	clientCA := dccki(ca.NameDCCKIRoot, ca.NameDCCKITLS)
	// The fleet serves the router's DCCKI server certificate with its
	// issuing CA.
	leaf, err := os.ReadFile(w.srvCert)
	if err != nil {
		t.Fatal(err)
	}
	issuing, err := os.ReadFile(dccki(ca.NameDCCKITLS))
	if err != nil {
		t.Fatal(err)
	}
	chain := filepath.Join(dir, "fleet-chain.pem")
	if err := os.WriteFile(chain, append(leaf, issuing...), 0o644); err != nil {
		t.Fatal(err)
	}
	cspCert, cspKey := filepath.Join(dir, "csp-client.pem"), filepath.Join(dir, "csp-client.key")
	cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", w.acb.eui.String(), "--user-role", "OU",
		"--key-out", cspKey, "--out", cspCert)

	addr := strings.TrimPrefix(w.fleetURL, "http://")
	fleet := start(t, "fleet-tls", "serve", "fleet", "--batch-dir", filepath.Join(w.data, "devices"), "--listen", addr,
		"--tls-cert", chain, "--tls-key", w.srvKey, "--client-ca", clientCA, "--log-level", "warn",
		"--acb-cert", w.acb.kaCert, "--supplier-cert", w.supplier.dsCert, "--supplier-cert", w.supplier.kaCert)
	w.fleetURL = "https://" + addr
	eventually(t, 20*time.Second, "TLS fleet up", func() error {
		if fleet.exited() {
			t.Fatalf("fleet exited: %v", fleet.err)
		}
		res, err := w.supplier.httpClient.Get(w.fleetURL + "/v1/stats")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return errorf("GET /v1/stats: %s", res.Status)
		}
		return nil
	})
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.roots}}}
	if res, err := noCert.Get(w.fleetURL + "/v1/stats"); err == nil {
		res.Body.Close()
		t.Fatalf("fleet answered %s to a client without a certificate", res.Status)
	}

	r := w.startRouter(t, "router", "", "--csp-ca", cspCA, "--csp-cert", cspCert, "--csp-key", cspKey)
	msg := w.preCommand(t, r, w.supplier, "7.2", w.meters[0], uint64(time.Now().UnixMilli()))
	if st, _, pr, err := r.submit(w.supplier, msg); err != nil || st != http.StatusAccepted {
		t.Fatalf("disconnect: %d %+v %v", st, pr, err)
	}
	w.awaitOutboxEmpty(t, 15*time.Second)
	st, b, _, err := do(w.supplier.httpClient, mustGet(t, w.fleetURL+"/v1/devices/"+w.meters[0].String()+"/stats"))
	if err != nil || st != http.StatusOK || !strings.Contains(string(b), `"executed":1`) {
		t.Fatalf("meter stats: %d %s %v", st, b, err)
	}
	fleet.stop(t)
	if fleet.err != nil {
		t.Errorf("fleet exit after SIGTERM: %v", fleet.err)
	}
}

func mustGet(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
