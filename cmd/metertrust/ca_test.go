package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/internal/testenv"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store/storetest"
)

// run executes the metertrust command line in-process and returns stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args, stdin := withOfficers(t, args)
	return runIn(t, stdin, args...)
}

// runIn runs the command with stdin (the officers' passwords of a
// ceremony).
func runIn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("metertrust %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return v
}

// TestCACommandsEndToEnd drives every CA command of the acceptance list on
// softkms and SQLite in a temporary data directory.
func TestCACommandsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := func(name string) string { return filepath.Join(dir, name) }

	mustRun(t, "ca", "init", "--data", data, "--root-name", "ZA", "--oca-name", "Z1")
	if _, err := run(t, "ca", "init", "--data", data); !errors.Is(err, ca.ErrExists) {
		t.Fatalf("second init: %v, want ca.ErrExists", err)
	}
	if got := strings.TrimSpace(mustRun(t, "ca", "batch", "open", "--data", data, "--name", "E357", "--quota", "3")); got != "E357" {
		t.Fatalf("batch open printed %q, want the batch id E357", got)
	}

	// Organisation certificates from key pairs and requests made by keys new.
	for _, u := range []string{"ds", "ka", "pp-ka"} {
		mustRun(t, "keys", "new", "--usage", u, "--key", p("sup-"+u+".key"), "--csr", p("sup-"+u+".csr"),
			"--eui", "90-B3-D5-1F-30-01-00-00", "--role", "supplier", "--name", "Supplier A")
		out := mustRun(t, "ca", "issue", "org", "--data", data, "--csr", p("sup-"+u+".csr"), "--role", "supplier",
			"--eui", "90B3D51F30010000", "--name", "Supplier A", "--usage", u, "--out", p("sup-"+u+".pem"), "--json")
		co := decode[certOutput](t, out)
		if co.Kind != "org" || co.Usage != u || co.EUI != "90B3D51F30010000" || co.CA != "oca" {
			t.Errorf("issue org %s: %+v", u, co)
		}
		fi, err := os.Stat(p("sup-" + u + ".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode: %v %v", fi.Mode(), err)
		}
	}
	if _, err := run(t, "keys", "new", "--usage", "ds", "--key", p("sup-ds.key"), "--csr", p("x.csr"), "--eui", "90B3D51F30010000", "--role", "supplier"); !errors.Is(err, ca.ErrExists) {
		t.Errorf("keys new over an existing key: %v, want ca.ErrExists", err)
	}
	// A request whose subject disagrees with the registration is refused.
	if _, err := run(t, "ca", "issue", "org", "--data", data, "--csr", p("sup-ds.csr"), "--role", "networkOperator",
		"--eui", "90B3D51F30010000", "--usage", "ds", "--out", p("bad.pem")); !errors.Is(err, ca.ErrCSR) {
		t.Errorf("off-registration request: %v, want ca.ErrCSR", err)
	}

	// A device certificate from a device request, then bulk to the quota.
	mustRun(t, "keys", "new", "--usage", "ka", "--key", p("m.key"), "--csr", p("m.csr"), "--device", "00-0D-6F-00-00-00-00-01")
	mustRun(t, "ca", "issue", "device", "--data", data, "--batch", "E357", "--csr", p("m.csr"), "--out", p("m.pem"))
	if _, err := run(t, "ca", "issue", "device", "--data", data, "--batch", "E357", "--csr", p("sup-ds.csr"), "--out", p("x.pem")); !errors.Is(err, ca.ErrCSR) {
		t.Errorf("organisation request to a device CA: %v, want ca.ErrCSR", err)
	}
	out := mustRun(t, "ca", "issue", "devices", "--data", data, "--batch", "E357", "--count", "1", "--out", p("bulk"), "--json")
	bs := decode[ca.BulkSummary](t, out)
	if bs.Devices != 1 || bs.Certificates != 2 || !bs.BatchClosed {
		t.Errorf("bulk summary %+v", bs)
	}
	show := decode[ca.CAInfo](t, mustRun(t, "ca", "batch", "show", "--data", data, "E357", "--json"))
	if show.Quota != 3 || show.Issued != 3 || show.State != "closed" || show.Key != "destroyed" {
		t.Errorf("batch show after quota: %+v", show)
	}
	if _, err := run(t, "ca", "issue", "device", "--data", data, "--batch", "E357", "--csr", p("m.csr"), "--out", p("m2.pem")); !errors.Is(err, ca.ErrBatchClosed) {
		t.Errorf("issuing from a closed batch: %v, want ca.ErrBatchClosed", err)
	}

	// A second batch closed by hand.
	mustRun(t, "ca", "batch", "open", "--data", data, "--name", "E358", "--quota", "10")
	mustRun(t, "ca", "batch", "close", "--data", data, "E358")
	if _, err := run(t, "ca", "batch", "close", "--data", data, "E358"); !errors.Is(err, ca.ErrBatchClosed) {
		t.Errorf("closing twice: %v, want ca.ErrBatchClosed", err)
	}
	if keys, _ := filepath.Glob(filepath.Join(data, "keys", "dca-*")); len(keys) != 0 {
		t.Errorf("batch key files left after close: %v", keys)
	}

	// Validation, revocation and CRL.
	files := []string{p("sup-ds.pem"), p("sup-ka.pem"), p("sup-pp-ka.pem"), p("m.pem"), filepath.Join(p("bulk"), bs.FirstEUI+"-ds.pem")}
	out = mustRun(t, append([]string{"smki", "verify", "--data", data}, files...)...)
	if strings.Count(out, ": OK: ") != len(files) {
		t.Errorf("smki verify:\n%s", out)
	}
	ds := decode[certOutput](t, mustRun(t, "ca", "issue", "org", "--data", data, "--csr", p("sup-ds.csr"), "--role", "supplier",
		"--eui", "90B3D51F30010000", "--usage", "ds", "--out", p("sup-ds2.pem"), "--json"))
	mustRun(t, "ca", "revoke", "--data", data, "--serial", ds.Serial, "--reason", "keyCompromise")
	if _, err := run(t, "ca", "revoke", "--data", data, "--serial", ds.Serial, "--reason", "keyCompromise"); !errors.Is(err, ca.ErrRequest) {
		t.Errorf("revoking twice: %v, want ca.ErrRequest", err)
	}
	if _, err := run(t, "ca", "revoke", "--data", data, "--serial", ds.Serial, "--reason", "becauseISaidSo"); !errors.Is(err, ca.ErrRequest) {
		t.Errorf("unknown reason: %v, want ca.ErrRequest", err)
	}
	mustRun(t, "ca", "crl", "--data", data, "--ca", "oca", "--out", p("oca.crl"))
	der, err := os.ReadFile(p("oca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil || len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("CRL: %v %+v", err, rl)
	}
	out, err = run(t, "smki", "verify", "--data", data, p("sup-ds2.pem"), p("sup-ka.pem"))
	if exitCode(err) != 1 || !strings.Contains(out, "revoked") || !strings.Contains(out, "sup-ka.pem: OK") {
		t.Errorf("verify with a revoked certificate: err %v\n%s", err, out)
	}
	// A device certificate of the closed batch E357 is revoked through the
	// batch's delegated OCSP responder (its final CRL does not change), and
	// validation refuses it by the stored OCSP response.
	mPEM, err := os.ReadFile(p("m.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := pem.Decode(mPEM)
	if mb == nil {
		t.Fatal("m.pem: no PEM block")
	}
	mc, err := x509.ParseCertificate(mb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ca", "revoke", "--data", data, "--ca", "E357", "--serial", fmt.Sprintf("%X", mc.SerialNumber), "--reason", "keyCompromise")
	out, err = run(t, "smki", "verify", "--data", data, p("m.pem"))
	if exitCode(err) != 1 || !strings.Contains(out, "revoked") || !strings.Contains(out, "OCSP") {
		t.Errorf("verify a revoked device certificate of a closed batch: err %v\n%s", err, out)
	}

	// Before the certificates existed, nothing validates.
	out, err = run(t, "smki", "verify", "--data", data, "--at", "2001-01-01T00:00:00Z", p("sup-ka.pem"))
	if exitCode(err) != 1 || !strings.Contains(out, "not yet valid") {
		t.Errorf("verify --at 2001: err %v\n%s", err, out)
	}
	if _, err := run(t, "smki", "verify", "--data", data, "--at", "yesterday", p("sup-ka.pem")); err == nil {
		t.Error("verify --at yesterday accepted")
	}

	// The DCCKI hierarchy: a client certificate crypto/tls accepts.
	mustRun(t, "ca", "issue", "tls-client", "--data", data, "--eui", "90B3D51F30010000", "--user-role", "IS",
		"--key-out", p("client.key"), "--out", p("client.pem"))
	mustRun(t, "ca", "issue", "tls-server", "--data", data, "--dns", "router.local", "--ip", "127.0.0.1",
		"--key-out", p("server.key"), "--out", p("server.pem"))
	pair, err := tls.LoadX509KeyPair(p("client.pem"), p("client.key"))
	if err != nil {
		t.Fatalf("crypto/tls loading the client pair: %v", err)
	}
	eui, role, err := ca.TLSUser(pair.Leaf)
	if err != nil || eui != smki.MustParseEUI("90B3D51F30010000") || role != smki.UserImportSupplier {
		t.Errorf("TLSUser: %s %s %v", eui, role, err)
	}
	if _, err := tls.LoadX509KeyPair(p("server.pem"), p("server.key")); err != nil {
		t.Errorf("crypto/tls loading the server pair: %v", err)
	}
	b, _ := os.ReadFile(p("client.pem"))
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("client.pem is not PEM")
	}
}

// TestCACommandsOnServices runs the ceremony and a batch to its quota
// through the CLI with keys on SoftHSM2 and the store on PostgreSQL, as
// recorded in config.json by ca init, when the test services are set.
func TestCACommandsOnServices(t *testing.T) {
	kms := testenv.Var(t, "METERTRUST_TEST_PKCS11")
	dsn := storetest.PostgresDSN(t)
	data := t.TempDir()
	mustRun(t, "ca", "init", "--data", data, "--kms", kms, "--store", dsn)
	mustRun(t, "ca", "batch", "open", "--data", data, "--name", "HSM1", "--quota", "4")
	bs := decode[ca.BulkSummary](t, mustRun(t, "ca", "issue", "devices", "--data", data, "--batch", "HSM1", "--count", "2", "--json"))
	if !bs.BatchClosed {
		t.Errorf("bulk to the quota did not close the batch: %+v", bs)
	}
	show := decode[ca.CAInfo](t, mustRun(t, "ca", "batch", "show", "--data", data, "HSM1", "--json"))
	if show.Key != "destroyed" || show.State != "closed" {
		t.Errorf("batch show: %+v", show)
	}
	if entries, _ := os.ReadDir(filepath.Join(data, custody.DirName)); len(entries) != 0 {
		t.Errorf("key files in the data directory although keys are on the token")
	}
	if _, err := os.Stat(filepath.Join(data, "metertrust.db")); err == nil {
		t.Errorf("a SQLite store was created although config.json names PostgreSQL")
	}
}

// TestCAInitRefusesToOverwrite: the init ceremony stops before touching an
// existing key file, and succeeds once the way is clear.
func TestCAInitRefusesToOverwrite(t *testing.T) {
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, custody.DirName), 0o700); err != nil {
		t.Fatal(err)
	}
	squatter := filepath.Join(data, custody.DirName, "root.key")
	if err := os.WriteFile(squatter, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "ca", "init", "--data", data); !errors.Is(err, ca.ErrExists) {
		t.Fatalf("init over an existing key file: %v, want ca.ErrExists", err)
	}
	if b, _ := os.ReadFile(squatter); string(b) != "not ours" {
		t.Error("the existing key file was changed")
	}
	if _, err := os.Stat(filepath.Join(data, caConfigFile)); err == nil {
		t.Error("config.json written by a failed ceremony")
	}
}
