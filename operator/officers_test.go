package operator

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestConfirmOfficers(t *testing.T) {
	const pw = "a long ceremony password"
	hash, err := HashPassword(nil, pw)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := NewCredentials([]Credential{
		{Name: "alice", PasswordArgon2id: hash, Roles: []Role{RoleCeremony}},
		{Name: "bob", PasswordArgon2id: hash, Roles: []Role{RoleCeremony}},
		{Name: "carol", PasswordArgon2id: hash, Roles: []Role{RoleIssue}},
		{Name: "dave", TokenSHA256: HashToken("t"), Roles: []Role{RoleCeremony}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		names []string
		input string
		ok    bool
	}{
		{"two officers", []string{"alice", "bob"}, pw + "\n" + pw + "\n", true},
		{"no trailing newline", []string{"alice", "bob"}, pw + "\n" + pw, true},
		{"one officer", []string{"alice"}, pw + "\n", false},
		{"three officers", []string{"alice", "bob", "carol"}, pw + "\n" + pw + "\n" + pw + "\n", false},
		{"twice the same", []string{"alice", "alice"}, pw + "\n" + pw + "\n", false},
		{"wrong password", []string{"alice", "bob"}, pw + "\nnot it\n", false},
		{"no ceremony role", []string{"alice", "carol"}, pw + "\n" + pw + "\n", false},
		{"no password set", []string{"alice", "dave"}, pw + "\n" + pw + "\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := ReadConfirms(strings.NewReader(tc.input), io.Discard, tc.names, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ConfirmOfficers(creds, cs)
			if tc.ok {
				if err != nil || strings.Join(got, ",") != strings.Join(tc.names, ",") {
					t.Errorf("ConfirmOfficers = %v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrOfficers) {
				t.Fatalf("ConfirmOfficers = %v, want ErrOfficers", err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Error("the error shows a password")
			}
		})
	}
	if _, err := ReadConfirms(strings.NewReader(pw+"\n"), io.Discard, []string{"alice", "bob"}, nil); !errors.Is(err, ErrOfficers) {
		t.Errorf("a missing password line: %v", err)
	}
}
