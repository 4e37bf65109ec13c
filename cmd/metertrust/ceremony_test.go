package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/store"
)

// officerPassword is the test officers' password.
const officerPassword = "correct horse battery staple"

var (
	officerHashOnce sync.Once
	officerHash     string
	officerHashErr  error
)

// officersFile writes an operators file with two ceremony officers, alice
// and bob (both with officerPassword), and carol without the ceremony
// role, and returns its path.
func officersFile(t *testing.T) string {
	t.Helper()
	officerHashOnce.Do(func() { officerHash, officerHashErr = operator.HashPassword(nil, officerPassword) })
	if officerHashErr != nil {
		t.Fatal(officerHashErr)
	}
	f := operator.File{Operators: []operator.Credential{
		{Name: "alice", PasswordArgon2id: officerHash, Roles: []operator.Role{operator.RoleCeremony}},
		{Name: "bob", PasswordArgon2id: officerHash, Roles: []operator.Role{operator.RoleCeremony, operator.RoleIssue}},
		{Name: "carol", PasswordArgon2id: officerHash, Roles: []operator.Role{operator.RoleIssue}},
	}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "operators.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// isCeremony reports whether args run a ceremony needing two officers.
func isCeremony(args []string) bool {
	return len(args) >= 2 && args[0] == "ca" && (args[1] == "init" || len(args) >= 3 && args[1] == "batch" && args[2] == "open")
}

// withOfficers adds alice and bob, and their passwords on stdin, to a
// ceremony's arguments that name no officer: the tests' two officers.
//
// A batch opening that names no proposal gets --no-proposal: these tests
// open batches without the CA service (TestBatchOpenProposal drives one).
func withOfficers(t *testing.T, args []string) ([]string, string) {
	args = withoutProposal(args)
	if !isCeremony(args) || slices.Contains(args, "--officer") {
		return args, ""
	}
	args = append(slices.Clip(args), "--operators", officersFile(t), "--officer", "alice", "--officer", "bob")
	return args, officerPassword + "\n" + officerPassword + "\n"
}

// withoutProposal adds --no-proposal to a batch opening naming neither
// --proposal nor --no-proposal.
func withoutProposal(args []string) []string {
	if len(args) < 3 || args[0] != "ca" || args[1] != "batch" || args[2] != "open" ||
		slices.Contains(args, "--proposal") || slices.Contains(args, "--no-proposal") {
		return args
	}
	return append(slices.Clip(args), "--no-proposal", "test without the CA service")
}

// TestCeremonyOfficers checks that ca init and ca batch open need two
// different officers with the ceremony role, each confirming with their
// own password; that refusals are audited and make no key; and that the
// ceremony's audit entries name both officers.
func TestCeremonyOfficers(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ops := officersFile(t)
	pw := officerPassword + "\n"
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{"no officers", []string{"--operators", ops}, ""},
		{"one officer", []string{"--operators", ops, "--officer", "alice"}, pw},
		{"the same officer twice", []string{"--operators", ops, "--officer", "alice", "--officer", "alice"}, pw + pw},
		{"a wrong password", []string{"--operators", ops, "--officer", "alice", "--officer", "bob"}, pw + "guess\n"},
		{"an officer without the role", []string{"--operators", ops, "--officer", "alice", "--officer", "carol"}, pw + pw},
		{"an unknown officer", []string{"--operators", ops, "--officer", "alice", "--officer", "mallory"}, pw + pw},
		{"no operators file", []string{"--officer", "alice", "--officer", "bob"}, pw + pw},
		{"passwords missing", []string{"--operators", ops, "--officer", "alice", "--officer", "bob"}, pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runIn(t, tc.stdin, append([]string{"ca", "init", "--data", data}, tc.args...)...)
			if !errors.Is(err, operator.ErrOfficers) && !(tc.name == "no operators file" && err != nil) {
				t.Fatalf("ca init: %v, want ErrOfficers", err)
			}
			if _, err := os.Stat(filepath.Join(data, caConfigFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused ceremony left %s: %v", caConfigFile, err)
			}
		})
	}
	if _, err := runIn(t, pw+pw, "ca", "init", "--data", data, "--actor", "console", "--operators", ops, "--officer", "alice", "--officer", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := runIn(t, pw+"nope\n", "ca", "batch", "open", "--data", data, "--name", "B1", "--quota", "5",
		"--operators", ops, "--officer", "bob", "--officer", "alice", "--no-proposal", "the first batch"); !errors.Is(err, operator.ErrOfficers) {
		t.Fatalf("batch open with a wrong password: %v", err)
	}
	if _, err := runIn(t, pw+pw, "ca", "batch", "open", "--data", data, "--name", "B1", "--quota", "5",
		"--operators", ops, "--officer", "bob", "--officer", "alice", "--no-proposal", "the first batch"); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(t.Context(), filepath.Join(data, "metertrust.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := db.AuditEvents(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var refused, rootBy, batchBy string
	opsRaw, _ := os.ReadFile(ops)
	opsSum := sha256.Sum256(opsRaw)
	confirmed := 0
	for _, e := range events {
		switch {
		case e.Action == "ca.ceremony.officers" && e.Outcome == store.OutcomeSuccess:
			// The digest of the file the passwords were checked against,
			// for an auditor to compare with the services' own.
			if e.Details["operators_file_sha256"] != hex.EncodeToString(opsSum[:]) {
				t.Errorf("officers' confirmation %v: want the operators file's digest", e.Details)
			}
			confirmed++
		case e.Action == "ca.ceremony.officers" && e.Outcome == store.OutcomeRefused:
			refused += "|" + e.Details["refusal"].(string)
		case strings.HasPrefix(e.Action, "ca.init") && e.Outcome == store.OutcomeSuccess && rootBy == "":
			rootBy, _ = e.Details["officers"].(string)
		case strings.HasPrefix(e.Action, "ca.ceremony.") && e.Object == "B1" && e.Outcome == store.OutcomeSuccess && batchBy == "":
			batchBy, _ = e.Details["officers"].(string)
		}
	}
	if confirmed != 2 {
		t.Errorf("%d officers' confirmations audited, want 2 (init, batch)", confirmed)
	}
	if rootBy != "alice,bob" || batchBy != "bob,alice" {
		t.Errorf("ceremony officers in the audit log: init %q, batch %q\n%v", rootBy, batchBy, events)
	}
	for _, want := range []string{"different people", "wrong password", "no ceremony role"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refusals audited %q lack %q", refused, want)
		}
	}
	if strings.Contains(refused, officerPassword) {
		t.Error("a password reached the audit log")
	}
}
