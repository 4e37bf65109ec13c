// Package storetest gives tests a fresh, empty database for package store:
// a SQLite file in the test's temporary directory, or a schema of its own
// in the PostgreSQL database METERTRUST_TEST_PG names, dropped when the test
// ends, so that test packages running at the same time never see each
// other's rows.
//
// It returns data source names for store.Open rather than opened stores so
// that package store's own tests can use it without an import cycle, and so
// that end-to-end tests can hand the same name to the processes they start.
//
// A test that needs PostgreSQL is skipped only when METERTRUST_TEST_PG is
// unset and CI is unset too; with CI set it fails instead, so that a CI run
// never passes by skipping its PostgreSQL half.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/internal/testenv"
)

// Dialect names, the same strings as store.DialectSQLite and
// store.DialectPostgres (this package cannot import store: store's own tests
// use it).
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Dialects returns the dialects a store test should run on, SQLite first.
func Dialects() []string { return []string{SQLite, Postgres} }

// DSN returns the data source name of a fresh, empty database of dialect
// (SQLite or Postgres): every store opened on it by the same test shares
// that database. For PostgreSQL it follows the rule of [PostgresDSN].
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case SQLite:
		return SQLiteDSN(t)
	case Postgres:
		return PostgresDSN(t)
	default:
		t.Fatalf("storetest: unknown dialect %q, want %q or %q", dialect, SQLite, Postgres)
		return ""
	}
}

// SQLiteDSN returns the data source name of a new SQLite file in the test's
// temporary directory, removed when the test ends.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "store.db")
}

// PostgresDSN creates a schema in the database METERTRUST_TEST_PG names and
// returns that DSN with search_path set to the schema. The schema is
// dropped, with everything in it, when the test ends; the clean-up is
// registered before PostgresDSN returns, so it runs after any clean-up the
// test registers later (a process using the schema is stopped first).
//
// With METERTRUST_TEST_PG unset, PostgresDSN skips the test, unless CI is
// set, in which case it fails the test.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := testenv.Var(t, "METERTRUST_TEST_PG")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("storetest: parsing METERTRUST_TEST_PG: %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: connecting to METERTRUST_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	schema := "metertrust_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("storetest: dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: dropping schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
