package store

import (
	"context"
	"testing"

	"github.com/metertrust/metertrust/store/storetest"
)

// backend opens fresh, empty stores of one dialect for a test.
type backend struct {
	name string
	// newOpener makes a fresh database for t and returns an opener whose
	// handles all share it.
	newOpener func(t *testing.T) func(t *testing.T) *DB
}

// backends lists SQLite (always) and PostgreSQL (from METERTRUST_TEST_PG,
// under storetest's skip rule).
func backends() []backend {
	var out []backend
	for _, dialect := range storetest.Dialects() {
		out = append(out, backend{name: dialect, newOpener: func(t *testing.T) func(t *testing.T) *DB {
			return opener(storetest.DSN(t, dialect))
		}})
	}
	return out
}

// sqliteOpener returns an opener whose handles share one fresh file.
func sqliteOpener(t *testing.T) func(t *testing.T) *DB {
	return opener(storetest.SQLiteDSN(t))
}

// postgresOpener creates a fresh schema in the test database, dropped at the
// end of the test, and returns an opener whose handles all use it.
func postgresOpener(t *testing.T) func(t *testing.T) *DB {
	t.Helper()
	return opener(storetest.PostgresDSN(t))
}

// opener returns a function opening a handle on dsn, closed when the test
// that asked for it ends.
func opener(dsn string) func(t *testing.T) *DB {
	return func(t *testing.T) *DB {
		t.Helper()
		db, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("opening the test store: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// forEachBackend runs f as a subtest per backend with a fresh store.
func forEachBackend(t *testing.T, f func(t *testing.T, db *DB)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			f(t, b.newOpener(t)(t))
		})
	}
}
