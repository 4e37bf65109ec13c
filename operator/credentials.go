package operator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/metertrust/metertrust/internal/trunc"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/internal/jsonconfig"
)

// Role is what an operator may do. The anomaly roles govern the operator
// API; publish governs the certificate repository's writes; revoke and
// issue govern the CA service's.
type Role string

// The roles an operator credential may hold.
const (
	// RoleViewer may read quarantined commands, thresholds and counts and
	// follow alerts (anomaly.RoleViewer).
	RoleViewer = Role(anomaly.RoleViewer)
	// RoleQuarantineOfficer may also release and delete quarantined
	// commands (anomaly.RoleQuarantineOfficer).
	RoleQuarantineOfficer = Role(anomaly.RoleQuarantineOfficer)
	// RoleThresholdAdmin may also set and delete thresholds
	// (anomaly.RoleThresholdAdmin).
	RoleThresholdAdmin = Role(anomaly.RoleThresholdAdmin)
	// RolePublish may publish certificates to the SMKI repository.
	RolePublish Role = "publish"
	// RoleRevoke may revoke certificates and ask for a CRL through the CA
	// service (serve ca).
	RoleRevoke Role = "revoke"
	// RoleIssue may approve or reject organisations' certificate requests
	// and issue device certificates through the CA service (serve ca).
	RoleIssue Role = "issue"
	// RoleRegister may register organisations with the CA service's
	// registration authority: their EUI-64, name, roles, manufacturer flag.
	RoleRegister Role = "register"
	// RoleCeremony is a key-ceremony officer: one of the two named
	// officers each confirming, with their own password, the offline
	// ceremonies that use a root key (ca init, ca batch open; decision
	// 023).
	RoleCeremony Role = "ceremony"
)

// Roles lists every role a credential may hold.
var Roles = []Role{RoleViewer, RoleQuarantineOfficer, RoleThresholdAdmin, RolePublish, RoleRevoke, RoleIssue, RoleRegister, RoleCeremony}

// ParseRole accepts the name of one of Roles.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (want one of %s)", ErrCredentials, s, roleList())
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// anomalyRole reports the anomaly role r is, if it is one.
func (r Role) anomalyRole() (anomaly.Role, bool) {
	switch r {
	case RoleViewer, RoleQuarantineOfficer, RoleThresholdAdmin:
		return anomaly.Role(r), true
	}
	return "", false
}

// Credential is one operator's entry in the credentials file. The token
// itself is never stored: only its SHA-256, as HashToken prints it.
type Credential struct {
	// Name identifies the operator: the actor of every audit entry it
	// causes. 1 to 64 letters, digits or ._@-, starting with a letter or
	// digit.
	Name string `json:"name"`
	// TokenSHA256 is the hex SHA-256 of the operator's bearer token for
	// the APIs, 64 hex digits in either case; empty for an operator who
	// only logs in to the dashboard.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	// PasswordArgon2id is the argon2id hash (PHC string) of the
	// operator's dashboard password, as HashPassword makes it and
	// "metertrust operator passwd" sets it; empty for an operator who
	// does not log in to the dashboard. At least one of the two is set.
	PasswordArgon2id string `json:"password_argon2id,omitempty"`
	// Roles are what the operator may do; at least one, no repeats.
	Roles []Role `json:"roles"`
}

// File is the credentials file: the JSON document Load and Parse read.
type File struct {
	// Operators lists every operator credential.
	Operators []Credential `json:"operators"`
}

// ErrCredentials is wrapped by every error about operator credentials: a
// malformed file or entry, or an invalid role.
var ErrCredentials = errors.New("operator: invalid credentials")

// MaxCredentialsBytes bounds a credentials file.
const MaxCredentialsBytes = 1 << 20

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName reports whether s is acceptable as an operator name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// HashToken returns the hex SHA-256 of a bearer token, the form in which
// Credential.TokenSHA256 holds it (what `printf %s "$TOKEN" | sha256sum`
// prints).
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenBytes is the number of random bytes in a token NewToken mints.
const TokenBytes = 32

// NewToken mints a bearer token of TokenBytes random bytes from r
// (crypto/rand if nil), encoded as unpadded base64url with the prefix
// "mto_" so that a leaked token is recognisable.
func NewToken(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, TokenBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("operator: reading randomness for a token: %w", err)
	}
	return "mto_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// Validate reports what is wrong with c, naming the field.
