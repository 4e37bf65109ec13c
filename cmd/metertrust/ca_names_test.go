package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCANamesAsOperatorsWriteThem: the serial printed by "smki show" is
// accepted by "ca revoke" as it is, and "ca crl" and "ca revoke --ca" take a
// CA's common name from the ceremony (Z1) as well as its store name (oca).
func TestCANamesAsOperatorsWriteThem(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := func(name string) string { return filepath.Join(dir, name) }
	mustRun(t, "ca", "init", "--data", data, "--root-name", "ZA", "--oca-name", "Z1")
	mustRun(t, "keys", "new", "--usage", "ds", "--key", p("s.key"), "--csr", p("s.csr"),
		"--eui", "90B3D51F30000002", "--role", "supplier")
	mustRun(t, "ca", "issue", "org", "--data", data, "--csr", p("s.csr"), "--role", "supplier",
		"--eui", "90B3D51F30000002", "--name", "Supplier A", "--usage", "ds", "--out", p("s.pem"))

	show := decode[[]struct{ Serial string }](t, mustRun(t, "smki", "show", "--json", p("s.pem")))
	if len(show) != 1 || len(show[0].Serial)%2 != 0 {
		t.Fatalf("smki show serial %+v: want whole octets", show)
	}
	mustRun(t, "ca", "revoke", "--data", data, "--serial", show[0].Serial, "--ca", "Z1", "--reason", "keyCompromise")

	for _, name := range []string{"Z1", "oca"} {
		out := mustRun(t, "ca", "crl", "--data", data, "--ca", name)
		if !strings.Contains(out, "of oca") {
			t.Errorf("ca crl --ca %s: %q", name, out)
		}
	}
	if _, err := run(t, "ca", "crl", "--data", data, "--ca", "Z9"); err == nil || !strings.Contains(err.Error(), `"Z9"`) {
		t.Errorf("ca crl --ca Z9: %v, want an error naming Z9", err)
	}
	if _, err := run(t, "ca", "revoke", "--data", data, "--serial", "xyz"); err == nil || !strings.Contains(err.Error(), "--serial") {
		t.Errorf("ca revoke --serial xyz: %v, want an error naming --serial", err)
	}
}
