package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/store"
)

// caConfigFile is the file in the data directory where "ca init" records
// the key manager and store choices, so later commands find them.
const caConfigFile = "config.json"

// caConfig is the content of DATA/config.json. Unknown fields are errors.
type caConfig struct {
	// KMS is the key manager URI: "softkms" (key files under DATA/keys) or a
	// PKCS#11 URI; prefer pin-source= to pin-value= so no PIN is written here.
	KMS string `json:"kms"`
	// Store is the store DSN; empty means DATA/metertrust.db (SQLite).
	Store string `json:"store,omitempty"`
}

// caFlags are the flags every CA command shares.
type caFlags struct {
	data      string
	kms       string
	storeDSN  string
	json      bool
	noLint    bool
	actor     string
	verbosity bool
	// officers and operators are a ceremony's two officers (--officer,
	// twice) and the operators file holding their password hashes; see
	// registerCeremony.
	officers  []string
	operators string
	ceremony  bool
}

// registerCeremony adds the flags of a ceremony that uses a root key (ca
// init, ca batch open): two officers, each confirming with their password
// at the console (decision 023).
func (f *caFlags) registerCeremony(c *cobra.Command) {
	f.ceremony = true
	c.Flags().StringArrayVar(&f.officers, "officer", nil, "a ceremony officer (an operator with the ceremony role); give two, each then types their password")
	c.Flags().StringVar(&f.operators, "operators", "", "operators file holding the officers' password hashes (metertrust operator passwd) (required)")
}

// confirmOfficers has each officer type their password (without echo on a
// terminal, else one line each from stdin) and checks them against the
// operators file; a refusal is audited. It runs before any key is made.
func (e *caEnv) confirmOfficers(ctx context.Context, cmd *cobra.Command, f *caFlags) ([]string, error) {
	refuse := func(err error) ([]string, error) {
		if _, aerr := e.db.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Actor: cmp.Or(f.actor, os.Getenv("USER"), "operator"),
			Action: "ca.ceremony.officers", Object: cmd.CommandPath(), Outcome: store.OutcomeRefused,
			Details: map[string]any{"officers": strings.Join(f.officers, ","), "refusal": err.Error()}}); aerr != nil {
			return nil, errors.Join(err, aerr)
		}
		return nil, err
	}
	if f.operators == "" {
		return refuse(fmt.Errorf("%w: --operators FILE is required: the officers confirm with their passwords from it", operator.ErrOfficers))
	}
	creds, err := operator.Load(f.operators)
	if err != nil {
		return refuse(fmt.Errorf("--operators: %w", err))
	}
	if len(f.officers) != operator.CeremonyOfficers {
		return refuse(fmt.Errorf("%w: give --officer NAME %d times, got %d", operator.ErrOfficers, operator.CeremonyOfficers, len(f.officers)))
	}
	var secret func() (string, error)
	if in, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		secret = func() (string, error) {
			b, err := term.ReadPassword(int(in.Fd()))
			return string(b), err
		}
	}
	confirms, err := operator.ReadConfirms(cmd.InOrStdin(), cmd.ErrOrStderr(), f.officers, secret)
	if err != nil {
		return refuse(err)
	}
	names, err := operator.ConfirmOfficers(creds, confirms)
	if err != nil {
		return refuse(err)
	}
	// The officers' confirmation is audited with the digest of the file
	// their passwords were checked against, so that an auditor can compare
	// it with the operators file the services are given: a file of the
	// console user's own making shows as a different digest.
	raw, err := os.ReadFile(f.operators)
	if err != nil {
		return refuse(fmt.Errorf("--operators: %w", err))
	}
	sum := sha256.Sum256(raw)
	if _, err := e.db.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Actor: strings.Join(names, "+"),
		Action: "ca.ceremony.officers", Object: cmd.CommandPath(), Outcome: store.OutcomeSuccess,
		Details: map[string]any{"officers": names, "operators_file": f.operators, "operators_file_sha256": hex.EncodeToString(sum[:])}}); err != nil {
		return nil, fmt.Errorf("auditing the officers' confirmation: %w", err)
	}
	return names, nil
}

