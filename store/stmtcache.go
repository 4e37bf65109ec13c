package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
)

// maxCachedStmts bounds the prepared statements one SQLite handle keeps.
// The store's SQL is fixed text apart from a few IN lists and multi-row
// inserts whose shape follows a bounded batch size, so the bound is only a
// guard; queries beyond it run unprepared, as before the cache.
const maxCachedStmts = 1024

// errStmtCacheClosed is returned when a statement is needed after Close.
var errStmtCacheClosed = errors.New("store: statement cache closed")

// sqliteDB is a SQLite *sql.DB that keeps one prepared statement per query
// text. modernc.org/sqlite parses and plans every statement it is given
// anew, which cost the router about a fifth of its CPU; a *sql.Stmt is
// prepared once per connection (database/sql prepares it lazily on each
// connection of the pool) and reused.
//
// Outside a transaction the methods that sqlConn names use the cached
// statement, preparing it on first use. Inside a transaction (see
// sqliteDBTx) a cached statement is bound to the transaction's connection
// with Tx.StmtContext, which reuses the connection's prepared statement; a
// query not yet cached runs unprepared and is prepared after the
// transaction ends (preparing it during the transaction would need a
// second connection, and the writer has only one).
type sqliteDB struct {
	*sql.DB

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]struct{}
	closed  bool
}

func newSQLiteDB(db *sql.DB) *sqliteDB {
	return &sqliteDB{DB: db, stmts: map[string]*sql.Stmt{}, pending: map[string]struct{}{}}
}

// cacheable reports whether q is a single data statement worth preparing:
// schema changes and multi-statement scripts (migrations) run once and are
// left out.
func cacheable(q string) bool {
	q = strings.TrimSpace(q)
	q = strings.TrimSuffix(q, ";")
	if strings.Contains(q, ";") {
		return false
	}
	i := strings.IndexAny(q, " \t\r\n(")
	if i < 0 {
		return false
	}
	switch strings.ToUpper(q[:i]) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		return true
	}
	return false
}

// lookup returns the cached statement for q, or nil.
func (c *sqliteDB) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[q]
}

// stmt returns the cached statement for q, preparing it if needed; nil
// (and no error) when q is not to be cached. It must not be called while
// the caller holds a transaction on the same handle.
func (c *sqliteDB) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errStmtCacheClosed
	}
	if s, ok := c.stmts[q]; ok {
		c.mu.Unlock()
		return s, nil
	}
	full := len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if full || !cacheable(q) {
		return nil, nil
	}
	s, err := c.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		s.Close()
		return nil, errStmtCacheClosed
	}
	if old, ok := c.stmts[q]; ok {
		// Another goroutine prepared it meanwhile.
		s.Close()
		return old, nil
	}
	c.stmts[q] = s
	delete(c.pending, q)
	return s, nil
}

// later records q, seen inside a transaction, for preparePending.
func (c *sqliteDB) later(q string) {
	if !cacheable(q) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.stmts[q]; !ok && len(c.stmts)+len(c.pending) < maxCachedStmts {
		c.pending[q] = struct{}{}
	}
}

// preparePending prepares the queries first seen inside a transaction. It
// is called once the transaction has ended; a query that fails to prepare
// (its context ended, or a table it names is gone) is dropped and tried
// again the next time it is seen.
func (c *sqliteDB) preparePending(ctx context.Context) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	qs := make([]string, 0, len(c.pending))
	for q := range c.pending {
		qs = append(qs, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range qs {
		_, _ = c.stmt(ctx, q) //nolint:errcheck // an optimisation only: the query still runs unprepared
	}
}

// ExecContext runs q through its cached statement.
func (c *sqliteDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.DB.ExecContext(ctx, q, args...)
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext runs q through its cached statement.
func (c *sqliteDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.DB.QueryContext(ctx, q, args...)
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs q through its cached statement. A preparation error
// surfaces from the row's Scan.
func (c *sqliteDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := c.stmt(ctx, q)
	if err != nil || s == nil {
		// Unprepared: the same error, if any, comes back from Scan.
		return c.DB.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// Close closes the cached statements and the database.
func (c *sqliteDB) Close() error {
	c.mu.Lock()
	c.closed = true
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Close())
		delete(c.stmts, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	errs = append(errs, c.DB.Close())
	return errors.Join(errs...)
}

// sqliteDBTx is a transaction on a sqliteDB that uses the handle's cached
// statements.
type sqliteDBTx struct {
	*sql.Tx
	db *sqliteDB
}

// ExecContext runs q in the transaction.
func (t sqliteDBTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.db.lookup(q); s != nil {
		return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	t.db.later(q)
	return t.Tx.ExecContext(ctx, q, args...)
}

// QueryContext runs q in the transaction.
func (t sqliteDBTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := t.db.lookup(q); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	t.db.later(q)
	return t.Tx.QueryContext(ctx, q, args...)
}

// QueryRowContext runs q in the transaction.
func (t sqliteDBTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.db.lookup(q); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	t.db.later(q)
	return t.Tx.QueryRowContext(ctx, q, args...)
}
