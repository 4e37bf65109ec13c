// Package store is the persistence layer of metertrust: the certificate
// authorities and their device quotas, every certificate issued (the SMKI
// repository of GBCS section 2 and the SMKI Repository Interface Design
// Specification, looked up by EUI-64, remote party role and key usage), the
// revocation state and CRLs (RFC 5280 section 5), and the hash-chained,
// append-only audit log that the SMKI Certificate Policies ask of a CA
// (audit logging procedures, section 5.4 in their RFC 3647 layout).
//
// One API has two implementations chosen by the DSN given to [Open]: SQLite
// (modernc.org/sqlite, pure Go, one file in the data directory; the default)
// and PostgreSQL (github.com/jackc/pgx/v5 with pgxpool), for running the same
// binary as several processes. Migrations are embedded and applied by [Open];
// on PostgreSQL they run under an advisory lock so that two processes starting
// together do not race.
//
// The store is split by its users, each reaching its part through a view of
// the one [DB]: [DB.SMKI] ([SMKIStore]: CAs, certificates, CRLs; ca.go and
// certificates.go) for the CAs and the repository, [DB.Router]
// ([RouterStore]: device registry, consents, counters, commands with their
// outbox and deliveries, admission; router.go and admit.go) for the router,
// and [DB.Anomaly] ([AnomalyStore]: thresholds, counts, quarantine;
// anomaly.go) for the anomaly detector. Each user declares the small
// interface it needs of its part. The connections, the migrations and the
// one hash-chained audit log ([DB.AppendAudit], which each part also offers)
// are shared.
//
// Private keys are never stored here: a CA row holds only the kms URI naming
// its key (DESIGN.md principle 2). Nor are Z values or derived keys.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/metertrust/metertrust/internal/groupcommit"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Sentinel errors. Every error returned by this package that has one of these
// causes wraps it, so callers test with errors.Is.
var (
	// ErrNotFound means the CA, certificate, CRL or other row asked for does
	// not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a row with the same unique key (a CA name, a
	// certificate's issuer and serial, a CRL number) is already stored.
	ErrExists = errors.New("store: already exists")
	// ErrQuotaExhausted means a batch device CA has no room left for the
	// devices asked for.
	ErrQuotaExhausted = errors.New("store: device quota exhausted")
	// ErrClosed means the CA is closed: its key is destroyed and nothing more
	// may be issued from it or done to it.
	ErrClosed = errors.New("store: CA closed")
	// ErrConflict means the change contradicts the stored state, such as
	// revoking a certificate that is already revoked.
	ErrConflict = errors.New("store: conflicting state")
	// ErrAuditBroken means the audit log's hash chain does not verify: an
	// entry was altered, removed or inserted outside AppendAudit.
	ErrAuditBroken = errors.New("store: audit chain broken")
	// ErrInvalid means an argument is malformed: a missing name, a bad EUI-64,
	// a negative count and the like. The error text names the field.
	ErrInvalid = errors.New("store: invalid argument")
)

// Dialects returned by [DB.Dialect].
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// DataFile is the name of the SQLite database inside a data directory.
const DataFile = "metertrust.db"

// DB is a handle on the store. It is safe for concurrent use by many
// goroutines; on PostgreSQL several processes may share one database.
type DB struct {
	dialect string

	// SQLite: one writer connection (so writers queue in Go instead of
	// failing with SQLITE_BUSY) and a pool of read-only connections.
	// Both keep their prepared statements (stmtcache.go).
	writer *sqliteDB
	reader *sqliteDB

	// PostgreSQL.
	pool *pgxpool.Pool

	// audits group-commits AppendAudit.
	audits groupcommit.Group[*pendingAudit]

	// metrics, set by Instrument, times transactions and statements.
	metrics metricsHolder
}

// newDB finishes a DB opened on either backend.
func newDB(db *DB) *DB {
	db.audits.Commit, db.audits.Max = db.appendAuditGroup, maxAuditGroup
	db.audits.Observe = db.observeGroup(func(m *dbMetrics) (prometheus.Observer, prometheus.Observer) { return m.groupAudit, m.sizeAudit })
	return db
}

