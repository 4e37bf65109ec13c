package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestDeviceRekey re-keys a meter through the real binary (decision 017):
// an operator opens a batch for re-keys and registers the supplier with
// the registration service; the supplier runs "user rekey-device" for the
// meter's digital-signing key, then its key-agreement key: CS02c, the
// registration service's issuance, CS02d, the CS02e read-back and the
// superseded certificate's revocation. Afterwards the router's registry
// holds the new keys, the repository one good certificate per usage (the
// new one), and a critical command's response is checked with the new
// signing key, a register read's MAC and encryption with the new
// key-agreement key. A re-key from a batch for new devices is refused.
func TestDeviceRekey(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 1)
			ctx := context.Background()
			meter := w.meters[0]
			dir := t.TempDir()
			cli(t, "ca", "batch", "open", "--data", w.data, "--actor", "e2e", "--name", "rekey-1", "--quota", "4", "--purpose", "rekey")
			cli(t, "ca", "batch", "open", "--data", w.data, "--actor", "e2e", "--name", "new-1", "--quota", "4")

			const token = "e2e-registrar-token-0123456789abcdef"
			sum := sha256.Sum256([]byte(token))
			ops, tokFile := filepath.Join(dir, "operators.json"), filepath.Join(dir, "token")
			if err := os.WriteFile(ops, fmt.Appendf(nil, `{"operators": [{"name": "reg", "token_sha256": %q, "roles": ["register"]}]}`,
				hex.EncodeToString(sum[:])), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			opCert, opKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key")
			cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", "90B3D51F30000004", "--user-role", "OU",
				"--key-out", opKey, "--out", opCert)
			rootPEM := filepath.Join(dir, "dccki-root.pem")
			rc, err := w.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rootPEM, pemCert(rc.CertDER), 0o644); err != nil {
				t.Fatal(err)
			}

			caAddr := freeAddr(t)
			caArgs := []string{"serve", "ca", "--data", w.data, "--listen", caAddr, "--tls-cert", w.srvCert, "--tls-key", w.srvKey,
				"--operators", ops, "--log-level", "info"}
			repoAddr := freeAddr(t)
			repoArgs := []string{"serve", "repository", "--data", w.data, "--listen", repoAddr, "--log-level", "warn"}
			if w.dsn != "" {
				caArgs = append(caArgs, "--store", w.dsn)
				repoArgs = append(repoArgs, "--store", w.dsn)
			}
			keysLoaded(t, start(t, "ca", caArgs...))
			start(t, "repository", repoArgs...)
			r := w.startRouter(t, "router", "")
			caURL := "https://" + caAddr
			asOperator := []string{"--ca-url", caURL, "--cert", opCert, "--key", opKey, "--cacert", rootPEM, "--token-file", tokFile}
			eventually(t, 20*time.Second, "CA service answers", func() error {
				_, err := cliErr(t, append([]string{"ca", "org", "list"}, asOperator...)...)
				return err
			})
			cli(t, append([]string{"ca", "org", "register", w.supplier.eui.String(), "--name", "Supplier A", "--role", "supplier"}, asOperator...)...)

			as := []string{"--router", r.url, "--repository", "http://" + repoAddr, "--cert", w.supplier.tlsCert, "--key", w.supplier.tlsKey,
				"--cacert", rootPEM}
			// The repository answers before anything is sent: a first read.
			eventually(t, 20*time.Second, "register read answered", func() error {
				_, err := cliErr(t, append([]string{"user", "send", "4.1.1", meter.String(), "--wait", "15s", "--json",
					"--decrypt", w.supplier.keyFiles["ka"]}, as...)...)
				return err
			})
			rekey := func(usage, batch string) (string, error) {
				return cliErr(t, append([]string{"user", "rekey-device", meter.String(), "--usage", usage, "--batch", batch, "--ca", caURL,
					"--signer", w.supplier.keyFiles["ds"], "--wait", "60s", "--json"}, as...)...)
			}

			// A batch for new devices does not issue re-keys; nothing changes.
			before := registryKeys(t, w, meter)
			if out, err := rekey("ds", "new-1"); err == nil || !strings.Contains(err.Error(), "re-key") {
				t.Fatalf("re-key from a batch for new devices: %q, %v", out, err)
			}
			if after := registryKeys(t, w, meter); !bytes.Equal(after.DSPublic, before.DSPublic) || !bytes.Equal(after.KAPublic, before.KAPublic) {
				t.Fatal("a refused re-key changed the registry")
			}

			for _, usage := range []string{"ds", "ka"} {
				out, err := rekey(usage, "rekey-1")
				if err != nil {
					t.Fatalf("user rekey-device --usage %s: %v", usage, err)
				}
				var done struct {
					Target      string
					Usage       string
					Certificate []byte
					Commands    []string
				}
				if err := json.Unmarshal([]byte(out), &done); err != nil || len(done.Commands) != 3 {
					t.Fatalf("user rekey-device --json: %q, %v", out, err)
				}
				cert, err := smki.ParseCertificate(done.Certificate)
				if err != nil || cert.EUI != meter {
					t.Fatalf("installed certificate: %v, %+v", err, cert)
				}
				pub, _ := cert.PublicKey.Bytes()
				reg := registryKeys(t, w, meter)
				if got := map[string][]byte{"ds": reg.DSPublic, "ka": reg.KAPublic}[usage]; !bytes.Equal(got, pub) {
					t.Errorf("%s: the router's registry does not hold the new key", usage)
				}
				good, err := w.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: meter.String(), Kind: store.KindDevice, Usage: usage})
				if err != nil || len(good) != 1 || !bytes.Equal(good[0].DER, done.Certificate) || good[0].CA != "rekey-1" {
					t.Errorf("%s: the repository's good certificates %+v, %v: want the new one alone", usage, good, err)
				}
				all, _ := w.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: meter.String(), Kind: store.KindDevice, Usage: usage, IncludeRevoked: true})
				superseded := 0
				for _, c := range all {
					if !c.RevokedAt.IsZero() && c.Reason == 4 {
						superseded++
					}
				}
				if superseded != 1 {
					t.Errorf("%s: %d certificates revoked as superseded, want 1", usage, superseded)
				}
			}

			// A critical command: its response is signed with the new key,
			// checked by the router and by the client.
			var resp struct {
				Kind      string `json:"kind"`
				OpenError string `json:"openError"`
			}
			out := cli(t, append([]string{"user", "send", "7.2", meter.String(), "--signer", w.supplier.keyFiles["ds"], "--wait", "20s", "--json"}, as...)...)
			if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Kind != "response" || resp.OpenError != "" {
				t.Errorf("7.2 after the re-key: %q, %v", out, err)
			}
			// A register read: MAC'd by the router and the meter with the new
			// key-agreement key, its payload encrypted to the supplier.
			out = cli(t, append([]string{"user", "send", "4.1.1", meter.String(), "--wait", "20s", "--json", "--decrypt", w.supplier.keyFiles["ka"]}, as...)...)
			if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Kind != "response" || resp.OpenError != "" {
				t.Errorf("4.1.1 after the re-key: %q, %v", out, err)
			}
		})
	}
}

// registryKeys returns the router's registry entry of the device.
func registryKeys(t *testing.T, w *world, eui smki.EUI) store.RouterDevice {
	t.Helper()
	d, err := w.db.Router().RouterDevice(context.Background(), eui)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
