package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store"
)

// runAudit runs "metertrust audit ARGS..." in process and returns its
// standard output and error.
func runAudit(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"audit"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// auditDataDir returns a data directory whose store holds n audit entries.
func auditDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	db, err := store.OpenDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := store.NewAuditor(db, func() time.Time { return time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC) })
	for i := range n {
		if err := a.Success(context.Background(), "alice", "ca.batch.open", "E"+string(rune('0'+i)), map[string]any{"quota": 10}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAuditVerifyCmd(t *testing.T) {
	tests := []struct {
		name     string
		tamper   string
		json     bool
		wantOut  string
		wantCode int // 0: no error
	}{
		{"intact", "", false, "audit log OK: 4 entries checked", 0},
		{"intact json", "", true, `{"ok":true,"checked":4}`, 0},
		{"altered", `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`, false, "audit log BROKEN at entry 3", 1},
		{"deleted json", `DELETE FROM audit_log WHERE seq = 2`, true, `"ok":false,"checked":1,"broken_seq":2`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auditDataDir(t, 4)
			if tt.tamper != "" {
				tamperSQLite(t, filepath.Join(dir, store.DataFile), tt.tamper)
			}
			args := []string{"verify", "--data", dir}
			if tt.json {
				args = append(args, "--json")
			}
			out, err := runAudit(t, args...)
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q does not contain %q", out, tt.wantOut)
			}
			if tt.wantCode == 0 && err != nil {
				t.Errorf("error = %v, want none", err)
			}
			if tt.wantCode != 0 {
				if exitCode(err) != tt.wantCode || !errors.Is(err, store.ErrAuditBroken) {
					t.Errorf("error = %v (exit %d), want exit %d wrapping ErrAuditBroken", err, exitCode(err), tt.wantCode)
				}
			}
		})
	}
}

func TestAuditVerifyCmdStoreWins(t *testing.T) {
	good := auditDataDir(t, 2)
	empty := t.TempDir()
	// --store names the store; --data points at a directory without one.
	out, err := runAudit(t, "verify", "--data", empty, "--store", "sqlite:"+filepath.Join(good, store.DataFile))
	if err != nil || !strings.Contains(out, "2 entries checked") {
		t.Errorf("verify --store = %q, %v; want 2 entries checked", out, err)
	}
}

func TestAuditCmdErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing-here")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no store given", []string{"verify"}, "--data"},
		{"missing data directory", []string{"verify", "--data", missing}, "no store in"},
		{"bad DSN", []string{"list", "--store", "mysql://x/y"}, "unsupported store DSN scheme"},
		{"negative limit", []string{"list", "--data", missing, "--limit", "-1"}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runAudit(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a read-only audit command created %s", missing)
	}
}

func TestAuditListCmd(t *testing.T) {
	dir := auditDataDir(t, 5)
	tests := []struct {
		name     string
		args     []string
		wantSeqs []int64
	}{
		{"all", nil, []int64{1, 2, 3, 4, 5}},
		{"after", []string{"--after", "3"}, []int64{4, 5}},
		{"limit", []string{"--limit", "2"}, []int64{1, 2}},
		{"after and limit", []string{"--after", "1", "--limit", "3"}, []int64{2, 3, 4}},
		{"past the end", []string{"--after", "9"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runAudit(t, append([]string{"list", "--data", dir, "--json"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var e auditJSON
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("decoding %q: %v", out, err)
				}
				if e.Actor != "alice" || len(e.Hash) != 64 || e.Details["quota"] != json.Number("10") && e.Details["quota"] != float64(10) {
					t.Errorf("entry %+v lost fields", e)
				}
				seqs = append(seqs, e.Seq)
			}
			if !slices.Equal(seqs, tt.wantSeqs) {
				t.Errorf("seqs = %v, want %v", seqs, tt.wantSeqs)
			}
		})
	}
	out, err := runAudit(t, "list", "--data", dir, "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "1\t2026-11-23T18:00:00.000000Z\talice\tca.batch.open\tE0\tsuccess {\"quota\":10}\n"; out != want {
		t.Errorf("text output = %q, want %q", out, want)
	}
}

// tamperSQLite runs raw SQL on the store file, as an attacker with file
// access would.
func tamperSQLite(t *testing.T, path, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The attacker drops the append-only triggers first.
	for _, trg := range []string{"audit_log_no_update", "audit_log_no_delete"} {
		if _, err := db.Exec("DROP TRIGGER " + trg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("tampering: %v", err)
	}
}
