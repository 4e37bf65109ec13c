package e2e

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
)

// TestUserCLI drives the router as a supplier's operator would from a
// shell: "user send" a register read and wait for the response, checked
// and decrypted; "user send" a disconnection, signed with the supplier's
// key; "user watch" sees both responses on the event stream.
func TestUserCLI(t *testing.T) {
	needBinary(t)
	w := newWorld(t, "sqlite", 2)
	r := w.startRouter(t, "router", "")
	repoAddr := freeAddr(t)
	start(t, "repository", "serve", "repository", "--data", w.data, "--listen", repoAddr, "--log-level", "warn")
	rootPEM := filepath.Join(t.TempDir(), "dccki-root.pem")
	rc, err := w.db.SMKI().CA(t.Context(), ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootPEM, pemCert(rc.CertDER), 0o644); err != nil {
		t.Fatal(err)
	}
	as := []string{"--router", r.url, "--repository", "http://" + repoAddr, "--cert", w.supplier.tlsCert, "--key", w.supplier.tlsKey,
		"--cacert", rootPEM}
	var out string
	eventually(t, 20*time.Second, "register read answered", func() error {
		var err error
		out, err = cliErr(t, append([]string{"user", "send", "4.1.1", w.meters[0].String(), "--wait", "15s", "--json",
			"--decrypt", w.supplier.keyFiles["ka"]}, as...)...)
		return err
	})
	var read struct {
		Kind      string `json:"kind"`
		From      string `json:"from"`
		Decrypted []any  `json:"decrypted"`
		OpenError string `json:"openError"`
	}
	if err := json.Unmarshal([]byte(out), &read); err != nil || read.Kind != "response" || read.From != w.meters[0].String() ||
		len(read.Decrypted) != 1 || read.OpenError != "" {
		t.Fatalf("user send 4.1.1 --wait: %q (%v)", out, err)
	}
	id := strings.TrimSpace(cli(t, append([]string{"user", "send", "7.2", w.meters[1].String(), "--signer", w.supplier.keyFiles["ds"]}, as...)...))
	if id == "" {
		t.Fatal("user send 7.2 printed no command ID")
	}
	if _, err := cliErr(t, append([]string{"user", "send", "7.2", w.meters[1].String()}, as...)...); err == nil ||
		!strings.Contains(err.Error(), "Signer") {
		t.Errorf("a critical command without --signer: %v", err)
	}

	watch := start(t, "watch", append([]string{"user", "watch", "--json", "--decrypt", w.supplier.keyFiles["ka"]}, as...)...)
	eventually(t, 20*time.Second, "both responses watched", func() error {
		f, err := os.Open(watch.log)
		if err != nil {
			return err
		}
		defer f.Close()
		seen := map[string]bool{}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				CommandID string `json:"commandId"`
				Kind      string `json:"kind"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Kind == "response" {
				seen[ev.CommandID] = true
			}
		}
		if !seen[id] || len(seen) < 2 {
			return os.ErrNotExist
		}
		return nil
	})
}

// pemCert is a certificate's DER as PEM.
func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
