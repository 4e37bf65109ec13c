package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// recorder is a testing.TB that records Fatal and Skip instead of ending the
// goroutine; both unwind with a panic that run recovers.
type recorder struct {
	testing.TB
	fatal, skipped string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
	panic(stop{})
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	panic(stop{})
}

// run calls f with a recorder wrapping t and returns the recorder.
func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					panic(v)
				}
			}
		}()
		f(r)
	}()
	return r
}

// TestPostgresDSNRule checks the skip rule without a database: unset
// METERTRUST_TEST_PG skips outside CI and fails in CI.
func TestPostgresDSNRule(t *testing.T) {
	for _, tc := range []struct {
		name, ci    string
		wantFatal   bool
		wantSkipped bool
	}{
		{name: "local", ci: "", wantSkipped: true},
		{name: "ci", ci: "true", wantFatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("METERTRUST_TEST_PG", "")
			t.Setenv("CI", tc.ci)
			r := run(t, func(tb testing.TB) { PostgresDSN(tb) })
			if got := r.fatal != ""; got != tc.wantFatal {
				t.Errorf("failed = %v (%q), want %v", got, r.fatal, tc.wantFatal)
			}
			if got := r.skipped != ""; got != tc.wantSkipped {
				t.Errorf("skipped = %v (%q), want %v", got, r.skipped, tc.wantSkipped)
			}
		})
	}
}

// TestDSN checks each dialect's name and that an unknown dialect fails the
// test, naming it.
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
	t.Run("unknown", func(t *testing.T) {
		r := run(t, func(tb testing.TB) { DSN(tb, "oracle") })
		if !strings.Contains(r.fatal, `"oracle"`) {
			t.Errorf("DSN(oracle) failure = %q, want it to name the dialect", r.fatal)
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
