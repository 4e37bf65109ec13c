package storetest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestDSN checks the SQLite names and the dialect list.
func TestDSN(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dsn := DSN(t, SQLite)
		path, ok := strings.CutPrefix(dsn, "sqlite:")
		if !ok || filepath.Dir(path) == "" || !filepath.IsAbs(path) {
			t.Fatalf("DSN(sqlite) = %q, want sqlite:<absolute path>", dsn)
		}
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			t.Errorf("DSN(sqlite) directory: %v", err)
		}
		if other := DSN(t, SQLite); other == dsn {
			t.Errorf("two calls returned the same file %q", dsn)
		}
	})
	if got := Dialects(); len(got) != 2 || got[0] != SQLite || got[1] != Postgres {
		t.Errorf("Dialects() = %q", got)
	}
}

// TestPostgresDSN checks that the schema exists, is the DSN's search_path,
// and is dropped when the test that made it ends.
func TestPostgresDSN(t *testing.T) {
	ctx := context.Background()
	var schema string
	t.Run("inner", func(t *testing.T) {
		dsn := PostgresDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema = u.Query().Get("search_path")
		if !strings.HasPrefix(schema, "metertrust_test_") {
			t.Fatalf("search_path = %q", schema)
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var current string
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current != schema {
			t.Errorf("current_schema() = %q, want %q", current, schema)
		}
	})
	if schema == "" {
		return // inner was skipped
	}
	conn, err := pgx.Connect(ctx, os.Getenv("METERTRUST_TEST_PG"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}
