package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands/dlms"
)

// TestDeviceAlerts sends a future-dated tariff (1.1.1, an ECS01a activating
// a few seconds on) through the binary as a supplier would; when it comes
// into force the meter ("serve fleet") raises its six outcome alerts
// (0x00CC), which the router ("serve router") collects from the fleet's
// endpoint, verifies and delivers; "user watch --json" shows them, the
// meter's signature checked and the outcome decoded. The router's audit log
// records each as received.
func TestDeviceAlerts(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 1)
			r := w.startRouter(t, "router", "")
			repoAddr := freeAddr(t)
			start(t, "repository", "serve", "repository", "--data", w.data, "--listen", repoAddr, "--log-level", "warn")
			dir := t.TempDir()
			rootPEM := filepath.Join(dir, "dccki-root.pem")
			rc, err := w.db.SMKI().CA(t.Context(), ca.NameDCCKIRoot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rootPEM, pemCert(rc.CertDER), 0o644); err != nil {
				t.Fatal(err)
			}
			as := []string{"--router", r.url, "--repository", "http://" + repoAddr, "--cert", w.supplier.tlsCert, "--key", w.supplier.tlsKey,
				"--cacert", rootPEM}
			at := time.Now().Add(4 * time.Second).Truncate(time.Second)
			params := filepath.Join(dir, "tariff.json")
			if err := os.WriteFile(params, fmt.Appendf(nil, `{"standingChargeMilliPence": 25000, "rates": [{"fromSlot": 0, "priceMilliPence": 24000}], "activation": %q}`,
				at.UTC().Format(time.RFC3339)), 0o644); err != nil {
				t.Fatal(err)
			}
			var out string
			eventually(t, 20*time.Second, "future-dated tariff answered", func() error {
				var err error
				out, err = cliErr(t, append([]string{"user", "send", "1.1.1", w.meters[0].String(), "--params", params,
					"--signer", w.supplier.keyFiles["ds"], "--wait", "15s", "--json"}, as...)...)
				return err
			})
			var resp struct {
				Kind      string `json:"kind"`
				CommandID string `json:"commandId"`
			}
			if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Kind != "response" {
				t.Fatalf("user send 1.1.1: %q (%v)", out, err)
			}

			watch := start(t, "watch", append([]string{"user", "watch", "--json"}, as...)...)
			type alert struct {
				Kind        string `json:"kind"`
				Verified    bool   `json:"verified"`
				From        string `json:"from"`
				MessageCode string `json:"messageCode"`
				Rerouted    bool   `json:"rerouted"`
				OpenError   string `json:"openError"`
				Alert       struct {
					AlertCode   int             `json:"alert-code"`
					MessageCode int             `json:"message-code"`
					Time        json.RawMessage `json:"time"`
				} `json:"alert"`
			}
			var alerts []alert
			eventually(t, 30*time.Second, "six verified future-dated outcome alerts watched", func() error {
				f, err := os.Open(watch.log)
				if err != nil {
					return err
				}
				defer f.Close()
				alerts = nil
				sc := bufio.NewScanner(f)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					var a alert
					if json.Unmarshal(sc.Bytes(), &a) == nil && a.Kind == "device-alert" {
						alerts = append(alerts, a)
					}
				}
				if len(alerts) < 6 {
					return errorf("%d device alerts watched", len(alerts))
				}
				return nil
			})
			dt, err := dlms.NewDateTime(at.UTC())
			if err != nil {
				t.Fatal(err)
			}
			wantTime, err := json.Marshal(dt)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range alerts {
				if !a.Verified || a.OpenError != "" || a.From != w.meters[0].String() || a.MessageCode != "0x00CC" || a.Rerouted ||
					a.Alert.AlertCode != 0x8F66 || a.Alert.MessageCode != 0x0019 || string(a.Alert.Time) != string(wantTime) {
					t.Errorf("alert %d: %+v", i, a)
				}
			}
			if len(alerts) != 6 {
				t.Errorf("%d device alerts watched, want 6", len(alerts))
			}
			es, err := w.db.AuditEvents(t.Context(), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			received := 0
			for _, e := range es {
				if e.Action == "router.alert.received" && e.Object == w.meters[0].String() {
					received++
				}
			}
			if received != 6 {
				t.Errorf("%d router.alert.received audit entries, want 6", received)
			}
		})
	}
}
