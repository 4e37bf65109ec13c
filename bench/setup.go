package bench

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// The parties of the bench world.
var (
	supplierEUI   = smki.MustParseEUI("90B3D51F30000002")
	acbEUI        = smki.MustParseEUI("90B3D51F30000004")
	firstMeterEUI = smki.MustParseEUI("0012A3FFFE000001")
)

// world is the system under test, all in this process: store, CAs,
// supplier, meters, anomaly detector and the router service on a loopback
// mutual-TLS listener.
type world struct {
	db        *store.DB
	dialect   string
	dir       string
	fleet     *device.Fleet
	meters    []smki.EUI
	svc       *router.Service
	registry  *prometheus.Registry
	transport *recorder
	acbKey    *countingKA
	url       string
	files     struct{ cert, key, root string }
	supplier  *ecdsa.PrivateKey
	caller    router.Caller
	counter   atomic.Uint64
	// backends lists the PostgreSQL backends of the bench's database; nil
	// on SQLite.
	backends func() []int
	stop     func() error
	cleanups []func()
}

// close stops the service and removes what setup made.
func (w *world) close() error {
	var err error
	if w.stop != nil {
		err = w.stop()
	}
	for i := len(w.cleanups) - 1; i >= 0; i-- {
		w.cleanups[i]()
	}
	return err
}

// setup builds the world on a fresh store in dir.
func setup(ctx context.Context, cfg Config, dir string) (_ *world, err error) {
	w := &world{dir: dir, caller: router.Caller{EUI: supplierEUI, Role: smki.UserImportSupplier}}
	w.counter.Store(uint64(time.Now().UnixMilli())) // GBCS counters follow the clock in milliseconds
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	dsn, admin, dropSchema, err := freshStore(ctx, cfg.Store, dir)
	if err != nil {
		return nil, err
	}
	if dropSchema != nil {
		w.cleanups = append(w.cleanups, dropSchema)
	}
	if w.db, err = store.Open(ctx, dsn); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	w.cleanups = append(w.cleanups, func() { w.db.Close() })
	w.dialect = w.db.Dialect()
	if admin != "" {
		if err := w.watchBackends(ctx, admin); err != nil {
			return nil, err
		}
	}

	// The SMKI and DCCKI ceremonies.
	keys, err := ca.OpenCustody(ctx, "", dir, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("opening key custody: %w", err)
	}
	w.cleanups = append(w.cleanups, func() { keys.Close() })
	auth, err := ca.New(ca.Config{Store: w.db, Keys: keys, Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("creating the authority: %w", err)
	}
	if _, err := auth.Init(ctx, ca.InitRequest{}); err != nil {
		return nil, fmt.Errorf("SMKI ceremony: %w", err)
	}

	// The supplier's organisation certificates (DS and KA) and the ACB's
	// KA certificate, issued from CSRs by the OCA.
	org := func(role smki.Role, eui smki.EUI, name string, ku x509.KeyUsage, u ca.Usage) (*ecdsa.PrivateKey, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, Role: role, EUI: eui,
			CommonName: name, KeyUsage: ku}, k)
		if err != nil {
			return nil, fmt.Errorf("CSR for %s %s: %w", name, u, err)
		}
		if _, err := auth.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: role, EUI: eui, Usage: u}); err != nil {
			return nil, fmt.Errorf("issuing %s %s certificate: %w", name, u, err)
		}
		return k, nil
	}
	if w.supplier, err = org(smki.RoleSupplier, supplierEUI, "Bench Supplier", x509.KeyUsageDigitalSignature, ca.UsageDS); err != nil {
		return nil, err
	}
	supplierKA, err := org(smki.RoleSupplier, supplierEUI, "Bench Supplier", x509.KeyUsageKeyAgreement, ca.UsageKA)
	if err != nil {
		return nil, err
	}
	acbKey, err := org(smki.RoleAccessControlBroker, acbEUI, "Bench ACB", x509.KeyUsageKeyAgreement, ca.UsageKA)
	if err != nil {
		return nil, err
	}

	// The meters, trusting the ACB and the supplier, registered with the
	// router.
	if err := w.addMeters(ctx, cfg.Meters, acbKey, supplierKA); err != nil {
		return nil, err
	}

	// Anomaly detection with DCC thresholds high enough never to trip:
	// every command is counted against both.
	as := w.db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: quiet})
	if err != nil {
		return nil, fmt.Errorf("anomaly detector: %w", err)
	}
	operator := anomaly.Actor{ID: "bench", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	for _, th := range []anomaly.Threshold{
		{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: ThresholdLimit, Window: time.Hour},
		{Scope: anomaly.ScopeUserTotal, Limit: ThresholdLimit, Window: time.Hour},
	} {
		if _, err := det.SetThreshold(ctx, operator, th); err != nil {
			return nil, fmt.Errorf("setting threshold %s: %w", th, err)
		}
	}

	// DCCKI: the router's server certificate and the supplier's client
	// certificate, written to files for the client process.
	if err := w.dccki(ctx, auth); err != nil {
		return nil, err
	}
	ka, err := commands.NewECDHKeyFromECDSA(acbKey)
	if err != nil {
		return nil, fmt.Errorf("ACB key: %w", err)
	}
	w.acbKey = &countingKA{key: ka}
	w.transport = newRecorder(router.NewFleetTransport(w.fleet))
	w.registry = prometheus.NewRegistry()
	srvCert, roots, err := w.serverTLS(ctx, auth)
	if err != nil {
		return nil, err
	}
	// The service logs as "serve router" does: JSON records at info level,
	// formatted for every command and thrown away.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if w.svc, err = router.NewService(router.ServiceConfig{DB: w.db, Detector: det, ACB: acbEUI, ACBKey: w.acbKey,
		Transport: w.transport, ServerCertificate: srvCert, ClientCAs: roots, Identify: ca.TLSUser,
		DCCKIIssuer: ca.NameDCCKITLS, Logger: log, Registry: w.registry}); err != nil {
		return nil, fmt.Errorf("router service: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	w.url = "https://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	// Every goroutine of the service inherits the label, so the profile
	// tells its CPU time from the client's.
	pprof.Do(sctx, pprof.Labels("component", ComponentRouter), func(ctx context.Context) {
		go func() { done <- w.svc.Run(ctx, ln) }()
	})
	w.stop = func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("router service: %w", err)
		}
		return nil
	}
	return w, nil
}

