package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"runtime"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sqliteBusyTimeoutMS is how long a SQLite connection waits for a lock held
// by another process before failing with SQLITE_BUSY. Within one process the
// single writer connection already serialises writers.
const sqliteBusyTimeoutMS = 10000

// openSQLite opens path with one writer connection (WAL mode, foreign keys,
// BEGIN IMMEDIATE transactions) and a small pool of read-only connections.
func openSQLite(ctx context.Context, path string) (*DB, error) {
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite derives from it, are private to the owner.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: opening SQLite file: %w", err)
	}
	f.Close()

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	common.Add("_pragma", "foreign_keys(1)")

	w := url.Values{}
	for k, v := range common {
		w[k] = append([]string(nil), v...)
	}
	w.Add("_pragma", "journal_mode(WAL)")
	// FULL, not WAL's usual NORMAL: a commit must survive a power cut, not
	// only a crash, because callers report success on it (DESIGN.md
	// principle 4: nothing accepted is lost).
	w.Add("_pragma", "synchronous(FULL)")
	w.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: opening SQLite %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: opening SQLite %s: %w", path, err)
	}

	r := url.Values{}
	for k, v := range common {
		r[k] = append([]string(nil), v...)
	}
	r.Add("_pragma", "query_only(1)")
	reader, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: opening SQLite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	return newDB(&DB{dialect: DialectSQLite, writer: newSQLiteDB(writer), reader: newSQLiteDB(reader)}), nil
}

// openPostgres opens a pgx pool on the PostgreSQL URL.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the DSN, and with it a password.
		return nil, fmt.Errorf("%w: cannot parse PostgreSQL DSN", ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL %s@%s:%d/%s: %w",
			cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return newDB(&DB{dialect: DialectPostgres, pool: pool}), nil
}
