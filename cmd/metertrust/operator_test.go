package main

import (
	"bytes"
	"context"
	"encoding/json"
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
