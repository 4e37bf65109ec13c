// Package testenv applies metertrust's one rule for tests that need an
// outside service or tool (PostgreSQL, a SoftHSM2 token, openssl,
// Chromium): when it is not provided the test is skipped, unless the CI
// variable is set, in which case it fails, so that a CI run never passes by
// skipping. It is modelled on the Go source tree's internal/testenv.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Var returns the value of the environment variable name, which names a
// test service (METERTRUST_TEST_PG, METERTRUST_TEST_PKCS11, ...). When it is
// unset or empty, Var skips the test, or fails it if CI is set.
func Var(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		missing(t, name+" is unset")
	}
	return v
}

// LookPath returns the path of the program file, found as exec.LookPath
// finds it. When it is not installed, LookPath skips the test, or fails it
// if CI is set.
func LookPath(t testing.TB, file string) string {
	t.Helper()
	p, err := exec.LookPath(file)
	if err != nil {
		missing(t, file+" is not installed")
	}
	return p
}

// missing skips t for what, or fails it under CI.
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s but CI is set: the test must run in CI", what)
	}
	t.Skip(what)
}
