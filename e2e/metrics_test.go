package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/internal/promtest"
)

// dashboardFile is the Grafana dashboard the services' metrics feed.
var dashboardFile = filepath.Join("..", "deploy", "grafana", "metertrust.json")

// dashboardRows says which services export the metrics of each row of the
// dashboard: a row of one service queries only that service's
// metertrust_<service>_ names; the store's and the processes' rows query
// names every service of the set exports.
var dashboardRows = map[string][]string{
	"Router":     {"router"},
	"CA":         {"ca"},
	"Repository": {"repository"},
	"Operator":   {"operator"},
	"Fleet":      {"fleet"},
	"Store":      {"router", "operator", "ca", "repository"},
	"Processes":  {"router", "operator", "ca", "repository", "fleet"},
}

// TestMetrics starts every service from the binary, each with its metrics
// listener (serve router, operator, ca, repository and fleet), drives a
// little traffic through each (a command accepted and its replay refused
// through the router, the operator dashboard's login page, a revocation
// through the CA service, an OCSP request to the repository), scrapes
// every /metrics, checks the expected families are there and count what
// happened, and then checks that every metric the Grafana dashboard
// queries is exported by the service its row belongs to.
func TestMetrics(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 1)
			ctx := context.Background()
			dir := t.TempDir()
			var storeFlag []string
			if w.dsn != "" {
				storeFlag = []string{"--store", w.dsn}
			}

			// One operator with the roles of the operator API and of the
			// CA service's revocation.
			const token = "e2e-metrics-token-0123456789abcdef"
			sum := sha256.Sum256([]byte(token))
			ops, tokFile := filepath.Join(dir, "operators.json"), filepath.Join(dir, "token")
			if err := os.WriteFile(ops, fmt.Appendf(nil, `{"operators": [{"name": "mia", "token_sha256": %q, "roles": ["viewer", "revoke"]}]}`,
				hex.EncodeToString(sum[:])), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			opCert, opKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key")
			cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", w.acb.eui.String(), "--user-role", "OU",
				"--key-out", opKey, "--out", opCert)
			rootPEM := filepath.Join(dir, "dccki-root.pem")
			rc, err := w.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.CertDER}), 0o644); err != nil {
				t.Fatal(err)
			}

			metrics := map[string]string{"fleet": w.fleetMetrics}
			for _, s := range []string{"router", "operator", "ca", "repository"} {
				metrics[s] = freeAddr(t)
			}
			r := w.startRouter(t, "router", "", "--metrics-listen", metrics["router"])
			opAddr, caAddr, repoAddr := freeAddr(t), freeAddr(t), freeAddr(t)
			start(t, "operator", append([]string{"serve", "operator", "--data", w.data, "--listen", opAddr, "--tls-cert", w.srvCert,
				"--tls-key", w.srvKey, "--operators", ops, "--log-level", "warn", "--metrics-listen", metrics["operator"]}, storeFlag...)...)
			start(t, "ca", append([]string{"serve", "ca", "--data", w.data, "--listen", caAddr, "--tls-cert", w.srvCert,
				"--tls-key", w.srvKey, "--operators", ops, "--log-level", "warn", "--metrics-listen", metrics["ca"]}, storeFlag...)...)
			start(t, "repository", append([]string{"serve", "repository", "--data", w.data, "--listen", repoAddr,
				"--log-level", "warn", "--metrics-listen", metrics["repository"]}, storeFlag...)...)

			// The router: a command accepted, then its replay refused.
			msg := w.preCommand(t, r, w.supplier, "7.2", w.meters[0], uint64(time.Now().UnixMilli()))
			if st, _, pr, err := r.submit(w.supplier, msg); err != nil || st != http.StatusAccepted {
				t.Fatalf("command: %d %+v %v", st, pr, err)
			}
			if st, _, pr, err := r.submit(w.supplier, msg); err != nil || st < 400 {
				t.Fatalf("replayed command: %d %+v %v, want a refusal", st, pr, err)
			}
			w.awaitOutboxEmpty(t, 20*time.Second)

			// The operator dashboard's login page, over TLS.
			opClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: w.roots, MinVersion: tls.VersionTLS12}}}
			eventually(t, 20*time.Second, "operator login page", func() error {
				res, err := opClient.Get("https://" + opAddr + "/login")
				if err != nil {
					return err
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("GET /login: %s", res.Status)
				}
				return nil
			})

			// The CA service: revoke the network operator's DS certificate
			// (its "revoked" OCSP response and the CRL are signed at once).
			asOperator := []string{"--ca-url", "https://" + caAddr, "--cert", opCert, "--key", opKey, "--cacert", rootPEM, "--token-file", tokFile}
			eventually(t, 20*time.Second, "CA service answers", func() error {
				_, err := cliErr(t, append([]string{"ca", "request", "revoke", "--ca", ca.NameOCA, "--serial", w.netop.dsSerial,
					"--reason", "keyCompromise"}, asOperator...)...)
				return err
			})

			// The repository: OCSP for that certificate.
			oca, err := w.db.SMKI().CA(ctx, ca.NameOCA)
			if err != nil {
				t.Fatal(err)
			}
			issuer, err := x509.ParseCertificate(oca.CertDER)
			if err != nil {
				t.Fatal(err)
			}
			serial, ok := new(big.Int).SetString(w.netop.dsSerial, 16)
			if !ok {
				t.Fatalf("serial %q", w.netop.dsSerial)
			}
			req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, nil)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "OCSP answer", func() error {
				res, err := http.Post("http://"+repoAddr+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
				if err != nil {
					return err
				}
				defer res.Body.Close()
				var b bytes.Buffer
				b.ReadFrom(res.Body)
				resp, err := ocsp.ParseResponse(b.Bytes(), issuer)
				if err != nil {
					return err
				}
				if resp.Status != ocsp.Revoked {
					return fmt.Errorf("OCSP status %d, want revoked", resp.Status)
				}
				return nil
			})

			scraped := map[string]map[string]*dto.MetricFamily{}
			for svc, addr := range metrics {
				fams, err := promtest.Scrape("http://" + addr + "/metrics")
				if err != nil {
					t.Fatalf("%s: %v", svc, err)
				}
				scraped[svc] = fams
			}

			// Present everywhere: the Go runtime and process collectors.
			for svc, fams := range scraped {
				for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
					if fams[name] == nil {
						t.Errorf("%s exports no %s", svc, name)
					}
				}
			}
			// Present, and counting the traffic above (nonzero), or only
			// present (a gauge that may read zero).
			nonzero := map[string][]string{
				"router": {"metertrust_router_stage_total", "metertrust_router_stage_duration_seconds",
					"metertrust_router_group_commit_duration_seconds", "metertrust_router_group_commit_size", "metertrust_router_forward_total",
					"metertrust_store_operation_duration_seconds"},
				"operator": {"metertrust_operator_http_requests_total", "metertrust_operator_http_request_duration_seconds",
					"metertrust_store_operation_duration_seconds"},
				"ca": {"metertrust_ca_signing_duration_seconds", "metertrust_ca_ocsp_presigned_total", "metertrust_ca_http_requests_total",
					"metertrust_ca_refresh_runs_total", "metertrust_ca_refresh_last_success_timestamp_seconds", "metertrust_store_operation_duration_seconds"},
				"repository": {"metertrust_repository_http_requests_total", "metertrust_repository_ocsp_responses_total",
					"metertrust_store_operation_duration_seconds"},
				"fleet": {"metertrust_fleet_http_requests_total", "metertrust_fleet_meters"},
			}
			present := map[string][]string{
				"router": {"metertrust_router_queue_depth", "metertrust_router_outbox_depth", "metertrust_router_quarantine_size",
					"metertrust_router_alerts_total", "metertrust_store_transaction_errors_total", "metertrust_store_group_commit_duration_seconds"},
				"ca": {"metertrust_ca_issuance_total", "metertrust_ca_signing_errors_total", "metertrust_ca_refresh_signed_total"},
			}
			for svc, names := range nonzero {
				for _, name := range names {
					if f := scraped[svc][name]; f == nil {
						t.Errorf("%s exports no %s", svc, name)
					} else if promtest.Total(f) == 0 {
						t.Errorf("%s: %s is zero after traffic", svc, name)
					}
				}
			}
			for svc, names := range present {
				for _, name := range names {
					if scraped[svc][name] == nil {
						t.Errorf("%s exports no %s", svc, name)
					}
				}
			}
			// What happened, where it happened.
			wantSeries(t, scraped["router"], "metertrust_router_stage_total", map[string]string{"stage": "admit", "outcome": "ok"})
			wantSeries(t, scraped["router"], "metertrust_router_stage_total", map[string]string{"stage": "counter", "outcome": "replay"})
			wantSeries(t, scraped["router"], "metertrust_router_group_commit_duration_seconds", map[string]string{"group": "admit"})
			wantSeries(t, scraped["operator"], "metertrust_operator_http_requests_total", map[string]string{"route": "/login", "code": "200"})
			wantSeries(t, scraped["ca"], "metertrust_ca_ocsp_presigned_total", map[string]string{"status": "revoked"})
			wantSeries(t, scraped["ca"], "metertrust_ca_signing_duration_seconds", map[string]string{"what": "crl"})
			wantSeries(t, scraped["repository"], "metertrust_repository_ocsp_responses_total", map[string]string{"outcome": "answered"})
			wantSeries(t, scraped["fleet"], "metertrust_fleet_http_requests_total", map[string]string{"route": "/v1/devices/{eui}/commands", "code": "200"})

			checkDashboard(t, scraped)
		})
	}
}

