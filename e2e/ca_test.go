package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/smki"
)

// TestCAServiceRevokes runs "serve ca" from a config file shaped like
// deploy/examples/ca.json and "serve repository" beside it on one store.
// The CA service says it holds the online CAs' keys and no root's; the
// repository says it holds no key at all. An operator (its own DCCKI client
// certificate and a token with the revoke role) revokes the supplier's
// signing certificate through the CA service; the repository, keyless,
// then answers OCSP "revoked" and serves a CRL listing it.
func TestCAServiceRevokes(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			w := newWorld(t, backend, 1)
			ctx := context.Background()
			dir := t.TempDir()

			const token = "e2e-revoker-token-0123456789abcdef"
			sum := sha256.Sum256([]byte(token))
			ops := filepath.Join(dir, "operators.json")
			if err := os.WriteFile(ops, fmt.Appendf(nil, `{"operators": [{"name": "rita", "token_sha256": %q, "roles": ["revoke"]}]}`,
				hex.EncodeToString(sum[:])), 0o600); err != nil {
				t.Fatal(err)
			}
			opCert, opKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key")
			cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", "90B3D51F30000004", "--user-role", "OU",
				"--key-out", opKey, "--out", opCert)

			caAddr := freeAddr(t)
			cfg := map[string]any{"data": w.data, "listen": caAddr, "tlsCert": w.srvCert, "tlsKey": w.srvKey,
				"operators": "operators.json", "refresh": "1h", "logLevel": "info"}
			if w.dsn != "" {
				cfg["store"] = w.dsn
			}
			b, _ := json.Marshal(cfg)
			cfgFile := filepath.Join(dir, "ca.json")
			if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
				t.Fatal(err)
			}
			caProc := start(t, "ca", "serve", "ca", "--config", cfgFile)
			// batch-1 issued its whole quota and is closed: its key is gone,
			// and its delegated OCSP responder's key is held (decision 013).
			want := []string{"ca-tls-server " + w.srvKey, "online-ca oca softkms:path=keys/oca.key", "online-ca dccki-tls softkms:path=keys/dccki-tls.key",
				"ocsp-responder batch-1 softkms:path=keys/batch-1-ocsp-responder.key"}
			if keys := keysLoaded(t, caProc); !slices.Equal(keys, want) {
				t.Errorf("CA service holds %q, want %q (never a root's key)", keys, want)
			}

			repoAddr := freeAddr(t)
			args := []string{"serve", "repository", "--data", w.data, "--listen", repoAddr, "--log-level", "info"}
			if w.dsn != "" {
				args = append(args, "--store", w.dsn)
			}
			repo := start(t, "repository", args...)
			if keys := keysLoaded(t, repo); len(keys) != 0 {
				t.Errorf("the repository holds %q, want no key", keys)
			}

			kp, err := tls.LoadX509KeyPair(opCert, opKey)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: w.roots, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}}}
			revoke := func(tok string) (int, []byte) {
				body := fmt.Sprintf(`{"ca": "oca", "serial": %q, "reason": "keyCompromise"}`, w.supplier.dsSerial)
				req, _ := http.NewRequest("POST", "https://"+caAddr+"/v1/revocations", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				var st int
				var rb []byte
				eventually(t, 20*time.Second, "CA service answers", func() error {
					if caProc.exited() {
						t.Fatalf("serve ca exited: %v", caProc.err)
					}
					req.Body = io.NopCloser(strings.NewReader(body))
					res, err := client.Do(req)
					if err != nil {
						return err
					}
					defer res.Body.Close()
					st = res.StatusCode
					rb, _ = io.ReadAll(res.Body)
					return nil
				})
				return st, rb
			}
			if st, body := revoke(""); st != http.StatusUnauthorized {
				t.Fatalf("revocation without a token: %d %s", st, body)
			}
			st, body := revoke(token)
			if st != http.StatusOK {
				t.Fatalf("revocation: %d %s", st, body)
			}
			var rv struct {
				Certificate struct{ RevokedAt string }
				CRL         *struct{ Number int64 }
			}
			if err := json.Unmarshal(body, &rv); err != nil || rv.Certificate.RevokedAt == "" || rv.CRL == nil {
				t.Fatalf("revocation answered %s (%v)", body, err)
			}

			// The repository, holding no key, serves the CA's answers.
			ocaRec, err := w.db.SMKI().CA(ctx, ca.NameOCA)
			if err != nil {
				t.Fatal(err)
			}
			oca, _ := x509.ParseCertificate(ocaRec.CertDER)
			pemBytes, err := os.ReadFile(w.supplier.dsCert)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := smki.ParseCertificate(pemDER(t, pemBytes))
			if err != nil {
				t.Fatal(err)
			}
			leaf := &x509.Certificate{SerialNumber: sc.SerialNumber} // all OCSP needs of it
			ocspReq, err := ocsp.CreateRequest(leaf, oca, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.Post("http://"+repoAddr+"/ocsp", "application/ocsp-request", bytes.NewReader(ocspReq))
			if err != nil {
				t.Fatal(err)
			}
			der, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r, err := ocsp.ParseResponseForCert(der, leaf, oca)
			if err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("repository OCSP: %v, %+v", err, r)
			}
			res, err = http.Get("http://" + repoAddr + "/v1/crl/oca")
			if err != nil {
				t.Fatal(err)
			}
			der, _ = io.ReadAll(res.Body)
			res.Body.Close()
			rl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatalf("repository CRL: %v", err)
			}
			listed := slices.ContainsFunc(rl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
				return e.SerialNumber.Cmp(leaf.SerialNumber) == 0
			})
			if !listed || rl.Number.Int64() != rv.CRL.Number {
				t.Errorf("repository CRL %v lists the revoked certificate: %v; want number %d", rl.Number, listed, rv.CRL.Number)
			}
		})
	}
}