func (c Credential) Validate() error {
	if !ValidName(c.Name) {
		return fmt.Errorf("%w: name %q must be 1 to 64 letters, digits or ._@- starting with a letter or digit", ErrCredentials, clip(c.Name))
	}
	switch {
	case c.TokenSHA256 == "" && c.PasswordArgon2id == "":
		return fmt.Errorf("%w: operator %q: token_sha256 or password_argon2id is needed", ErrCredentials, c.Name)
	case c.TokenSHA256 != "":
		if _, err := c.digest(); err != nil {
			return fmt.Errorf("%w: operator %q: %w", ErrCredentials, c.Name, err)
		}
	}
	if c.PasswordArgon2id != "" {
		if _, err := parseArgon2id(c.PasswordArgon2id); err != nil {
			return fmt.Errorf("%w: operator %q: password_argon2id %w", ErrCredentials, c.Name, err)
		}
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("%w: operator %q: roles: at least one of %s is needed", ErrCredentials, c.Name, roleList())
	}
	for i, r := range c.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			return fmt.Errorf("operator %q: roles[%d]: %w", c.Name, i, err)
		}
		if slices.Contains(c.Roles[:i], r) {
			return fmt.Errorf("%w: operator %q: roles[%d]: %q repeated", ErrCredentials, c.Name, i, r)
		}
	}
	return nil
}

func (c Credential) digest() ([sha256.Size]byte, error) {
	d, err := parseDigest(c.TokenSHA256)
	if err != nil {
		return d, fmt.Errorf("token_sha256 %w", err)
	}
	return d, nil
}

// CheckDigest reports what is wrong with s as the hex SHA-256 of a token;
// the error text completes a sentence whose subject is the field.
func CheckDigest(s string) error {
	_, err := parseDigest(s)
	return err
}

func parseDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if len(s) != 2*sha256.Size {
		return d, fmt.Errorf("must be %d hex digits, got %d characters", 2*sha256.Size, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, errors.New("is not hex (it holds the SHA-256 of the token, never the token)")
	}
	return d, nil
}

// clip bounds caller-supplied text echoed in errors and audit entries, and
// makes it printable UTF-8 (no control characters, which a text column of
// the audit log may refuse).
func clip(s string) string { return trunc.String(s, 80) }

// Identity is an authenticated operator.
type Identity struct {
	// Name is the operator's name.
	Name string
	// Roles are the operator's roles.
	Roles []Role
}

// Has reports whether the operator holds role r.
func (id Identity) Has(r Role) bool { return slices.Contains(id.Roles, r) }

// Actor returns the operator as an anomaly.Actor: its name, and those of
// its roles that are anomaly roles.
func (id Identity) Actor() anomaly.Actor {
	a := anomaly.Actor{ID: id.Name}
	for _, r := range id.Roles {
		if ar, ok := r.anomalyRole(); ok {
			a.Roles = append(a.Roles, ar)
		}
	}
	return a
}

// Permits reports whether one of the operator's roles permits the anomaly
// action, by the role matrix of anomaly.Permit.
func (id Identity) Permits(action anomaly.Action) bool {
	for _, r := range id.Roles {
		if ar, ok := r.anomalyRole(); ok && anomaly.Permit(ar, action) == nil {
			return true
		}
	}
	return false
}

// Credentials authenticates bearer tokens against a set of operator
// credentials. It is immutable and safe for concurrent use. The zero value
// and nil authenticate nobody.
type Credentials struct {
	ids     []Identity
	digests [][sha256.Size]byte
	tokens  []bool      // whether ids[i] has a token (digests[i] is set)
	hashes  []argonHash // ids[i]'s password hash; a zero key for none
}

// NewCredentials returns the Credentials for cs after validating each entry and
// refusing duplicate names or token digests.
func NewCredentials(cs []Credential) (*Credentials, error) {
	out := &Credentials{}
	names := make(map[string]bool, len(cs))
	digests := make(map[[sha256.Size]byte]bool, len(cs))
	for i, c := range cs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("operators[%d]: %w", i, err)
		}
		var d [sha256.Size]byte
		if c.TokenSHA256 != "" {
			d, _ = c.digest()
		}
		switch {
		case names[c.Name]:
			return nil, fmt.Errorf("%w: operators[%d]: duplicate operator name %q", ErrCredentials, i, c.Name)
		case c.TokenSHA256 != "" && digests[d]:
			return nil, fmt.Errorf("%w: operators[%d]: operator %q has the same token as an earlier operator", ErrCredentials, i, c.Name)
		}
		names[c.Name] = true
		if c.TokenSHA256 != "" {
			digests[d] = true
		}
		var h argonHash
		if c.PasswordArgon2id != "" {
			h, _ = parseArgon2id(c.PasswordArgon2id)
		}
		out.ids = append(out.ids, Identity{Name: c.Name, Roles: slices.Clone(c.Roles)})
		out.digests = append(out.digests, d)
		out.tokens = append(out.tokens, c.TokenSHA256 != "")
		out.hashes = append(out.hashes, h)
	}
	return out, nil
}

