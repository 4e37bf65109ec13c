package router

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// storeBackends gives, per backend, a function that makes a fresh empty
// database and returns an opener of handles on it (several handles stand
// for several processes): SQLite in a temporary directory always,
// PostgreSQL in a fresh schema of METERTRUST_TEST_PG when it is set (failing
// instead of skipping when CI is set without it).
func storeBackends(t *testing.T) map[string]func(t *testing.T) func(t *testing.T) *store.DB {
	out := map[string]func(t *testing.T) func(t *testing.T) *store.DB{}
	for name, fresh := range storeDSNs(t) {
		out[name] = func(t *testing.T) func(t *testing.T) *store.DB {
			dsn := fresh(t)
			return func(t *testing.T) *store.DB {
				db, err := store.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
		}
	}
	return out
}

// storeDSNs gives, per backend, a function that makes a fresh empty
// database and returns its DSN, for a test that hands it to another process.
func storeDSNs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "router.db")
		},
		"postgres": func(t *testing.T) string {
			dsn := os.Getenv("METERTRUST_TEST_PG")
			if dsn == "" {
				if os.Getenv("CI") != "" {
					t.Fatal("METERTRUST_TEST_PG is unset in CI")
				}
				t.Skip("METERTRUST_TEST_PG is unset")
			}
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatalf("connecting to METERTRUST_TEST_PG: %v", err)
			}
			defer conn.Close(ctx)
			b := make([]byte, 6)
			rand.Read(b)
			schema := "router_test_" + hex.EncodeToString(b)
			if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Errorf("dropping schema %s: %v", schema, err)
					return
				}
				defer c.Close(ctx)
				if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
					t.Errorf("dropping schema %s: %v", schema, err)
				}
			})
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		},
	}
}

// e2e is the whole system in one process: the SMKI and DCCKI CAs of
// package ca, the reference-meter fleet of package device, the anomaly
// detector, and the router service on a real mutual-TLS listener.
type e2e struct {
	db       *store.DB
	auth     *ca.Authority
	svc      *Service
	fleet    *device.Fleet
	meters   []smki.EUI
	url      string
	supplier *e2eUser
	other    *e2eUser
	acb      smki.EUI
	// meterClock offsets the meters' clock (nanoseconds ahead of now);
	// alerts receives the alerts they raise.
	meterClock atomic.Int64
	alerts     chan device.Alert
	// loseAnswers, when not zero, is a message code whose answers the
	// transport loses: the meter executes the command, the router hears a
	// transport error.
	loseAnswers atomic.Uint32
}

// e2eTransport is the router's transport to the e2e fleet, losing the
// answers e.loseAnswers names.
type e2eTransport struct{ e *e2e }

func (t e2eTransport) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	resp, err := fleetTransport{t.e.fleet}.Send(ctx, target, msg)
	if code := t.e.loseAnswers.Load(); err == nil && code != 0 {
		if m, perr := commands.Parse(msg); perr == nil && uint32(m.Code) == code {
			return nil, fmt.Errorf("the answer to %s was lost on the way back", m.Code)
		}
	}
	return resp, err
}

// e2eUser is a DCC user with its SMKI keys and its mutual-TLS client.
type e2eUser struct {
	eui    smki.EUI
	ds, ka *ecdsa.PrivateKey
	dsCert store.Certificate
	client *http.Client
}

