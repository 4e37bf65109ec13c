package repository

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Permission is a write an operator may perform.
type Permission string

// The permissions an operator can hold.
const (
	// PermPublish allows POST /v1/certificates.
	PermPublish Permission = "publish"
	// PermRevoke allows POST /v1/revocations.
	PermRevoke Permission = "revoke"
)

// Operator is a credential allowed to write to the repository. The bearer
// token itself is never configured or kept: only its SHA-256 digest, which
// `printf %s "$TOKEN" | sha256sum` prints.
type Operator struct {
	// Name identifies the operator in the audit log (the actor of every
	// event it causes).
	Name string `json:"name"`
	// TokenSHA256 is the lower- or upper-case hex SHA-256 of the operator's
	// bearer token (64 hex digits).
	TokenSHA256 string `json:"tokenSHA256"`
	// Permissions lists the writes the operator may perform.
	Permissions []Permission `json:"permissions"`
}

// OperatorsFile is the JSON document read by LoadOperators and
// ParseOperators.
type OperatorsFile struct {
	// Operators lists every operator credential.
	Operators []Operator `json:"operators"`
}

// ErrOperators is wrapped by every error reading operator credentials.
var ErrOperators = errors.New("repository: invalid operators")

var operatorName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// HashToken returns the hex SHA-256 of a bearer token, the form in which
// Operator.TokenSHA256 holds it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (op Operator) validate() error {
	if !operatorName.MatchString(op.Name) {
		return fmt.Errorf("operator name %q must be 1 to 64 letters, digits or ._@- and start with a letter or digit", op.Name)
	}
	if _, err := op.digest(); err != nil {
		return fmt.Errorf("operator %q: %w", op.Name, err)
	}
	if len(op.Permissions) == 0 {
		return fmt.Errorf("operator %q: no permissions (want %q and/or %q)", op.Name, PermPublish, PermRevoke)
	}
	for _, p := range op.Permissions {
		if p != PermPublish && p != PermRevoke {
			return fmt.Errorf("operator %q: unknown permission %q (want %q or %q)", op.Name, p, PermPublish, PermRevoke)
		}
	}
	return nil
}

func (op Operator) digest() ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if len(op.TokenSHA256) != 2*sha256.Size {
		return d, fmt.Errorf("tokenSHA256 must be %d hex digits, got %d characters", 2*sha256.Size, len(op.TokenSHA256))
	}
	if _, err := hex.Decode(d[:], []byte(op.TokenSHA256)); err != nil {
		return d, errors.New("tokenSHA256 is not hex")
	}
	return d, nil
}

// Can reports whether the operator holds permission p.
func (op Operator) Can(p Permission) bool { return slices.Contains(op.Permissions, p) }

// LoadOperators reads an OperatorsFile strictly (unknown fields are errors)
// and validates every entry.
func LoadOperators(path string) ([]Operator, error) {
	var f OperatorsFile
	if err := decodeFile(path, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	if err := checkOperators(f.Operators); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Operators, nil
}

// ParseOperators decodes an OperatorsFile from JSON, as found for example in
// the METERTRUST_REPOSITORY_OPERATORS environment variable.
func ParseOperators(data []byte) ([]Operator, error) {
	var f OperatorsFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	if err := checkOperators(f.Operators); err != nil {
		return nil, err
	}
	return f.Operators, nil
}

func checkOperators(ops []Operator) error {
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		if err := op.validate(); err != nil {
			return fmt.Errorf("%w: operators[%d]: %w", ErrOperators, i, err)
		}
		if seen[op.Name] {
			return fmt.Errorf("%w: operators[%d]: duplicate operator name %q", ErrOperators, i, op.Name)
		}
		seen[op.Name] = true
	}
	return nil
}

// authenticator checks bearer tokens against the operators' digests.
type authenticator struct {
	names   []string
	digests [][sha256.Size]byte
	ops     []Operator
}

func newAuthenticator(ops []Operator) *authenticator {
	a := &authenticator{}
	for _, op := range ops {
		d, err := op.digest()
		if err != nil || op.validate() != nil {
			continue // Config.Validate reports these; an invalid entry never authenticates
		}
		a.names = append(a.names, op.Name)
		a.digests = append(a.digests, d)
		a.ops = append(a.ops, op)
	}
	return a
}

// authenticate returns the operator whose token digest matches token. Every
// digest is compared, in constant time, whatever matches.
func (a *authenticator) authenticate(token string) (Operator, bool) {
	h := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(h[:], a.digests[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return Operator{}, false
	}
	return a.ops[match], true
}

// bearerToken extracts the token from an Authorization header value; ok is
// false when the header is absent or not a Bearer credential.
func bearerToken(header string) (token string, present, ok bool) {
	if header == "" {
		return "", false, false
	}
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", true, false
	}
	return tok, true, true
}
