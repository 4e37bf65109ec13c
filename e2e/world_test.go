package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// backends lists the stores a test runs on: SQLite always, PostgreSQL
// when METERTRUST_TEST_PG is set (a test on it fails instead of skipping
// when CI is set without it).
var backends = storetest.Dialects()

// party is an organisation: its EUI, keys and certificate files.
type party struct {
	eui        smki.EUI
	ds, ka     *custody.Software
	dsCert     string // PEM file
	kaCert     string
	dsSerial   string // hex, for "ca revoke"
	tlsCert    string
	tlsKey     string
	keyDir     string
	keyFiles   map[string]string // by usage: PKCS#8 PEM files
	httpClient *http.Client
}

// world is one metertrust deployment made with the CLI: CAs, a batch of
// meters (keys and certificates on disk), a supplier, a network operator,
// the ACB, DCCKI certificates, and a fleet process serving the meters.
type world struct {
	backend  string
	data     string // the CLI's --data directory
	dsn      string // PostgreSQL DSN; "" for the SQLite store in data
	db       *store.DB
	meters   []smki.EUI
	supplier *party
	netop    *party
	acb      *party
	roots    *x509.CertPool // DCCKI root, for clients
	srvCert  string
	srvKey   string
	fleet    *proc
	fleetURL string
	// fleetMetrics is the fleet's metrics listener, host:port.
	fleetMetrics string
	// fleetArgs starts "serve fleet" on the world's meters, less
	// --listen and --log-level.
	fleetArgs []string
}

// firstMeter is the EUI of the batch's first meter.
var firstMeter = smki.MustParseEUI("0012A3FFFE000001")

// newWorld builds a world of n meters on backend; the fleet process is
// running when it returns.
func newWorld(t *testing.T, backend string, n int) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{backend: backend, data: filepath.Join(t.TempDir(), "data")}
	var storeFlag []string
	if backend == "postgres" {
		w.dsn = storetest.PostgresDSN(t) // its clean-up runs after every process is killed
		storeFlag = []string{"--store", w.dsn}
	}
	cli(t, append([]string{"ca", "init", "--data", w.data, "--actor", "e2e"}, storeFlag...)...)
	cli(t, "ca", "batch", "open", "--data", w.data, "--actor", "e2e", "--name", "batch-1", "--quota", fmt.Sprint(2*n)) // two certificates per meter
	devDir := filepath.Join(w.data, "devices")
	cli(t, "ca", "issue", "devices", "--data", w.data, "--actor", "e2e", "--batch", "batch-1", "--count", fmt.Sprint(n),
		"--out", devDir, "--first-eui", firstMeter.String())

	w.supplier = w.newParty(t, "supplier", "90B3D51F30000002", "supplier", "IS", "ds", "ka")
	w.netop = w.newParty(t, "netop", "90B3D51F30000003", "networkOperator", "ED", "ds")
	w.acb = w.newParty(t, "acb", "90B3D51F30000004", "acb", "", "ka")

	keys := t.TempDir()
	w.srvCert, w.srvKey = filepath.Join(keys, "router.pem"), filepath.Join(keys, "router.key")
	cli(t, "ca", "issue", "tls-server", "--data", w.data, "--actor", "e2e", "--dns", "localhost", "--ip", "127.0.0.1",
		"--key-out", w.srvKey, "--out", w.srvCert)

	var err error
	if w.dsn != "" {
		w.db, err = store.Open(ctx, w.dsn)
	} else {
		w.db, err = store.OpenDataDir(ctx, w.data)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.db.Close() })
	dcckiRoot, err := w.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := x509.ParseCertificate(dcckiRoot.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	w.roots = x509.NewCertPool()
	w.roots.AddCert(rc)
	for _, p := range []*party{w.supplier, w.netop} {
		p.httpClient = w.client(t, p)
	}
	root, err := w.db.SMKI().CA(ctx, ca.NameRoot)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM := filepath.Join(keys, "smki-root.pem")
	if err := os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.CertDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	// The router's registry: each meter with its supplier and network
	// operator, keys from the device certificates "ca issue devices" put in
	// the repository.
	reg := router.NewRegistrar(w.db.Router(), nil)
	for i := range n {
		eui := meterEUI(i)
		if err := reg.RegisterDevice(ctx, "e2e", eui, w.supplier.eui, w.netop.eui); err != nil {
			t.Fatalf("registering %s: %v", eui, err)
		}
		w.meters = append(w.meters, eui)
	}

	addr := freeAddr(t)
	w.fleetURL = "http://" + addr
	w.fleetArgs = []string{"serve", "fleet", "--batch-dir", devDir,
		"--root-cert", rootPEM, "--acb-cert", w.acb.kaCert, "--supplier-cert", w.supplier.dsCert, "--supplier-cert", w.supplier.kaCert,
		"--network-operator-cert", w.netop.dsCert}
	w.fleetMetrics = freeAddr(t)
	w.fleet = start(t, "fleet", append(w.fleetArgs, "--listen", addr, "--metrics-listen", w.fleetMetrics, "--log-level", "warn")...)
	eventually(t, 20*time.Second, "fleet up", func() error {
		if w.fleet.exited() {
			t.Fatalf("fleet exited: %v", w.fleet.err)
		}
		st, err := w.fleetStats()
		if err == nil && st.Meters != n {
			t.Fatalf("fleet serves %d meters, want %d", st.Meters, n)
		}
		return err
	})
	return w
}