// ThresholdLimit is the limit of the bench's anomaly thresholds: far above
// any run, so nothing is quarantined, yet every command is counted.
const ThresholdLimit = 10_000_000

// freshStore returns the DSN of an empty store: SQLite in dir when spec is
// empty or a SQLite DSN path is not given; for PostgreSQL, a new schema in
// the database spec names, dropped by the returned function.
//
// For PostgreSQL it also returns the DSN of a plain connection (without
// the pool's parameters) for the bench's own queries.
func freshStore(ctx context.Context, spec, dir string) (dsn, admin string, drop func(), err error) {
	if spec == "" {
		return "sqlite:" + filepath.Join(dir, "metertrust.db"), "", nil, nil
	}
	if !strings.HasPrefix(spec, "postgres://") && !strings.HasPrefix(spec, "postgresql://") {
		return spec, "", nil, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return "", "", nil, fmt.Errorf("%w: --store is not a URL", ErrConfig)
	}
	// The pool's own parameters (pool_max_conns...) are not PostgreSQL's:
	// leave them out of the single connection that makes the schema.
	au := *u
	aq := au.Query()
	for k := range aq {
		if strings.HasPrefix(k, "pool_") {
			aq.Del(k)
		}
	}
	au.RawQuery = aq.Encode()
	admin = au.String()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", "", nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", nil, err
	}
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", "", nil, fmt.Errorf("creating schema %s: %w", schema, err)
	}
	drop = func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, admin)
		if err != nil {
			return
		}
		defer c.Close(dctx)
		c.Exec(dctx, "DROP SCHEMA "+schema+" CASCADE")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), admin, drop, nil
}

