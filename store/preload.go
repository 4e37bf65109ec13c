package store

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file fills a store with the history of a router that has served for
// a while, fast, for benchmarks ("metertrust bench router --preload") and
// tests. Nothing in a deployment calls it.

// PreloadSpec says what Preload writes. Zero counts write nothing of that
// kind; zero EUIs, CA names and Rate take the defaults documented on each
// field.
type PreloadSpec struct {
	// Devices is the number of devices added to the router's registry,
	// each with its own key-agreement and digital-signing P-256 keys, its
	// supplier and network operator among the loaded users.
	Devices int
	// Users is the number of DCC users (organisations). Every tenth is an
	// electricity distributor (role ED, remote party role 3), the others
	// import suppliers (IS, 2). Each gets a digital-signing and a
	// key-agreement organisation certificate and, when TLSCA is set, a
	// DCCKI client certificate, in the certificates table (the rows the
	// router reads for a caller's signing certificate).
	Users int
	// Commands is the number of router commands, each accepted, forwarded
	// and responded: its router_commands row (state responded, with its
	// response), the response queued in its caller's delivery queue, and
	// its pair's counter. Command i goes to device i mod Devices from that
	// device's supplier.
	Commands int
	// AuditEntries is the number of hash-chained audit entries appended
	// after the current chain head, describing the commands in order: each
	// command gets AuditEntries/Commands of them (the first
	// AuditEntries mod Commands one more), in the order the router writes
	// them: router.command.accepted, router.command.forwarded,
	// router.response.received, then again.
	AuditEntries int
	// FirstDevice and FirstUser are the EUI-64s of the first device and the
	// first user; the others follow in order. Defaults 0012A3FFFE800000
	// and 90B3D51F31000000.
	FirstDevice, FirstUser string
	// OrgCA and TLSCA name the stored CAs recorded as issuing the users'
	// organisation and DCCKI client certificates (default "oca"; TLSCA ""
	// loads no client certificates). The certificates are real X.509 DER
	// with the users' EUIs and keys but are signed by a key Preload throws
	// away, so they do not chain to the store's roots: a command signed as
	// a loaded user fails its path check.
	OrgCA, TLSCA string
	// Until is when the loaded history ends (required: the store has no
	// clock). The commands are spread evenly over the Commands/Rate
	// seconds before it, so with a margin of an hour none falls in an
	// anomaly window (no anomaly events are loaded: a store prunes them
	// after the longest window).
	Until time.Time
	// Rate is commands per second of the loaded history; default 100. It
	// may not exceed 1,000,000, nor 1,000 × Devices, so that a pair's
	// millisecond counters rise.
	Rate float64
}

// PreloadStats says what Preload wrote and how long each part took.
type PreloadStats struct {
	Devices      int `json:"devices"`
	Users        int `json:"users"`
	Certificates int `json:"certificates"`
	Commands     int `json:"commands"`
	Deliveries   int `json:"deliveries"`
	Counters     int `json:"counters"`
	AuditEntries int `json:"auditEntries"`
	// DevicesTook covers the devices' keys and rows; UsersTook the users'
	// certificates; CommandsTook the commands, deliveries, counters and
	// audit entries; FinishTook the closing maintenance (a WAL checkpoint
	// on SQLite, VACUUM ANALYZE on PostgreSQL).
	DevicesTook  time.Duration `json:"devicesNs"`
	UsersTook    time.Duration `json:"usersNs"`
	CommandsTook time.Duration `json:"commandsNs"`
	FinishTook   time.Duration `json:"finishNs"`
}

// Took is the whole preload's time.
func (s PreloadStats) Took() time.Duration {
	return s.DevicesTook + s.UsersTook + s.CommandsTook + s.FinishTook
}

// Defaults of PreloadSpec.
const (
	DefaultPreloadFirstDevice = "0012A3FFFE800000"
	DefaultPreloadFirstUser   = "90B3D51F31000000"
	DefaultPreloadRate        = 100.0
)

