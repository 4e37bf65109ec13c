package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/repository"
	"github.com/metertrust/metertrust/store"
)

// repoCLI runs the metertrust command line with args and returns stdout.
func repoCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	args, stdin := withOfficers(t, args)
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("metertrust %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// TestServeRepository runs "serve repository" on a CA data directory made
// by the CLI and talks to it over TCP: search; no revocation route, even
// for an operator whose credentials still hold the revoke role; a
// revocation done by the CA ("ca revoke", on the same store) served as
// revoked by OCSP, keylessly; no key loaded, as its "keys loaded" log line
// says. It stops the server as SIGINT would, by cancelling its context.
func TestServeRepository(t *testing.T) {
	dir := t.TempDir()
	repoCLI(t, "ca", "init", "--data", dir)
	repoCLI(t, "ca", "batch", "open", "--data", dir, "--name", "B9", "--quota", "10")
	repoCLI(t, "ca", "issue", "devices", "--data", dir, "--batch", "B9", "--count", "2")
	const token = "cli-test-operator-token"
	ops := filepath.Join(dir, "operators.json")
	// An existing credentials file holding the revoke role must still load.
	opsJSON := fmt.Sprintf(`{"operators":[{"name":"carol","token_sha256":%q,"roles":["publish","revoke"]}]}`, repository.HashToken(token))
	if err := os.WriteFile(ops, []byte(opsJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	// The service log goes to os.Stderr: catch it in a file.
	logFile, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	stderr := os.Stderr
	os.Stderr = logFile
	defer func() { os.Stderr = stderr }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"serve", "repository", "--data", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--operators", ops, "--log-level", "info"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listen address: %v (command: %v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "repository listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}

	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var list repository.CertificateList
	if err := json.Unmarshal(get("/v1/certificates?ca=B9&usage=ds"), &list); err != nil || len(list.Certificates) != 2 {
		t.Fatalf("search: %+v, %v", list, err)
	}
	victim := list.Certificates[0]

	// The repository revokes nothing.
	body := fmt.Sprintf(`{"ca":"B9","serial":%q,"reason":"keyCompromise"}`, victim.Serial)
	req, _ := http.NewRequest("POST", base+"/v1/revocations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/revocations: %d, want 404 or 405", resp.StatusCode)
	}

	// The CA revokes, on the same store, and signs the revoked OCSP
	// response there; the repository serves it.
	repoCLI(t, "ca", "revoke", "--data", dir, "--ca", "B9", "--serial", victim.Serial, "--reason", "keyCompromise")
	var view repository.CertificateView
	if err := json.Unmarshal(get(victim.Links.Self), &view); err != nil || view.Status != repository.StatusRevoked || view.RevocationReason != "keyCompromise" {
		t.Fatalf("certificate after revocation: %+v, %v", view, err)
	}
	issuer, err := x509.ParseCertificate(get("/v1/cas/B9/certificate"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(get(victim.Links.DER))
	if err != nil {
		t.Fatal(err)
	}
	ocspReq, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(ocspReq))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil || r.Status != ocsp.Revoked {
		t.Fatalf("OCSP after revocation: %+v, %v", r, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve repository: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve repository did not stop")
	}

	// The repository held no key: its "keys loaded" line lists none.
	os.Stderr = stderr
	logs, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	var keysLines int
	for _, l := range strings.Split(string(logs), "\n") {
		var rec struct {
			Msg     string   `json:"msg"`
			Service string   `json:"service"`
			Keys    []string `json:"keys"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "keys loaded" {
			continue
		}
		keysLines++
		if rec.Service != "repository" || len(rec.Keys) != 0 {
			t.Errorf("keys loaded line %s: want service repository and no key", l)
		}
	}
	if keysLines != 1 {
		t.Errorf("%d keys loaded lines, want 1: %s", keysLines, logs)
	}
}

// TestServeRepositoryFlags checks the refusals before anything listens.
func TestServeRepositoryFlags(t *testing.T) {
	dir := t.TempDir()
	badOps := filepath.Join(dir, "ops.json")
	if err := os.WriteFile(badOps, []byte(`{"operators":[{"name":"x","token":"plain"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     string
		wantErr string
	}{
		{"no store", []string{"--listen", "127.0.0.1:0"}, "", "--data DIR or --store DSN is required"},
		{"bad operators file", []string{"--data", dir, "--operators", badOps}, "", `unknown field "token"`},
		{"bad operators env", []string{"--data", dir}, `{"operators":[{"name":"x"}]}`, "METERTRUST_REPOSITORY_OPERATORS"},
		{"bad log level", []string{"--data", dir, "--log-level", "loud"}, "", "--log-level"},
		{"bad base URL", []string{"--data", dir, "--base-url", "ftp://x"}, "", "baseURL"},
		{"missing config", []string{"--data", dir, "--config", filepath.Join(dir, "none.json")}, "", "none.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(operatorsEnv, tc.env)
			root := newRootCmd()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(append([]string{"serve", "repository"}, tc.args...))
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// startRepository runs "serve repository" with args until the test ends and
// returns its base URL.
func startRepository(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"serve", "repository", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "error"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve repository: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve repository did not stop")
		}
	})
	// cobra prints the notice of a deprecated flag (--no-revoke) first.
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	for err == nil && strings.HasPrefix(line, "Flag --") && strings.Contains(line, "deprecated") {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("reading the listen address: %v", err)
	}
	go io.Copy(io.Discard, br)
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "repository listening on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	return base
}

// TestServeRepositoryOCSPWithoutKeys answers OCSP for good, revoked and
// never-issued certificates from a data directory whose keys are gone: the
// responses were signed ahead of time by the CA, at issuance and at
// revocation, and the repository loads no key. It also passes the
// deprecated --no-revoke, which existing scripts may still give and which
// does nothing.
func TestServeRepositoryOCSPWithoutKeys(t *testing.T) {
	dir := t.TempDir()
	repoCLI(t, "ca", "init", "--data", dir)
	repoCLI(t, "ca", "batch", "open", "--data", dir, "--name", "B8", "--quota", "10")
	repoCLI(t, "ca", "issue", "devices", "--data", dir, "--batch", "B8", "--count", "2")
	db, err := store.OpenDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := db.SMKI().FindCertificates(context.Background(), store.CertQuery{CA: "B8", Usage: store.UsageDS})
	batch, berr := db.SMKI().CA(context.Background(), "B8")
	db.Close()
	if err != nil || berr != nil || len(certs) != 2 {
		t.Fatalf("certificates of B8: %d, %v, %v", len(certs), err, berr)
	}
	repoCLI(t, "ca", "revoke", "--data", dir, "--ca", "B8", "--serial", fmt.Sprintf("%X", certs[0].Serial), "--reason", "keyCompromise")
	keysDir := filepath.Join(dir, custody.DirName)
	if keyFiles, err := filepath.Glob(filepath.Join(keysDir, "*.key")); err != nil || len(keyFiles) == 0 {
		t.Fatalf("no key files in %s to remove: %v", keysDir, err)
	}
	if err := os.RemoveAll(keysDir); err != nil {
		t.Fatal(err)
	}
	base := startRepository(t, "--data", dir, "--no-revoke")

	issuer, err := x509.ParseCertificate(batch.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		serial []byte
		want   int // OCSP status, or -1 for the "unauthorized" error response
	}{
		{"revoked", certs[0].Serial, ocsp.Revoked},
		{"good", certs[1].Serial, ocsp.Good},
		{"never issued", []byte{0x42}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: new(big.Int).SetBytes(tc.serial)}, issuer, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(base+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			der, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r, err := ocsp.ParseResponse(der, issuer)
			if tc.want < 0 {
				var re ocsp.ResponseError
				if !errors.As(err, &re) || re.Status != ocsp.Unauthorized {
					t.Fatalf("answer %+v, %v; want unauthorized", r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			if r.Status != tc.want || r.SerialNumber.Cmp(new(big.Int).SetBytes(tc.serial)) != 0 {
				t.Errorf("status %d for %X, want %d", r.Status, r.SerialNumber, tc.want)
			}
			if tc.want == ocsp.Revoked && r.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("reason %d", r.RevocationReason)
			}
		})
	}
}
