package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/internal/testenv"
)

// services are the units of deploy/systemd, one per service.
var services = []string{"router", "repository", "operator", "ca", "fleet"}

// unit is a unit file's directives, each with every value it is given, in
// order.
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", path, line)
		}
		u[k] = append(u[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the directive's value, given exactly once.
func (u unit) one(t *testing.T, name, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Errorf("%s: %s given %d times, want once", name, key, len(u[key]))
		return ""
	}
	return u[key][0]
}

// TestSystemdUnits checks each unit's hardening: a dedicated user, no way
// to gain privileges, the file system read-only but for the service's own
// state directory (and, for the CA alone, the SoftHSM token directory), no
// capability; secrets only through LoadCredential, and only those the
// service needs.
func TestSystemdUnits(t *testing.T) {
	sysusers, err := os.ReadFile(filepath.Join("systemd", "metertrust.sysusers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The credentials each service may load: no private key but its own.
	credentials := map[string][]string{
		"router":     {"acb-ka.key", "tls.key", "csp.key", "-tcos-ds.key", "pgpass"},
		"repository": {"operators.json", "pgpass"},
		"operator":   {"tls.key", "operators.json", "pgpass"},
		"ca":         {"pin", "tls.key", "operators.json", "pgpass"},
		"fleet":      {"tls.key"},
	}
	want := map[string]string{
		"NoNewPrivileges":        "yes",
		"ProtectSystem":          "strict",
		"PrivateTmp":             "yes",
		"ProtectHome":            "yes",
		"PrivateDevices":         "yes",
		"CapabilityBoundingSet":  "",
		"AmbientCapabilities":    "",
		"RestrictSUIDSGID":       "yes",
		"ProtectKernelTunables":  "yes",
		"ProtectKernelModules":   "yes",
		"ProtectControlGroups":   "yes",
		"MemoryDenyWriteExecute": "yes",
		"UMask":                  "0077",
	}
	for _, svc := range services {
		name := "metertrust-" + svc + ".service"
		u := readUnit(t, filepath.Join("systemd", name))
		for k, v := range want {
			if got := u.one(t, name, k); got != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got, v)
			}
		}
		user := "metertrust-" + svc
		if u.one(t, name, "User") != user || u.one(t, name, "Group") != user {
			t.Errorf("%s: User=%v Group=%v, want %s", name, u["User"], u["Group"], user)
		}
		if !strings.Contains(string(sysusers), "\nu "+user+" ") {
			t.Errorf("%s: user %s is not in metertrust.sysusers.conf", name, user)
		}
		if got := u.one(t, name, "StateDirectory"); got != "metertrust/"+svc {
			t.Errorf("%s: StateDirectory=%q, want metertrust/%s", name, got, svc)
		}
		if got := u.one(t, name, "StateDirectoryMode"); got != "0700" {
			t.Errorf("%s: StateDirectoryMode=%q, want 0700", name, got)
		}
		rw := u["ReadWritePaths"]
		if svc == "ca" {
			if !slices.Equal(rw, []string{"-/var/lib/softhsm/tokens"}) {
				t.Errorf("%s: ReadWritePaths=%v, want only the SoftHSM token directory", name, rw)
			}
		} else if len(rw) > 0 {
			t.Errorf("%s: ReadWritePaths=%v: only its state directory may be writable", name, rw)
		}
		for _, k := range []string{"ReadWriteDirectories", "DynamicUser", "PermissionsStartOnly"} {
			if len(u[k]) > 0 {
				t.Errorf("%s: %s given", name, k)
			}
		}
		var loaded []string
		for _, c := range u["LoadCredential"] {
			id, path, _ := strings.Cut(c, ":")
			loaded = append(loaded, id)
			if dir := "/etc/metertrust/credentials/" + svc + "/"; !strings.HasPrefix(path, dir) {
				t.Errorf("%s: credential %s from %s, outside %s", name, id, path, dir)
			}
		}
		if !slices.Equal(loaded, credentials[svc]) {
			t.Errorf("%s: loads credentials %v, want %v", name, loaded, credentials[svc])
		}
		exec := u.one(t, name, "ExecStart")
		if !strings.HasPrefix(exec, "/usr/local/bin/metertrust serve "+svc+" --config /etc/metertrust/"+svc+".json") {
			t.Errorf("%s: ExecStart=%q", name, exec)
		}
		if strings.Contains(exec, "pin-value") || strings.Contains(exec, "PGPASSWORD") {
			t.Errorf("%s: a secret on the command line: %q", name, exec)
		}
	}
}

// TestSystemdAnalyze runs systemd-analyze verify on every unit, and
// security, which rates each unit's exposure: each must stay at or below
// 2.0 ("OK") of its 10. The units name /usr/local/bin/metertrust, which
// verify requires to exist: the copies checked name a stand-in.
func TestSystemdAnalyze(t *testing.T) {
	sa := testenv.LookPath(t, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "metertrust")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, svc := range services {
		name := "metertrust-" + svc + ".service"
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/metertrust", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(sa, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "verify" && len(out) > 0 {
			// verify exits 0 on some warnings (an unknown directive, a
			// deprecated one): any output is a finding.
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
	}
	run(append([]string{"verify", "--man=no"}, units...)...)
	run(append([]string{"security", "--offline=yes", "--threshold=20", "--no-pager"}, units...)...)
}

// TestSysusersTmpfiles applies metertrust.sysusers.conf and
// metertrust.tmpfiles.conf to an empty root directory: every service's user
// is made, the CA's in the softhsm group, and the credentials directories
// are root's alone.
func TestSysusersTmpfiles(t *testing.T) {
	sysusers := testenv.LookPath(t, "systemd-sysusers")
	tmpfiles := testenv.LookPath(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles --root makes root-owned directories: needs root")
	}
	root := t.TempDir()
	for _, f := range []struct{ from, to string }{
		{"metertrust.sysusers.conf", "usr/lib/sysusers.d/metertrust.conf"},
		{"metertrust.tmpfiles.conf", "usr/lib/tmpfiles.d/metertrust.conf"},
	} {
		b, err := os.ReadFile(filepath.Join("systemd", f.from))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, f.to)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{sysusers, "--root=" + root}, {tmpfiles, "--root=" + root, "--create"}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		if !strings.Contains(string(passwd), "\nmetertrust-"+svc+":x:") && !strings.HasPrefix(string(passwd), "metertrust-"+svc+":x:") {
			t.Errorf("no user metertrust-%s in\n%s", svc, passwd)
		}
	}
	if !strings.Contains(string(group), "softhsm:x:") || !strings.Contains(string(group), ":metertrust-ca\n") {
		t.Errorf("metertrust-ca is not in the softhsm group:\n%s", group)
	}
	for _, svc := range services {
		fi, err := os.Stat(filepath.Join(root, "etc", "metertrust", "credentials", svc))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("credentials/%s: mode %v, want 0700", svc, fi.Mode().Perm())
		}
	}
}
