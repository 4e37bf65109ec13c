package demo

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestNoCentralTableOfSecrets runs the demo, then looks for every secret
// of the system where nothing secret may be (docs/threat-model.md, claim
// 1): the store (the SQLite file and its WAL), the services' logs at debug
// level, the story, the summary, and what the APIs answer (every list and
// record the users, the operator and the public can read, fetched from the
// services restarted on the demo's data). The secrets are every private key
// in the data directory (the DCC's and the parties' key files and each
// meter's own, which stand for its hardware), every ECDH shared secret Z
// between a key-agreement private key and a key-agreement certificate of
// the repository, and every MAC and encryption key derived from those Z for
// every message the router keeps. Each is looked for raw, in hex and in
// base64.
func TestNoCentralTableOfSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, logs bytes.Buffer
	sum, err := Run(context.Background(), Options{DataDir: dir, Meters: StoryMeters, Out: &out,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	summary, _ := json.Marshal(sum)

	// The haystacks: everything outside the key files.
	hay := map[string][]byte{"logs": logs.Bytes(), "story": out.Bytes(), "summary": summary}
	var keyFiles []string
	credentials := map[string][]byte{}
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if credentialFiles[rel] {
			credentials[rel] = b
			return nil
		}
		top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
		isKey := bytes.Contains(b, []byte("PRIVATE KEY-----"))
		switch {
		case isKey && keyDirs[top]:
			keyFiles = append(keyFiles, path)
			return nil
		case isKey:
			t.Errorf("a private key outside the key directories: %s", rel)
		}
		hay[rel] = b
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := hay["metertrust.db"]; !ok {
		t.Fatal("no store file to scan")
	}

	// The secrets: the operator's token and password too.
	secrets := map[string][]byte{}
	for rel, b := range credentials {
		secrets["the operator's "+rel] = bytes.TrimSpace(b)
	}
	if len(credentials) != len(credentialFiles) {
		t.Fatalf("credential files %v, want %v", credentials, credentialFiles)
	}
	var kas []*custody.Software
	for _, path := range keyFiles {
		k, forms := readPrivateKey(t, path)
		rel, _ := filepath.Rel(dir, path)
		secrets["private key "+rel] = forms[0]
		secrets["PKCS#8 of "+rel] = forms[1]
		kas = append(kas, k)
	}
	db, err := store.OpenDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := db.SMKI().FindCertificates(context.Background(), store.CertQuery{Usage: "ka", Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var zs [][]byte
	for _, c := range certs {
		pub := certECDH(t, c.DER)
		for i, k := range kas {
			z, err := k.ECDH(context.Background(), pub)
			if err != nil {
				continue
			}
			secrets[fmt.Sprintf("Z of key %d and certificate %X", i, c.Serial)] = z
			zs = append(zs, z)
		}
	}
	db.Close()
	messages := storedMessages(t, dir)
	for _, raw := range messages {
		m, err := commands.Parse(raw)
		if err != nil {
			continue
		}
		for i, z := range zs {
			secrets[fmt.Sprintf("MAC key of %s %d under Z %d", m.Code, m.Counter, i)] = commands.DeriveKey(z, m.MACInfo())
			secrets[fmt.Sprintf("encryption key of %s %d under Z %d", m.Code, m.Counter, i)] = commands.DeriveKey(z, m.EncryptionInfo())
		}
	}
	if len(keyFiles) < 10 || len(zs) < 10 || len(messages) < 10 {
		t.Fatalf("a vacuous scan: %d key files, %d Z, %d messages", len(keyFiles), len(zs), len(messages))
	}

	// What the APIs answer, from the services restarted on the data.
	for name, body := range apiAnswers(t, dir) {
		hay["API "+name] = body
	}

	found := scan(hay, secrets)
	for _, f := range found {
		t.Errorf("secret found: %s", f)
	}
	// The scan finds what is there: a key planted in a copy of the store.
	_, forms := readPrivateKey(t, keyFiles[0])
	planted := map[string][]byte{"planted": append(bytes.Clone(hay["metertrust.db"]), []byte(hex.EncodeToString(forms[0]))...)}
	if len(scan(planted, secrets)) == 0 {
		t.Error("the scan missed a private key planted in hex")
	}
	t.Logf("scanned %d places (%d bytes) for %d secrets", len(hay), total(hay), len(secrets))
}

// keyDirs are the data directory's key stores: the DCC's keys (keys/),
// the parties' own (parties/, tls/, standing for their systems) and the
// meters' (devices/, standing for their hardware). A private key anywhere
// else is a leak.
var keyDirs = map[string]bool{"keys": true, "parties": true, "tls": true, "devices": true}

// credentialFiles are the operator's bearer token and dashboard password,
// kept for the person running the demo: secrets to look for elsewhere.
var credentialFiles = map[string]bool{"operator.token": true, "operator.password": true}

// scan returns where a secret is found, as "secret in place (encoding)".
// Every encoding of every secret goes into a set by length, and each
// haystack is read once per length through a window: the cost is the
// haystacks' size times the number of lengths, not times the secrets.
func scan(hay map[string][]byte, secrets map[string][]byte) []string {
	type form struct{ what, enc string }
	byLen := map[int]map[string]form{}
	add := func(b []byte, f form) {
		if byLen[len(b)] == nil {
			byLen[len(b)] = map[string]form{}
		}
		byLen[len(b)][string(b)] = f
	}
	for what, s := range secrets {
		h := hex.EncodeToString(s)
		add(s, form{what, "raw"})
		add([]byte(h), form{what, "hex"})
		add([]byte(strings.ToUpper(h)), form{what, "HEX"})
		add([]byte(base64.StdEncoding.EncodeToString(s)), form{what, "base64"})
		add([]byte(base64.RawURLEncoding.EncodeToString(s)), form{what, "base64url"})
	}
	var found []string
	for place, b := range hay {
		for n, set := range byLen {
			for i := 0; i+n <= len(b); i++ {
				if f, ok := set[string(b[i:i+n])]; ok {
					found = append(found, fmt.Sprintf("%s in %s at %d (%s)", f.what, place, i, f.enc))
				}
			}
		}
	}
	return found
}

func total(hay map[string][]byte) int {
	n := 0
	for _, b := range hay {
		n += len(b)
	}
	return n
}

// readPrivateKey reads a key file through package custody (the one
// package that parses private keys) and returns the key, for ECDH, and its
// secret forms: the private scalar, read out of the PKCS#8 encoding
// (ECPrivateKey's "02 01 01 04 20" then the 32 bytes), and that encoding.
func readPrivateKey(t *testing.T, path string) (*custody.Software, [][]byte) {
	t.Helper()
	k, err := custody.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	i := bytes.Index(blk.Bytes, []byte{0x02, 0x01, 0x01, 0x04, 0x20})
	if i < 0 || i+5+32 > len(blk.Bytes) {
		t.Fatalf("%s: no P-256 scalar in its PKCS#8", path)
	}
	return k, [][]byte{blk.Bytes[i+5 : i+5+32], blk.Bytes}
}

// certECDH returns a key-agreement certificate's public key. The SMKI's
// organisation certificates do not parse with crypto/x509 (gbcs-security.md
// section 2), so the key is read from the SubjectPublicKeyInfo directly.
func certECDH(t *testing.T, der []byte) *ecdh.PublicKey {
	t.Helper()
	c, err := smki.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	pub, err := commands.ECDHPublicKey(c.PublicKey)
	if err != nil {
		t.Fatalf("certificate key: %v", err)
	}
	return pub
}

// storedMessages returns every GBCS message the router keeps (commands,
// responses, deliveries), read from the SQLite file itself.
func storedMessages(t *testing.T, dir string) [][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "metertrust.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT message FROM router_commands UNION ALL SELECT response FROM router_commands WHERE response IS NOT NULL
		UNION ALL SELECT body FROM router_deliveries WHERE body IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiAnswers restarts the demo's services on its data directory and
// returns what their read endpoints answer each user, the operator and
// anyone.
func apiAnswers(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	s, err := inproc.Start(ctx, inproc.Config{DataDir: dir, Meters: StoryMeters, RouterAddr: "127.0.0.1:0", OperatorAddr: "127.0.0.1:0",
		RepositoryAddr: "127.0.0.1:0", Parties: append(inproc.DefaultParties(), SwitchSupplier)})
	if err != nil {
		t.Fatalf("restarting the services: %v", err)
	}
	defer s.Close()
	out := map[string][]byte{}
	get := func(name string, c *http.Client, u string, header http.Header) []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %s: %.200s", name, res.Status, b)
		}
		out[name] = b
		return b
	}
	for _, name := range []string{inproc.PartySupplier, inproc.PartyNetworkOperator, inproc.PartyThirdParty, SwitchSupplier.Name} {
		c, err := s.Client(s.Party(name))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/v1/responses?after=0&limit=1000", "/v1/thresholds"} {
			get(name+" "+path, c, s.RouterURL+path, nil)
		}
		if name == inproc.PartyThirdParty {
			get(name+" /v1/consents", c, s.RouterURL+"/v1/consents", nil)
		}
	}
	op := http.Header{"Authorization": {"Bearer " + s.OperatorToken}}
	oc := &http.Client{}
	for _, state := range []string{"quarantined", "released", "deleted"} {
		b := get("operator quarantine "+state, oc, s.OperatorURL+"/v1/quarantine?limit=1000&state="+state, op)
		var list struct {
			Items []struct {
				Ref string `json:"ref"`
			} `json:"items"`
		}
		_ = json.Unmarshal(b, &list)
		for _, q := range list.Items {
			get("operator quarantine "+q.Ref, oc, s.OperatorURL+"/v1/quarantine/"+q.Ref, op)
		}
	}
	get("operator thresholds", oc, s.OperatorURL+"/v1/thresholds", op)
	get("operator usage", oc, s.OperatorURL+"/v1/usage", op)
	get("repository certificates", oc, s.RepositoryURL+"/v1/certificates?limit=1000", nil)
	return out
}
