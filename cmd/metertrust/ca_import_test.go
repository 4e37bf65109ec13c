package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/provision/provisiontest"
	"github.com/metertrust/metertrust/smki"
)

// TestCAImport drives "ca import": a manufacturer's DS certificate from
// keys new and ca issue org, a signed file of fresh devices, the import
// with its inventory, and the refusals.
func TestCAImport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := func(name string) string { return filepath.Join(dir, name) }
	const n = 20
	const mfr = "90B3D51F300A0001"
	mustRun(t, "ca", "init", "--data", data)
	mustRun(t, "ca", "batch", "open", "--data", data, "--name", "M1", "--quota", "40")
	for _, u := range []string{"ds", "ka"} {
		mustRun(t, "keys", "new", "--usage", u, "--key", p("mfr-"+u+".key"), "--csr", p("mfr-"+u+".csr"), "--eui", mfr, "--role", "other", "--name", "Meters Ltd")
		mustRun(t, "ca", "issue", "org", "--data", data, "--csr", p("mfr-"+u+".csr"), "--role", "other", "--eui", mfr, "--usage", u, "--out", p("mfr-"+u+".pem"))
	}
	devs, err := provisiontest.Devices(n, smki.MustParseEUI("00DB123400000001"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := provisiontest.File(smki.MustParseEUI(mfr), time.Now(), devs)
	if err != nil {
		t.Fatal(err)
	}
	key, err := custody.ReadFile(p("mfr-ds.key"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := provision.Sign(rand.Reader, file, key)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("devices.jsonl"), file, 0o644))
	must(os.WriteFile(p("devices.jsonl.sig"), sig, 0o644))
	tampered := bytes.Clone(file)
	tampered[len(tampered)/2] ^= 1
	must(os.WriteFile(p("tampered.jsonl"), tampered, 0o644))

	// Refusals before anything is issued.
	args := func(more ...string) []string {
		return append([]string{"ca", "import", "--data", data, "--batch", "M1", "--actor", "alice"}, more...)
	}
	if _, err := run(t, args("--file", p("tampered.jsonl"), "--sig", p("devices.jsonl.sig"), "--manufacturer-cert", p("mfr-ds.pem"))...); !errors.Is(err, provision.ErrSignature) {
		t.Errorf("tampered file: %v, want provision.ErrSignature", err)
	}
	if _, err := run(t, args("--file", p("devices.jsonl"), "--manufacturer-cert", p("mfr-ka.pem"))...); !errors.Is(err, provision.ErrCertificate) ||
		!strings.Contains(err.Error(), "key agreement") {
		t.Errorf("KA certificate: %v, want provision.ErrCertificate", err)
	}
	if _, err := run(t, args("--file", p("devices.jsonl"))...); err == nil {
		t.Errorf("no manufacturer: accepted")
	}
	if _, err := run(t, args("--file", p("devices.jsonl"), "--manufacturer", "90B3D51F300A0002")...); !errors.Is(err, ca.ErrNotFound) {
		t.Errorf("unknown manufacturer: %v, want ca.ErrNotFound", err)
	}

	// The import, with the certificate from a file.
	out := mustRun(t, args("--file", p("devices.jsonl"), "--manufacturer-cert", p("mfr-ds.pem"), "--out", p("inventory.jsonl"), "--json")...)
	res := decode[importOutput](t, out)
	if res.Devices != n || res.Certificates != 2*n || !res.BatchClosed || res.FirstEUI != "00DB123400000001" || res.LastEUI != "00DB123400000014" || res.Manufacturer != mfr {
		t.Errorf("summary %+v", res)
	}
	fh, err := os.Open(p("inventory.jsonl"))
	must(err)
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		l := decode[inventoryLine](t, sc.Text())
		cs, err := smki.ParseCertificates([]byte(l.Certificate))
		if err != nil || len(cs) != 1 || cs[0].EUI.String() != l.EUI || l.CA != "M1" || (l.Usage != "ds" && l.Usage != "ka") {
			t.Fatalf("inventory line %d: %+v: %v", lines+1, l, err)
		}
		lines++
	}
	if lines != 2*n {
		t.Errorf("%d inventory lines, want %d", lines, 2*n)
	}
	// The certificates validate.
	must(os.WriteFile(p("one.pem"), []byte(decode[inventoryLine](t, firstLine(t, p("inventory.jsonl"))).Certificate), 0o644))
	if out := mustRun(t, "smki", "verify", "--data", data, p("one.pem")); !strings.Contains(out, ": OK: ") {
		t.Errorf("smki verify: %s", out)
	}

	// Again, with the certificate from the store: every device is a
	// duplicate (and the batch is closed anyway).
	mustRun(t, "ca", "batch", "open", "--data", data, "--name", "M2", "--quota", "100")
	args2 := []string{"ca", "import", "--data", data, "--batch", "M2", "--file", p("devices.jsonl"), "--manufacturer", mfr}
	if _, err := run(t, args2...); !errors.Is(err, ca.ErrExists) || !strings.Contains(err.Error(), "line 2: device 00DB123400000001 already holds") {
		t.Errorf("second import: %v, want ca.ErrExists naming line 2", err)
	}
	out = mustRun(t, append(args2, "--skip-bad")...)
	if !strings.Contains(out, "imported 0 devices") || strings.Count(out, "skipped line") != n {
		t.Errorf("second import with --skip-bad:\n%s", out)
	}
}

func firstLine(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return l
}
