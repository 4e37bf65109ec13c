package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// The environment of the router child process of TestSIGKILL.
const (
	envKillDir  = "METERTRUST_ROUTER_KILL_DIR"
	envKillCSP  = "METERTRUST_ROUTER_KILL_CSP"
	envKillAddr = "METERTRUST_ROUTER_KILL_ADDR"
	// envKillStore is the store's DSN (SQLite in the directory, or a
	// PostgreSQL schema).
	envKillStore = "METERTRUST_ROUTER_KILL_STORE"
)

var killACB = smki.MustParseEUI("90B3D51F30000004")

// TestSIGKILLChild is the router process of TestSIGKILL: the whole service
// on the data directory, forwarding over HTTP to the parent's meters. It
// runs only when TestSIGKILL starts it, and until it is killed.
func TestSIGKILLChild(t *testing.T) {
	dir := os.Getenv(envKillDir)
	if dir == "" {
		t.Skip("run by TestSIGKILL only")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, os.Getenv(envKillStore))
	if err != nil {
		t.Fatal(err)
	}
	det, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	acb, err := custody.ReadFile(filepath.Join(dir, "acb.key"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, name := range []string{ca.NameDCCKIRoot, ca.NameDCCKITLS} {
		c, err := db.SMKI().CA(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		xc, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(xc)
	}
	tr, err := NewHTTPTransport(os.Getenv(envKillCSP), &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(ServiceConfig{DB: db, Detector: det, ACB: killACB, ACBKey: acb, Transport: tr, ServerCertificate: cert,
		ClientCAs: pool, Identify: ca.TLSUser, DCCKIIssuer: ca.NameDCCKITLS, ForwardLease: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", os.Getenv(envKillAddr))
	if err != nil {
		t.Fatal(err)
	}
	svc.Run(ctx, ln) // until SIGKILL
}

// TestSIGKILL kills the router process (SIGKILL) in the middle of a load
// run and starts it again on the same store, on both backends: every
// command it answered "accepted" is executed by its meter exactly once, and
// none is lost; a command whose answer the kill cut off is executed at most
// once.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts router processes")
	}
	for name, fresh := range storeDSNs(t) {
		t.Run(name, func(t *testing.T) { testSIGKILL(t, fresh(t), 1) })
	}
}

// TestSIGKILLTwoRouters runs two router processes on one PostgreSQL store,
// each serving half the meters' callers, and kills one (SIGKILL) in the
// middle of the run for good: its callers fail over to the other, which
// also forwards, once their lease has run out, the commands the dead one had
// accepted and leased but not yet sent. Every command answered "accepted"
// is still executed exactly once, and none is lost.
func TestSIGKILLTwoRouters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts router processes")
	}
	testSIGKILL(t, storeDSNs(t)["postgres"](t), 2)
}

// testSIGKILL runs the load of TestSIGKILL against routers router
// processes on the store dsn, meter i's caller submitting to router
// i % routers. Midway router 0 is killed: with one router it is started
// again at once; with more, its callers move to router 1.
func testSIGKILL(t *testing.T, dsn string, routers int) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	auth, err := ca.New(ca.Config{Store: db.SMKI(), Keys: keys, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(ctx, ca.InitRequest{}); err != nil {
		t.Fatal(err)
	}
	issuing, _ := db.SMKI().CA(ctx, ca.NameDCCKITLS)
	root, _ := db.SMKI().CA(ctx, ca.NameDCCKIRoot)
	chainPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuing.CertDER})
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := auth.IssueTLSServer(ctx, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	write("server.pem", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Record.DER}), chainPEM...))
	write("server.key", srv.KeyPEM)
	acbKey, supKA := mustKey(t), mustKey(t)
	p8, err := x509.MarshalPKCS8PrivateKey(acbKey)
	if err != nil {
		t.Fatal(err)
	}
	write("acb.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
	supplier := smki.MustParseEUI("90B3D51F30000002")
	cli, err := auth.IssueTLSClient(ctx, supplier, smki.UserImportSupplier)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cli.Record.DER}), chainPEM...), cli.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	rc, _ := x509.ParseCertificate(root.CertDER)
	roots.AddCert(rc)

	// The meters, behind a communications service provider endpoint that
	// outlives the router processes.
	cell := func(u device.KeyUsage, eui smki.EUI, k *ecdsa.PrivateKey) *device.Cell {
		c, err := device.NewCell(u, asn.CellManagement, eui, &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	anchors, _ := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, cell(device.UsageKeyAgreement, killACB, acbKey))
	anchors, _ = anchors.With(smki.RoleSupplier, 1, cell(device.UsageKeyAgreement, supplier, supKA))
	fleet := device.NewFleet(device.Config{})
	meters, err := fleet.Generate(ctx, 4, smki.MustParseEUI("0012A3FFFE00C001"), device.Electricity, anchors)
	if err != nil {
		t.Fatal(err)
	}
	var devs []store.RouterDevice
	for _, eui := range meters {
		m, _ := fleet.Meter(eui)
		devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: m.AgreementPublicKey().Bytes(), Supplier: supplier.String(), UpdatedAt: time.Now()})
	}
	if err := db.Router().PutRouterDevices(ctx, devs...); err != nil {
		t.Fatal(err)
	}
	handler, err := device.NewHTTPHandler(fleet, device.HTTPConfig{JournalLen: 100000, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	csp := httptest.NewServer(handler)
	defer csp.Close()

	// The router processes, each started (and router 0 restarted) on an
	// address of its own.
	addrs := make([]string, routers)
	for k := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[k] = ln.Addr().String()
		ln.Close()
	}
	logf, err := os.Create(filepath.Join(dir, "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var mu sync.Mutex
	children := make([]*exec.Cmd, routers)
	start := func(k int) {
		c := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.v")
		c.Env = append(os.Environ(), envKillDir+"="+dir, envKillCSP+"="+csp.URL, envKillAddr+"="+addrs[k], envKillStore+"="+dsn)
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		children[k] = c
		mu.Unlock()
		for i := 0; ; i++ {
			if conn, err := net.Dial("tcp", addrs[k]); err == nil {
				conn.Close()
				return
			}
			if i > 300 {
				t.Fatalf("router child %d did not start", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	kill := func(k int) {
		mu.Lock()
		c := children[k]
		children[k] = nil
		mu.Unlock()
		if c != nil {
			c.Process.Kill() // SIGKILL
			c.Wait()
		}
	}
	for k := range routers {
		start(k)
		defer kill(k)
	}
	var failedOver atomic.Bool // router 0 is dead for good

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}, ServerName: "localhost"}}}
	const perMeter = 40
	type outcome struct {
		acked, unknown map[uint64]bool
	}
	outcomes := make([]outcome, len(meters))
	var total sync.WaitGroup
	var killed sync.Once
	var depthAtKill int64
	var ackCount int64
	var countMu sync.Mutex
	killAt := int64(len(meters) * perMeter / 3)
	for i, eui := range meters {
		outcomes[i] = outcome{acked: map[uint64]bool{}, unknown: map[uint64]bool{}}
		total.Add(1)
		go func() {
			defer total.Done()
			for n := uint64(1); n <= perMeter; n++ {
				m := &commands.Message{CRA: commands.Command, Counter: n, Originator: supplier, Recipient: eui,
					Code: codeECS17b, Payload: importEnergyRequest(t, n, supplier, eui)}
				raw, _ := m.Marshal()
				k := i % routers
				if k == 0 && failedOver.Load() {
					k = 1
				}
				res, err := client.Post("https://"+addrs[k]+"/v1/commands", "application/octet-stream", strings.NewReader(string(raw)))
				if err != nil {
					outcomes[i].unknown[n] = true
					time.Sleep(30 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusAccepted:
					outcomes[i].acked[n] = true
					countMu.Lock()
					ackCount++
					c := ackCount
					countMu.Unlock()
					if c == killAt {
						// Kill in the middle of the run, restart at once.
						killed.Do(func() {
							kill(0)
							depthAtKill, _ = db.Router().OutboxDepth(ctx)
							if routers == 1 {
								start(0)
							} else {
								failedOver.Store(true)
							}
						})
					}
				default:
					// A refusal: not accepted, must not execute.
				}
			}
		}()
	}
	total.Wait()

	// Wait until the restarted router, or the survivor, has forwarded
	// everything.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := db.Router().OutboxDepth(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d commands (%v); child log in %s", n, err, logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stats := handler.Stats()
	var nAcked, nUnknown int
	for i, eui := range meters {
		execs := map[uint64]int{}
		for _, x := range stats.Devices[eui.String()].Executions {
			if x.Originator == supplier {
				execs[x.Counter]++
			}
		}
		for n := range outcomes[i].acked {
			nAcked++
			if execs[n] != 1 {
				t.Errorf("meter %s: accepted command %d executed %d times", eui, n, execs[n])
			}
			// Responded; or, when the kill cut the answer off, forwarded
			// (the meter reported the retry as a replay of what it had
			// executed).
			c, err := db.Router().FindForwardedCommand(ctx, eui, supplier, n)
			if err != nil || (c.State != store.CommandResponded && c.State != store.CommandForwarded) {
				t.Errorf("meter %s: accepted command %d: %+v, %v", eui, n, c.State, err)
			}
		}
		for n, k := range execs {
			if k > 1 {
				t.Errorf("meter %s: command %d executed %d times", eui, n, k)
			}
			if !outcomes[i].acked[n] && !outcomes[i].unknown[n] {
				t.Errorf("meter %s: command %d executed but never accepted", eui, n)
			}
		}
		nUnknown += len(outcomes[i].unknown)
	}
	if nAcked < int(killAt) {
		t.Fatalf("only %d commands accepted; the kill came before %d", nAcked, killAt)
	}
	t.Logf("%d commands accepted and executed once each; %d cut off by the kill; %d in the outbox when it came",
		nAcked, nUnknown, depthAtKill)
}

// importEnergyRequest is the payload of an ECS17b command with counter n
// from user to target.
func importEnergyRequest(t testing.TB, n uint64, user, target smki.EUI) []byte {
	p, err := dlms.ImportEnergyRequest(dlms.InvokeID(n), dlms.NewProtectionParameters(n, user, target)).MarshalBinary()
	if err != nil {
		t.Error(err)
	}
	return p
}
