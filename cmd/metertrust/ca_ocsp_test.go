package main

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/store"
)

// TestCAOCSPRefresh runs "ca ocsp refresh": fresh responses are left
// alone, responses missing from the store are signed, and a margin at or
// past the responses' validity is refused.
func TestCAOCSPRefresh(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "ca", "init", "--data", dir)
	mustRun(t, "ca", "batch", "open", "--data", dir, "--name", "B3", "--quota", "10")
	mustRun(t, "ca", "issue", "devices", "--data", dir, "--batch", "B3", "--count", "2")
	signed := func(args ...string) int {
		t.Helper()
		var r struct{ Signed int }
		out := mustRun(t, append([]string{"ca", "ocsp", "refresh", "--data", dir, "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r.Signed
	}
	if n := signed(); n != 0 {
		t.Errorf("default margin re-signed %d fresh responses, want 0", n)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, store.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM ocsp_responses WHERE ca = 'B3'`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if gone, _ := res.RowsAffected(); gone != 4 {
		t.Fatalf("deleted %d stored responses of B3, want its 4 device certificates'", gone)
	}
	if n := signed(); n != 4 {
		t.Errorf("signed %d responses, want the 4 missing ones", n)
	}
	if n := signed(); n != 0 {
		t.Errorf("second run signed %d, want 0", n)
	}
	if out, err := run(t, "ca", "ocsp", "refresh", "--data", dir, "--margin", "48h"); err == nil || !strings.Contains(err.Error(), "margin") {
		t.Errorf("margin past the validity: %v\n%s", err, out)
	}
}
