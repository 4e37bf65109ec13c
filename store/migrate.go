package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrations holds the schema, one directory per dialect. Files are named
// NNNN_what.sql and applied in order of NNNN, each once.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the dialect's migrations in version order.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("store: reading migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration file %s is not named NNNN_what.sql", e.Name())
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %s has no positive version number", e.Name())
		}
		b, err := fs.ReadFile(migrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: reading migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s share a version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// migrate applies pending migrations in one transaction. On PostgreSQL the
// transaction first takes an advisory lock scoped to the current schema, so
// processes starting at the same time apply each migration exactly once; on
// SQLite, BEGIN IMMEDIATE does the same.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(db.dialect)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx dbtx) error {
		if db.dialect == DialectPostgres {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('metertrust.store.migrate.' || current_schema()))`); err != nil {
				return fmt.Errorf("store: taking migration lock: %w", err)
			}
		}
		if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    BIGINT PRIMARY KEY,
			name       TEXT   NOT NULL,
			applied_at BIGINT NOT NULL
		)`); err != nil {
			return fmt.Errorf("store: creating schema_migrations: %w", err)
		}
		applied := map[int64]bool{}
		rs, err := tx.query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("store: reading schema_migrations: %w", err)
		}
		defer rs.Close()
		var latest int64
		for rs.Next() {
			var v int64
			if err := rs.Scan(&v); err != nil {
				return fmt.Errorf("store: reading schema_migrations: %w", err)
			}
			applied[v] = true
			latest = max(latest, v)
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("store: reading schema_migrations: %w", err)
		}
		rs.Close()
		if known := ms[len(ms)-1].version; latest > known {
			return fmt.Errorf("store: database schema version %d is newer than this binary's %d", latest, known)
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("store: applying migration %s: %w", m.name, err)
			}
			if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().Unix()); err != nil {
				return fmt.Errorf("store: recording migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}
