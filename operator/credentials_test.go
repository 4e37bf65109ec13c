package operator

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/anomaly"
)

func TestHashToken(t *testing.T) {
	// sha256("abc"), FIPS 180-2 appendix B.1.
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
}

func TestNewToken(t *testing.T) {
	tok, err := NewToken(bytes.NewReader(bytes.Repeat([]byte{0xFF}, TokenBytes)))
	if err != nil || tok != "mto_"+strings.Repeat("_", 42)+"8" {
		t.Errorf("NewToken = %q, %v", tok, err)
	}
	if _, err := NewToken(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Error("NewToken with too little randomness succeeded")
	}
	a, _ := NewToken(nil)
	b, _ := NewToken(nil)
	if a == b || len(a) != 4+43 {
		t.Errorf("NewToken(nil) = %q, %q", a, b)
	}
}

func TestParse(t *testing.T) {
	h, h2 := HashToken("s3cret"), HashToken("other")
	tests := []struct {
		name, json string
		want       int
		wantErr    string
	}{
		{"one", `{"operators":[{"name":"alice","token_sha256":"` + h + `","roles":["viewer"]}]}`, 1, ""},
		{"every role, upper-case digest", `{"operators":[{"name":"bob@dcc","token_sha256":"` + strings.ToUpper(h) + `","roles":["viewer","quarantine-officer","threshold-admin","publish","revoke"]}]}`, 1, ""},
		{"two", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["viewer"]},{"name":"b","token_sha256":"` + h2 + `","roles":["revoke"]}]}`, 2, ""},
		{"none", `{"operators":[]}`, 0, ""},
		{"unknown role", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["root"]}]}`, 0, `unknown role "root"`},
		{"the user role", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["user"]}]}`, 0, `unknown role "user"`},
		{"no roles", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":[]}]}`, 0, "roles: at least one"},
		{"repeated role", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["viewer","viewer"]}]}`, 0, "repeated"},
		{"short digest", `{"operators":[{"name":"a","token_sha256":"abcd","roles":["viewer"]}]}`, 0, "64 hex digits"},
		{"raw token", `{"operators":[{"name":"a","token_sha256":"` + strings.Repeat("z", 64) + `","roles":["viewer"]}]}`, 0, "not hex"},
		{"bad name", `{"operators":[{"name":"a b","token_sha256":"` + h + `","roles":["viewer"]}]}`, 0, "name"},
		{"duplicate name", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["viewer"]},{"name":"a","token_sha256":"` + h2 + `","roles":["viewer"]}]}`, 0, "duplicate operator name"},
		{"shared token", `{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["viewer"]},{"name":"b","token_sha256":"` + strings.ToUpper(h) + `","roles":["viewer"]}]}`, 0, "same token"},
		{"plain token field", `{"operators":[{"name":"a","token":"s3cret","roles":["viewer"]}]}`, 0, `unknown field "token"`},
		{"field in another case", `{"operators":[{"name":"a","Token_SHA256":"` + HashToken("t") + `","roles":["viewer"]}]}`, 0, `did you mean "token_sha256"`},
		{"repository spelling", `{"operators":[{"name":"a","tokenSHA256":"` + h + `","permissions":["publish"]}]}`, 0, `unknown field`},
		{"trailing data", `{"operators":[]} {}`, 0, "trailing data"},
		{"not JSON", `operators: []`, 0, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrCredentials mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") && !strings.Contains(tc.json, `"token":"s3cret"`) {
					t.Error("the error holds a token")
				}
				return
			}
			if err != nil || c.Len() != tc.want {
				t.Fatalf("Parse = %d operators, %v; want %d", c.Len(), err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "operators.json")
	if err := os.WriteFile(path, []byte(`{"operators":[{"name":"alice","token_sha256":"`+HashToken("t")+`","roles":["viewer","revoke"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := c.Authenticate("t"); !ok || id.Name != "alice" || !id.Has(RoleRevoke) {
		t.Errorf("Authenticate = %+v, %v", id, ok)
	}
	f, err := LoadFile(path)
	if err != nil || len(f.Operators) != 1 {
		t.Errorf("LoadFile = %+v, %v", f, err)
	}
	if _, err := Load(filepath.Join(dir, "none.json")); !errors.Is(err, ErrCredentials) {
		t.Errorf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxCredentialsBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrCredentials) {
		t.Errorf("Load(too big) = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	c := testCredentials(t)
	tests := []struct {
		token, want string
		ok          bool
		actorRoles  []anomaly.Role
	}{
		{viewerToken, "vera", true, []anomaly.Role{anomaly.RoleViewer}},
		{officerToken, "olga", true, []anomaly.Role{anomaly.RoleQuarantineOfficer}},
		{publisherToken, "pete", true, nil},
		{"", "", false, nil},
		{viewerToken + " ", "", false, nil},
		{HashToken(viewerToken), "", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.want+"/"+tc.token, func(t *testing.T) {
			id, ok := c.Authenticate(tc.token)
			if ok != tc.ok || id.Name != tc.want {
				t.Fatalf("Authenticate = %+v, %v", id, ok)
			}
			a := id.Actor()
			if a.ID != tc.want || len(a.Roles) != len(tc.actorRoles) {
				t.Errorf("Actor = %+v", a)
			}
		})
	}
	var none *Credentials
	if _, ok := none.Authenticate(viewerToken); ok || none.Len() != 0 {
		t.Error("nil Credentials authenticated")
	}
	// The returned roles are a copy.
	id, _ := c.Authenticate(viewerToken)
	id.Roles[0] = RoleThresholdAdmin
	if id2, _ := c.Authenticate(viewerToken); id2.Roles[0] != RoleViewer {
		t.Error("Authenticate shares its roles slice")
	}
}

func TestPermits(t *testing.T) {
	tests := []struct {
		roles []Role
		act   anomaly.Action
		want  bool
	}{
		{[]Role{RoleViewer}, anomaly.ActionView, true},
		{[]Role{RoleViewer}, anomaly.ActionRelease, false},
		{[]Role{RoleQuarantineOfficer}, anomaly.ActionDelete, true},
		{[]Role{RoleQuarantineOfficer}, anomaly.ActionSetThreshold, false},
		{[]Role{RoleThresholdAdmin}, anomaly.ActionSetThreshold, true},
		{[]Role{RolePublish, RoleRevoke}, anomaly.ActionView, false},
		{[]Role{RolePublish, RoleThresholdAdmin}, anomaly.ActionView, true},
		{nil, anomaly.ActionView, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.act), func(t *testing.T) {
			if got := (Identity{Name: "x", Roles: tc.roles}).Permits(tc.act); got != tc.want {
				t.Errorf("%v Permits(%s) = %v", tc.roles, tc.act, got)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, token string
		present, ok   bool
	}{
		{"", "", false, false},
		{"Bearer abc", "abc", true, true},
		{"BEARER  abc ", "abc", true, true},
		{"Bearer", "", true, false},
		{"Bearer a b", "", true, false},
		{"Basic abc", "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			tok, present, ok := BearerToken(tc.header)
			if tok != tc.token || present != tc.present || ok != tc.ok {
				t.Errorf("BearerToken(%q) = %q, %v, %v", tc.header, tok, present, ok)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseRole("admin"); !errors.Is(err, ErrCredentials) {
		t.Errorf("ParseRole(admin) = %v", err)
	}
}

func TestMint(t *testing.T) {
	tests := []struct {
		name    string
		op      string
		roles   []Role
		wantErr string
	}{
		{"officer", "alice", []Role{RoleQuarantineOfficer}, ""},
		{"several roles", "bob@dcc", []Role{RoleViewer, RoleRevoke}, ""},
		{"no role", "alice", nil, "at least one"},
		{"unknown role", "alice", []Role{"root"}, "unknown role"},
		{"bad name", "", []Role{RoleViewer}, "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, c, err := Mint(nil, tc.op, tc.roles)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tc.wantErr) || tok != "" {
					t.Fatalf("Mint = %q, %v; want an error mentioning %q", tok, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			creds, err := NewCredentials([]Credential{c})
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := creds.Authenticate(tok); !ok || id.Name != tc.op || len(id.Roles) != len(tc.roles) {
				t.Errorf("the minted token authenticates as %+v, %v", id, ok)
			}
		})
	}
}

// TestClip checks that caller text echoed in problems and audit entries is
// bounded and printable UTF-8.
func TestClip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Q-1", "Q-1"},
		{"a\x00b\nc", "a\uFFFDb\uFFFDc"},
		{"\xff\xfe", "\uFFFD"},
		{strings.Repeat("x", 100), strings.Repeat("x", 80) + "..."},
		{"x" + strings.Repeat("é", 41), "x" + strings.Repeat("é", 39) + "..."}, // cut before a rune, never inside
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := clip(tc.in); got != tc.want {
				t.Errorf("clip(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
