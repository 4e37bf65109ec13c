package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dbtx is what the query code needs: a connection pool or a transaction, on
// either backend. SQL is written once with $1-style placeholders, which both
// SQLite and PostgreSQL accept. Arguments of type time.Time are stored as
// TIMESTAMPTZ on PostgreSQL and as INTEGER Unix microseconds on SQLite (the
// zero time as NULL); scan them into a *timeCol.
type dbtx interface {
	exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	query(ctx context.Context, query string, args ...any) (rows, error)
	queryRow(ctx context.Context, query string, args ...any) row
}

// rows is a result set; Close may be called more than once.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row is a single-row result; Scan returns errNoRows when there is none.
type row interface {
	Scan(dest ...any) error
}

// errNoRows is what row.Scan returns on both backends when nothing matched.
var errNoRows = errors.New("store: no rows")

// timeCol scans a nullable time column on either backend into a UTC
// time.Time with microsecond precision (zero for NULL).
type timeCol struct{ t time.Time }

// Scan implements sql.Scanner; pgx uses it too.
func (c *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		c.t = time.Time{}
	case int64:
		c.t = time.UnixMicro(v).UTC()
	case time.Time:
		c.t = v.UTC().Truncate(time.Microsecond)
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

// dbTime normalises a time for storage: UTC, microsecond precision, which is
// what both backends keep.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// --- SQLite (database/sql) ---

// sqlConn is satisfied by *sql.DB and *sql.Tx.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqliteTx struct{ c sqlConn }

func sqliteArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			if v.IsZero() {
				out[i] = nil
			} else {
				out[i] = v.UnixMicro()
			}
		case int:
			out[i] = int64(v)
		default:
			out[i] = a
		}
	}
	return out
}

func (s sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.c.ExecContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := s.c.QueryContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (s sqliteTx) queryRow(ctx context.Context, q string, args ...any) row {
	return sqlRow{s.c.QueryRowContext(ctx, q, sqliteArgs(args)...)}
}

type sqlRows struct{ *sql.Rows }

// Close closes the rows; the error, if any, also surfaces from Err.
func (r sqlRows) Close() { r.Rows.Close() }

type sqlRow struct{ r *sql.Row }

// Scan scans the row, mapping sql.ErrNoRows to errNoRows.
func (r sqlRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}

// --- PostgreSQL (pgx) ---

// pgConn is satisfied by *pgxpool.Pool and pgx.Tx.
type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgTx struct{ c pgConn }

func pgArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if v, ok := a.(time.Time); ok {
			if v.IsZero() {
				out[i] = nil
			} else {
				out[i] = dbTime(v)
			}
			continue
		}
		out[i] = a
	}
	return out
}

func (p pgTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.c.Exec(ctx, q, pgArgs(args)...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (p pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := p.c.Query(ctx, q, pgArgs(args)...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (p pgTx) queryRow(ctx context.Context, q string, args ...any) row {
	return pgRow{p.c.QueryRow(ctx, q, pgArgs(args)...)}
}

type pgRow struct{ r pgx.Row }

// Scan scans the row, mapping pgx.ErrNoRows to errNoRows.
func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}

// --- choosing a connection ---

// read returns the handle for queries outside a transaction.
func (db *DB) read() dbtx {
	if db.pool != nil {
		return db.withTiming(pgTx{db.pool})
	}
	return db.withTiming(sqliteTx{db.reader})
}

// inTx runs fn in one transaction, committing if it returns nil and rolling
// back otherwise. On SQLite the transaction starts with BEGIN IMMEDIATE on
// the single writer connection, so it holds the write lock from the start.
// fn must do all its work through tx: on SQLite, db.write() inside fn waits
// for the connection fn itself holds, forever.
func (db *DB) inTx(ctx context.Context, fn func(tx dbtx) error) (err error) {
	start := time.Now()
	defer func() { db.observeTx(false, start, err == nil) }()
	if db.pool != nil {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("store: beginning transaction: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
		if err := fn(pgTx{tx}); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("store: committing: %w", classify(err))
		}
		return nil
	}
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: beginning transaction: %w", err)
	}
	defer db.writer.preparePending(context.WithoutCancel(ctx))
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := fn(sqliteTx{sqliteDBTx{tx, db.writer}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: committing: %w", classify(err))
	}
	return nil
}

// inSnapshot runs fn in a read-only transaction that sees one consistent
// snapshot of the database (REPEATABLE READ on PostgreSQL; a WAL read
// transaction on SQLite), so a long read is not confused by concurrent
// writers.
func (db *DB) inSnapshot(ctx context.Context, fn func(tx dbtx) error) error {
	defer db.observeTx(true, time.Now(), true)
	if db.pool != nil {
		tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return fmt.Errorf("store: beginning read transaction: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
		return fn(pgTx{tx})
	}
	tx, err := db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: beginning read transaction: %w", err)
	}
	defer db.reader.preparePending(context.WithoutCancel(ctx))
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(sqliteTx{sqliteDBTx{tx, db.reader}})
}

// constraint kinds recognised by classify.
var (
	errUnique     = errors.New("unique constraint violated")
	errForeignKey = errors.New("foreign key constraint violated")
)

// classify maps backend constraint errors to errUnique or errForeignKey
// (joined with the original), leaving others unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return errors.Join(errUnique, err)
		case "23503":
			return errors.Join(errForeignKey, err)
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errors.Join(errUnique, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errors.Join(errForeignKey, err)
		}
	}
	return err
}
