package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	good := HashToken("t")
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty object", json: `{}`, check: func(t *testing.T, c Config) {
			d := c.withDefaults()
			if d.DefaultLimit != 100 || d.MaxLimit != 1000 || d.MaxBodyBytes != DefaultMaxBodyBytes || time.Duration(d.ShutdownTimeout) != DefaultShutdown {
				t.Errorf("defaults %+v", d)
			}
		}},
		{name: "full", json: `{"listen":"127.0.0.1:8443","baseURL":"https://smki.example.org","defaultLimit":50,"maxLimit":500,"maxBodyBytes":4096,"shutdownTimeout":"3s",
			"operators":[{"name":"alice","tokenSHA256":"` + good + `","permissions":["publish","revoke"]}]}`,
			check: func(t *testing.T, c Config) {
				if c.MaxLimit != 500 || time.Duration(c.ShutdownTimeout) != 3*time.Second || len(c.Operators) != 1 {
					t.Errorf("config %+v", c)
				}
			}},
		{name: "unknown field", json: `{"listen":"x","colour":"red"}`, wantErr: `unknown field "colour"`},
		{name: "trailing data", json: `{} {}`, wantErr: "trailing data"},
		{name: "field in another case", json: `{"baseUrl":"https://smki.example.org"}`, wantErr: `did you mean "baseURL"`},
		{name: "not an object", json: `[]`, wantErr: "cannot unmarshal"},
		{name: "limit too high", json: `{"maxLimit":1001}`, wantErr: "maxLimit 1001"},
		{name: "default above max", json: `{"defaultLimit":600,"maxLimit":500}`, wantErr: "exceeds maxLimit"},
		{name: "negative body", json: `{"maxBodyBytes":-1}`, wantErr: "maxBodyBytes"},
		{name: "bad duration", json: `{"shutdownTimeout":"soon"}`, wantErr: "duration"},
		{name: "numeric duration", json: `{"shutdownTimeout":5}`, wantErr: "duration must be a string"},
		{name: "negative duration", json: `{"shutdownTimeout":"-1s"}`, wantErr: "negative"},
		{name: "relative base URL", json: `{"baseURL":"/smki"}`, wantErr: "baseURL"},
		{name: "base URL with query", json: `{"baseURL":"https://x.org/?a=b"}`, wantErr: "baseURL"},
		{name: "operator without permissions", json: `{"operators":[{"name":"a","tokenSHA256":"` + good + `","permissions":[]}]}`, wantErr: "no permissions"},
		{name: "duplicate operator", json: `{"operators":[{"name":"a","tokenSHA256":"` + good + `","permissions":["revoke"]},{"name":"a","tokenSHA256":"` + good + `","permissions":["revoke"]}]}`, wantErr: "duplicate"},
		{name: "one token for two operators", json: `{"operators":[{"name":"a","tokenSHA256":"` + good + `","permissions":["revoke"]},{"name":"b","tokenSHA256":"` + good + `","permissions":["publish"]}]}`, wantErr: "same token"},
		{name: "operators as credentials", json: `{"operators":[{"name":"alice","token_sha256":"` + good + `","roles":["viewer","revoke"]}]}`,
			check: func(t *testing.T, c Config) {
				if len(c.Operators) != 1 || !c.Operators[0].Can(PermRevoke) || c.Operators[0].Can(PermPublish) || LegacySpelling(c.Operators) {
					t.Errorf("operators %+v", c.Operators)
				}
			}},
		{name: "legacy operators still read", json: `{"operators":[{"name":"alice","tokenSHA256":"` + good + `","permissions":["publish"]}]}`,
			check: func(t *testing.T, c Config) {
				if len(c.Operators) != 1 || !c.Operators[0].Can(PermPublish) || !LegacySpelling(c.Operators) {
					t.Errorf("operators %+v", c.Operators)
				}
			}},
		{name: "credential without repository role", json: `{"operators":[{"name":"a","token_sha256":"` + good + `","roles":["viewer"]}]}`, wantErr: "roles: no permissions"},
		{name: "credential with unknown role", json: `{"operators":[{"name":"a","token_sha256":"` + good + `","roles":["root"]}]}`, wantErr: "unknown role"},
		{name: "credential with unknown field", json: `{"operators":[{"name":"a","token_sha256":"` + good + `","roles":["revoke"],"token":"t"}]}`, wantErr: `unknown field "token"`},
		{name: "credential with bad digest", json: `{"operators":[{"name":"a","token_sha256":"abc","roles":["revoke"]}]}`, wantErr: "token_sha256 must be 64 hex digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"listen":"127.0.0.1:0","maxLimit":10}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"listen":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(good); err != nil || c.MaxLimit != 10 {
		t.Errorf("LoadConfig(good) = %+v, %v", c, err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.json")} {
		if _, err := LoadConfig(p); !errors.Is(err, ErrConfig) {
			t.Errorf("LoadConfig(%s) = %v, want ErrConfig", p, err)
		}
	}
}

