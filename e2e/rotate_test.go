package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
)

// TestRotateKeysCLI: the supplier rotates its keys on one meter from a
// shell, through the real binaries (serve router, serve fleet) on both
// stores: "keys new" and "ca issue org" make its new DS and KA
// certificates; "user rotate-keys --signer OLD" has the router build the
// CS02b supplierBySupplier, signs it with the key the meter holds, and
// waits until the meter's confirmation settles it applied. Then the
// router checks the supplier's signatures per meter: the new key on the
// rotated meter is accepted, the old one refused (signature, naming the
// key the meter holds), and the old one still accepted on the other
// meter.
func TestRotateKeysCLI(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 2)
			r := w.startRouter(t, "router", "")
			rootPEM := filepath.Join(t.TempDir(), "dccki-root.pem")
			rc, err := w.db.SMKI().CA(t.Context(), ca.NameDCCKIRoot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rootPEM, pemCert(rc.CertDER), 0o644); err != nil {
				t.Fatal(err)
			}
			as := []string{"--router", r.url, "--cert", w.supplier.tlsCert, "--key", w.supplier.tlsKey, "--cacert", rootPEM}

			// The supplier's new certificates.
			dir := t.TempDir()
			serial := map[string]string{}
			for _, u := range []string{"ds", "ka"} {
				key, csr, cert := filepath.Join(dir, "new-"+u+".key"), filepath.Join(dir, "new-"+u+".csr"), filepath.Join(dir, "new-"+u+".pem")
				cli(t, "keys", "new", "--usage", u, "--key", key, "--csr", csr, "--eui", w.supplier.eui.String(), "--role", "supplier", "--name", "supplier")
				out := cli(t, "ca", "issue", "org", "--data", w.data, "--actor", "e2e", "--csr", csr, "--role", "supplier",
					"--eui", w.supplier.eui.String(), "--usage", u, "--out", cert, "--json")
				var co struct {
					Serial string `json:"serial"`
				}
				if err := json.Unmarshal([]byte(out), &co); err != nil {
					t.Fatalf("ca issue org --json: %q: %v", out, err)
				}
				serial[u] = co.Serial
				if u == "ds" {
					serial["ds-key"] = key
				}
			}
			rotated, other := w.meters[0], w.meters[1]

			// Without --signer: refused before anything is asked.
			if _, err := cliErr(t, append([]string{"user", "rotate-keys", rotated.String(), "--ds", serial["ds"], "--ka", serial["ka"]}, as...)...); err == nil {
				t.Error("rotate-keys without --signer succeeded")
			}
			out := cli(t, append([]string{"user", "rotate-keys", rotated.String(), "--signer", w.supplier.keyFiles["ds"],
				"--ds", serial["ds"], "--ka", serial["ka"], "--wait", "30s", "--json"}, as...)...)
			var ch struct {
				State, Kind, DSKeyID, CommandID string
			}
			if err := json.Unmarshal([]byte(out), &ch); err != nil || ch.State != "applied" || ch.Kind != "supplierBySupplier" || ch.DSKeyID == "" {
				t.Fatalf("user rotate-keys --wait --json: %q (%v)", out, err)
			}
			// A second rotation to the same keys: the meter already holds
			// the new key, so the old one no longer signs for it.
			if _, err := cliErr(t, append([]string{"user", "rotate-keys", rotated.String(), "--signer", w.supplier.keyFiles["ds"],
				"--ds", serial["ds"], "--ka", serial["ka"]}, as...)...); err == nil || !strings.Contains(err.Error(), "signature") {
				t.Errorf("rotation signed with the replaced key: %v, want signature", err)
			}

			send := func(target string, key string) error {
				_, err := cliErr(t, append([]string{"user", "send", "7.2", target, "--signer", key}, as...)...)
				return err
			}
			if err := send(rotated.String(), serial["ds-key"]); err != nil {
				t.Errorf("disconnection signed with the new key on the rotated meter: %v", err)
			}
			if err := send(rotated.String(), w.supplier.keyFiles["ds"]); err == nil || !strings.Contains(err.Error(), "signature") ||
				!strings.Contains(err.Error(), ch.DSKeyID) {
				t.Errorf("disconnection signed with the old key on the rotated meter: %v, want signature naming %s", err, ch.DSKeyID)
			}
			if err := send(other.String(), w.supplier.keyFiles["ds"]); err != nil {
				t.Errorf("disconnection signed with the old key on the other meter: %v", err)
			}
			eventually(t, 20*time.Second, "the new key's disconnection executed", func() error {
				st, err := w.fleetStats()
				if err != nil {
					return err
				}
				if st.Executed < 3 { // the CS02b and two disconnections
					return os.ErrNotExist
				}
				return nil
			})
		})
	}
}
