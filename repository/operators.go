package repository

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/operator"
)

// Operator credentials are package operator's, shared by every metertrust
// service, in its one spelling ({"name", "token_sha256", "roles"}), in the
// credentials file (--operators, METERTRUST_REPOSITORY_OPERATORS) and in the
// operators of the configuration file alike. The repository's former
// spelling ({"name", "tokenSHA256", "permissions"}) is still read, for one
// release: New logs a deprecation warning when it was used.

// Permission is a write an operator may perform: one of the operator
// roles, publish or revoke. Only publish grants anything in the
// repository; revoke is still read so that existing credentials files
// holding it stay valid.
type Permission = operator.Role

// The permissions an operator can hold.
const (
	// PermPublish allows POST /v1/certificates.
	PermPublish = operator.RolePublish
	// PermRevoke grants nothing in the repository: revocation moved to
	// the CA service, metertrust serve ca (POST /v1/revocations there). It
	// is still accepted, in roles and in the deprecated permissions
	// spelling alike, so that existing credentials files stay valid.
	PermRevoke = operator.RoleRevoke
)

// Operator is a credential allowed to write to the repository. The bearer
// token itself is never configured or kept: only its SHA-256 digest, which
// `printf %s "$TOKEN" | sha256sum` prints. In JSON it is an
// operator.Credential ({"name", "token_sha256", "roles"}), whose roles
// publish and revoke are its permissions (revoke granting nothing here:
// see PermRevoke).
type Operator struct {
	// Name identifies the operator in the audit log (the actor of every
	// event it causes).
	Name string
	// TokenSHA256 is the lower- or upper-case hex SHA-256 of the operator's
	// bearer token (64 hex digits).
	TokenSHA256 string
	// Permissions lists the writes the operator may perform.
	Permissions []Permission

	// legacy is set when the entry was read in the deprecated spelling.
	legacy bool
}

// legacyOperator is the repository's former spelling of an Operator, read
// for one release.
type legacyOperator struct {
	Name        string       `json:"name"`
	TokenSHA256 string       `json:"tokenSHA256"`
	Permissions []Permission `json:"permissions"`
}

// MarshalJSON writes op as an operator.Credential.
func (op Operator) MarshalJSON() ([]byte, error) {
	return json.Marshal(op.credential())
}

// UnmarshalJSON reads op strictly (unknown fields are errors) as an
// operator.Credential, or in the deprecated spelling {"name",
// "tokenSHA256", "permissions"}. Every role of a credential must be known
// (operator.ParseRole); publish and revoke become its permissions (revoke
// is kept for compatibility and grants nothing: see PermRevoke).
func (op *Operator) UnmarshalJSON(b []byte) error {
	if legacyEntry(b) {
		var l legacyOperator
		if err := jsonconfig.Decode(b, &l); err != nil {
			return err
		}
		*op = Operator{Name: l.Name, TokenSHA256: l.TokenSHA256, Permissions: l.Permissions, legacy: true}
		return nil
	}
	var c operator.Credential
	if err := jsonconfig.Decode(b, &c); err != nil {
		return err
	}
	for i, r := range c.Roles {
		if _, err := operator.ParseRole(string(r)); err != nil {
			return fmt.Errorf("operator %q: roles[%d]: %w", c.Name, i, err)
		}
	}
	*op = fromCredential(c)
	return nil
}

// fromCredential is c as an Operator: its publish and revoke roles (revoke
// kept so that credentials holding it still load; it grants nothing here).
func fromCredential(c operator.Credential) Operator {
	op := Operator{Name: c.Name, TokenSHA256: c.TokenSHA256}
	for _, r := range c.Roles {
		if r == PermPublish || r == PermRevoke {
			op.Permissions = append(op.Permissions, r)
		}
	}
	return op
}

// legacyEntry reports whether the JSON object b has a field of the
// deprecated spelling.
func legacyEntry(b []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(b, &probe) != nil {
		return false
	}
	_, t := probe["tokenSHA256"]
	_, p := probe["permissions"]
	return t || p
}

// LegacySpelling reports whether some operator of ops was read in the
// deprecated spelling {"name", "tokenSHA256", "permissions"}.
func LegacySpelling(ops []Operator) bool {
	return slices.ContainsFunc(ops, func(op Operator) bool { return op.legacy })
}

// OperatorsFile is the JSON document read by LoadOperators and
// ParseOperators in the deprecated repository spelling.
//
// Deprecated: write package operator's credentials file (operator.File);
// this spelling is read until the next release.
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
	digestField, permField := "token_sha256", "roles"
	if op.legacy {
		digestField, permField = "tokenSHA256", "permissions"
	}
	if !operator.ValidName(op.Name) {
		return fmt.Errorf("operator name %q must be 1 to 64 letters, digits or ._@- and start with a letter or digit", op.Name)
	}
	if err := operator.CheckDigest(op.TokenSHA256); err != nil {
		return fmt.Errorf("operator %q: %s %w", op.Name, digestField, err)
	}
	if len(op.Permissions) == 0 {
		return fmt.Errorf("operator %q: %s: no permissions (want %q and/or %q)", op.Name, permField, PermPublish, PermRevoke)
	}
	for _, p := range op.Permissions {
		if p != PermPublish && p != PermRevoke {
			return fmt.Errorf("operator %q: %s: unknown permission %q (want %q or %q)", op.Name, permField, p, PermPublish, PermRevoke)
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
// fields are errors): package operator's credentials file, or, until the
// next release, the deprecated repository spelling (see ParseOperators).
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
// example in the METERTRUST_REPOSITORY_OPERATORS environment variable:
// package operator's credentials file ({"operators": [{"name",
// "token_sha256", "roles"}]}, read by operator.ParseFile), of whose
// operators those holding publish or revoke are kept (the others have no
// business with the repository; revoke grants nothing here since
// revocation moved to metertrust serve ca, but an operator holding it
// still loads and authenticates, and is refused the publish route with
// 403). A document in the deprecated repository spelling ({"operators":
// [{"name", "tokenSHA256", "permissions"}]}) is still read until the next
// release; LegacySpelling then reports it and New logs a warning.
func ParseOperators(data []byte) ([]Operator, error) {
	if !legacyFile(data) {
		f, err := operator.ParseFile(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOperators, err)
		}
		var ops []Operator
		for _, c := range f.Operators {
			if c.TokenSHA256 == "" {
				continue // a dashboard login only: no bearer token to check here
			}
			if op := fromCredential(c); len(op.Permissions) > 0 {
				ops = append(ops, op)
			}
		}
		return ops, nil
	}
	var f OperatorsFile
	if err := jsonconfig.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOperators, err)
	}
	if err := checkOperators(f.Operators); err != nil {
		return nil, err
	}
	return f.Operators, nil
}

// legacyFile reports whether data is in the deprecated repository
// spelling: some operator entry has a tokenSHA256 or permissions field.
func legacyFile(data []byte) bool {
	var probe struct {
		Operators []json.RawMessage `json:"operators"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	return slices.ContainsFunc(probe.Operators, func(e json.RawMessage) bool { return legacyEntry(e) })
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
