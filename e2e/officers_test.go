package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/metertrust/metertrust/operator"
)

// officerPassword is the password of the e2e ceremony officers.
const officerPassword = "e2e ceremony officer password"

var (
	officerHashOnce sync.Once
	officerHash     string
	officerHashErr  error
)

// withOfficers adds two ceremony officers (an operators file of their
// own, and their passwords for stdin) to a ceremony's arguments that name
// none: ca init and ca batch open need two officers (decision 023).
func withOfficers(t *testing.T, args []string) ([]string, string) {
	t.Helper()
	ceremony := len(args) >= 2 && args[0] == "ca" && (args[1] == "init" || len(args) >= 3 && args[1] == "batch" && args[2] == "open")
	if ceremony && args[1] == "batch" && !slices.Contains(args, "--proposal") && !slices.Contains(args, "--no-proposal") {
		// These batches are opened without the CA service's proposals.
		args = append(slices.Clip(args), "--no-proposal", "e2e batch without a proposal")
	}
	if !ceremony || slices.Contains(args, "--officer") {
		return args, ""
	}
	officerHashOnce.Do(func() { officerHash, officerHashErr = operator.HashPassword(nil, officerPassword) })
	if officerHashErr != nil {
		t.Fatal(officerHashErr)
	}
	b, err := json.Marshal(operator.File{Operators: []operator.Credential{
		{Name: "officer-1", PasswordArgon2id: officerHash, Roles: []operator.Role{operator.RoleCeremony}},
		{Name: "officer-2", PasswordArgon2id: officerHash, Roles: []operator.Role{operator.RoleCeremony}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "officers.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(slices.Clip(args), "--operators", path, "--officer", "officer-1", "--officer", "officer-2")
	return args, officerPassword + "\n" + officerPassword + "\n"
}
