package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Organisation states.
const (
	OrgActive    = "active"
	OrgWithdrawn = "withdrawn"
)

// Organisation is a party the SMKI serves, as the DCC's registration
// authority records it: its EUI-64, its name, the Remote Party Roles it may
// hold organisation certificates for, and whether it is a manufacturer
// allowed to submit device certificate requests.
type Organisation struct {
	EUI          string   // 16 upper-case hex digits
	Name         string   // 1-128 characters
	Roles        []string // Remote Party Role names (smki.Role.String), sorted, no duplicates
	Manufacturer bool
	State        string // OrgActive or OrgWithdrawn; PutOrganisation takes "" as active
	RegisteredBy string // the operator who registered it
	RegisteredAt time.Time
	UpdatedAt    time.Time
}

// roleName is the shape of a role name: letters and digits.
var roleName = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

// actorName is the shape of an operator or client name in the requests
// table: printable, no comma (the separator of approvals).
var actorName = regexp.MustCompile(`^[^,\x00-\x1f\x7f]{1,160}$`)

func (o *Organisation) validate() error {
	switch {
	case !euiPattern.MatchString(o.EUI):
		return fmt.Errorf("%w: organisation EUI-64 %q must be 16 upper-case hex digits", ErrInvalid, o.EUI)
	case o.Name == "" || len(o.Name) > 128 || strings.ContainsAny(o.Name, "\x00\n\r"):
		return fmt.Errorf("%w: organisation %s: name must be 1-128 characters on one line", ErrInvalid, o.EUI)
	case len(o.Roles) == 0 && !o.Manufacturer:
		return fmt.Errorf("%w: organisation %s: no role and not a manufacturer", ErrInvalid, o.EUI)
	case o.State != OrgActive && o.State != OrgWithdrawn:
		return fmt.Errorf("%w: organisation %s: state %q", ErrInvalid, o.EUI, o.State)
	case !actorName.MatchString(o.RegisteredBy):
		return fmt.Errorf("%w: organisation %s: registered by %q", ErrInvalid, o.EUI, o.RegisteredBy)
	case o.RegisteredAt.IsZero() || o.UpdatedAt.IsZero():
		return fmt.Errorf("%w: organisation %s: no registration time", ErrInvalid, o.EUI)
	}
	for i, r := range o.Roles {
		if !roleName.MatchString(r) || (i > 0 && o.Roles[i-1] >= r) {
			return fmt.Errorf("%w: organisation %s: roles %q must be role names, sorted, without duplicates", ErrInvalid, o.EUI, o.Roles)
		}
	}
	return nil
}