func meterEUI(i int) smki.EUI {
	var e smki.EUI
	copy(e[:], firstMeter[:])
	e[7] += byte(i)
	return e
}

// newParty makes an organisation's keys and certificates with "keys new"
// and "ca issue org", and a DCCKI client certificate when userRole is set.
func (w *world) newParty(t *testing.T, name, eui, role, userRole string, usages ...string) *party {
	t.Helper()
	p := &party{eui: smki.MustParseEUI(eui), keyDir: t.TempDir(), keyFiles: map[string]string{}}
	for _, u := range usages {
		key, csr, cert := filepath.Join(p.keyDir, name+"-"+u+".key"), filepath.Join(p.keyDir, name+"-"+u+".csr"), filepath.Join(p.keyDir, name+"-"+u+".pem")
		cli(t, "keys", "new", "--usage", u, "--key", key, "--csr", csr, "--eui", eui, "--role", role, "--name", name)
		out := cli(t, "ca", "issue", "org", "--data", w.data, "--actor", "e2e", "--csr", csr, "--role", role, "--eui", eui,
			"--usage", u, "--out", cert, "--json")
		var co struct {
			Serial string `json:"serial"`
		}
		if err := json.Unmarshal([]byte(out), &co); err != nil {
			t.Fatalf("ca issue org --json: %q: %v", out, err)
		}
		k := readKey(t, key)
		p.keyFiles[u] = key
		switch u {
		case "ds":
			p.ds, p.dsCert, p.dsSerial = k, cert, co.Serial
		case "ka":
			p.ka, p.kaCert = k, cert
		}
	}
	if userRole != "" {
		p.tlsCert, p.tlsKey = filepath.Join(p.keyDir, name+"-tls.pem"), filepath.Join(p.keyDir, name+"-tls.key")
		cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", eui, "--user-role", userRole,
			"--key-out", p.tlsKey, "--out", p.tlsCert)
	}
	return p
}