// The loaded commands: all disconnects (DUIS 7.2, GBCS ECS43, critical),
// as the router's bench sends.
const (
	preloadRef     = "7.2"
	preloadCode    = 0x0050
	preloadMessage = 146 // bytes of a MAC'd ECS43 as forwarded
	preloadResp    = 120 // bytes of its response
)

// preloadTxCommands bounds the commands (with their deliveries and audit
// entries) written in one transaction.
const preloadTxCommands = 50_000

func (s *PreloadSpec) normalise() error {
	if s.FirstDevice == "" {
		s.FirstDevice = DefaultPreloadFirstDevice
	}
	if s.FirstUser == "" {
		s.FirstUser = DefaultPreloadFirstUser
	}
	if s.OrgCA == "" {
		s.OrgCA = "oca"
	}
	if s.Rate == 0 {
		s.Rate = DefaultPreloadRate
	}
	switch {
	case s.Devices < 0 || s.Users < 0 || s.Commands < 0 || s.AuditEntries < 0:
		return fmt.Errorf("%w: preload counts must not be negative", ErrInvalid)
	case !euiPattern.MatchString(s.FirstDevice) || !euiPattern.MatchString(s.FirstUser):
		return fmt.Errorf("%w: preload: first device %q and first user %q must be 16 upper-case hex digits", ErrInvalid, s.FirstDevice, s.FirstUser)
	case s.Commands > 0 && (s.Devices == 0 || preloadSuppliers(s.Users) == 0):
		return fmt.Errorf("%w: preload: commands need devices and at least one supplier among the users", ErrInvalid)
	case s.AuditEntries > 0 && s.Commands == 0:
		return fmt.Errorf("%w: preload: audit entries describe commands: load some", ErrInvalid)
	case s.Until.IsZero():
		return fmt.Errorf("%w: preload: no end time for the history", ErrInvalid)
	case s.Rate <= 0 || s.Rate > 1e6 || (s.Devices > 0 && s.Rate > 1000*float64(s.Devices)):
		return fmt.Errorf("%w: preload: rate %g commands/s must be positive, at most 1,000,000 and at most 1,000 per device", ErrInvalid, s.Rate)
	}
	for _, n := range []struct {
		first string
		count int
	}{{s.FirstDevice, s.Devices}, {s.FirstUser, s.Users}} {
		v, _ := strconv.ParseUint(n.first, 16, 64)
		if v+uint64(n.count) < v {
			return fmt.Errorf("%w: preload: %d EUIs from %s overflow", ErrInvalid, n.count, n.first)
		}
	}
	return nil
}

// preloadSuppliers is how many of n loaded users are suppliers.
func preloadSuppliers(n int) int { return n - n/10 }

// preloadPlan derives every loaded row from its index, so that the parts
// agree without holding the history in memory.
type preloadPlan struct {
	spec                PreloadSpec
	firstDev, firstUser uint64
	start               time.Time     // the first command's acceptance
	step                time.Duration // between two commands
}

func preloadEUI(v uint64) string { return fmt.Sprintf("%016X", v) }

func (p *preloadPlan) device(d int) string { return preloadEUI(p.firstDev + uint64(d)) }
func (p *preloadPlan) user(u int) string   { return preloadEUI(p.firstUser + uint64(u)) }

// Users u with u mod 10 = 9 are distributors; the others suppliers.
func preloadIsSupplier(u int) bool { return u%10 != 9 }

// supplier returns the index of the k-th supplier.
func preloadNthSupplier(k int) int { return k + k/9 }

// supplierOf and operatorOf return the user indexes of device d's
// supplier and network operator (-1 for none).
func (p *preloadPlan) supplierOf(d int) int {
	return preloadNthSupplier(d % preloadSuppliers(p.spec.Users))
}

func (p *preloadPlan) operatorOf(d int) int {
	n := p.spec.Users / 10
	if n == 0 {
		return -1
	}
	return 10*(d%n) + 9
}