// PutOrganisation records an organisation, or replaces the record of the
// one with its EUI-64 (its name, roles, manufacturer flag, state and
// UpdatedAt; RegisteredBy and RegisteredAt stay those of the first record).
func (s *SMKIStore) PutOrganisation(ctx context.Context, o Organisation) error {
	if o.State == "" {
		o.State = OrgActive
	}
	if err := o.validate(); err != nil {
		return err
	}
	_, err := s.db.write().exec(ctx, `INSERT INTO smki_organisations
		(eui, name, roles, manufacturer, state, registered_by, registered_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (eui) DO UPDATE SET name = excluded.name, roles = excluded.roles,
			manufacturer = excluded.manufacturer, state = excluded.state, updated_at = excluded.updated_at`,
		o.EUI, o.Name, strings.Join(o.Roles, ","), boolInt(o.Manufacturer), o.State, o.RegisteredBy, o.RegisteredAt, o.UpdatedAt)
	if err != nil {
		return fmt.Errorf("store: recording organisation %s: %w", o.EUI, err)
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const orgColumns = `eui, name, roles, manufacturer, state, registered_by, registered_at, updated_at`

func scanOrg(r interface{ Scan(...any) error }) (Organisation, error) {
	var o Organisation
	var roles string
	var manufacturer int64
	var reg, upd timeCol
	err := r.Scan(&o.EUI, &o.Name, &roles, &manufacturer, &o.State, &o.RegisteredBy, &reg, &upd)
	if roles != "" {
		o.Roles = strings.Split(roles, ",")
	}
	o.Manufacturer, o.RegisteredAt, o.UpdatedAt = manufacturer == 1, reg.t, upd.t
	return o, err
}

// Organisation returns the organisation with this EUI-64 (16 upper-case hex
// digits), or an error wrapping ErrNotFound.
func (s *SMKIStore) Organisation(ctx context.Context, eui string) (Organisation, error) {
	o, err := scanOrg(s.db.read().queryRow(ctx, `SELECT `+orgColumns+` FROM smki_organisations WHERE eui = $1`, eui))
	if errors.Is(err, errNoRows) {
		return Organisation{}, fmt.Errorf("organisation %s: %w", eui, ErrNotFound)
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("store: reading organisation %s: %w", eui, err)
	}
	return o, nil
}

// Organisations returns every organisation, by EUI-64.
func (s *SMKIStore) Organisations(ctx context.Context) ([]Organisation, error) {
	rs, err := s.db.read().query(ctx, `SELECT `+orgColumns+` FROM smki_organisations ORDER BY eui`)
	if err != nil {
		return nil, fmt.Errorf("store: listing organisations: %w", err)
	}
	defer rs.Close()
	var out []Organisation
	for rs.Next() {
		o, err := scanOrg(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing organisations: %w", err)
		}
		out = append(out, o)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing organisations: %w", err)
	}
	return out, nil
}

// Certificate request states.
const (
	RequestPending  = "pending"
	RequestIssuing  = "issuing"
	RequestIssued   = "issued"
	RequestFailed   = "failed"
	RequestRejected = "rejected"
)

// CertRequest is an organisation's request for an organisation
// certificate, as the registration authority keeps it until it is decided.
type CertRequest struct {
	ID              string // unique, chosen by the caller (random)
	OrgEUI          string // the requesting organisation
	Role            int    // the GBCS Remote Party Role asked for
	Usage           string // "ds", "ka" or "pp-ka"
	Name            string // the certificate's CN, optional
	CSR             []byte // PKCS#10 DER
	SubmittedBy     string // the client certificate that submitted it
	SubmittedAt     time.Time
	ApprovalsNeeded int      // 1, or 2 for the DCC's own roles
	Approvals       []string // operators who approved, in order
	State           string
	DecidedBy       string // who rejected it, or whose approval completed it
	DecidedAt       time.Time
	Reason          string // the rejection's reason
	CertCA          string // the issued certificate's CA and serial
	CertSerial      []byte
	Error           string // why issuance failed
}

// requestID is the shape of a request ID.
var requestID = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// CreateRequest records a new pending request; a duplicate ID gives an
// error wrapping ErrExists, an unknown organisation ErrNotFound.
func (s *SMKIStore) CreateRequest(ctx context.Context, r CertRequest) error {
	switch {
	case !requestID.MatchString(r.ID):
		return fmt.Errorf("%w: request ID %q", ErrInvalid, r.ID)
	case !euiPattern.MatchString(r.OrgEUI):
		return fmt.Errorf("%w: request %s: organisation EUI-64 %q", ErrInvalid, r.ID, r.OrgEUI)
	case r.Role < 0 || r.Role > 255 || !token.MatchString(r.Usage) || len(r.CSR) == 0:
		return fmt.Errorf("%w: request %s: role %d, usage %q, %d-byte CSR", ErrInvalid, r.ID, r.Role, r.Usage, len(r.CSR))
	case r.ApprovalsNeeded != 1 && r.ApprovalsNeeded != 2:
		return fmt.Errorf("%w: request %s: %d approvals needed", ErrInvalid, r.ID, r.ApprovalsNeeded)
	case !actorName.MatchString(r.SubmittedBy) || r.SubmittedAt.IsZero() || len(r.Name) > 128:
		return fmt.Errorf("%w: request %s: submitter, time or name", ErrInvalid, r.ID)
	}
	_, err := s.db.write().exec(ctx, `INSERT INTO smki_requests
		(id, org_eui, role, key_usage, name, csr, submitted_by, submitted_at, approvals_needed, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')`,
		r.ID, r.OrgEUI, r.Role, r.Usage, r.Name, r.CSR, r.SubmittedBy, r.SubmittedAt, r.ApprovalsNeeded)
	switch err = classify(err); {
	case errors.Is(err, errUnique):
		return fmt.Errorf("request %s: %w", r.ID, ErrExists)
	case errors.Is(err, errForeignKey):
		return fmt.Errorf("request %s: organisation %s: %w", r.ID, r.OrgEUI, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: recording request %s: %w", r.ID, err)
	}
	return nil
}

const requestColumns = `id, org_eui, role, key_usage, name, csr, submitted_by, submitted_at, approvals_needed, approvals,
	state, decided_by, decided_at, reason, cert_ca, cert_serial, error`

func scanRequest(r interface{ Scan(...any) error }) (CertRequest, error) {
	var q CertRequest
	var role, needed int64
	var approvals string
	var sub, dec timeCol
	err := r.Scan(&q.ID, &q.OrgEUI, &role, &q.Usage, &q.Name, &q.CSR, &q.SubmittedBy, &sub, &needed, &approvals,
		&q.State, &q.DecidedBy, &dec, &q.Reason, &q.CertCA, &q.CertSerial, &q.Error)
	q.Role, q.ApprovalsNeeded, q.SubmittedAt, q.DecidedAt = int(role), int(needed), sub.t, dec.t
	if approvals != "" {
		q.Approvals = strings.Split(approvals, ",")
	}
	return q, err
}

// Request returns the request with this ID, or an error wrapping
// ErrNotFound.
func (s *SMKIStore) Request(ctx context.Context, id string) (CertRequest, error) {
	return getRequest(ctx, s.db.read(), id)
}

func getRequest(ctx context.Context, q dbtx, id string) (CertRequest, error) {
	r, err := scanRequest(q.queryRow(ctx, `SELECT `+requestColumns+` FROM smki_requests WHERE id = $1`, id))
	if errors.Is(err, errNoRows) {
		return CertRequest{}, fmt.Errorf("request %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return CertRequest{}, fmt.Errorf("store: reading request %q: %w", id, err)
	}
	return r, nil
}

// RequestQuery selects requests: by state and by organisation (empty: any),
// oldest first, at most Limit (1 to 1000; 0 means 100).
type RequestQuery struct {
	State  string
	OrgEUI string
	Limit  int
}

// Requests returns the requests q selects.
func (s *SMKIStore) Requests(ctx context.Context, q RequestQuery) ([]CertRequest, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 0 || q.Limit > 1000 {
		return nil, fmt.Errorf("%w: limit %d must be 1-1000", ErrInvalid, q.Limit)
	}
	rs, err := s.db.read().query(ctx, `SELECT `+requestColumns+` FROM smki_requests
		WHERE ($1 = '' OR state = $1) AND ($2 = '' OR org_eui = $2)
		ORDER BY submitted_at, id LIMIT $3`, q.State, q.OrgEUI, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing requests: %w", err)
	}
	defer rs.Close()
	var out []CertRequest
	for rs.Next() {
		r, err := scanRequest(rs)
		if err != nil {
			return nil, fmt.Errorf("store: listing requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: listing requests: %w", err)
	}
	return out, nil
}

// ApproveRequest records operator's approval of a pending request and
// returns it as it now stands. The approval that brings it to the number
// needed also claims it for issuance: its state becomes RequestIssuing, in
// the same conditional update, so that however many approvals race exactly
// one sees RequestIssuing returned and issues. An operator who already
// approved, or a request no longer pending, gives an error wrapping
// ErrConflict; an unknown request ErrNotFound.
func (s *SMKIStore) ApproveRequest(ctx context.Context, id, operator string, at time.Time) (CertRequest, error) {
	if !actorName.MatchString(operator) || at.IsZero() {
		return CertRequest{}, fmt.Errorf("%w: approving request %s: operator %q", ErrInvalid, id, operator)
	}
	var out CertRequest
	err := s.db.inTx(ctx, func(tx dbtx) error {
		r, err := getRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		switch {
		case r.State != RequestPending:
			return fmt.Errorf("request %s is %s, not pending: %w", id, r.State, ErrConflict)
		case slices.Contains(r.Approvals, operator):
			return fmt.Errorf("request %s: %s already approved it: %w", id, operator, ErrConflict)
		}
		approvals := strings.Join(append(slices.Clone(r.Approvals), operator), ",")
		// Conditional on the approvals read: a concurrent approval makes
		// this one a conflict, and exactly one approval claims the request.
		n, err := tx.exec(ctx, `UPDATE smki_requests SET
				approvals = $2,
				approved = approved + 1,
				state = CASE WHEN approved + 1 >= approvals_needed THEN 'issuing' ELSE 'pending' END,
				decided_by = CASE WHEN approved + 1 >= approvals_needed THEN $3 ELSE decided_by END,
				decided_at = CASE WHEN approved + 1 >= approvals_needed THEN $4 ELSE decided_at END
			WHERE id = $1 AND state = 'pending' AND approvals = $5`, id, approvals, operator, at, strings.Join(r.Approvals, ","))
		if err != nil {
			return fmt.Errorf("store: approving request %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("request %s changed while %s approved it; try again: %w", id, operator, ErrConflict)
		}
		out, err = getRequest(ctx, tx, id)
		return err
	})
	return out, err
}

// RejectRequest rejects a pending request, with the operator and reason;
// a request no longer pending gives an error wrapping ErrConflict.
func (s *SMKIStore) RejectRequest(ctx context.Context, id, operator, reason string, at time.Time) (CertRequest, error) {
	return s.decide(ctx, id, RequestPending, func(tx dbtx) (int64, error) {
		return tx.exec(ctx, `UPDATE smki_requests SET state = 'rejected', decided_by = $2, decided_at = $3, reason = $4
			WHERE id = $1 AND state = 'pending'`, id, operator, at, reason)
	})
}

// FinishRequest records the outcome of a claimed request's issuance: the
// certificate's CA and serial, or (with an empty ca) the error. A request
// not in RequestIssuing gives an error wrapping ErrConflict.
func (s *SMKIStore) FinishRequest(ctx context.Context, id, ca string, serial []byte, failure string) (CertRequest, error) {
	state := RequestIssued
	if ca == "" {
		state, serial = RequestFailed, nil
	}
	return s.decide(ctx, id, RequestIssuing, func(tx dbtx) (int64, error) {
		return tx.exec(ctx, `UPDATE smki_requests SET state = $2, cert_ca = $3, cert_serial = $4, error = $5
			WHERE id = $1 AND state = 'issuing'`, id, state, ca, serial, failure)
	})
}

// decide runs a conditional update of a request in state from and returns
// the request after it, or ErrConflict when it was not in that state.
func (s *SMKIStore) decide(ctx context.Context, id, from string, update func(tx dbtx) (int64, error)) (CertRequest, error) {
	var out CertRequest
	err := s.db.inTx(ctx, func(tx dbtx) error {
		n, err := update(tx)
		if err != nil {
			return fmt.Errorf("store: updating request %s: %w", id, err)
		}
		r, err := getRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("request %s is %s, not %s: %w", id, r.State, from, ErrConflict)
		}
		out = r
		return nil
	})
	return out, err
}
