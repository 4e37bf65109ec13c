package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/internal/promtest"
)

// TestDemoCommand runs "metertrust demo" on a small batch: --json prints
// only the summary, whose numbers follow from the flags; without --json
// the story's numbered steps come before the summary table.
func TestDemoCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
	}{{"json", true}, {"story", false}} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := []string{"demo", "--meters", "5", "--attack", "40", "--threshold", "13", "--data", data}
			if tc.json {
				args = append(args, "--json")
			}
			out := mustRun(t, args...)
			if show := mustRun(t, "ca", "batch", "show", "BATCH1", "--data", data, "--json"); !strings.Contains(show, `"destroyed"`) {
				t.Errorf("ca batch show after the demo:\n%s", show)
			}
			if !tc.json {
				if !regexp.MustCompile(`(?m)^ 1\. `).MatchString(out) || !strings.Contains(out, "\nSummary\n") ||
					!regexp.MustCompile(`(?m)^attack: quarantined +30$`).MatchString(out) {
					t.Errorf("story output:\n%s", out)
				}
				return
			}
			var s demoSummary
			d := json.NewDecoder(strings.NewReader(out))
			d.DisallowUnknownFields()
			if err := d.Decode(&s); err != nil || d.More() {
				t.Fatalf("--json output is not the summary alone: %v\n%s", err, out)
			}
			// 13 allowed, 3 used by the supplier before: 10 of the 40 pass.
			if s.Attack.Accepted != 10 || s.Attack.Quarantined != 30 || s.QuarantineDeleted != 30 ||
				s.Accepted != 20+10 || s.Executed != 31 || s.History.Requests != 3 || !s.History.RouterCannotRead || !s.Stolen.OpenedOwn || !s.Stolen.RefusedOther || s.Meters != 5 || s.BatchKey != "destroyed" || !s.AuditChainIntact ||
				s.Switch.Outcome != "applied" || !s.Switch.RefusedByRouter || !s.Switch.RefusedByMeter ||
				s.Rotate.Outcome != "applied" || !s.Rotate.NewKeyExecuted || !s.Rotate.OldKeyRefused {
				t.Errorf("summary %+v", s)
			}
			// not-owner twice: the network operator's disconnection, and the
			// old supplier's after the change of supplier; signature twice:
			// the revoked key's, and the key replaced by the rotation;
			// consent-period once: the third party's read one half hour
			// before its 13 months.
			for code, n := range map[string]int{"replay": 1, "role-not-eligible": 1, "signature": 2, "not-owner": 2, "consent-period": 1} {
				if s.Refused[code] != n {
					t.Errorf("refused %q %d times, want %d", code, s.Refused[code], n)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeAll starts "metertrust serve all" on a new data directory,
// follows the guide it prints (the router URL, the supplier's client
// certificate and key files, the DCCKI root, the operator token file) to
// call the router and the operator API as curl would, stops it by
// cancelling its context, and starts it again on the same directory,
// which it reuses.
func TestServeAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, round := range []string{"created", "reusing"} {
		t.Run(round, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newServeAllCmd()
			out := &syncBuffer{}
			c.SetOut(out)
			c.SetErr(io.Discard)
			c.SetArgs([]string{"--data", dir, "--meters", "3", "--router", "127.0.0.1:0", "--operator", "127.0.0.1:0",
				"--repository", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "error"})
			done := make(chan error, 1)
			go func() { done <- c.ExecuteContext(ctx) }()
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out.String(), "Serving") {
				select {
				case err := <-done:
					t.Fatalf("serve all returned early: %v\n%s", err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("serve all not ready after 60s:\n%s", out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			guide := out.String()
			if !strings.Contains(guide, "metertrust: "+round) {
				t.Errorf("first line does not say %q:\n%s", round, guide)
			}
			field := func(re string) []string {
				t.Helper()
				m := regexp.MustCompile(re).FindStringSubmatch(guide)
				if m == nil {
					t.Fatalf("the guide has no %s:\n%s", re, guide)
				}
				return m
			}
			routerURL := field(`router \(mutual TLS\) +(https://\S+)`)[1]
			operatorURL := field(`operator API +(http://\S+)`)[1]
			caFile := field(`DCCKI root \(--cacert\) +(\S+)`)[1]
			sup := field(`supplier \S+ \(IS\) +--cert (\S+) --key (\S+)`)
			tokenFile := field(`operator \S+ token file +(\S+)`)[1]
			meter := field(`"target":"([0-9A-F]{16})"`)[1]

			// curl --cacert CA --cert CERT --key KEY -d '{...}' ROUTER/v1/service-requests
			kp, err := tls.LoadX509KeyPair(sup[1], sup[2])
			if err != nil {
				t.Fatal(err)
			}
			pemCA, err := os.ReadFile(caFile)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pemCA) {
				t.Fatalf("%s holds no certificate", caFile)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}}}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			res, err := client.Post(routerURL+"/v1/service-requests", "application/json",
				strings.NewReader(`{"serviceReference":"4.1.1","target":"`+meter+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"message"`) {
				t.Errorf("service request: %s %s", res.Status, body)
			}
			// Without a client certificate the router refuses the connection.
			anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
			if res, err := anon.Get(routerURL + "/v1/responses"); err == nil {
				res.Body.Close()
				if res.StatusCode < 400 {
					t.Errorf("anonymous caller answered %s", res.Status)
				}
			}

			// curl -H "Authorization: Bearer $(cat TOKEN)" OPERATOR/v1/quarantine
			tok, err := os.ReadFile(tokenFile)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", operatorURL+"/v1/quarantine", nil)
			req.Header.Set("Authorization", "Bearer "+string(tok))
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("operator API with the token: %s", res.Status)
			}
			if strings.Contains(guide, string(tok)) {
				t.Error("the guide prints the operator token itself")
			}

			// One metrics listener for the whole process: the router's, the
			// store's and the operator API's metrics in one registry.
			metricsURL := field(`Metrics: (http://\S+/metrics)`)[1]
			fams, err := promtest.Scrape(metricsURL)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"metertrust_store_operation_duration_seconds", "metertrust_operator_http_requests_total", "go_goroutines"} {
				if promtest.Total(fams[name]) == 0 {
					t.Errorf("serve all's metrics: %s missing or zero", name)
				}
			}
			for _, name := range []string{"metertrust_router_stage_total", "metertrust_ca_issuance_total", "metertrust_repository_ocsp_responses_total"} {
				if fams[name] == nil {
					t.Errorf("serve all's metrics lack %s", name)
				}
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve all after cancel: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve all did not stop within 30s of its context's cancellation")
			}
			// The other commands find the store and keys in the same
			// directory.
			if out, err := run(t, "ca", "batch", "show", "BATCH1", "--data", dir, "--json"); err != nil || !strings.Contains(out, `"present"`) {
				t.Errorf("ca batch show on the serve all directory: %v\n%s", err, out)
			}
			if out, err := run(t, "audit", "verify", "--data", dir); err != nil {
				t.Errorf("audit verify on the serve all directory: %v\n%s", err, out)
			}
		})
	}
}

func TestServeAllNeedsData(t *testing.T) {
	c := newServeAllCmd()
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	c.SetArgs(nil)
	if err := c.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Errorf("serve all without --data: %v", err)
	}
}