func newE2E(t *testing.T, db *store.DB) *e2e {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	e := &e2e{db: db, acb: smki.MustParseEUI("90B3D51F30000004"), supplier: &e2eUser{}, other: &e2eUser{}, alerts: make(chan device.Alert, 16)}
	keys, err := custody.Open(ctx, "", t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	if e.auth, err = ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}

	// The supplier's and an other user's organisation certificates, issued
	// from CSRs.
	e.supplier.eui, e.other.eui = smki.MustParseEUI("90B3D51F30000002"), smki.MustParseEUI("90B3D51F300000F1")
	e.supplier.ds, e.supplier.ka, e.other.ka = mustKey(t), mustKey(t), mustKey(t)
	org := func(eui smki.EUI, role smki.Role, k *ecdsa.PrivateKey, ku x509.KeyUsage, u ca.Usage) store.Certificate {
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: role,
			EUI: eui, CommonName: "User " + eui.String(), KeyUsage: ku}, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.auth.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: role, EUI: eui, Usage: u})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.supplier.dsCert = org(e.supplier.eui, smki.RoleSupplier, e.supplier.ds, x509.KeyUsageDigitalSignature, ca.UsageDS)
	org(e.supplier.eui, smki.RoleSupplier, e.supplier.ka, x509.KeyUsageKeyAgreement, ca.UsageKA)
	org(e.other.eui, smki.RoleOther, e.other.ka, x509.KeyUsageKeyAgreement, ca.UsageKA)

	// Meters trusting the ACB and the supplier.
	acbKey := mustKey(t)
	cell := func(u device.KeyUsage, eui smki.EUI, k *ecdsa.PrivateKey) *device.Cell {
		c, err := device.NewCell(u, asn.CellManagement, eui, &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	anchors, err := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, cell(device.UsageKeyAgreement, e.acb, acbKey))
	if err != nil {
		t.Fatal(err)
	}
	if anchors, err = anchors.With(smki.RoleSupplier, 1, cell(device.UsageDigitalSignature, e.supplier.eui, e.supplier.ds),
		cell(device.UsageKeyAgreement, e.supplier.eui, e.supplier.ka)); err != nil {
		t.Fatal(err)
	}
	// And the SMKI root, which replacement certificates must chain to.
	rootCA, err := db.SMKI().CA(ctx, ca.NameRoot)
	if err != nil {
		t.Fatal(err)
	}
	root, err := smki.ParseCertificate(rootCA.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	rootCell, err := device.NewCell(device.UsageDigitalSignature, asn.CellManagement, root.EUI, root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if anchors, err = anchors.With(smki.RoleRoot, 1, rootCell); err != nil {
		t.Fatal(err)
	}
	e.fleet = device.NewFleet(device.Config{Now: func() time.Time { return time.Now().Add(time.Duration(e.meterClock.Load())) },
		Alerts: func(_ context.Context, a device.Alert) {
			select {
			case e.alerts <- a:
			default:
			}
		}})
	if e.meters, err = e.fleet.Generate(ctx, 3, smki.MustParseEUI("0012A3FFFE000001"), device.Electricity, anchors); err != nil {
		t.Fatal(err)
	}
	supplierDS, err := smki.ParseCertificate(e.supplier.dsCert.DER)
	if err != nil {
		t.Fatal(err)
	}
	var devs []store.RouterDevice
	for _, eui := range e.meters {
		m, _ := e.fleet.Meter(eui)
		ds, err := m.SignaturePublicKey().Bytes()
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: m.AgreementPublicKey().Bytes(), DSPublic: ds,
			Supplier: e.supplier.eui.String(), SupplierDSKeyID: fmt.Sprintf("%X", supplierDS.SubjectKeyID), UpdatedAt: time.Now()})
	}
	if err := db.Router().PutRouterDevices(ctx, devs...); err != nil {
		t.Fatal(err)
	}

	// Anomaly detection: two disconnects per supplier per hour.
	as := db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := det.SetThreshold(ctx, anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}},
		anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 2, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}

	// DCCKI: the router's server certificate and the supplier's client
	// certificate.
	dccki := func(name string) []byte {
		c, err := db.SMKI().CA(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return c.CertDER
	}
	rootDER, issuingDER := dccki(ca.NameDCCKIRoot), dccki(ca.NameDCCKITLS)
	roots := x509.NewCertPool()
	rc, _ := x509.ParseCertificate(rootDER)
	roots.AddCert(rc)
	pair := func(iss ca.TLSIssued) tls.Certificate {
		chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Record.DER}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuingDER})...)
		kp, err := tls.X509KeyPair(chain, iss.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	srvIss, err := e.auth.IssueTLSServer(ctx, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		user *e2eUser
		role smki.UserRole
	}{{e.supplier, smki.UserImportSupplier}, {e.other, smki.UserOther}} {
		iss, err := e.auth.IssueTLSClient(ctx, u.user.eui, u.role)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair(iss)}, ServerName: "localhost"}}
		t.Cleanup(tr.CloseIdleConnections)
		u.user.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}

	acb, err := commands.NewECDHKeyFromECDSA(acbKey)
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = NewService(ServiceConfig{DB: db, Detector: det, ACB: e.acb, ACBKey: acb, Transport: e2eTransport{e},
		ServerCertificate: pair(srvIss), ClientCAs: roots, Identify: ca.TLSUser, DCCKIIssuer: ca.NameDCCKITLS, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	return e
}

func (e *e2e) call(t *testing.T, method, path, ctype string, body []byte, out any) (int, Problem) {
	t.Helper()
	return e.callAs(t, e.supplier, method, path, ctype, body, out)
}

func (e *e2e) callAs(t *testing.T, u *e2eUser, method, path, ctype string, body []byte, out any) (int, Problem) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(string(body)))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := u.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var p Problem
	if res.StatusCode >= 300 {
		json.Unmarshal(b, &p)
		return res.StatusCode, p
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode, p
}

