package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/metertrust/metertrust/store"
)

// openStore opens the store every command shares, by the CLI convention:
// --store DSN wins; otherwise the "store" DSN recorded in DIR/config.json
// (written by "ca init --store"), if any; otherwise the SQLite file
// DIR/metertrust.db, created with DIR (mode 0700) if missing. One of
// dataDir and dsn must be given.
func openStore(ctx context.Context, dataDir, dsn string) (*store.DB, error) {
	if dsn != "" {
		return store.Open(ctx, dsn)
	}
	if dataDir == "" {
		return nil, errors.New("no store: give --data DIR or --store DSN")
	}
	recorded, err := recordedStoreDSN(dataDir)
	if err != nil {
		return nil, err
	}
	if recorded != "" {
		return store.Open(ctx, recorded)
	}
	return store.OpenDataDir(ctx, dataDir)
}

// recordedStoreDSN returns the "store" field of DIR/config.json, or "" if
// the file or the field is absent.
func recordedStoreDSN(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	var cfg struct {
		Store string `json:"store"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return cfg.Store, nil
}

// openExistingStore is openStore for commands that only read: with no DSN
// it refuses a data directory that holds no store yet, instead of creating
// an empty one and reporting on that.
func openExistingStore(ctx context.Context, dataDir, dsn string) (*store.DB, error) {
	if dsn == "" && dataDir != "" {
		recorded, err := recordedStoreDSN(dataDir)
		if err != nil {
			return nil, err
		}
		if recorded == "" {
			if _, err := os.Stat(filepath.Join(dataDir, store.DataFile)); err != nil {
				return nil, fmt.Errorf("no store in %s: %w", dataDir, err)
			}
		}
	}
	return openStore(ctx, dataDir, dsn)
}
