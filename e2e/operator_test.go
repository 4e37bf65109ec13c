package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/operator"
)

// TestOperatorProcessReleases runs "serve router" and "serve operator" as
// two processes on one store: a supplier's second disconnect of the hour
// trips a threshold and is quarantined; an operator releases it through the
// keyless operator process (202, forwarding pending); the router's release
// sweeper forwards it, the record shows the outcome, and the meter executes
// it exactly once.
func TestOperatorProcessReleases(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 2)
			ctx := context.Background()
			det, err := anomaly.New(ctx, anomaly.Config{Store: w.db.Anomaly()})
			if err != nil {
				t.Fatal(err)
			}
			admin := anomaly.Actor{ID: "e2e-operator", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
			if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2",
				Limit: 1, Window: time.Hour}); err != nil {
				t.Fatal(err)
			}

			// The operator credentials: one quarantine officer.
			const token = "e2e-officer-token-0123456789abcdef"
			sum := sha256.Sum256([]byte(token))
			ops := filepath.Join(t.TempDir(), "operators.json")
			if err := os.WriteFile(ops, fmt.Appendf(nil, `{"operators": [{"name": "olga", "token_sha256": %q, "roles": ["viewer", "quarantine-officer"]}]}`,
				hex.EncodeToString(sum[:])), 0o600); err != nil {
				t.Fatal(err)
			}

			r := w.startRouter(t, "router", "")
			opAddr := freeAddr(t)
			args := []string{"serve", "operator", "--data", w.data, "--listen", opAddr, "--tls-cert", w.srvCert, "--tls-key", w.srvKey,
				"--operators", ops, "--log-level", "info"}
			if w.dsn != "" {
				args = append(args, "--store", w.dsn)
			}
			op := start(t, "operator", args...)
			if keys, want := keysLoaded(t, op), []string{"operator-tls-server " + w.srvKey}; !slices.Equal(keys, want) {
				t.Errorf("operator process holds %q, want only %q", keys, want)
			}
			opClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: w.roots, MinVersion: tls.VersionTLS12}}}
			call := func(method, path, body string) (int, []byte, error) {
				req, err := http.NewRequest(method, "https://"+opAddr+path, strings.NewReader(body))
				if err != nil {
					return 0, nil, err
				}
				req.Header.Set("Authorization", "Bearer "+token)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				st, b, _, err := do(opClient, req)
				if st >= 300 {
					err = nil // the status tells
				}
				return st, b, err
			}
			eventually(t, 20*time.Second, "operator API up", func() error {
				if op.exited() {
					t.Fatalf("operator exited: %v", op.err)
				}
				_, _, err := call("GET", "/healthz", "")
				return err
			})

			// The first disconnect of the hour passes; the second, to the
			// other meter, is quarantined.
			base := uint64(time.Now().UnixMilli())
			first := w.preCommand(t, r, w.supplier, "7.2", w.meters[0], base)
			if st, _, pr, err := r.submit(w.supplier, first); err != nil || st != http.StatusAccepted {
				t.Fatalf("first disconnect: %d %+v %v", st, pr, err)
			}
			held := w.preCommand(t, r, w.supplier, "7.2", w.meters[1], base+1)
			if st, _, pr, err := r.submit(w.supplier, held); err != nil || st != http.StatusTooManyRequests || pr.Code != "quarantined" {
				t.Fatalf("second disconnect: %d %+v %v, want 429 quarantined", st, pr, err)
			}
			st, b, err := call("GET", "/v1/quarantine?state=quarantined", "")
			var list operator.QuarantineList
			if err != nil || st != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list.Items) != 1 {
				t.Fatalf("quarantine list = %d %s %v", st, b, err)
			}
			ref := list.Items[0].Ref

			// The keyless process records the release and answers 202.
			st, b, err = call("POST", "/v1/quarantine/"+ref+"/release", `{"reason":"supplier confirmed the disconnection"}`)
			var res operator.ReleaseResult
			if err != nil || st != http.StatusAccepted || json.Unmarshal(b, &res) != nil {
				t.Fatalf("release = %d %s %v, want 202", st, b, err)
			}
			if f := res.Quarantine.Forwarding; res.Quarantine.State != anomaly.StateReleased || f == nil || f.State != anomaly.ForwardPending {
				t.Errorf("release answer %s", b)
			}

			// The router's sweeper forwards it; the record says so.
			var view operator.QuarantineView
			eventually(t, 20*time.Second, "release forwarded", func() error {
				st, b, err := call("GET", "/v1/quarantine/"+ref, "")
				if err != nil || st != http.StatusOK {
					return fmt.Errorf("GET = %d %s %v", st, b, err)
				}
				if err := json.Unmarshal(b, &view); err != nil {
					return err
				}
				if f := view.Forwarding; f == nil || f.State != anomaly.ForwardForwarded {
					return fmt.Errorf("forwarding %s", b)
				}
				return nil
			})
			if f := view.Forwarding; f.Attempts != 1 || f.CommandID == "" || f.Error != "" {
				t.Errorf("forwarded record %+v", f)
			}
			w.awaitOutboxEmpty(t, 30*time.Second)
			// Some sweeps later, still executed once.
			time.Sleep(3 * time.Second)
			fs, err := w.fleetStats()
			if err != nil {
				t.Fatal(err)
			}
			for i, eui := range w.meters {
				if got := fs.Devices[eui.String()].Executed; got != 1 {
					t.Errorf("meter %d (%s) executed %d disconnects, want 1", i, eui, got)
				}
			}
			if rec, err := w.db.Anomaly().Quarantine(ctx, ref); err != nil || rec.Forwarding.Attempts != 1 {
				t.Errorf("record after more sweeps: %+v, %v", rec.Forwarding, err)
			}

			// The dashboard of the operator process counts the router's
			// decisions from the shared store: two accepted (the first
			// disconnect and the released one), one quarantined, and a
			// replay of the first refused at the counter stage.
			if st, _, pr, err := r.submit(w.supplier, first); err != nil || st != http.StatusConflict || pr.Code != "replay" {
				t.Fatalf("replay: %d %+v %v, want 409 replay", st, pr, err)
			}
			eventually(t, 30*time.Second, "command rates rolled up", func() error {
				rs, err := w.db.Operator().CommandRates(ctx, time.Now().Add(-time.Hour))
				if err != nil {
					return err
				}
				got := map[string]int64{}
				for _, x := range rs {
					got[x.Outcome+"/"+x.Stage+"/"+x.Reason] += x.Count
				}
				if want := map[string]int64{"accepted/admit/": 2, "quarantined/admit/quarantined": 1, "refused/counter/replay": 1}; !maps.Equal(got, want) {
					return fmt.Errorf("command rates %v, want %v", got, want)
				}
				return nil
			})
		})
	}
}
