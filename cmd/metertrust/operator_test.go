package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/operator"
)

// runOperator runs the "operator" command tree in process.
func runOperator(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := newOperatorCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	err := c.ExecuteContext(context.Background())
	return out.String(), err
}

func TestOperatorToken(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		roles   int
		wantErr string
	}{
		{"one role", []string{"token", "--name", "alice", "--role", "quarantine-officer"}, 1, ""},
		{"repeated and listed roles", []string{"token", "--name", "bob", "--role", "viewer,revoke", "--role", "threshold-admin"}, 3, ""},
		{"unknown role", []string{"token", "--name", "alice", "--role", "root"}, 0, "unknown role"},
		{"no role", []string{"token", "--name", "alice"}, 0, "role"},
		{"no name", []string{"token", "--role", "viewer"}, 0, "name"},
		{"bad name", []string{"token", "--name", "a b", "--role", "viewer"}, 0, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runOperator(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			token, entry := lines[1], lines[len(lines)-1]
			creds, err := operator.Parse([]byte(`{"operators":[` + entry + `]}`))
			if err != nil {
				t.Fatalf("the printed entry %q: %v", entry, err)
			}
			id, ok := creds.Authenticate(token)
			if !ok || len(id.Roles) != tc.roles {
				t.Errorf("the printed token authenticates as %+v, %v", id, ok)
			}
			if strings.Count(out, token) != 1 {
				t.Error("the token is printed more than once")
			}
		})
	}
	out, err := runOperator(t, "token", "--name", "carol", "--role", "viewer", "--json")
	var j struct {
		Token      string              `json:"token"`
		Credential operator.Credential `json:"credential"`
	}
	if err != nil || json.Unmarshal([]byte(out), &j) != nil || j.Credential.TokenSHA256 != operator.HashToken(j.Token) {
		t.Errorf("--json = %q, %v", out, err)
	}
}

func TestOperatorPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "operators.json")
	run := func(stdin string, args ...string) error {
		t.Helper()
		c := newOperatorCmd()
		var out bytes.Buffer
		c.SetOut(&out)
		c.SetErr(&out)
		c.SetIn(strings.NewReader(stdin))
		c.SetArgs(append([]string{"passwd", "--operators", file}, args...))
		return c.ExecuteContext(context.Background())
	}
	// A new operator needs roles; a short password is refused; the file
	// is made with mode 0600.
	if err := run("long enough password\n", "--name", "olga", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("new operator without --role: %v", err)
	}
	if err := run("short\n", "--name", "olga", "--role", "quarantine-officer", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short password: %v", err)
	}
	if err := run("long enough password\n", "--name", "olga", "--role", "quarantine-officer", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if err := run("long enough password\n", "--name", "olga"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Errorf("no terminal and no --password-stdin: %v", err)
	}
	// A token entry beside it is kept; its password is then set too.
	_, cred, err := operator.Mint(nil, "tina", []operator.Role{operator.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	f, err := operator.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f.Operators = append(f.Operators, cred)
	b, _ := json.Marshal(f)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run("tina's new password\r\n", "--name", "tina", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v", st.Mode(), err)
	}
	creds, err := operator.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := creds.Login("olga", "long enough password"); !ok || !id.Has(operator.RoleQuarantineOfficer) {
		t.Errorf("olga's login: %+v %v", id, ok)
	}
	if _, ok := creds.Login("olga", "long enough passwor"); ok {
		t.Error("a wrong password logs in")
	}
	if _, ok := creds.Login("tina", "tina's new password"); !ok {
		t.Error("tina's password")
	}
	f, err = operator.LoadFile(file)
	if err != nil || len(f.Operators) != 2 || f.Operators[1].TokenSHA256 != cred.TokenSHA256 {
		t.Errorf("tina's token digest after passwd: %+v, %v", f.Operators, err)
	}
	raw, _ := os.ReadFile(file)
	if strings.Contains(string(raw), "long enough password") {
		t.Error("the password is in the file")
	}
}