// wantSeries fails unless family name in fams has a series with the
// labels want (and maybe others) whose value (or sample count) is not
// zero.
func wantSeries(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("no %s", name)
		return
	}
	var seen []string
series:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		seen = append(seen, fmt.Sprint(labels))
		for k, v := range want {
			if labels[k] != v {
				continue series
			}
		}
		if promtest.Total(&dto.MetricFamily{Metric: []*dto.Metric{m}}) > 0 {
			return
		}
	}
	t.Errorf("%s has no nonzero series with %v; it has %s", name, want, strings.Join(seen, " "))
}

// grafanaDashboard is what checkDashboard reads of a Grafana dashboard.
type grafanaDashboard struct {
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// checkDashboard checks every metric name the dashboard's queries use
// against what the services exported (scraped), by the row each panel sits
// in (dashboardRows).
func checkDashboard(t *testing.T, scraped map[string]map[string]*dto.MetricFamily) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	row, queries := "", 0
	rowsSeen := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			row = p.Title
			rowsSeen[row] = true
			if dashboardRows[row] == nil {
				t.Errorf("dashboard row %q belongs to no service: add it to dashboardRows", row)
			}
			continue
		}
		services := dashboardRows[row]
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names, err := promtest.MetricNames(q.Expr)
			if err != nil || len(names) == 0 {
				t.Errorf("panel %q: %q: names %q, %v", p.Title, q.Expr, names, err)
				continue
			}
			queries++
			for _, n := range names {
				if len(services) == 1 && !strings.HasPrefix(n, "metertrust_"+services[0]+"_") {
					t.Errorf("panel %q in row %s queries %s, not a metertrust_%s_ metric", p.Title, row, n, services[0])
				}
				for _, svc := range services {
					if _, ok := promtest.Family(n, scraped[svc]); !ok {
						t.Errorf("panel %q (row %s) queries %s, which %s does not export", p.Title, row, n, svc)
					}
				}
			}
		}
	}
	for r := range dashboardRows {
		if !rowsSeen[r] {
			t.Errorf("the dashboard has no row %q", r)
		}
	}
	if queries < 30 {
		t.Errorf("only %d queries checked", queries)
	}
}