func readKey(t *testing.T, path string) *custody.Software {
	t.Helper()
	k, err := custody.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client is an mTLS client presenting p's DCCKI client certificate.
func (w *world) client(t *testing.T, p *party) *http.Client {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(p.tlsCert, p.tlsKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.roots, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// routerProc is one "serve router" process.
type routerProc struct {
	*proc
	addr string
	url  string
}

// startRouter runs a router on addr (a fresh port when empty) forwarding
// to the fleet, with extra flags, and waits until it answers.
func (w *world) startRouter(t *testing.T, name, addr string, extra ...string) *routerProc {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	args := []string{"serve", "router", "--data", w.data, "--listen", addr, "--acb-key", w.acb.keyFiles["ka"],
		"--acb-eui", w.acb.eui.String(), "--tls-cert", w.srvCert, "--tls-key", w.srvKey, "--csp", w.fleetURL, "--log-level", "warn"}
	if w.dsn != "" {
		args = append(args, "--store", w.dsn)
	}
	args = append(args, extra...)
	r := &routerProc{proc: start(t, name, args...), addr: addr, url: "https://" + addr}
	eventually(t, 20*time.Second, name+" up", func() error {
		if r.exited() {
			t.Fatalf("%s exited: %v", name, r.err)
		}
		res, err := w.supplier.httpClient.Get(r.url + "/openapi.json")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /openapi.json: %s", res.Status)
		}
		return nil
	})
	return r
}

// problem is the router's problem+json body.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Type   string `json:"type"`
}

// post sends a request as p and returns the status, the body, and the
// problem when the answer is one. A transport error is returned as err.
func (p *party) post(url, ctype string, body []byte) (int, []byte, problem, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, problem{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return do(p.httpClient, req)
}

func do(c *http.Client, req *http.Request) (int, []byte, problem, error) {
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, problem{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, problem{}, err
	}
	var pr problem
	if res.StatusCode >= 300 {
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			return res.StatusCode, b, pr, fmt.Errorf("%s with Content-Type %q, not a problem: %q", res.Status, ct, b)
		}
		if err := json.Unmarshal(b, &pr); err != nil {
			return res.StatusCode, b, pr, fmt.Errorf("problem body %q: %w", b, err)
		}
	}
	return res.StatusCode, b, pr, nil
}

// preCommand asks the router for the command of a service request (the
// DUIS first step) with the given counter, and signs it with p's DS key
// when it is critical.
func (w *world) preCommand(t *testing.T, r *routerProc, p *party, ref string, target smki.EUI, counter uint64) []byte {
	t.Helper()
	body := fmt.Sprintf(`{"serviceReference":%q,"target":%q,"counter":%d}`, ref, target.String(), counter)
	st, b, pr, err := p.post(r.url+"/v1/service-requests", "application/json", []byte(body))
	if err != nil || st != http.StatusOK {
		t.Fatalf("service request %s for %s: %d %+v %v", ref, target, st, pr, err)
	}
	var pc router.PreCommand
	if err := json.Unmarshal(b, &pc); err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Critical {
		raw = signWith(t, raw, p.ds)
	}
	return raw
}

// signWith returns msg (re)signed with key.
func signWith(t *testing.T, raw []byte, key crypto.Signer) []byte {
	t.Helper()
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = nil
	if err := commands.SignPreCommand(rand.Reader, key, m); err != nil {
		t.Fatal(err)
	}
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withCounter returns an unsigned command with its counter replaced.
func withCounter(t *testing.T, raw []byte, counter uint64) []byte {
	t.Helper()
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Counter = counter
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// submit posts a command as p; err is a transport error (outcome
// unknown).
func (r *routerProc) submit(p *party, raw []byte) (int, router.Receipt, problem, error) {
	st, b, pr, err := p.post(r.url+"/v1/commands", "application/octet-stream", raw)
	var rc router.Receipt
	if err == nil && st == http.StatusAccepted {
		err = json.Unmarshal(b, &rc)
	}
	return st, rc, pr, err
}

// fleetStats reads GET /v1/stats from the fleet.
func (w *world) fleetStats() (device.FleetStats, error) {
	var fs device.FleetStats
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(w.fleetURL + "/v1/stats?executions=true")
	if err != nil {
		return fs, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fs, fmt.Errorf("GET /v1/stats: %s", res.Status)
	}
	return fs, json.NewDecoder(res.Body).Decode(&fs)
}

// awaitOutboxEmpty waits until every accepted command has left the outbox
// (delivered, answered or failed).
func (w *world) awaitOutboxEmpty(t *testing.T, within time.Duration) {
	t.Helper()
	eventually(t, within, "outbox drained", func() error {
		n, err := w.db.Router().OutboxDepth(context.Background())
		if err == nil && n != 0 {
			err = fmt.Errorf("%d commands still in the outbox", n)
		}
		return err
	})
}

// stateTables are the tables a refused command must leave untouched (the
// audit log records refusals, so it is not among them).
var stateTables = []string{"router_commands", "router_counters", "router_deliveries",
	"anomaly_events", "anomaly_quarantine"}

// rowCounts counts the rows of stateTables, reading the database directly.
func (w *world) rowCounts(t *testing.T) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	out := map[string]int64{}
	if w.dsn != "" {
		conn, err := pgx.Connect(ctx, w.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, tb := range stateTables {
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
				t.Fatalf("counting %s: %v", tb, err)
			}
			out[tb] = n
		}
		return out
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.data, store.DataFile)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range stateTables {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
			t.Fatalf("counting %s: %v", tb, err)
		}
		out[tb] = n
	}
	return out
}