func TestOperators(t *testing.T) {
	h := HashToken("s3cret")
	tests := []struct {
		name    string
		json    string
		wantErr string
		want    int
	}{
		{name: "two", json: `{"operators":[{"name":"alice","tokenSHA256":"` + h + `","permissions":["publish"]},{"name":"bob@dcc","tokenSHA256":"` + strings.ToUpper(HashToken("other")) + `","permissions":["revoke","publish"]}]}`, want: 2},
		{name: "one token for two operators", json: `{"operators":[{"name":"alice","tokenSHA256":"` + h + `","permissions":["publish"]},{"name":"bob","tokenSHA256":"` + strings.ToUpper(h) + `","permissions":["revoke"]}]}`, wantErr: "same token"},
		{name: "shared credentials file", json: `{"operators":[{"name":"alice","token_sha256":"` + h + `","roles":["viewer","revoke"]},{"name":"vera","token_sha256":"` + HashToken("v") + `","roles":["viewer"]}]}`, want: 1},
		// revoke grants nothing since revocation moved to serve ca, but
		// files holding it, in either spelling, must still load.
		{name: "publish and revoke roles", json: `{"operators":[{"name":"alice","token_sha256":"` + h + `","roles":["publish","revoke"]}]}`, want: 1},
		{name: "legacy revoke only", json: `{"operators":[{"name":"alice","tokenSHA256":"` + h + `","permissions":["revoke"]}]}`, want: 1},
		{name: "shared file with an unknown role", json: `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["root"]}]}`, wantErr: "unknown role"},
		{name: "spellings mixed", json: `{"operators":[{"name":"a","token_sha256":"` + h + `","permissions":["publish"]}]}`, wantErr: `unknown field "token_sha256"`},
		{name: "shared file, short digest", json: `{"operators":[{"name":"a","token_sha256":"abcd","roles":["publish"]}]}`, wantErr: "token_sha256 must be 64 hex digits"},
		{name: "shared file, duplicate", json: `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["publish"]},{"name":"a","token_sha256":"` + HashToken("x") + `","roles":["revoke"]}]}`, wantErr: "duplicate"},
		{name: "shared file, unknown field", json: `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["publish"],"colour":"red"}]}`, wantErr: `unknown field "colour"`},
		{name: "none", json: `{"operators":[]}`, want: 0},
		{name: "short digest", json: `{"operators":[{"name":"a","tokenSHA256":"abcd","permissions":["publish"]}]}`, wantErr: "64 hex digits"},
		{name: "raw token instead of digest", json: `{"operators":[{"name":"a","tokenSHA256":"` + strings.Repeat("z", 64) + `","permissions":["publish"]}]}`, wantErr: "not hex"},
		{name: "unknown permission", json: `{"operators":[{"name":"a","tokenSHA256":"` + h + `","permissions":["root"]}]}`, wantErr: "unknown permission"},
		{name: "bad name", json: `{"operators":[{"name":"a b","tokenSHA256":"` + h + `","permissions":["publish"]}]}`, wantErr: "operator name"},
		{name: "plain token field", json: `{"operators":[{"name":"a","token":"s3cret","permissions":["publish"]}]}`, wantErr: `unknown field "token"`},
		{name: "duplicate", json: `{"operators":[{"name":"a","tokenSHA256":"` + h + `","permissions":["publish"]},{"name":"a","tokenSHA256":"` + h + `","permissions":["publish"]}]}`, wantErr: "duplicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := ParseOperators([]byte(tc.json))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrOperators) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrOperators mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Error("error echoes a token")
				}
				return
			}
			if err != nil || len(ops) != tc.want {
				t.Fatalf("got %d operators, %v; want %d", len(ops), err, tc.want)
			}
			if legacy := strings.Contains(tc.json, "tokenSHA256"); LegacySpelling(ops) != legacy {
				t.Errorf("LegacySpelling = %t, want %t", !legacy, legacy)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "operators.json")
	if err := os.WriteFile(path, []byte(`{"operators":[{"name":"alice","tokenSHA256":"`+h+`","permissions":["revoke"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ops, err := LoadOperators(path)
	if err != nil || len(ops) != 1 || !ops[0].Can(PermRevoke) || ops[0].Can(PermPublish) {
		t.Fatalf("LoadOperators = %+v, %v", ops, err)
	}
	a := newAuthenticator(ops)
	if op, ok := a.authenticate("s3cret"); !ok || op.Name != "alice" {
		t.Errorf("authenticate(right token) = %v, %t", op, ok)
	}
	for _, wrong := range []string{"", "s3cre", "s3cret ", "S3CRET", h} {
		if _, ok := a.authenticate(wrong); ok {
			t.Errorf("authenticate(%q) succeeded", wrong)
		}
	}
	if _, err := LoadOperators(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, ErrOperators) {
		t.Errorf("missing file: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header           string
		tok              string
		present, wellFmt bool
	}{
		{"", "", false, false},
		{"Bearer abc", "abc", true, true},
		{"bearer  abc ", "abc", true, true},
		{"Bearer", "", true, false},
		{"Bearer ", "", true, false},
		{"Basic abc", "", true, false},
		{"abc", "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			tok, present, ok := bearerToken(tc.header)
			if tok != tc.tok || present != tc.present || ok != tc.wellFmt {
				t.Errorf("bearerToken(%q) = %q, %t, %t", tc.header, tok, present, ok)
			}
		})
	}
}

func TestParseSerial(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"01", "01", true},
		{"1", "01", true},
		{"0x0A:BC", "0ABC", true},
		{"00ff", "FF", true},
		{"0", "00", true},
		{strings.Repeat("7f", 20), strings.Repeat("7F", 20), true},
		{"00" + strings.Repeat("7f", 20), strings.Repeat("7F", 20), true},
		{strings.Repeat("7f", 21), "", false},
		{"", "", false},
		{"0x", "", false},
		{"g1", "", false},
		{"-1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			b, err := ParseSerial(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseSerial(%q) err = %v", tc.in, err)
			}
			if err != nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Errorf("error %v does not wrap ErrBadRequest", err)
				}
				return
			}
			if got := FormatSerial(b); got != tc.want {
				t.Errorf("ParseSerial(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// TestReasonName checks the names views give revocation reasons: package
// ca's RFC 5280 names.
func TestReasonName(t *testing.T) {
	for code, want := range map[int]string{0: "unspecified", 1: "keyCompromise", 4: "superseded", 9: "privilegeWithdrawn"} {
		if got := reasonName(code); got != want {
			t.Errorf("reasonName(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept    string
		allowJSON bool
		want      certFormat
	}{
		{"", true, formatJSON},
		{"", false, formatDER},
		{"*/*", true, formatJSON},
		{MediaPKIXCert, true, formatDER},
		{MediaPEM, true, formatPEM},
		{MediaPEMChain, false, formatPEM},
		{"application/json, application/pkix-cert", true, formatJSON},
		{"application/json;q=0.2, application/x-pem-file;q=0.9", true, formatPEM},
		{"application/pkix-cert;q=0", true, formatJSON},
		{"application/pkix-cert;q=abc", true, formatJSON},
		{MediaJSON, false, formatDER},
		{"text/html", true, formatJSON},
		{";;;", true, formatJSON},
	}
	for _, tc := range tests {
		t.Run(tc.accept, func(t *testing.T) {
			if got := negotiate(tc.accept, tc.allowJSON); got != tc.want {
				t.Errorf("negotiate(%q, %t) = %d, want %d", tc.accept, tc.allowJSON, got, tc.want)
			}
		})
	}
}

// TestLegacyOperatorsWarn checks that New logs a deprecation warning for
// operators in the repository's former spelling, and none for the shared
// credentials file.
func TestLegacyOperatorsWarn(t *testing.T) {
	h := HashToken("t")
	for _, tc := range []struct {
		json string
		warn bool
	}{
		{`{"operators":[{"name":"a","tokenSHA256":"` + h + `","permissions":["revoke"]}]}`, true},
		{`{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["revoke"]}]}`, false},
	} {
		ops, err := ParseOperators([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		New(Config{Operators: ops}, Deps{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
		if got := strings.Contains(buf.String(), "deprecated spelling"); got != tc.warn {
			t.Errorf("%s: warned %t, want %t (log %q)", tc.json, got, tc.warn, buf.String())
		}
	}
}

// TestOperatorMarshal checks that an Operator is written in the shared
// credentials spelling and reads back the same.
func TestOperatorMarshal(t *testing.T) {
	op := Operator{Name: "alice", TokenSHA256: HashToken("t"), Permissions: []Permission{PermPublish}}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"alice","token_sha256":"` + op.TokenSHA256 + `","roles":["publish"]}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var back Operator
	if err := json.Unmarshal(b, &back); err != nil || back.Name != op.Name || !back.Can(PermPublish) || back.legacy {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
}