// Open opens the store named by dsn and applies any pending migrations.
// A dsn beginning "postgres://" or "postgresql://" selects PostgreSQL (the
// usual libpq URL with pgx's pool_* parameters); "sqlite:/path/x.db",
// "sqlite:///path/x.db" or a plain file path selects SQLite, creating the
// file (mode 0600) if needed.
func Open(ctx context.Context, dsn string) (*DB, error) {
	dialect, target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *DB
	switch dialect {
	case DialectPostgres:
		db, err = openPostgres(ctx, target)
	default:
		db, err = openSQLite(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenDataDir opens (creating if needed) the SQLite store at
// dir/metertrust.db. The directory is created with mode 0700.
func OpenDataDir(ctx context.Context, dir string) (*DB, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty data directory", ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating data directory: %w", err)
	}
	return Open(ctx, filepath.Join(dir, DataFile))
}

// parseDSN splits a DSN into its dialect and the target: the PostgreSQL URL
// unchanged, or the SQLite file path.
func parseDSN(dsn string) (dialect, target string, err error) {
	switch {
	case strings.TrimSpace(dsn) == "":
		return "", "", fmt.Errorf("%w: empty store DSN", ErrInvalid)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return DialectPostgres, dsn, nil
	}
	path := dsn
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		path = rest
		if p, ok := strings.CutPrefix(rest, "//"); ok {
			// sqlite:///abs/path or sqlite://relative/path
			path = p
		}
	} else if i := strings.Index(dsn, "://"); i > 0 {
		return "", "", fmt.Errorf("%w: unsupported store DSN scheme %q (want postgres://, postgresql://, sqlite: or a file path)", ErrInvalid, dsn[:i])
	}
	switch {
	case path == "":
		return "", "", fmt.Errorf("%w: SQLite DSN %q has no file path", ErrInvalid, dsn)
	case strings.ContainsAny(path, "?#\x00"):
		return "", "", fmt.Errorf("%w: SQLite file path %q must not contain '?', '#' or NUL", ErrInvalid, path)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return "", "", fmt.Errorf("%w: SQLite DSN %q must name a plain file (the store opens it with several connections)", ErrInvalid, dsn)
	}
	return DialectSQLite, path, nil
}

// Close releases the store's connections.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
		return nil
	}
	var errs []error
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}

// Dialect reports the backend: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// SMKIStore is the SMKI part of the store (the certificate authorities and their repository): CA records and
// their device quotas, the certificates they issued with their revocation
// state, and CRLs. Its users (package ca, the repository, the router's
// certificate look-ups) declare the small interfaces they need of it.
type SMKIStore struct{ db *DB }

// SMKI returns the store's SMKI part.
func (db *DB) SMKI() *SMKIStore { return &SMKIStore{db} }

// AppendAudit appends to the store's one audit chain (see DB.AppendAudit).
func (s *SMKIStore) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	return s.db.AppendAudit(ctx, e)
}

// RouterStore is the router's part of the store: its device registry and
// consents, the replay counters, commands with their outbox and the callers'
// deliveries, CIN challenges, and admission (Admit). Package router declares
// the small interfaces it needs of it.
type RouterStore struct{ db *DB }

// Router returns the store's router part.
func (db *DB) Router() *RouterStore { return &RouterStore{db} }

// AppendAudit appends to the store's one audit chain (see DB.AppendAudit).
func (s *RouterStore) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	return s.db.AppendAudit(ctx, e)
}

// Dialect reports the backend: "sqlite" or "postgres".
func (s *RouterStore) Dialect() string { return s.db.dialect }

// FindCertificates reads the SMKI repository's certificates for the router
// (see SMKIStore.FindCertificates): its registry looks up the devices' and
// users' certificates.
func (s *RouterStore) FindCertificates(ctx context.Context, q CertQuery) ([]Certificate, error) {
	return s.db.SMKI().FindCertificates(ctx, q)
}