// pemDER returns the DER of the first PEM block of b.
func pemDER(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}

// TestRegistrationCLI runs the registration authority end to end with the
// command line: an operator registers the supplier (ca org register); the
// supplier makes a key and request (keys new) and submits it with its own
// DCCKI certificate (ca request submit); an operator sees it queued and
// approves it (ca request list, approve); the supplier reads its issued
// certificate (ca request show), which chains to the OCA.
func TestRegistrationCLI(t *testing.T) {
	needBinary(t)
	w := newWorld(t, "sqlite", 1)
	dir := t.TempDir()
	const token = "e2e-registrar-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	ops, tokFile := filepath.Join(dir, "operators.json"), filepath.Join(dir, "token")
	if err := os.WriteFile(ops, fmt.Appendf(nil, `{"operators": [{"name": "reg", "token_sha256": %q, "roles": ["register", "issue"]}]}`,
		hex.EncodeToString(sum[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opCert, opKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key")
	cli(t, "ca", "issue", "tls-client", "--data", w.data, "--actor", "e2e", "--eui", "90B3D51F30000004", "--user-role", "OU",
		"--key-out", opKey, "--out", opCert)
	rootPEM := filepath.Join(dir, "dccki-root.pem")
	rc, err := w.db.SMKI().CA(context.Background(), ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.CertDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	caProc := start(t, "ca", "serve", "ca", "--data", w.data, "--listen", addr, "--tls-cert", w.srvCert, "--tls-key", w.srvKey,
		"--operators", ops, "--log-level", "info")
	keysLoaded(t, caProc) // up
	url := "https://" + addr
	asOperator := []string{"--ca-url", url, "--cert", opCert, "--key", opKey, "--cacert", rootPEM, "--token-file", tokFile}
	asSupplier := []string{"--ca-url", url, "--cert", w.supplier.tlsCert, "--key", w.supplier.tlsKey, "--cacert", rootPEM}

	eventually(t, 20*time.Second, "CA service answers", func() error {
		_, err := cliErr(t, append([]string{"ca", "org", "list"}, asOperator...)...)
		return err
	})
	cli(t, append([]string{"ca", "org", "register", w.supplier.eui.String(), "--name", "Supplier A", "--role", "supplier"}, asOperator...)...)
	key, csr := filepath.Join(dir, "new-ds.key"), filepath.Join(dir, "new-ds.csr")
	cli(t, "keys", "new", "--usage", "ds", "--key", key, "--csr", csr, "--eui", w.supplier.eui.String(), "--role", "supplier", "--name", "supplier")
	out := cli(t, append([]string{"ca", "request", "submit", "--role", "supplier", "--usage", "ds", "--csr", csr, "--json"}, asSupplier...)...)
	var req struct{ ID, State string }
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.State != "pending" {
		t.Fatalf("submit: %q, %v", out, err)
	}
	if out := cli(t, append([]string{"ca", "request", "list"}, asOperator...)...); !strings.Contains(out, req.ID) {
		t.Errorf("the pending queue lacks %s:\n%s", req.ID, out)
	}
	if _, err := cliErr(t, append([]string{"ca", "request", "approve", req.ID}, asSupplier...)...); err == nil {
		t.Error("the supplier approved its own request (no operator token)")
	}
	cli(t, append([]string{"ca", "request", "approve", req.ID, "--reason", "registration checked"}, asOperator...)...)
	out = cli(t, append([]string{"ca", "request", "show", req.ID, "--json"}, asSupplier...)...)
	var shown struct {
		State       string
		Certificate struct{ CA, Certificate string }
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.State != "issued" || shown.Certificate.CA != ca.NameOCA {
		t.Fatalf("show: %q, %v", out, err)
	}
	sc, err := smki.ParseCertificate(pemDER(t, []byte(shown.Certificate.Certificate)))
	if err != nil || sc.EUI != w.supplier.eui || sc.Role != smki.RoleSupplier {
		t.Errorf("issued certificate: %v, %+v", err, sc)
	}
}