// watchBackends opens a connection of its own through which the bench
// finds the PostgreSQL backends serving its database, whose CPU time it
// reads from /proc (PostgreSQL on this machine).
func (w *world) watchBackends(ctx context.Context, admin string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	w.cleanups = append(w.cleanups, func() { conn.Close(context.Background()) })
	var mu sync.Mutex
	w.backends = func() []int {
		mu.Lock()
		defer mu.Unlock()
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := conn.Query(qctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		if err != nil {
			return nil
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return nil
		}
		out := make([]int, len(pids))
		for i, p := range pids {
			out[i] = int(p)
		}
		return out
	}
	return nil
}

// addMeters generates n meters with the ACB and supplier trust anchors and
// registers them with the router.
func (w *world) addMeters(ctx context.Context, n int, acb, supplierKA *ecdsa.PrivateKey) error {
	cell := func(u device.KeyUsage, eui smki.EUI, k *ecdsa.PublicKey) (*device.Cell, error) {
		return device.NewCell(u, device.Management, eui, k)
	}
	acbCell, err := cell(device.UsageKeyAgreement, acbEUI, &acb.PublicKey)
	if err != nil {
		return fmt.Errorf("ACB anchor: %w", err)
	}
	dsCell, err := cell(device.UsageDigitalSignature, supplierEUI, &w.supplier.PublicKey)
	if err != nil {
		return fmt.Errorf("supplier DS anchor: %w", err)
	}
	kaCell, err := cell(device.UsageKeyAgreement, supplierEUI, &supplierKA.PublicKey)
	if err != nil {
		return fmt.Errorf("supplier KA anchor: %w", err)
	}
	anchors, err := device.NewAnchors().With(smki.RoleAccessControlBroker, 1, acbCell)
	if err != nil {
		return err
	}
	if anchors, err = anchors.With(smki.RoleSupplier, 1, dsCell, kaCell); err != nil {
		return err
	}
	w.fleet = device.NewFleet(device.Config{})
	if w.meters, err = w.fleet.Generate(ctx, n, firstMeterEUI, device.Electricity, anchors); err != nil {
		return fmt.Errorf("generating %d meters: %w", n, err)
	}
	now := time.Now()
	devs := make([]store.RouterDevice, 0, len(w.meters))
	for _, eui := range w.meters {
		m, _ := w.fleet.Meter(eui)
		ds, err := m.SignaturePublicKey().Bytes()
		if err != nil {
			return fmt.Errorf("meter %s signing key: %w", eui, err)
		}
		devs = append(devs, store.RouterDevice{EUI: eui.String(), KAPublic: m.AgreementPublicKey().Bytes(), DSPublic: ds,
			Supplier: supplierEUI.String(), UpdatedAt: now})
	}
	for chunk := range chunks(devs, 500) {
		if err := w.db.PutRouterDevices(ctx, chunk...); err != nil {
			return fmt.Errorf("registering meters: %w", err)
		}
	}
	return nil
}

func chunks[T any](s []T, n int) func(func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// dccki issues the supplier's DCCKI client certificate and writes it, its
// key (mode 0600) and the DCCKI root to the data directory for the client.
func (w *world) dccki(ctx context.Context, auth *ca.Authority) error {
	root, err := w.db.CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		return fmt.Errorf("DCCKI root: %w", err)
	}
	issuing, err := w.db.CA(ctx, ca.NameDCCKITLS)
	if err != nil {
		return fmt.Errorf("DCCKI issuing CA: %w", err)
	}
	cli, err := auth.IssueTLSClient(ctx, supplierEUI, smki.UserImportSupplier)
	if err != nil {
		return fmt.Errorf("supplier DCCKI client certificate: %w", err)
	}
	w.files.cert = filepath.Join(w.dir, "bench-client.pem")
	w.files.key = filepath.Join(w.dir, "bench-client-key.pem")
	w.files.root = filepath.Join(w.dir, "bench-dccki-root.pem")
	certPEM := append(pemCert(cli.Record.DER), pemCert(issuing.CertDER)...)
	for _, f := range []struct {
		path string
		data []byte
		perm os.FileMode
	}{{w.files.cert, certPEM, 0o644}, {w.files.key, cli.KeyPEM, 0o600}, {w.files.root, pemCert(root.CertDER), 0o644}} {
		if err := ca.WriteNewFile(f.path, f.data, f.perm); err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Base(f.path), err)
		}
	}
	return nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// serverTLS issues the router's DCCKI server certificate (with its issuing
// CA in the chain) and returns it with the pool client certificates must
// chain to.
func (w *world) serverTLS(ctx context.Context, auth *ca.Authority) (tls.Certificate, *x509.CertPool, error) {
	root, err := w.db.CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("DCCKI root: %w", err)
	}
	issuing, err := w.db.CA(ctx, ca.NameDCCKITLS)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("DCCKI issuing CA: %w", err)
	}
	rc, err := x509.ParseCertificate(root.CertDER)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("DCCKI root: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(rc)
	srv, err := auth.IssueTLSServer(ctx, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("router DCCKI server certificate: %w", err)
	}
	kp, err := tls.X509KeyPair(append(pemCert(srv.Record.DER), pemCert(issuing.CertDER)...), srv.KeyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("router DCCKI server certificate: %w", err)
	}
	return kp, roots, nil
}

// sign builds n disconnect commands (service request 7.2, GBCS ECS43)
// through the router's own DUIS step and signs them as the supplier, on
// every core. Command i goes to target(i); counters rise with i and above
// every earlier command, so none is a replay.
func (w *world) sign(ctx context.Context, n int, target func(i int) smki.EUI) ([][]byte, error) {
	base := w.counter.Add(uint64(n)) - uint64(n)
	out := make([][]byte, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				out[i], errs[i] = w.signOne(ctx, target(i), base+uint64(i))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("signing commands: %w", err)
	}
	return out, nil
}

func (w *world) signOne(ctx context.Context, target smki.EUI, counter uint64) ([]byte, error) {
	pc, err := w.svc.Router.BuildServiceRequest(ctx, w.caller, router.ServiceRequestInput{Ref: "7.2", Target: target, Counter: counter})
	if err != nil {
		return nil, fmt.Errorf("service request 7.2 to %s: %w", target, err)
	}
	raw, err := hex.DecodeString(pc.Message)
	if err != nil {
		return nil, err
	}
	m, err := commands.Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := commands.SignPreCommand(rand.Reader, w.supplier, m); err != nil {
		return nil, err
	}
	return m.Marshal()
}

// countingKA counts the ECDH computations the router asks of the ACB key
// (its Z cache misses).
type countingKA struct {
	key router.KeyAgreement
	n   atomic.Int64
}

// ECDH computes Z and counts it.
func (k *countingKA) ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	k.n.Add(1)
	return k.key.ECDH(ctx, peer)
}