func (f *caFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.data, "data", "", "data directory (SQLite store, softkms keys, config.json)")
	c.Flags().StringVar(&f.kms, "kms", "", "key manager URI (default: from DATA/config.json, else softkms)")
	c.Flags().StringVar(&f.storeDSN, "store", "", "store DSN (default: from DATA/config.json, else DATA/metertrust.db)")
	c.Flags().BoolVar(&f.json, "json", false, "machine-readable JSON output")
	c.Flags().BoolVar(&f.noLint, "no-lint", false, "skip pre-issuance linting (benchmarks only)")
	c.Flags().StringVar(&f.actor, "actor", "", "operator name recorded in the audit log (default $USER)")
	c.Flags().BoolVarP(&f.verbosity, "verbose", "v", false, "log every step to stderr")
}

// caEnv holds what a CA command wires together.
type caEnv struct {
	db   *store.DB
	keys *custody.Custody
	auth *ca.Authority
	cfg  caConfig
	// officers are the ceremony's two confirmed officers; nil outside a
	// ceremony.
	officers []string
}

func (e *caEnv) Close() {
	if e.keys != nil {
		e.keys.Close()
	}
	if e.db != nil {
		e.db.Close()
	}
}

func readCAConfig(dir string) (caConfig, bool, error) {
	var cfg caConfig
	b, err := os.ReadFile(filepath.Join(dir, caConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("reading %s: %w", caConfigFile, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, false, fmt.Errorf("reading %s: %w", filepath.Join(dir, caConfigFile), err)
	}
	return cfg, true, nil
}

// openCAEnv opens the store, the key custody and the Authority for a CA
// command. Without init (when DATA/config.json must not exist yet) it
// requires the config written by "ca init".
func openCAEnv(ctx context.Context, cmd *cobra.Command, f *caFlags, forInit bool) (*caEnv, error) {
	if f.data == "" {
		return nil, fmt.Errorf("--data is required")
	}
	cfg, found, err := readCAConfig(f.data)
	if err != nil {
		return nil, err
	}
	switch {
	case forInit && found:
		return nil, fmt.Errorf("%w: %s (the init ceremony has already run in %s)", ca.ErrExists, caConfigFile, f.data)
	case !forInit && !found && f.kms == "":
		return nil, fmt.Errorf("%s has no %s: run metertrust ca init --data %s first", f.data, caConfigFile, f.data)
	}
	if f.kms != "" {
		cfg.KMS = f.kms
	}
	if cfg.KMS == "" {
		cfg.KMS = "softkms"
	}
	if f.storeDSN != "" {
		cfg.Store = f.storeDSN
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	e := &caEnv{cfg: cfg}
	if e.db, err = openStore(ctx, f.data, cfg.Store); err != nil {
		return nil, err
	}
	e.keys, err = custody.Open(ctx, cfg.KMS, f.data, rand.Reader)
	if err != nil {
		e.Close()
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	if f.verbosity {
		logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	}
	actor := f.actor
	if actor == "" {
		actor = os.Getenv("USER")
	}
	if actor == "" {
		actor = "operator"
	}
	var officers []string
	if f.ceremony {
		if officers, err = e.confirmOfficers(ctx, cmd, f); err != nil {
			e.Close()
			return nil, err
		}
	}
	e.officers = officers
	e.auth, err = ca.New(ca.Config{Store: e.db.SMKI(), Keys: e.keys, Logger: logger, Actor: actor, Officers: officers, DisableLint: f.noLint})
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// writeCAConfig records the init choices (mode 0600, never overwriting).
func writeCAConfig(dir string, cfg caConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return ca.WriteNewFile(filepath.Join(dir, caConfigFile), append(b, '\n'), 0o600)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// openStoreFor opens only the store named by the flags or DATA/config.json
// (no key manager: verification needs no keys), refusing a data directory
// without one.
func openStoreFor(ctx context.Context, f *caFlags) (*store.DB, error) {
	return openExistingStore(ctx, f.data, f.storeDSN)
}
