package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/apiserver/apiservertest"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// apiEnv is the router API over httptest's TLS server, with DCCKI
// certificates issued by package ca on the same store.
type apiEnv struct {
	*storeEnv
	auth    *ca.Authority
	api     *Server
	srv     *httptest.Server
	roots   *x509.CertPool
	chain   []byte // the DCCKI TLS issuing CA certificate
	clients map[string]*http.Client
	certs   map[string]ca.TLSIssued
	reg     *prometheus.Registry
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := context.Background()
	e := &apiEnv{storeEnv: newStoreEnv(t, nil), clients: map[string]*http.Client{}, certs: map[string]ca.TLSIssued{}}
	dir := t.TempDir()
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	// The CA runs on the real clock: crypto/tls checks certificate validity
	// against it.
	e.auth, err = ca.New(ca.Config{Store: e.db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	root, err := e.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := x509.ParseCertificate(root.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = x509.NewCertPool()
	e.roots.AddCert(rc)
	issuing, err := e.db.SMKI().CA(ctx, ca.NameDCCKITLS)
	if err != nil {
		t.Fatal(err)
	}
	e.chain = issuing.CertDER
	server, err := e.auth.IssueTLSServer(ctx, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srvCert := e.keyPair(t, server)

	e.reg = prometheus.NewRegistry()
	m, err := NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	e.router.cfg.Metrics = m
	rev := NewStoreRevocations(e.db.SMKI(), ca.NameDCCKITLS, time.Nanosecond, nil)
	s, err := NewServer(ServerConfig{Router: e.router, Commands: e.st, Hub: e.hub, Identify: ca.TLSUser, Revocations: rev,
		Consents: NewConsentDesk(e.router, e.db.Router(), nil), Thresholds: e.anomaly, Gatherer: e.reg, Poll: 50 * time.Millisecond, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.api = s
	e.srv = httptest.NewUnstartedServer(s.Handler())
	e.srv.TLS = TLSConfig(e.roots, srvCert, rev)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)

	for name, p := range map[string]party{"supplier": e.supplier, "stranger": e.stranger, "other": e.other, "revoked": e.gasSupplier} {
		iss, err := e.auth.IssueTLSClient(ctx, p.eui, p.role)
		if err != nil {
			t.Fatal(err)
		}
		e.certs[name] = iss
		e.clients[name] = e.client(t, []tls.Certificate{e.keyPair(t, iss)})
	}
	e.clients["none"] = e.client(t, nil)
	e.clients["foreign"] = e.client(t, []tls.Certificate{selfSigned(t, e.supplier.eui)})
	if _, err := e.auth.Revoke(ctx, ca.NameDCCKITLS, e.certs["revoked"].Record.Serial, 1); err != nil {
		t.Fatal(err)
	}
	return e
}

// keyPair is an issued certificate with its key and the issuing CA's
// certificate, to complete the chain to the DCCKI root.
func (e *apiEnv) keyPair(t *testing.T, iss ca.TLSIssued) tls.Certificate {
	t.Helper()
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Record.DER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.chain})...)
	kp, err := tls.X509KeyPair(chain, iss.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// selfSigned makes a client certificate of the right shape from another CA.
func selfSigned(t *testing.T, eui smki.EUI) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: eui.String(), OrganizationalUnit: []string{"IS"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*neturl.URL{ca.TLSUserURI(eui, smki.UserImportSupplier)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func (e *apiEnv) client(t *testing.T, certs []tls.Certificate) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: certs, ServerName: "localhost"}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type apiResult struct {
	status  int
	header  http.Header
	body    []byte
	problem Problem
}

func (e *apiEnv) do(t *testing.T, who, method, path, ctype string, body []byte) (apiResult, error) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := e.clients[who].Do(req)
	if err != nil {
		return apiResult{}, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := apiResult{status: res.StatusCode, header: res.Header, body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(b, &r.problem); err != nil {
			t.Fatalf("problem body %q: %v", b, err)
		}
	}
	return r, nil
}

// auditSeq returns the sequence number of the last audit entry.
func (e *apiEnv) auditSeq(t *testing.T) int64 {
	t.Helper()
	var seq int64
	for {
		es, err := e.db.AuditEvents(context.Background(), seq, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return seq
		}
		seq = es[len(es)-1].Seq
	}
}

// wantRefusalAudited checks that exactly one refusal was audited after
// seq: action (without the "router." prefix), the kind's code, and the
// caller p as actor (the zero party for none).
func (e *apiEnv) wantRefusalAudited(t *testing.T, seq int64, p party, action, code string) store.AuditEvent {
	t.Helper()
	es, err := e.db.AuditEvents(context.Background(), seq, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	var refused []store.AuditEvent
	for _, a := range es {
		if a.Outcome == store.OutcomeRefused {
			refused = append(refused, a)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("%d refusals audited, want 1: %+v", len(refused), refused)
	}
	a := refused[0]
	actor := "router"
	if !p.eui.IsZero() {
		actor = p.caller().String()
	}
	if a.Action != "router."+action || a.Details["kind"] != code || a.Actor != actor || a.Details["detail"] == "" {
		t.Fatalf("audit entry %+v, want action router.%s, kind %s, actor %s and a detail", a, action, code, actor)
	}
	return a
}

func TestAPIRefusesBadClients(t *testing.T) {
	e := newAPIEnv(t)
	msg := command(t, e.supplier, e.device, codeDisable, 1, true)
	for _, who := range []string{"none", "foreign", "revoked"} {
		t.Run(who, func(t *testing.T) {
			if r, err := e.do(t, who, "POST", "/v1/commands", "application/octet-stream", msg); err == nil {
				t.Fatalf("request accepted with status %d", r.status)
			}
		})
	}
	if n, _ := e.st.Depth(context.Background()); n != 0 {
		t.Fatalf("%d commands stored", n)
	}
}

func TestAPICommands(t *testing.T) {
	e := newAPIEnv(t)
	signed := command(t, e.supplier, e.device, codeDisable, 10, true)
	tests := []struct {
		name       string
		who        string
		ctype      string
		body       []byte
		wantStatus int
		wantCode   string
	}{
		{"signed command as bytes", "supplier", "application/octet-stream", signed, http.StatusAccepted, ""},
		{"replay", "supplier", "application/octet-stream", signed, http.StatusConflict, "replay"},
		{"command as hex", "supplier", "text/plain; charset=utf-8", []byte(hex.EncodeToString(command(t, e.supplier, e.device, codeRead, 11, false)) + "\n"), http.StatusAccepted, ""},
		{"bad hex", "supplier", "text/plain", []byte("DF0Z"), http.StatusBadRequest, "malformed"},
		{"truncated", "supplier", "application/octet-stream", signed[:20], http.StatusBadRequest, "malformed"},
		{"oversized body", "supplier", "application/octet-stream", make([]byte, 3*DefaultMaxMessageBytes), http.StatusRequestEntityTooLarge, "too-large"},
		{"body one byte over a command's limit", "supplier", "application/octet-stream", make([]byte, DefaultMaxMessageBytes+1), http.StatusRequestEntityTooLarge, "too-large"},
		{"oversized hex", "supplier", "text/plain", bytes.Repeat([]byte("DF"), 2*DefaultMaxMessageBytes), http.StatusRequestEntityTooLarge, "too-large"},
		{"wrong content type", "supplier", "application/json", []byte(`{}`), http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"no content type", "supplier", "", signed, http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"malformed content type", "supplier", "text/", signed, http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"counter 2^64-1 to a pair with a last counter", "supplier", "application/octet-stream", command(t, e.supplier, e.device, codeDisable, 1<<64-1, true), http.StatusConflict, "counter-ahead"},
		{"counter two days ahead of the clock, far above the last", "supplier", "application/octet-stream", command(t, e.supplier, e.device, codeRead, uint64(e.now().UnixMilli())+2*86_400_000, false), http.StatusConflict, "counter-ahead"},
		{"someone else's command", "stranger", "application/octet-stream", command(t, e.supplier, e.device, codeDisable, 12, true), http.StatusForbidden, "originator-mismatch"},
		{"not the owner", "stranger", "application/octet-stream", command(t, e.stranger, e.device, codeDisable, 12, true), http.StatusForbidden, "not-owner"},
		{"pre-command", "supplier", "application/octet-stream", command(t, e.supplier, e.device, codeDisable, 13, false), http.StatusForbidden, "signature"},
		{"unknown device", "supplier", "application/octet-stream", command(t, e.supplier, smki.MustParseEUI("0102030405060708"), codeDisable, 13, true), http.StatusNotFound, "unknown-device"},
	}
	stages := map[string]string{"replay": StageCounter, "truncated": StageParse,
		"counter 2^64-1 to a pair with a last counter": StageCounter, "counter two days ahead of the clock, far above the last": StageCounter,
		"someone else's command": StageOriginator, "not the owner": StageOwnership, "pre-command": StageSignature, "unknown device": StageOwnership}
	var firstID string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.auditSeq(t)
			r, err := e.do(t, tt.who, "POST", "/v1/commands", tt.ctype, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tt.wantStatus || r.problem.Code != tt.wantCode {
				t.Fatalf("status %d code %q (%s), want %d %q", r.status, r.problem.Code, r.body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode != "" {
				// Every refusal is audited once: by the pipeline, or by the
				// API for what never reached it.
				a := e.wantRefusalAudited(t, seq, map[string]party{"supplier": e.supplier, "stranger": e.stranger}[tt.who], "command.refused", tt.wantCode)
				// The pipeline's refusals name the stage that refused (the
				// dashboard's rates by stage); the API layer's name none.
				if want := stages[tt.name]; a.Details["stage"] != want && (want != "" || a.Details["stage"] != nil) {
					t.Errorf("refusal audited at stage %v, want %q", a.Details["stage"], want)
				}
			}
			if tt.wantCode != "" && (r.problem.Type != kindByCode(t, tt.wantCode).Type().URI() || r.problem.Status != tt.wantStatus ||
				r.problem.Title == "" || r.problem.Instance != "/v1/commands") {
				t.Fatalf("problem %+v", r.problem)
			}
			if tt.wantStatus == http.StatusAccepted {
				var rc Receipt
				if err := json.Unmarshal(r.body, &rc); err != nil || rc.Status != "accepted" || r.header.Get("Location") != "/v1/commands/"+rc.ID {
					t.Fatalf("receipt %s, %v, Location %q", r.body, err, r.header.Get("Location"))
				}
				if firstID == "" {
					firstID = rc.ID
				}
			}
		})
	}

	// The forwarder delivers; the response reaches its caller only.
	e.tr.answers = append(e.tr.answers, respondAs(t, e.devDS, nil), respondAs(t, e.devDS, nil)) // sent concurrently: either order
	// One drain per command: a pair's commands leave in counter order, one
	// at a time.
	for i := range 2 {
		if n, err := e.fwd.Drain(context.Background()); n != 1 || err != nil {
			t.Fatalf("drain %d: %d, %v", i, n, err)
		}
	}
	t.Run("own command", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/v1/commands/"+firstID, "", nil)
		var v struct {
			State    string `json:"state"`
			Response string `json:"response"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v.State != "responded" || v.Response == "" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("own command by target and counter", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/v1/commands?target=AAAAAAAAAAAAAAAA&counter=10", "", nil)
		var v struct {
			ID string `json:"id"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v.ID != firstID {
			t.Fatalf("%d %s", r.status, r.body)
		}
		for _, q := range []string{"target=AAAAAAAAAAAAAAAA&counter=12", "target=AAAA&counter=10", "target=AAAAAAAAAAAAAAAA&counter=-1"} {
			r, _ := e.do(t, "supplier", "GET", "/v1/commands?"+q, "", nil)
			if r.status != 404 && r.status != 400 {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
		}
		r, _ = e.do(t, "stranger", "GET", "/v1/commands?target=AAAAAAAAAAAAAAAA&counter=10", "", nil)
		if r.status != 404 {
			t.Fatalf("stranger: %d %s", r.status, r.body)
		}
	})
	t.Run("another caller's command is not found", func(t *testing.T) {
		r, _ := e.do(t, "stranger", "GET", "/v1/commands/"+firstID, "", nil)
		if r.status != 404 || r.problem.Code != "not-found" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("poll responses", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/v1/responses?after=0", "", nil)
		var v struct {
			Deliveries []deliveryView `json:"deliveries"`
			Next       int64          `json:"next"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &v) != nil || len(v.Deliveries) != 2 || v.Next != 2 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r, _ = e.do(t, "supplier", "GET", "/v1/responses?after=2", "", nil)
		if json.Unmarshal(r.body, &v) != nil || len(v.Deliveries) != 0 || v.Next != 2 {
			t.Fatalf("after cursor: %s", r.body)
		}
		r, _ = e.do(t, "stranger", "GET", "/v1/responses", "", nil)
		if json.Unmarshal(r.body, &v) != nil || len(v.Deliveries) != 0 {
			t.Fatalf("stranger sees %s", r.body)
		}
		r, _ = e.do(t, "supplier", "GET", "/v1/responses?after=-1", "", nil)
		if r.status != 400 || r.problem.Code != "bad-request" {
			t.Fatalf("bad cursor: %d %s", r.status, r.body)
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		seq := e.auditSeq(t)
		r, _ := e.do(t, "supplier", "GET", "/v1/nothing", "", nil)
		if r.status != 404 || r.problem.Code != "not-found" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		e.wantRefusalAudited(t, seq, e.supplier, "api.refused", "not-found")
	})
	t.Run("metrics", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/metrics", "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), `metertrust_router_stage_total{outcome="replay",stage="counter"} 1`) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/healthz", "", nil)
		if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("openapi", func(t *testing.T) {
		r, _ := e.do(t, "supplier", "GET", "/openapi.json", "", nil)
		var doc map[string]any
		if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
}

func TestAPIRevocationOnOpenConnection(t *testing.T) {
	e := newAPIEnv(t)
	if r, err := e.do(t, "stranger", "GET", "/v1/responses", "", nil); err != nil || r.status != 200 {
		t.Fatalf("before revocation: %v %d", err, r.status)
	}
	if _, err := e.auth.Revoke(context.Background(), ca.NameDCCKITLS, e.certs["stranger"].Record.Serial, 1); err != nil {
		t.Fatal(err)
	}
	r, err := e.do(t, "stranger", "GET", "/v1/responses", "", nil)
	if err != nil {
		t.Fatalf("kept-alive connection: %v", err)
	}
	if r.status != http.StatusUnauthorized || r.problem.Code != "unauthenticated" {
		t.Fatalf("after revocation: %d %s", r.status, r.body)
	}
}

func TestAPIServiceRequests(t *testing.T) {
	e := newAPIEnv(t)
	ms := uint64(e.now().UnixMilli()) // the counter the router picks first
	tests := []struct {
		name       string
		who        string
		body       string
		wantStatus int
		wantCode   string
		critical   bool
	}{
		{"disable supply", "supplier", `{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA"}`, 200, "", true},
		{"counter given, 2^32+1 above the last", "supplier", fmt.Sprintf(`{"serviceReference":"4.1.1","target":"AAAAAAAAAAAAAAAA","counter":%d}`, ms+1<<32+1), 409, "counter-ahead", false},
		{"counter given, not above the last", "supplier", `{"serviceReference":"4.1.1","target":"AAAAAAAAAAAAAAAA","counter":5}`, 409, "replay", false},
		{"counter given, 2^32 above the last", "supplier", fmt.Sprintf(`{"serviceReference":"4.1.1","target":"AAAAAAAAAAAAAAAA","counter":%d}`, ms+1<<32), 200, "", false},
		{"register read", "supplier", `{"serviceReference":"4.1.1","target":"AAAAAAAAAAAAAAAA"}`, 200, "", false},
		{"counter 2^64-1 given for a first command", "supplier", `{"serviceReference":"4.1.1","target":"CCCCCCCCCCCCCCCC","counter":18446744073709551615}`, 409, "counter-ahead", false},
		{"counter a day and a second ahead of the clock for a first command", "supplier", fmt.Sprintf(`{"serviceReference":"4.1.1","target":"CCCCCCCCCCCCCCCC","counter":%d}`, ms+86_401_000), 409, "counter-ahead", false},
		{"profile read by other user without a key-agreement certificate", "other", `{"serviceReference":"4.8.1","target":"AAAAAAAAAAAAAAAA","parameters":{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z"}}`, 403, "certificate-path", false},
		{"supply status by other user: not eligible", "other", `{"serviceReference":"7.4","target":"AAAAAAAAAAAAAAAA"}`, 403, "role-not-eligible", false},
		{"tariff", "supplier", `{"serviceReference":"1.1.1","target":"AAAAAAAAAAAAAAAA","parameters":{"standingChargeMilliPence":50000,"rates":[{"fromSlot":0,"priceMilliPence":24500}]}}`, 200, "", true},
		{"tariff with a bad rate", "supplier", `{"serviceReference":"1.1.1","target":"AAAAAAAAAAAAAAAA","parameters":{"rates":[{"fromSlot":3,"priceMilliPence":1}]}}`, 400, "bad-request", false},
		{"unknown parameter", "supplier", `{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA","parameters":{"now":true}}`, 400, "bad-request", false},
		{"unknown field", "supplier", `{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA","colour":"red"}`, 400, "bad-request", false},
		{"bad target", "supplier", `{"serviceReference":"7.2","target":"AAAA"}`, 400, "bad-request", false},
		{"unsupported", "supplier", `{"serviceReference":"11.1","target":"AAAAAAAAAAAAAAAA"}`, 400, "bad-request", false},
		{"not eligible", "other", `{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA"}`, 403, "role-not-eligible", false},
		{"no gas enable", "supplier", `{"serviceReference":"7.1","target":"AAAAAAAAAAAAAAAA","fuel":"gas"}`, 400, "bad-request", false},
	}
	parties := map[string]party{"supplier": e.supplier, "other": e.other}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.auditSeq(t)
			r, err := e.do(t, tt.who, "POST", "/v1/service-requests", "application/json", []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tt.wantStatus || r.problem.Code != tt.wantCode {
				t.Fatalf("status %d code %q (%s), want %d %q", r.status, r.problem.Code, r.body, tt.wantStatus, tt.wantCode)
			}
			if r.status != 200 {
				a := e.wantRefusalAudited(t, seq, parties[tt.who], "service-request.refused", tt.wantCode)
				var in struct {
					Target string `json:"target"`
				}
				json.Unmarshal([]byte(tt.body), &in)
				if tt.wantCode != "bad-request" && a.Details["target"] != in.Target {
					t.Errorf("audit entry %+v does not name the target %s", a, in.Target)
				}
				return
			}
			var pc PreCommand
			if err := json.Unmarshal(r.body, &pc); err != nil || pc.Critical != tt.critical {
				t.Fatalf("pre-command %s: %v", r.body, err)
			}
			raw, _ := hex.DecodeString(pc.Message)
			m, err := commands.Parse(raw)
			if err != nil {
				t.Fatalf("pre-command does not parse: %v", err)
			}
			if tt.critical && !m.IsPreCommand() {
				t.Fatal("critical request did not give a pre-command")
			}
			// The second step: sign (when critical) and submit.
			p := parties[tt.who]
			msg := marshal(t, m, p.ds, tt.critical)
			r, err = e.do(t, tt.who, "POST", "/v1/commands", "application/octet-stream", msg)
			if err != nil || r.status != http.StatusAccepted {
				t.Fatalf("submitting the signed pre-command: %v %d %s", err, r.status, r.body)
			}
		})
	}
	// Refused before the body is read as JSON: audited all the same.
	for _, tt := range []struct {
		name, ctype string
		body        []byte
		status      int
		code        string
	}{
		{"wrong content type", "text/plain", []byte(`{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA"}`), http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"no content type", "", []byte(`{"serviceReference":"7.2","target":"AAAAAAAAAAAAAAAA"}`), http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"oversized", "application/json", []byte(`{"serviceReference":"` + strings.Repeat("7", 200<<10) + `"}`), http.StatusRequestEntityTooLarge, "too-large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.auditSeq(t)
			r, err := e.do(t, "supplier", "POST", "/v1/service-requests", tt.ctype, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tt.status || r.problem.Code != tt.code {
				t.Fatalf("%d %s", r.status, r.body)
			}
			e.wantRefusalAudited(t, seq, e.supplier, "service-request.refused", tt.code)
		})
	}
}

// TestAPIEvents reads a response from the server-sent event stream.
func TestAPIEvents(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
	res, err := e.clients["supplier"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	rc := e.submit(t, 5, codeDisable, true)
	e.tr.answers = append(e.tr.answers, respondAs(t, e.devDS, nil))
	if _, err := e.fwd.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(res.Body)
	var lines []string
	for sc.Scan() {
		if sc.Text() == "" && len(lines) > 0 {
			break
		}
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) != 3 || lines[0] != "id: 1" || lines[1] != "event: response" || !strings.Contains(lines[2], rc.ID) {
		t.Fatalf("event %q", lines)
	}
}

// TestOpenAPIDocument checks that the served document is the one in docs/,
// and that it describes every route, every error code and every problem
// type.
func TestOpenAPIDocument(t *testing.T) {
	docs, err := os.ReadFile("../docs/api/router.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(docs) != string(OpenAPI) {
		t.Fatal("docs/api/router.json differs from router/openapi.json: copy one to the other")
	}
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
						Type struct {
							Enum []string `json:"enum"`
						} `json:"type"`
					} `json:"properties"`
				} `json:"Problem"`
				ServiceRequest struct {
					Properties struct {
						Ref struct {
							Enum []string `json:"enum"`
						} `json:"serviceReference"`
					} `json:"properties"`
				} `json:"ServiceRequest"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	det, err := anomaly.New(context.Background(), anomaly.Config{Store: &anomalytest.Store{}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Router: &Router{cfg: Config{MaxMessageBytes: 1}}, Commands: &Storage{}, Hub: NewHub(),
		Quarantine: det, Thresholds: det, Consents: &ConsentDesk{}, Changes: &ChangeDesk{}, Identify: ca.TLSUser, Revocations: NewStoreRevocations(nil, "", 0, nil), Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		path := strings.ReplaceAll(strings.ReplaceAll(r.Path, ":id", "{id}"), ":ref", "{ref}")
		if _, ok := doc.Paths[path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, path)
		}
	}
	for _, k := range Kinds() {
		if !slices.Contains(doc.Components.Schemas.Problem.Properties.Code.Enum, k.Code()) {
			t.Errorf("error code %s is not in the OpenAPI document", k.Code())
		}
		if !slices.Contains(doc.Components.Schemas.Problem.Properties.Type.Enum, k.Type().URI()) {
			t.Errorf("problem type %s of code %s is not in the OpenAPI document", k.Type().URI(), k.Code())
		}
	}
	if got := doc.Components.Schemas.ServiceRequest.Properties.Ref.Enum; !slices.Equal(got, SupportedServiceRequests()) {
		t.Errorf("documented service requests %v, supported %v", got, SupportedServiceRequests())
	}
	// Exactly the routes served, every $ref resolved, and the limits'
	// refusals documented on every operation.
	apiservertest.CheckOpenAPI(t, "../docs/api/router.json", apiserver.Routes(s.e), "414", "431")
	apiservertest.CheckProblemTypes(t, "../docs/api/router.json", Kinds())
}

// kindByCode returns the router's kind of error code code.
func kindByCode(t *testing.T, code string) *Kind {
	t.Helper()
	for _, k := range Kinds() {
		if k.Code() == code {
			return k
		}
	}
	t.Fatalf("no kind of code %q", code)
	return nil
}

// TestAPIProblemBodies checks that refusals are problem+json bodies of the
// problem types every service shares, with the router's error code as the
// "code" extension member, and that each is audited once with that code.
func TestAPIProblemBodies(t *testing.T) {
	e := newAPIEnv(t)
	signed := command(t, e.supplier, e.device, codeDisable, 10, true)
	if r, err := e.do(t, "supplier", "POST", "/v1/commands", "application/octet-stream", signed); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("first submission: %v %d %s", err, r.status, r.body)
	}
	for _, tt := range []struct {
		name, method, path, ctype string
		body                      []byte
		action                    string
		want                      map[string]any
	}{
		{"replay", "POST", "/v1/commands", "application/octet-stream", signed, "command.refused", map[string]any{
			"type": "https://metertrust.org/problems/conflict", "title": "Conflict", "status": 409.0, "code": "replay", "instance": "/v1/commands"}},
		{"pre-command", "POST", "/v1/commands", "application/octet-stream", command(t, e.supplier, e.device, codeDisable, 13, false), "command.refused", map[string]any{
			"type": "https://metertrust.org/problems/forbidden", "title": "Not allowed", "status": 403.0, "code": "signature", "instance": "/v1/commands"}},
		{"not hex", "POST", "/v1/commands", "text/plain", []byte("zz"), "command.refused", map[string]any{
			"type": "https://metertrust.org/problems/bad-request", "title": "Bad request", "status": 400.0, "code": "malformed", "instance": "/v1/commands"}},
		{"wrong method", "DELETE", "/v1/responses", "", nil, "api.refused", map[string]any{
			"type": "https://metertrust.org/problems/method-not-allowed", "title": "Method not allowed", "status": 405.0, "code": "method-not-allowed", "instance": "/v1/responses"}},
		{"unknown command", "GET", "/v1/commands/nosuch", "", nil, "api.refused", map[string]any{
			"type": "https://metertrust.org/problems/not-found", "title": "Not found", "status": 404.0, "code": "not-found", "instance": "/v1/commands/nosuch"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.auditSeq(t)
			r, err := e.do(t, "supplier", tt.method, tt.path, tt.ctype, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if ct := r.header.Get("Content-Type"); ct != problem.MediaType || r.status != int(tt.want["status"].(float64)) {
				t.Fatalf("%d %q, want %v as %s", r.status, ct, tt.want["status"], problem.MediaType)
			}
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (%s)", k, got[k], v, r.body)
				}
			}
			if d, _ := got["detail"].(string); d == "" {
				t.Errorf("no detail: %s", r.body)
			}
			if r.header.Get("WWW-Authenticate") != "" {
				t.Errorf("WWW-Authenticate %q from a TLS-authenticated API", r.header.Get("WWW-Authenticate"))
			}
			e.wantRefusalAudited(t, seq, e.supplier, tt.action, tt.want["code"].(string))
		})
	}
}
