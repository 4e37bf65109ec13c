package repository

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/metertrust/metertrust/operator"
)

// Operator credentials are package operator's, shared by every metertrust
// service: this file keeps the repository's own JSON spelling of them
// (tokenSHA256, permissions) for its configuration file, --operators and
// METERTRUST_REPOSITORY_OPERATORS, and also reads the shared credentials
// file (token_sha256, roles).

// Permission is a write an operator may perform: one of the operator
// roles, publish or revoke.
type Permission = operator.Role

// The permissions an operator can hold.
const (
	// PermPublish allows POST /v1/certificates.
	PermPublish = operator.RolePublish
	// PermRevoke allows POST /v1/revocations.
	PermRevoke = operator.RoleRevoke
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
// ParseOperators in the repository's own spelling.
type OperatorsFile struct {
	// Operators lists every operator credential.
	Operators []Operator `json:"operators"`
}

// ErrOperators is wrapped by every error reading operator credentials.
var ErrOperators = errors.New("repository: invalid operators")

// HashToken returns the hex SHA-256 of a bearer token, the form in which
// Operator.TokenSHA256 holds it (operator.HashToken).
func HashToken(token string) string { return operator.HashToken(token) }

func (op Operator) validate() error {
	if !operator.ValidName(op.Name) {
		return fmt.Errorf("operator name %q must be 1 to 64 letters, digits or ._@- and start with a letter or digit", op.Name)
	}
	if err := operator.CheckDigest(op.TokenSHA256); err != nil {
		return fmt.Errorf("operator %q: tokenSHA256 %w", op.Name, err)
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

// credential is op in package operator's form.
func (op Operator) credential() operator.Credential {
	return operator.Credential{Name: op.Name, TokenSHA256: op.TokenSHA256, Roles: slices.Clone(op.Permissions)}
}

// Can reports whether the operator holds permission p.
func (op Operator) Can(p Permission) bool { return slices.Contains(op.Permissions, p) }

// LoadOperators reads operator credentials from a file, strictly (unknown
// fields are errors), in either spelling: the repository's OperatorsFile or
// the shared credentials file of package operator (see ParseOperators).
func LoadOperators(path string) ([]Operator, error) {
	var raw json.RawMessage
	if err := decodeFile(path, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	ops, err := ParseOperators(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ops, nil
}

// ParseOperators decodes operator credentials from JSON, as found for
// example in the METERTRUST_REPOSITORY_OPERATORS environment variable: an
// OperatorsFile, or package operator's shared credentials file
// ({"operators": [{"name", "token_sha256", "roles"}]}), of whose operators
// those holding publish or revoke are kept (the others cannot write).
func ParseOperators(data []byte) ([]Operator, error) {
	if shared(data) {
		f, err := operator.ParseFile(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOperators, err)
		}
		var ops []Operator
		for _, c := range f.Operators {
			op := Operator{Name: c.Name, TokenSHA256: c.TokenSHA256}
			for _, r := range c.Roles {
				if r == PermPublish || r == PermRevoke {
					op.Permissions = append(op.Permissions, r)
				}
			}
			if len(op.Permissions) > 0 {
				ops = append(ops, op)
			}
		}
		return ops, nil
	}
	var f OperatorsFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	if err := checkOperators(f.Operators); err != nil {
		return nil, err
	}
	return f.Operators, nil
}

// shared reports whether data is in package operator's spelling: some
// operator entry has a token_sha256 or roles field.
func shared(data []byte) bool {
	var probe struct {
		Operators []map[string]json.RawMessage `json:"operators"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	for _, e := range probe.Operators {
		if _, ok := e["token_sha256"]; ok {
			return true
		}
		if _, ok := e["roles"]; ok {
			return true
		}
	}
	return false
}

// checkOperators validates every entry and refuses duplicate names and
// tokens shared by two operators.
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
	if _, err := credentials(ops); err != nil {
		return fmt.Errorf("%w: %w", ErrOperators, err)
	}
	return nil
}

func credentials(ops []Operator) (*operator.Credentials, error) {
	cs := make([]operator.Credential, len(ops))
	for i, op := range ops {
		cs[i] = op.credential()
	}
	return operator.NewCredentials(cs)
}

// authenticator checks bearer tokens with package operator's constant-time
// comparison.
type authenticator struct {
	creds *operator.Credentials
}

// newAuthenticator builds an authenticator from the valid entries of ops.
// If the valid entries still conflict (two operators sharing a token),
// nobody authenticates: Config.Validate reports why.
func newAuthenticator(ops []Operator) *authenticator {
	var valid []Operator
	for _, op := range ops {
		if op.validate() == nil {
			valid = append(valid, op)
		}
	}
	c, err := credentials(valid)
	if err != nil {
		return &authenticator{}
	}
	return &authenticator{creds: c}
}

// authenticate returns the operator whose token digest matches token.
func (a *authenticator) authenticate(token string) (Operator, bool) {
	id, ok := a.creds.Authenticate(token)
	if !ok {
		return Operator{}, false
	}
	op := Operator{Name: id.Name}
	for _, r := range id.Roles {
		if r == PermPublish || r == PermRevoke {
			op.Permissions = append(op.Permissions, r)
		}
	}
	return op, true
}

// bearerToken extracts the token from an Authorization header value; ok is
// false when the header is absent or not a Bearer credential.
func bearerToken(header string) (token string, present, ok bool) {
	return operator.BearerToken(header)
}
