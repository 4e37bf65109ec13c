package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBatchOpenThroughProposal runs two-person control of a batch opening
// through the real binary (decision 023): ivy proposes batch-2 to "serve
// ca", which refuses her own approval; ian approves it, which opens
// nothing; the offline ceremony "ca batch open --proposal" (two officers)
// opens exactly batch-2 and the proposal reads executed in the service.
func TestBatchOpenThroughProposal(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 1)
			dir := t.TempDir()
			tokens := map[string]string{"ivy": "e2e-issuer-ivy-0123456789abcdef", "ian": "e2e-issuer-ian-0123456789abcdef"}
			var ops []string
			for name, tok := range tokens {
				sum := sha256.Sum256([]byte(tok))
				ops = append(ops, fmt.Sprintf(`{"name": %q, "token_sha256": %q, "roles": ["issue"]}`, name, hex.EncodeToString(sum[:])))
			}
			if err := os.WriteFile(filepath.Join(dir, "operators.json"), []byte(`{"operators": [`+strings.Join(ops, ",")+`]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			opCert, opKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key")
			cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", "90B3D51F30000004", "--user-role", "OU",
				"--key-out", opKey, "--out", opCert)
			caAddr := freeAddr(t)
			cfg := map[string]any{"data": w.data, "listen": caAddr, "tlsCert": w.srvCert, "tlsKey": w.srvKey,
				"operators": "operators.json", "proposalTTL": "2h", "metricsListen": "off"}
			if w.dsn != "" {
				cfg["store"] = w.dsn
			}
			b, _ := json.Marshal(cfg)
			cfgFile := filepath.Join(dir, "ca.json")
			if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
				t.Fatal(err)
			}
			caProc := start(t, "ca", "serve", "ca", "--config", cfgFile)
			kp, err := tls.LoadX509KeyPair(opCert, opKey)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: w.roots, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}}}
			call := func(method, path, op, body string, out any) int {
				t.Helper()
				var st int
				eventually(t, 20*time.Second, "CA service answers", func() error {
					if caProc.exited() {
						t.Fatalf("serve ca exited: %v", caProc.err)
					}
					req, _ := http.NewRequest(method, "https://"+caAddr+path, strings.NewReader(body))
					if body != "" {
						req.Header.Set("Content-Type", "application/json")
					}
					req.Header.Set("Authorization", "Bearer "+tokens[op])
					res, err := client.Do(req)
					if err != nil {
						return err
					}
					defer res.Body.Close()
					st = res.StatusCode
					raw, _ := io.ReadAll(res.Body)
					if out != nil && st < 300 {
						return json.Unmarshal(raw, out)
					}
					return nil
				})
				return st
			}
			type prop struct {
				ID, State, DecidedBy string
				ExpiresAt            time.Time
			}
			var p prop
			if st := call("POST", "/v1/proposals", "ivy", `{"kind":"batch-open","name":"batch-2","quota":3,"reason":"more meters"}`, &p); st != http.StatusAccepted || p.State != "pending" {
				t.Fatalf("propose: %d %+v", st, p)
			}
			if d := time.Until(p.ExpiresAt); d < time.Hour || d > 2*time.Hour {
				t.Errorf("expires in %s, want the configured 2h", d)
			}
			if st := call("POST", "/v1/proposals/"+p.ID+"/approve", "ivy", `{"reason":"mine"}`, nil); st != http.StatusForbidden {
				t.Errorf("self-approval: %d, want 403", st)
			}
			if _, err := cliErr(t, "ca", "batch", "open", "--data", w.data, "--actor", "e2e", "--proposal", p.ID); err == nil {
				t.Error("the ceremony opened a batch of a pending proposal")
			}
			if st := call("POST", "/v1/proposals/"+p.ID+"/approve", "ian", `{"reason":"agreed"}`, &p); st != http.StatusOK || p.State != "approved" || p.DecidedBy != "ian" {
				t.Fatalf("approve: %d %+v", st, p)
			}
			if out := strings.TrimSpace(cli(t, "ca", "batch", "open", "--data", w.data, "--actor", "e2e", "--proposal", p.ID)); out != "batch-2" {
				t.Errorf("ceremony printed %q, want batch-2", out)
			}
			if st := call("GET", "/v1/proposals/"+p.ID, "ian", "", &p); st != http.StatusOK || p.State != "executed" {
				t.Errorf("after the ceremony: %d %+v", st, p)
			}
			if out := cli(t, "ca", "batch", "show", "--data", w.data, "batch-2"); !strings.Contains(out, "quota   3") {
				t.Errorf("batch show:\n%s", out)
			}
		})
	}
}
