package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestCacheable(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{"SELECT 1", true},
		{"  select x FROM t WHERE a = $1;", true},
		{"INSERT INTO t (a) VALUES ($1)", true},
		{"UPDATE t SET a = 1", true},
		{"DELETE FROM t", true},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true},
		{"CREATE TABLE t (a INTEGER)", false},
		{"DROP TABLE t", false},
		{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", false},
		{"", false},
		{"SELECT", false},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := cacheable(tt.q); got != tt.want {
				t.Errorf("cacheable(%q) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// openStmtCacheDB opens a bare SQLite store (no migrations) with one table.
func openStmtCacheDB(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := openSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.inTx(ctx, func(tx dbtx) error {
		_, err := tx.exec(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func (c *sqliteDB) cached(q string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.stmts[q]
	return ok
}

func TestStmtCacheTransactions(t *testing.T) {
	ctx := context.Background()
	const (
		ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
		get = `SELECT v FROM kv WHERE k = $1`
	)
	db := openStmtCacheDB(t)
	if db.writer.cached(`CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`) {
		t.Error("schema statement was cached")
	}

	// First seen inside a transaction: runs unprepared, prepared after.
	if err := db.inTx(ctx, func(tx dbtx) error {
		_, err := tx.exec(ctx, ins, 1, 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !db.writer.cached(ins) {
		t.Fatal("insert first seen in a transaction was not prepared after it")
	}

	// Now from the cache, inside a transaction that rolls back: the
	// prepared statement must be bound to the transaction.
	errAbort := errors.New("abort")
	err := db.inTx(ctx, func(tx dbtx) error {
		if _, err := tx.exec(ctx, ins, 2, 20); err != nil {
			return err
		}
		var v int64
		if err := tx.queryRow(ctx, get, 2).Scan(&v); err != nil {
			return err
		}
		if v != 20 {
			return fmt.Errorf("read %d inside the transaction, want 20", v)
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("inTx = %v, want the abort", err)
	}
	var v int64
	if err := db.read().queryRow(ctx, get, 2).Scan(&v); !errors.Is(err, errNoRows) {
		t.Errorf("row of a rolled-back transaction: Scan = %v (v %d), want errNoRows", err, v)
	}
	if err := db.read().queryRow(ctx, get, 1).Scan(&v); err != nil || v != 10 {
		t.Errorf("committed row: v %d, err %v; want 10, nil", v, err)
	}
	if !db.reader.cached(get) {
		t.Error("read outside a transaction was not cached on the reader")
	}

	// A constraint violation through a cached statement is still classified.
	_, err = db.write().exec(ctx, ins, 1, 11)
	if !errors.Is(classify(err), errUnique) {
		t.Errorf("duplicate insert: %v, want errUnique", err)
	}
	// A bad query reports its error and is not cached.
	if _, err := db.write().exec(ctx, `INSERT INTO nosuch (a) VALUES (1)`); err == nil {
		t.Error("insert into a missing table succeeded")
	}
	if db.writer.cached(`INSERT INTO nosuch (a) VALUES (1)`) {
		t.Error("failing statement was cached")
	}
}

func TestStmtCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openStmtCacheDB(t)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := w*each + i
				err := db.inTx(ctx, func(tx dbtx) error {
					if _, err := tx.exec(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, k, k*2); err != nil {
						return err
					}
					_, err := tx.exec(ctx, `UPDATE kv SET v = v + 1 WHERE k = $1`, k)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				var v int64
				if err := db.read().queryRow(ctx, `SELECT v FROM kv WHERE k = $1`, k).Scan(&v); err != nil {
					errs <- err
					return
				}
				if v != int64(k*2+1) {
					errs <- fmt.Errorf("key %d: v %d, want %d", k, v, k*2+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int64
	if err := db.read().queryRow(ctx, `SELECT count(*) FROM kv`).Scan(&n); err != nil || n != workers*each {
		t.Errorf("count = %d, %v; want %d", n, err, workers*each)
	}
}

func TestStmtCacheClose(t *testing.T) {
	ctx := context.Background()
	db := openStmtCacheDB(t)
	if _, err := db.write().exec(ctx, `INSERT INTO kv (k, v) VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := db.write().exec(ctx, `INSERT INTO kv (k, v) VALUES (2, 2)`); err == nil {
		t.Error("exec after Close succeeded")
	}
}
