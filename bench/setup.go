package bench

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// firstMeterEUI is the first meter's EUI-64.
var firstMeterEUI = smki.MustParseEUI("0012A3FFFE000001")

// world is the system under test, in this process (package inproc's
// assembly): store, CAs, parties, meters, anomaly detector and the router
// service on a loopback mutual-TLS listener, with the bench's recording
// transport and a count of the ACB's key agreements; with Config.Routers
// above 1, more router instances in processes of their own
// (startInstances).
type world struct {
	sys     *inproc.System
	db      *store.DB
	dialect string
	// dsn is the store's DSN, empty for SQLite in dir, the data directory.
	dsn, dir  string
	fleet     *device.Fleet
	meters    []smki.EUI
	svc       *router.Service
	registry  *prometheus.Registry
	transport *recorder
	acbKey    *countingKA
	url       string
	// instances are the router instance processes, urls every router's
	// base URL: this process's first, then the instances' in order.
	instances []*instance
	urls      []string
	files     struct{ cert, key, root string }
	supplier  crypto.Signer
	caller    router.Caller
	counter   atomic.Uint64
	// backends lists the PostgreSQL backends of the bench's database; nil
	// on SQLite.
	backends func() []int
	stop     func() error
	cleanups []func()
}

// close stops the system and removes what setup made.
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

// setup starts the system (inproc.Start) on a fresh store in dir: the
// SMKI and DCCKI ceremonies, the default parties with their organisation
// and DCCKI client certificates, cfg.Meters generated meters trusting the
// ACB and the supplier, the DCC thresholds, and the router listening on
// loopback.
func setup(ctx context.Context, cfg Config, dir string) (_ *world, err error) {
	w := &world{acbKey: &countingKA{}, registry: prometheus.NewRegistry(), dir: dir}
	w.counter.Store(uint64(time.Now().UnixMilli())) // GBCS counters follow the clock in milliseconds
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	dsn, admin, dropSchema, err := freshStore(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	if dropSchema != nil {
		w.cleanups = append(w.cleanups, dropSchema)
	}
	w.dsn = dsn
	// The service logs as "serve router" does: JSON records at info level,
	// formatted for every command and thrown away.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	icfg := inproc.Config{DataDir: dir, StoreDSN: dsn, Meters: cfg.Meters, GenerateMeters: true, FirstMeter: firstMeterEUI,
		Transport: func(f *device.Fleet) (router.Transport, error) {
			w.transport = newRecorder(inproc.NewFleetTransport(f))
			return w.transport, nil
		},
		WrapACBKey: func(k router.KeyAgreement) router.KeyAgreement {
			w.acbKey.key = k
			return w.acbKey
		},
		Registry: w.registry, RouterAddr: "127.0.0.1:0", Logger: log,
		// DCC thresholds high enough never to trip: every command is
		// counted against both.
		Thresholds: []anomaly.Threshold{
			{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: ThresholdLimit, Window: time.Hour},
			{Scope: anomaly.ScopeUserTotal, Limit: ThresholdLimit, Window: time.Hour},
		}}
	// Every goroutine the system starts inherits the label, so the profile
	// tells the service's CPU time from an in-process client's.
	pprof.Do(ctx, pprof.Labels("component", ComponentRouter), func(ctx context.Context) {
		w.sys, err = inproc.Start(ctx, icfg)
	})
	if err != nil {
		return nil, fmt.Errorf("starting the system: %w", err)
	}
	w.stop = w.sys.Close
	sup := w.sys.Party(inproc.PartySupplier)
	switch {
	case sup == nil || sup.DS == nil || sup.TLSCertFile == "":
		return nil, fmt.Errorf("%w: the system has no supplier with a signing key and a DCCKI client certificate", ErrConfig)
	case w.transport == nil || w.acbKey.key == nil:
		return nil, fmt.Errorf("%w: the system did not take the bench's transport and ACB key wrapper", ErrConfig)
	case w.sys.RouterURL == "":
		return nil, fmt.Errorf("%w: the router is not listening", ErrConfig)
	}
	w.db, w.dialect = w.sys.DB, w.sys.DB.Dialect()
	w.fleet, w.meters, w.svc, w.url = w.sys.Fleet, w.sys.Meters, w.sys.Router, w.sys.RouterURL
	w.urls = []string{w.url}
	w.supplier, w.caller = sup.DS, router.Caller{EUI: sup.EUI, Role: sup.UserRole}
	w.files.cert, w.files.key, w.files.root = sup.TLSCertFile, sup.TLSKeyFile, w.sys.DCCKIRootFile
	if len(w.meters) != cfg.Meters {
		return nil, fmt.Errorf("%w: the system has %d meters, want %d", ErrConfig, len(w.meters), cfg.Meters)
	}
	if admin != "" {
		if err := w.watchBackends(ctx, admin); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// ThresholdLimit is the limit of the bench's anomaly thresholds: far above
// any run, so nothing is quarantined, yet every command is counted.
const ThresholdLimit = 10_000_000

// freshStore returns the DSN of an empty store: empty for SQLite in the
// data directory, spec itself for another SQLite DSN; for PostgreSQL, a
// new schema in the database spec names, dropped by the returned function.
//
// For PostgreSQL it also returns the DSN of a plain connection (without
// the pool's parameters) for the bench's own queries.
func freshStore(ctx context.Context, spec string) (dsn, admin string, drop func(), err error) {
	if spec == "" {
		return "", "", nil, nil
	}
	if !isPostgres(spec) {
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

// isPostgres reports whether the store DSN names PostgreSQL.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
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