// request runs the DUIS two-step over the API: service request, sign when
// critical, submit. It returns the submitted bytes and the status.
func (e *e2e) request(t *testing.T, ref string, target smki.EUI, params string) ([]byte, int, Problem) {
	t.Helper()
	return e.requestAs(t, e.supplier, ref, target, params)
}

func (e *e2e) requestAs(t *testing.T, u *e2eUser, ref string, target smki.EUI, params string) ([]byte, int, Problem) {
	t.Helper()
	body := `{"serviceReference":"` + ref + `","target":"` + target.String() + `"`
	if params != "" {
		body += `,"parameters":` + params
	}
	var pc PreCommand
	if st, p := e.callAs(t, u, "POST", "/v1/service-requests", "application/json", []byte(body+"}"), &pc); st != 200 {
		t.Fatalf("service request %s: %d %+v", ref, st, p)
	}
	raw, _ := hex.DecodeString(pc.Message)
	if pc.Critical {
		m, err := commands.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := commands.SignPreCommand(rand.Reader, u.ds, m); err != nil {
			t.Fatal(err)
		}
		if raw, err = m.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	var rc Receipt
	st, p := e.callAs(t, u, "POST", "/v1/commands", "application/octet-stream", raw, &rc)
	return raw, st, p
}

// awaitResponses polls until the supplier has n deliveries.
func (e *e2e) awaitResponses(t *testing.T, n int) []deliveryView {
	t.Helper()
	return e.awaitResponsesAs(t, e.supplier, n)
}

func (e *e2e) awaitResponsesAs(t *testing.T, u *e2eUser, n int) []deliveryView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v struct {
			Deliveries []deliveryView `json:"deliveries"`
		}
		e.callAs(t, u, "GET", "/v1/responses", "", nil, &v)
		if len(v.Deliveries) >= n {
			return v.Deliveries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries after 15s, want %d: %+v", len(v.Deliveries), n, v.Deliveries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndToEnd runs the supplier's story over the real API, on both stores:
// a register read decrypted by the supplier alone, a disconnect executed by
// the meter with a signed response, a replay refused, the third disconnect
// quarantined, and a revoked signing certificate refused.
func TestEndToEnd(t *testing.T) {
	for name, open := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := newE2E(t, open(t)(t))
			ctx := context.Background()
			m0, _ := e.fleet.Meter(e.meters[0])

			// A register read: the response is encrypted to the supplier.
			if _, st, p := e.request(t, "4.1.1", e.meters[0], ""); st != http.StatusAccepted {
				t.Fatalf("register read: %d %+v", st, p)
			}
			ds := e.awaitResponses(t, 1)
			if ds[0].Kind != DeliveryResponse {
				t.Fatalf("delivery %+v", ds[0])
			}
			resp, err := commands.Parse(ds[0].Body)
			if err != nil {
				t.Fatal(err)
			}
			ka, _ := commands.NewECDHKeyFromECDSA(e.supplier.ka)
			if err := commands.CheckMAC(ctx, ka, m0.AgreementPublicKey(), resp); err != nil {
				t.Fatalf("response MAC: %v", err)
			}
			plain, err := commands.OpenPayload(ctx, ka, m0.AgreementPublicKey(), resp)
			if err != nil {
				t.Fatalf("decrypting: %v", err)
			}
			if _, err := readPlain(plain, dlms.ReadImportEnergy); err != nil {
				t.Fatal(err)
			}

			// A disconnect: signed pre-command, executed, signed response.
			signed, st, p := e.request(t, "7.2", e.meters[0], "")
			if st != http.StatusAccepted {
				t.Fatalf("disconnect: %d %+v", st, p)
			}
			ds = e.awaitResponses(t, 2)
			if ds[1].Kind != DeliveryResponse || m0.Supply() != device.SupplyDisabled {
				t.Fatalf("after disconnect: %+v, supply %v", ds[1], m0.Supply())
			}
			var cmd struct {
				State string `json:"state"`
			}
			if st, _ := e.call(t, "GET", "/v1/commands/"+ds[1].CommandID, "", nil, &cmd); st != 200 || cmd.State != "responded" {
				t.Fatalf("command state %d %q", st, cmd.State)
			}

			// The same signed bytes again: refused before any MAC.
			if st, p := e.call(t, "POST", "/v1/commands", "application/octet-stream", signed, nil); st != http.StatusConflict || p.Code != "replay" {
				t.Fatalf("replay: %d %+v", st, p)
			}
			// The second disconnect passes, the third is quarantined.
			if _, st, p := e.request(t, "7.2", e.meters[1], ""); st != http.StatusAccepted {
				t.Fatalf("second disconnect: %d %+v", st, p)
			}
			// The supplier watches its event stream: the quarantine alert
			// must arrive within one second (spec section 10, our rule).
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			defer scancel()
			sreq, _ := http.NewRequestWithContext(sctx, "GET", e.url+"/v1/events?after=1000000", nil)
			stream, err := e.supplier.client.Do(sreq)
			if err != nil || stream.StatusCode != 200 {
				t.Fatalf("event stream: %v", err)
			}
			defer stream.Body.Close()
			alerts := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stream.Body)
				for sc.Scan() {
					if sc.Text() == "event: alert" && sc.Scan() {
						alerts <- sc.Text()
						return
					}
				}
			}()
			if _, st, p := e.request(t, "7.2", e.meters[2], ""); st != http.StatusTooManyRequests || p.Code != "quarantined" || !strings.Contains(p.Detail, "Q-") {
				t.Fatalf("third disconnect: %d %+v", st, p)
			}
			select {
			case a := <-alerts:
				if !strings.Contains(a, `"state":"quarantined"`) || !strings.Contains(a, e.meters[2].String()) {
					t.Fatalf("alert %s", a)
				}
			case <-time.After(time.Second):
				t.Fatal("no quarantine alert on the event stream within one second")
			}
			e.awaitResponses(t, 3)
			m2, _ := e.fleet.Meter(e.meters[2])
			if m2.Supply() != device.SupplyEnabled {
				t.Fatal("quarantined disconnect executed")
			}
			// The supplier lists its quarantine and releases the command:
			// it goes through and the meter executes it.
			var ql struct {
				Quarantine []quarantineView `json:"quarantine"`
			}
			if st, p := e.call(t, "GET", "/v1/quarantine?state=quarantined", "", nil, &ql); st != 200 || len(ql.Quarantine) != 1 {
				t.Fatalf("quarantine list: %d %+v %+v", st, p, ql)
			}
			ref := ql.Quarantine[0].Ref
			if st, p := e.callAs(t, e.other, "POST", "/v1/quarantine/"+ref+"/release", "application/json", []byte(`{"reason":"mine now"}`), nil); st != 404 || p.Code != "not-found" {
				t.Fatalf("release by another user: %d %+v", st, p)
			}
			var rel quarantineView
			if st, p := e.call(t, "POST", "/v1/quarantine/"+ref+"/release", "application/json", []byte(`{"reason":"planned disconnection"}`), &rel); st != 200 || rel.Receipt == nil {
				t.Fatalf("release: %d %+v", st, p)
			}
			if st, p := e.call(t, "POST", "/v1/quarantine/"+ref+"/delete", "application/json", []byte(`{"reason":"too late"}`), nil); st != 409 || p.Code != "conflict" {
				t.Fatalf("delete after release: %d %+v", st, p)
			}
			e.awaitResponses(t, 4)
			if m2.Supply() != device.SupplyDisabled {
				t.Fatal("released disconnect not executed")
			}

			// The supplier's signing certificate revoked: its next critical
			// command is refused at the certificate path stage.
			if _, err := e.auth.Revoke(ctx, ca.NameOCA, e.supplier.dsCert.Serial, 1); err != nil {
				t.Fatal(err)
			}
			if _, st, p := e.request(t, "7.3", e.meters[1], ""); st != http.StatusForbidden || p.Code != "certificate-path" {
				t.Fatalf("after revocation: %d %+v", st, p)
			}
			if n, _ := e.svc.Storage.Depth(ctx); n != 0 {
				t.Fatalf("outbox depth %d", n)
			}

			// An other user reads the profile under the consumer's consent;
			// the response is encrypted to its own key-agreement key, and
			// the supplier's deliveries are untouched.
			profile := `{"from":"` + time.Now().Add(-3*time.Hour).UTC().Format(time.RFC3339) + `","to":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
			if _, st, p := e.requestAs(t, e.other, "4.8.1", e.meters[0], profile); st != http.StatusForbidden || p.Code != "not-owner" {
				t.Fatalf("profile read without consent: %d %+v", st, p)
			}
			// The consent flow: the meter displays a CIN the router chose,
			// the consumer reads it to the other user, who presents it.
			var cinRc Receipt
			if st, p := e.callAs(t, e.other, "POST", "/v1/cin", "application/json", []byte(`{"target":"`+e.meters[0].String()+`"}`), &cinRc); st != http.StatusAccepted {
				t.Fatalf("CIN request: %d %+v", st, p)
			}
			e.awaitResponsesAs(t, e.other, 1)
			cin, ok := m0.CIN()
			if !ok {
				t.Fatal("the meter displays no CIN")
			}
			consent := func(cin string) (int, Problem) {
				return e.callAs(t, e.other, "POST", "/v1/consents", "application/json",
					[]byte(fmt.Sprintf(`{"device":"%s","cin":"%s","scope":["4.8.1","4.17"],"days":30}`, e.meters[0], cin)), nil)
			}
			n, _ := strconv.Atoi(cin)
			if st, p := consent(string(cinText(uint32((n + 1) % (MaxCIN + 1))))); st != http.StatusForbidden || p.Code != "not-owner" {
				t.Fatalf("wrong CIN: %d %+v", st, p)
			}
			if st, p := e.call(t, "POST", "/v1/consents", "application/json", []byte(`{"device":"`+e.meters[0].String()+`","cin":"0001","scope":["4.8.1"],"days":1}`), nil); st != http.StatusForbidden || p.Code != "role-not-eligible" {
				t.Fatalf("consent claimed by a supplier: %d %+v", st, p)
			}
			// A CIN that is not four digits is refused as a bad request
			// before the challenge is looked at: it spends no attempt.
			for _, bad := range []string{"12a4", "12345", "123", ""} {
				if st, p := consent(bad); st != http.StatusBadRequest || p.Code != "bad-request" {
					t.Fatalf("CIN %q: %d %+v", bad, st, p)
				}
			}
			if st, p := e.callAs(t, e.other, "POST", "/v1/consents", "application/json",
				[]byte(fmt.Sprintf(`{"device":"%s","cin":%s,"scope":["4.8.1"],"days":30}`, e.meters[0], cin)), nil); st != http.StatusBadRequest {
				t.Fatalf("CIN as a JSON number: %d %+v", st, p)
			}
			if st, p := consent(cin); st != http.StatusCreated {
				t.Fatalf("right CIN: %d %+v", st, p)
			}
			if st, p := consent(cin); st != http.StatusNotFound {
				t.Fatalf("CIN reused: %d %+v", st, p)
			}
			if _, st, p := e.requestAs(t, e.other, "4.8.1", e.meters[0], profile); st != http.StatusAccepted {
				t.Fatalf("profile read under consent: %d %+v", st, p)
			}
			od := e.awaitResponsesAs(t, e.other, 2)
			oresp, err := commands.Parse(od[1].Body)
			if err != nil {
				t.Fatal(err)
			}
			oka, _ := commands.NewECDHKeyFromECDSA(e.other.ka)
			plain, err = commands.OpenPayload(ctx, oka, m0.AgreementPublicKey(), oresp)
			if err != nil {
				t.Fatalf("other user decrypting its profile: %v", err)
			}
			if _, err := readPlain(plain, dlms.ReadHalfHourProfile); err != nil {
				t.Fatal(err)
			}
			if _, err := commands.OpenPayload(ctx, ka, m0.AgreementPublicKey(), oresp); err == nil {
				t.Fatal("the supplier decrypted the other user's profile")
			}
			if ds := e.awaitResponses(t, 4); len(ds) != 4 {
				t.Fatalf("supplier deliveries %d, want 4", len(ds))
			}

			if _, err := e.db.VerifyAudit(ctx); err != nil {
				t.Fatalf("audit chain: %v", err)
			}
		})
	}
}

// readPlain reads the one decrypted block of a sensitive DLMS response with
// a package dlms reader.
func readPlain[T any](plain [][]byte, read func(dlms.Data) (T, error)) (T, error) {
	var zero T
	if len(plain) != 1 {
		return zero, fmt.Errorf("%d ciphered blocks, want 1", len(plain))
	}
	d, err := dlms.ParseData(plain[0])
	if err != nil {
		return zero, err
	}
	return read(d)
}
