package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// backend opens fresh, empty stores of one dialect for a test.
type backend struct {
	name string
	// open returns a new empty store; handles made by the same opener for
	// one test share the database when shared is true.
	newOpener func(t *testing.T) func(t *testing.T) *DB
}

// backends lists SQLite (always) and PostgreSQL (from METERTRUST_TEST_PG).
func backends() []backend {
	return []backend{
		{name: "sqlite", newOpener: sqliteOpener},
		{name: "postgres", newOpener: postgresOpener},
	}
}

// sqliteOpener returns an opener whose handles share one fresh file.
func sqliteOpener(t *testing.T) func(t *testing.T) *DB {
	path := filepath.Join(t.TempDir(), "store.db")
	return func(t *testing.T) *DB {
		t.Helper()
		db, err := Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatalf("Open(sqlite): %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// postgresDSN returns METERTRUST_TEST_PG, skipping the test if it is unset
// outside CI and failing it in CI.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("METERTRUST_TEST_PG")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("METERTRUST_TEST_PG is unset in CI")
		}
		t.Skip("METERTRUST_TEST_PG is unset")
	}
	return dsn
}

// postgresOpener creates a fresh schema in the test database, dropped at the
// end of the test, and returns an opener whose handles all use it.
func postgresOpener(t *testing.T) func(t *testing.T) *DB {
	t.Helper()
	schemaDSN := freshSchema(t, postgresDSN(t))
	return func(t *testing.T) *DB {
		t.Helper()
		db, err := Open(context.Background(), schemaDSN)
		if err != nil {
			t.Fatalf("Open(postgres): %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// benchPostgres opens a store in a fresh schema for a benchmark.
func benchPostgres(b *testing.B) *DB {
	db, err := Open(context.Background(), freshSchema(b, os.Getenv("METERTRUST_TEST_PG")))
	if err != nil {
		b.Fatalf("Open(postgres): %v", err)
	}
	return db
}

// freshSchema creates a schema in the database dsn names, dropped when the
// test ends, and returns dsn with search_path set to it.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to METERTRUST_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "store_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing METERTRUST_TEST_PG: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// forEachBackend runs f as a subtest per backend with a fresh store.
func forEachBackend(t *testing.T, f func(t *testing.T, db *DB)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			f(t, b.newOpener(t)(t))
		})
	}
}
