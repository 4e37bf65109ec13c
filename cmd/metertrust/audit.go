package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/metertrust/metertrust/store"
)

// auditFlags are the flags of the audit commands.
type auditFlags struct {
	data     string
	storeDSN string
	json     bool
}

func (f *auditFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.data, "data", "", "data directory (SQLite store DIR/metertrust.db)")
	c.Flags().StringVar(&f.storeDSN, "store", "", "store DSN (postgres://... or a SQLite path); overrides --data")
	c.Flags().BoolVar(&f.json, "json", false, "machine-readable JSON output")
}

// newAuditCmd is "metertrust audit": reading and verifying the hash-chained
// audit log.
func newAuditCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the audit log",
	}
	c.AddCommand(newAuditVerifyCmd(), newAuditListCmd())
	return c
}

func newAuditVerifyCmd() *cobra.Command {
	var f auditFlags
	c := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 at the first broken entry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := openExistingStore(ctx, f.data, f.storeDSN)
			if err != nil {
				return err
			}
			defer db.Close()
			checked, err := db.VerifyAudit(ctx)
			return reportVerify(cmd.OutOrStdout(), f.json, checked, err)
		},
	}
	f.register(c)
	return c
}

// verifyReport is the --json output of "audit verify".
type verifyReport struct {
	OK      bool   `json:"ok"`
	Checked int64  `json:"checked"`
	Broken  int64  `json:"broken_seq,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// reportVerify prints the verdict. A broken chain is printed and returned
// as an exit status 1 error; other errors are returned as they are.
func reportVerify(w io.Writer, asJSON bool, checked int64, err error) error {
	var br *store.AuditBreak
	if err != nil && !errors.As(err, &br) {
		return err
	}
	r := verifyReport{OK: err == nil, Checked: checked}
	if br != nil {
		r.Broken, r.Reason = br.Seq, br.Reason
	}
	if asJSON {
		if e := json.NewEncoder(w).Encode(r); e != nil {
			return e
		}
	} else if r.OK {
		fmt.Fprintf(w, "audit log OK: %d entries checked\n", r.Checked)
	} else {
		fmt.Fprintf(w, "audit log BROKEN at entry %d: %s (%d entries before it verified)\n", r.Broken, r.Reason, r.Checked)
	}
	if err != nil {
		return &exitStatus{code: 1, err: err}
	}
	return nil
}

func newAuditListCmd() *cobra.Command {
	var (
		f     auditFlags
		after int64
		limit int
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "Print audit log entries in order (--json: one JSON object per line)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if after < 0 || limit < 0 {
				return errors.New("--after and --limit must not be negative")
			}
			ctx := cmd.Context()
			db, err := openExistingStore(ctx, f.data, f.storeDSN)
			if err != nil {
				return err
			}
			defer db.Close()
			w := cmd.OutOrStdout()
			enc := json.NewEncoder(w)
			for printed := 0; limit == 0 || printed < limit; {
				page := store.MaxLimit
				if limit > 0 {
					page = min(page, limit-printed)
				}
				evs, err := db.AuditEvents(ctx, after, page)
				if err != nil {
					return err
				}
				for _, e := range evs {
					if err := printAuditEvent(w, enc, f.json, e); err != nil {
						return err
					}
				}
				printed += len(evs)
				if len(evs) < page {
					break
				}
				after = evs[len(evs)-1].Seq
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().Int64Var(&after, "after", 0, "print entries after this sequence number")
	c.Flags().IntVar(&limit, "limit", 0, "print at most this many entries (0: all)")
	return c
}

// auditJSON is one line of "audit list --json".
type auditJSON struct {
	Seq      int64          `json:"seq"`
	Time     string         `json:"time"`
	Actor    string         `json:"actor"`
	Action   string         `json:"action"`
	Object   string         `json:"object"`
	Outcome  string         `json:"outcome"`
	Details  map[string]any `json:"details"`
	PrevHash string         `json:"prev_hash"`
	Hash     string         `json:"hash"`
}

func printAuditEvent(w io.Writer, enc *json.Encoder, asJSON bool, e store.AuditEvent) error {
	ts := e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	if asJSON {
		return enc.Encode(auditJSON{
			Seq: e.Seq, Time: ts, Actor: e.Actor, Action: e.Action, Object: e.Object, Outcome: e.Outcome,
			Details: e.Details, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
		})
	}
	details := ""
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("printing audit entry %d: %w", e.Seq, err)
		}
		details = " " + string(b)
	}
	_, err := fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s%s\n", e.Seq, ts, e.Actor, e.Action, e.Object, e.Outcome, details)
	return err
}