func (p *preloadPlan) acceptedAt(i int) time.Time {
	return p.start.Add(time.Duration(i) * p.step)
}

// counter is command i's originator counter: the clock in milliseconds,
// as GBCS counters are kept.
func (p *preloadPlan) counter(i int) uint64 { return uint64(p.acceptedAt(i).UnixMilli()) }

// After acceptance: forwarded, then the response, as a meter on a CSP's
// network answers.
const (
	preloadForwardedAfter = 20 * time.Millisecond
	preloadRespondedAfter = 1500 * time.Millisecond
)

// Preload fills the store with a router's history, for benchmarks and
// tests only: spec.Devices registered devices, spec.Users DCC users with
// their certificates, spec.Commands accepted-and-responded commands with
// their deliveries and counters, and spec.AuditEntries audit entries
// chained after the current head, so that VerifyAudit still passes. It
// writes with multi-row INSERTs (COPY on PostgreSQL) in large
// transactions and computes the chain hashes in Go as AppendAudit does.
//
// The rows are what the router reads and writes (real EUIs, keys, states
// and times), but messages and responses are random bytes, not GBCS, and
// the certificates do not chain to the store's CAs (see PreloadSpec). The
// loaded EUIs must be new to the store: a device or command already there
// fails the load with an error wrapping ErrExists, leaving what earlier
// transactions wrote. The audit entries are appended in the same
// transactions as the commands they describe, under the chain head's lock,
// so concurrent appenders are safe.
func (db *DB) Preload(ctx context.Context, spec PreloadSpec) (PreloadStats, error) {
	var st PreloadStats
	if err := spec.normalise(); err != nil {
		return st, err
	}
	p := &preloadPlan{spec: spec}
	p.firstDev, _ = strconv.ParseUint(spec.FirstDevice, 16, 64)
	p.firstUser, _ = strconv.ParseUint(spec.FirstUser, 16, 64)
	p.step = max(time.Duration(float64(time.Second)/spec.Rate).Truncate(time.Microsecond), time.Microsecond)
	p.start = dbTime(spec.Until.Add(-time.Duration(spec.Commands) * p.step))

	if db.pool == nil {
		// A large page cache for the load: the command IDs are random, so
		// their index is written all over; the usual cache is put back
		// after, so that what is measured next runs as a deployment does.
		var pages int64
		if err := db.writer.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&pages); err != nil {
			return st, fmt.Errorf("store: preload: reading cache size: %w", err)
		}
		if _, err := db.writer.ExecContext(ctx, `PRAGMA cache_size = -524288`); err != nil {
			return st, fmt.Errorf("store: preload: setting cache size: %w", err)
		}
		defer db.writer.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = `+strconv.FormatInt(pages, 10)) //nolint:errcheck // best effort
	}

	t := time.Now()
	if err := db.preloadDevices(ctx, p, &st); err != nil {
		return st, err
	}
	st.DevicesTook = time.Since(t)
	t = time.Now()
	if err := db.preloadUsers(ctx, p, &st); err != nil {
		return st, err
	}
	st.UsersTook = time.Since(t)
	t = time.Now()
	if err := db.preloadCommands(ctx, p, &st); err != nil {
		return st, err
	}
	st.CommandsTook = time.Since(t)
	t = time.Now()
	if err := db.preloadFinish(ctx); err != nil {
		return st, err
	}
	st.FinishTook = time.Since(t)
	return st, nil
}

// preloadFinish leaves the store as a long-running one would be: on SQLite
// the WAL checkpointed into the database file; on PostgreSQL the loaded
// tables vacuumed and analysed, so that autovacuum does not start on them
// during a measurement and the planner knows their sizes.
func (db *DB) preloadFinish(ctx context.Context) error {
	if db.pool == nil {
		if _, err := db.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("store: preload: checkpointing: %w", err)
		}
		return nil
	}
	if _, err := db.pool.Exec(ctx, `VACUUM (ANALYZE) router_devices, certificates, router_commands, router_deliveries,
		router_delivery_heads, router_counters, audit_log, audit_head`); err != nil {
		return fmt.Errorf("store: preload: vacuuming: %w", err)
	}
	return nil
}

// preloadTx is one load transaction on either backend.
type preloadTx struct {
	db *DB
	// SQLite
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// PostgreSQL
	pg pgx.Tx
}

func (db *DB) beginPreloadTx(ctx context.Context) (*preloadTx, error) {
	b := &preloadTx{db: db, stmts: map[string]*sql.Stmt{}}
	var err error
	if db.pool != nil {
		b.pg, err = db.pool.Begin(ctx)
	} else {
		b.tx, err = db.writer.BeginTx(ctx, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("store: preload: beginning transaction: %w", err)
	}
	return b, nil
}

func (b *preloadTx) rollback(ctx context.Context) {
	for _, s := range b.stmts {
		s.Close()
	}
	b.stmts = map[string]*sql.Stmt{}
	if b.pg != nil {
		b.pg.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
		return
	}
	b.tx.Rollback() //nolint:errcheck // no-op after Commit
}

func (b *preloadTx) commit(ctx context.Context) error {
	for _, s := range b.stmts {
		s.Close()
	}
	b.stmts = map[string]*sql.Stmt{}
	var err error
	if b.pg != nil {
		err = b.pg.Commit(ctx)
	} else {
		err = b.tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("store: preload: committing: %w", classify(err))
	}
	return nil
}

func (b *preloadTx) dbtx() dbtx {
	if b.pg != nil {
		return pgTx{b.pg}
	}
	return sqliteTx{b.tx}
}

// preloadMaxParams bounds one multi-row insert's parameters under SQLite's
// limit of 32,766.
const preloadMaxParams = 32_000

// insert writes rows into table: COPY on PostgreSQL; on SQLite, multi-row
// INSERTs of a fixed size, each shape prepared once per transaction.
func (b *preloadTx) insert(ctx context.Context, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if b.pg != nil {
		if _, err := b.pg.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
			return preloadFailed(table, len(rows), err)
		}
		return nil
	}
	per := min(1000, preloadMaxParams/len(cols))
	args := make([]any, 0, per*len(cols))
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		q := preloadInsertSQL(table, cols, len(chunk), false)
		s, ok := b.stmts[q]
		if !ok {
			var err error
			if s, err = b.tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("store: preload: preparing insert into %s: %w", table, err)
			}
			b.stmts[q] = s
		}
		args = args[:0]
		for _, r := range chunk {
			args = append(args, sqliteArgs(r)...)
		}
		if _, err := s.ExecContext(ctx, args...); err != nil {
			return preloadFailed(table, len(chunk), err)
		}
	}
	return nil
}

// preloadFailed wraps a failed insert, ErrExists for a row already
// stored.
func preloadFailed(table string, n int, err error) error {
	if err = classify(err); errors.Is(err, errUnique) {
		return fmt.Errorf("store: preload: inserting into %s: a loaded row is already stored: %w", table, ErrExists)
	}
	return fmt.Errorf("store: preload: inserting %d rows into %s: %w", n, table, err)
}

// preloadInsertSQL returns an INSERT of n rows. SQLite gets anonymous "?"
// placeholders: modernc.org/sqlite looks each numbered one's name up in a
// list as long as the statement's, which costs the square of the rows.
func preloadInsertSQL(table string, cols []string, n int, numbered bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	p := 1
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for j := range cols {
			if j > 0 {
				sb.WriteString(", ")
			}
			if numbered {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(p))
				p++
			} else {
				sb.WriteByte('?')
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// preloadDevices generates the devices' keys on every core and inserts
// them.
func (db *DB) preloadDevices(ctx context.Context, p *preloadPlan, st *PreloadStats) error {
	n := p.spec.Devices
	if n == 0 {
		return nil
	}
	at := p.start.Add(-24 * time.Hour)
	const perTx = 50_000
	for first := 0; first < n; first += perTx {
		count := min(perTx, n-first)
		rows := make([][]any, count)
		var next sync.Mutex
		cursor := 0
		var wg sync.WaitGroup
		errs := make([]error, runtime.GOMAXPROCS(0))
		for w := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					next.Lock()
					i := cursor
					cursor += 256
					next.Unlock()
					if i >= count || ctx.Err() != nil {
						return
					}
					for j := i; j < min(i+256, count); j++ {
						ka, err := ecdh.P256().GenerateKey(rand.Reader)
						if err != nil {
							errs[w] = err
							return
						}
						ds, err := ecdh.P256().GenerateKey(rand.Reader)
						if err != nil {
							errs[w] = err
							return
						}
						d := first + j
						op := ""
						if o := p.operatorOf(d); o >= 0 {
							op = p.user(o)
						}
						rows[j] = []any{p.device(d), ka.PublicKey().Bytes(), ds.PublicKey().Bytes(), p.user(p.supplierOf(d)), op, at}
					}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(append(errs, ctx.Err())...); err != nil {
			return fmt.Errorf("store: preload: generating device keys: %w", err)
		}
		b, err := db.beginPreloadTx(ctx)
		if err != nil {
			return err
		}
		if err := b.insert(ctx, "router_devices", []string{"eui", "ka_public", "ds_public", "supplier", "network_operator", "updated_at"}, rows); err != nil {
			b.rollback(ctx)
			return err
		}
		if err := b.commit(ctx); err != nil {
			return err
		}
		st.Devices += count
	}
	return nil
}

// preloadUsers issues each user's certificates from a throwaway issuer
// and stores them with PutCertificates.
func (db *DB) preloadUsers(ctx context.Context, p *preloadPlan, st *PreloadStats) error {
	if p.spec.Users == 0 {
		return nil
	}
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("store: preload: issuer key: %w", err)
	}
	issuer := &x509.Certificate{Subject: pkix.Name{CommonName: "metertrust preload issuer (not a CA of this store)"}}
	notBefore := p.start.Add(-30 * 24 * time.Hour).Truncate(time.Second)
	var batch []Certificate
	flush := func() error {
		if err := db.SMKI().PutCertificates(ctx, batch...); err != nil {
			return fmt.Errorf("store: preload: storing user certificates: %w", err)
		}
		st.Certificates += len(batch)
		batch = batch[:0]
		return nil
	}
	for u := range p.spec.Users {
		role, userRole := 2, "IS"
		if !preloadIsSupplier(u) {
			role, userRole = 3, "ED"
		}
		type certSpec struct {
			ca, kind, usage, userRole string
			role                      int
			ku                        x509.KeyUsage
			life                      time.Duration
		}
		specs := []certSpec{
			{p.spec.OrgCA, KindOrg, UsageDS, "", role, x509.KeyUsageDigitalSignature, 10 * 365 * 24 * time.Hour},
			{p.spec.OrgCA, KindOrg, UsageKA, "", role, x509.KeyUsageKeyAgreement, 10 * 365 * 24 * time.Hour},
		}
		if p.spec.TLSCA != "" {
			specs = append(specs, certSpec{p.spec.TLSCA, KindTLSClient, UsageTLS, userRole, -1, x509.KeyUsageDigitalSignature, 2 * 365 * 24 * time.Hour})
		}
		for _, cs := range specs {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return fmt.Errorf("store: preload: user key: %w", err)
			}
			serial := make([]byte, 16)
			if _, err := rand.Read(serial); err != nil {
				return err
			}
			serial[0] &= 0x7f
			serial[0] |= 0x01 // positive, and no leading zero byte
			tmpl := &x509.Certificate{
				SerialNumber: new(big.Int).SetBytes(serial),
				Subject:      pkix.Name{CommonName: p.user(u), Organization: []string{"preloaded DCC user " + strconv.Itoa(u)}},
				NotBefore:    notBefore, NotAfter: notBefore.Add(cs.life), KeyUsage: cs.ku,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
			if err != nil {
				return fmt.Errorf("store: preload: user certificate: %w", err)
			}
			batch = append(batch, Certificate{CA: cs.ca, Serial: serial, Kind: cs.kind, EUI: p.user(u), Role: cs.role, UserRole: cs.userRole,
				Usage: cs.usage, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, DER: der})
		}
		if len(batch) >= 999 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	st.Users = p.spec.Users
	return nil
}

// preloadAudit is one audit entry of a loaded command: its action and how
// long after acceptance it is written.
var preloadAudit = []struct {
	action string
	after  time.Duration
}{
	{"router.command.accepted", 0},
	{"router.command.forwarded", preloadForwardedAfter},
	{"router.response.received", preloadRespondedAfter},
}

// preloadEntry is an audit entry before it is chained.
type preloadEntry struct {
	at                            time.Time
	actor, action, object, detail string
}

var (
	preloadCommandCols  = []string{"id", "caller", "caller_role", "originator", "target", "counter", "code", "service_ref", "critical", "message", "state", "accepted_at", "updated_at", "response", "error"}
	preloadDeliveryCols = []string{"caller", "seq", "command_id", "kind", "body", "detail", "at"}
	preloadAuditCols    = []string{"seq", "at", "actor", "action", "object", "outcome", "details", "prev_hash", "hash"}
)

// preloadCommands writes the commands, their deliveries and audit entries
// in transactions of preloadTxCommands commands, then the delivery heads
// and the counters.
func (db *DB) preloadCommands(ctx context.Context, p *preloadPlan, st *PreloadStats) error {
	n := p.spec.Commands
	if n == 0 {
		return nil
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	rng := mrand.NewChaCha8(seed)
	// Delivery sequence numbers continue each caller's queue.
	heads := map[string]int64{}
	rs, err := db.read().query(ctx, `SELECT caller, seq FROM router_delivery_heads`)
	if err != nil {
		return fmt.Errorf("store: preload: reading delivery heads: %w", err)
	}
	for rs.Next() {
		var c string
		var s int64
		if err := rs.Scan(&c, &s); err != nil {
			rs.Close()
			return fmt.Errorf("store: preload: reading delivery heads: %w", err)
		}
		heads[c] = s
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return fmt.Errorf("store: preload: reading delivery heads: %w", err)
	}
	perCmd, extra := p.spec.AuditEntries/n, p.spec.AuditEntries%n
	for first := 0; first < n; first += preloadTxCommands {
		count := min(preloadTxCommands, n-first)
		cmds := make([][]any, 0, count)
		dels := make([][]any, 0, count)
		var audits []preloadEntry
		touched := map[string]bool{}
		for i := first; i < first+count; i++ {
			var idb [16]byte
			rng.Read(idb[:])
			id := hex.EncodeToString(idb[:])
			msg := make([]byte, preloadMessage+preloadResp)
			rng.Read(msg)
			d := i % p.spec.Devices
			caller, target := p.user(p.supplierOf(d)), p.device(d)
			at := p.acceptedAt(i)
			responded := at.Add(preloadRespondedAfter)
			counter := p.counter(i)
			cmds = append(cmds, []any{id, caller, "IS", caller, target, int64(counter), int64(preloadCode), preloadRef, true,
				msg[:preloadMessage], CommandResponded, at, responded, msg[preloadMessage:], ""})
			heads[caller]++
			touched[caller] = true
			dels = append(dels, []any{caller, heads[caller], id, DeliveryResponse, msg[preloadMessage:], "", responded})
			k := perCmd
			if i < extra {
				k++
			}
			for j := range k {
				a := preloadAudit[j%len(preloadAudit)]
				detail := `{"counter":` + strconv.FormatUint(counter, 10)
				if a.action == "router.command.accepted" {
					detail += `,"detail":"service request ` + preloadRef + `"`
				}
				detail += `,"messageCode":"0x` + fmt.Sprintf("%04X", preloadCode) + `","target":"` + target + `"}`
				audits = append(audits, preloadEntry{at.Add(a.after), caller + "/IS", a.action, id, detail})
			}
		}
		b, err := db.beginPreloadTx(ctx)
		if err != nil {
			return err
		}
		fail := func(err error) error {
			b.rollback(ctx)
			return err
		}
		if err := b.insert(ctx, "router_commands", preloadCommandCols, cmds); err != nil {
			return fail(err)
		}
		if err := b.insert(ctx, "router_deliveries", preloadDeliveryCols, dels); err != nil {
			return fail(err)
		}
		var headRows [][]any
		for c := range touched {
			headRows = append(headRows, []any{c, heads[c]})
		}
		if err := b.upsertHeads(ctx, headRows); err != nil {
			return fail(err)
		}
		if len(audits) > 0 {
			// The chain head, locked until commit (SQLite: the writer's
			// immediate transaction already holds the lock).
			lock := ""
			if db.pool != nil {
				lock = " FOR UPDATE"
			}
			var last int64
			var prev []byte
			if err := b.dbtx().queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+lock).Scan(&last, &prev); err != nil {
				return fail(fmt.Errorf("store: preload: reading the audit chain head: %w", err))
			}
			rows := make([][]any, len(audits))
			for j, a := range audits {
				seq := last + 1 + int64(j)
				at := dbTime(a.at)
				h := auditHash(seq, at, a.actor, a.action, a.object, OutcomeSuccess, []byte(a.detail), prev)
				rows[j] = []any{seq, at, a.actor, a.action, a.object, OutcomeSuccess, a.detail, prev, h}
				prev = h
			}
			if err := b.insert(ctx, "audit_log", preloadAuditCols, rows); err != nil {
				return fail(err)
			}
			if _, err := b.dbtx().exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, last+int64(len(rows)), prev); err != nil {
				return fail(fmt.Errorf("store: preload: moving the audit chain head: %w", err))
			}
		}
		if err := b.commit(ctx); err != nil {
			return err
		}
		st.Commands += count
		st.Deliveries += count
		st.AuditEntries += len(audits)
	}
	return db.preloadCounters(ctx, p, st)
}

// upsertHeads sets the delivery heads of the callers in rows (caller,
// seq).
func (b *preloadTx) upsertHeads(ctx context.Context, rows [][]any) error {
	for start := 0; start < len(rows); start += 500 {
		chunk := rows[start:min(start+500, len(rows))]
		var args []any
		for _, r := range chunk {
			args = append(args, r...)
		}
		q := preloadInsertSQL("router_delivery_heads", []string{"caller", "seq"}, len(chunk), true) +
			` ON CONFLICT (caller) DO UPDATE SET seq = excluded.seq`
		if _, err := b.dbtx().exec(ctx, q, args...); err != nil {
			return fmt.Errorf("store: preload: delivery heads: %w", err)
		}
	}
	return nil
}

// preloadCounters writes each loaded pair's counter: the last command to
// device d is the largest i below Commands with i mod Devices = d.
func (db *DB) preloadCounters(ctx context.Context, p *preloadPlan, st *PreloadStats) error {
	n, devs := p.spec.Commands, p.spec.Devices
	pairs := min(n, devs)
	b, err := db.beginPreloadTx(ctx)
	if err != nil {
		return err
	}
	rows := make([][]any, 0, pairs)
	for d := range pairs {
		last := d + (n-1-d)/devs*devs
		rows = append(rows, []any{p.user(p.supplierOf(d)), p.device(d), int64(p.counter(last))})
	}
	if err := b.insert(ctx, "router_counters", []string{"originator", "target", "last"}, rows); err != nil {
		b.rollback(ctx)
		return err
	}
	if err := b.commit(ctx); err != nil {
		return err
	}
	st.Counters = pairs
	return nil
}