// Parse decodes a credentials File strictly (unknown fields and trailing
// data are errors) and returns its Credentials.
func Parse(data []byte) (*Credentials, error) {
	f, err := ParseFile(data)
	if err != nil {
		return nil, err
	}
	return NewCredentials(f.Operators)
}

// ParseFile decodes a credentials File strictly (unknown fields, field
// names in another case and trailing data are errors) and validates it,
// for callers that need the entries themselves. It is the one reader of
// the credentials file: package repository reads it through ParseFile too.
func ParseFile(data []byte) (File, error) {
	if len(data) > MaxCredentialsBytes {
		return File{}, fmt.Errorf("%w: larger than %d bytes", ErrCredentials, MaxCredentialsBytes)
	}
	var f File
	if err := jsonconfig.Decode(data, &f); err != nil {
		return File{}, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	if _, err := NewCredentials(f.Operators); err != nil {
		return File{}, err
	}
	return f, nil
}

// Load reads a credentials file (see Parse).
func Load(path string) (*Credentials, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadFile reads a credentials file (see ParseFile).
func LoadFile(path string) (File, error) {
	data, err := readFile(path)
	if err != nil {
		return File{}, err
	}
	f, err := ParseFile(data)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func readFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxCredentialsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrCredentials, path, err)
	}
	return data, nil
}

// Len returns the number of operators.
func (c *Credentials) Len() int {
	if c == nil {
		return 0
	}
	return len(c.ids)
}

// Authenticate returns the operator whose token digest matches token. The
// token's digest is compared with every configured digest in constant time
// whichever matches, so the time taken tells nothing about the token. The
// token is never logged or kept.
func (c *Credentials) Authenticate(token string) (Identity, bool) {
	if c == nil || token == "" {
		return Identity{}, false
	}
	h := sha256.Sum256([]byte(token))
	match := -1
	for i := range c.digests {
		if subtle.ConstantTimeCompare(h[:], c.digests[i][:]) == 1 && c.tokens[i] {
			match = i
		}
	}
	if match < 0 {
		return Identity{}, false
	}
	id := c.ids[match]
	id.Roles = slices.Clone(id.Roles)
	return id, true
}

// Login returns the operator named name if password is its dashboard
// password. A name that is unknown or has no password costs the same
// argon2id computation as one that has, so the time taken does not tell
// which operators exist. The password is never logged or kept.
func (c *Credentials) Login(name, password string) (Identity, bool) {
	if c == nil || len(password) > MaxPasswordLen {
		return Identity{}, false
	}
	i := slices.IndexFunc(c.ids, func(id Identity) bool { return id.Name == name })
	if i < 0 || c.hashes[i].key == nil {
		dummyHash.check(password)
		return Identity{}, false
	}
	if !c.hashes[i].check(password) {
		return Identity{}, false
	}
	id := c.ids[i]
	id.Roles = slices.Clone(id.Roles)
	return id, true
}

// Identity returns the operator named name, for a session that outlives
// a reload of the credentials: one removed since is no longer found, and
// one whose roles changed has its new ones.
func (c *Credentials) Identity(name string) (Identity, bool) {
	if c == nil {
		return Identity{}, false
	}
	i := slices.IndexFunc(c.ids, func(id Identity) bool { return id.Name == name })
	if i < 0 {
		return Identity{}, false
	}
	id := c.ids[i]
	id.Roles = slices.Clone(id.Roles)
	return id, true
}

// BearerToken extracts the token from an Authorization header value.
// present is false when the header is empty; ok is false when it is not a
// well-formed Bearer credential.
func BearerToken(header string) (token string, present, ok bool) {
	if header == "" {
		return "", false, false
	}
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true, false
	}
	return tok, true, true
}

// Mint makes a new operator credential: a fresh token from r (crypto/rand
// if nil) and the Credential holding its digest, validated. The token is
// for the operator alone; only the Credential goes in the credentials file.
func Mint(r io.Reader, name string, roles []Role) (token string, c Credential, err error) {
	c = Credential{Name: name, Roles: slices.Clone(roles)}
	c.TokenSHA256 = HashToken("") // a placeholder of the right shape while validating the rest
	if err := c.Validate(); err != nil {
		return "", Credential{}, err
	}
	token, err = NewToken(r)
	if err != nil {
		return "", Credential{}, err
	}
	c.TokenSHA256 = HashToken(token)
	return token, c, nil
}
