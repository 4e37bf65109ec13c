package ra

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Registry is the registration authority's records; *store.SMKIStore
// implements it.
type Registry interface {
	PutOrganisation(ctx context.Context, o store.Organisation) error
	Organisation(ctx context.Context, eui string) (store.Organisation, error)
	Organisations(ctx context.Context) ([]store.Organisation, error)
	CreateRequest(ctx context.Context, r store.CertRequest) error
	Request(ctx context.Context, id string) (store.CertRequest, error)
	Requests(ctx context.Context, q store.RequestQuery) ([]store.CertRequest, error)
	ApproveRequest(ctx context.Context, id, operator string, at time.Time) (store.CertRequest, error)
	RejectRequest(ctx context.Context, id, operator, reason string, at time.Time) (store.CertRequest, error)
	FinishRequest(ctx context.Context, id, ca string, serial []byte, failure string) (store.CertRequest, error)
}

// Audit actions of the registration authority.
const (
	ActionRegister = "ca-api.organisation.register"
	ActionSubmit   = "ca-api.request.submit"
	ActionApprove  = "ca-api.request.approve"
	ActionReject   = "ca-api.request.reject"
	ActionIssueReq = "ca-api.request.issue"
	ActionDevice   = "ca-api.request.device"
	// The reads, audited only when refused.
	actionReadOrg = "ca-api.organisation.read"
	actionReadReq = "ca-api.request.read"
)

// dccRoles are the DCC's own Remote Party Roles: a certificate for one of
// them needs two different operators' approval.
var dccRoles = []smki.Role{smki.RoleRoot, smki.RoleRecovery, smki.RoleAccessControlBroker, smki.RoleTransitionalCoS,
	smki.RoleWANProvider, smki.RoleDCCInterfaceSigning, smki.RoleDCCInterfaceSigning2}

// ApprovalsNeeded returns how many different operators must approve a
// request for an organisation certificate of role: two for the DCC's own
// roles (root, recovery, access control broker, transitional change of
// supplier, WAN provider, DCC interface signing), one otherwise.
func ApprovalsNeeded(role smki.Role) int {
	if slices.Contains(dccRoles, role) {
		return 2
	}
	return 1
}

// OrganisationRecord is an organisation's registration, the body of PUT
// /v1/organisations/{eui} and its answer.
type OrganisationRecord struct {
	EUI  string `json:"eui,omitempty"`
	Name string `json:"name"`
	// Roles are Remote Party Role names (supplier, networkOperator,
	// accessControlBroker, ...): the organisation certificates it may ask
	// for.
	Roles []string `json:"roles"`
	// Manufacturer allows it to submit device certificate requests.
	Manufacturer bool `json:"manufacturer,omitempty"`
	// State is active (the default) or withdrawn: a withdrawn organisation
	// may submit nothing.
	State        string `json:"state,omitempty"`
	RegisteredBy string `json:"registeredBy,omitempty"`
	RegisteredAt string `json:"registeredAt,omitempty"`
	UpdatedAt    string `json:"updatedAt,omitempty"`
}

func orgView(o store.Organisation) OrganisationRecord {
	return OrganisationRecord{EUI: o.EUI, Name: o.Name, Roles: nonNil(o.Roles), Manufacturer: o.Manufacturer, State: o.State,
		RegisteredBy: o.RegisteredBy, RegisteredAt: o.RegisteredAt.UTC().Format(timeFormat), UpdatedAt: o.UpdatedAt.UTC().Format(timeFormat)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SubmitRequest is the body of POST /v1/requests: an organisation asks for
// an organisation certificate of one of its registered roles.
type SubmitRequest struct {
	// Role is the Remote Party Role (a name such as supplier).
	Role string `json:"role"`
	// Usage is ds, ka or pp-ka.
	Usage string `json:"usage"`
	// Name is the certificate's common name; optional.
	Name string `json:"name,omitempty"`
	// CSR is the PKCS#10 request, PEM or base64 DER.
	CSR string `json:"csr"`
}

// Decision is the body of POST /v1/requests/{id}/approve and .../reject.
type Decision struct {
	// Reason says why; required to reject.
	Reason string `json:"reason,omitempty"`
}

// RequestView is a certificate request as the API answers it.
type RequestView struct {
	ID              string           `json:"id"`
	Organisation    string           `json:"organisation"`
	Role            string           `json:"role"`
	Usage           string           `json:"usage"`
	Name            string           `json:"name,omitempty"`
	State           string           `json:"state"`
	SubmittedBy     string           `json:"submittedBy"`
	SubmittedAt     string           `json:"submittedAt"`
	ApprovalsNeeded int              `json:"approvalsNeeded"`
	Approvals       []string         `json:"approvals"`
	DecidedBy       string           `json:"decidedBy,omitempty"`
	DecidedAt       string           `json:"decidedAt,omitempty"`
	Reason          string           `json:"reason,omitempty"`
	Certificate     *CertificateView `json:"certificate,omitempty"`
	Error           string           `json:"error,omitempty"`
}

func (s *Server) requestView(ctx context.Context, r store.CertRequest) RequestView {
	v := RequestView{ID: r.ID, Organisation: r.OrgEUI, Role: smki.Role(r.Role).String(), Usage: r.Usage, Name: r.Name, State: r.State,
		SubmittedBy: r.SubmittedBy, SubmittedAt: r.SubmittedAt.UTC().Format(timeFormat), ApprovalsNeeded: r.ApprovalsNeeded,
		Approvals: nonNil(r.Approvals), DecidedBy: r.DecidedBy, Reason: r.Reason, Error: r.Error}
	if !r.DecidedAt.IsZero() {
		v.DecidedAt = r.DecidedAt.UTC().Format(timeFormat)
	}
	if r.CertCA != "" {
		if c, err := s.deps.Store.Certificate(ctx, r.CertCA, r.CertSerial); err == nil {
			cv := certView(c)
			v.Certificate = &cv
		} else {
			s.log.ErrorContext(ctx, "issued certificate of a request unreadable", "request", r.ID, "ca", r.CertCA, "err", err)
		}
	}
	return v
}

// putOrganisation answers PUT /v1/organisations/{eui}: register an
// organisation or change its registration.
func (s *Server) putOrganisation(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleRegister, ActionRegister)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	eui, err := smkiEUI("eui", c.Param("eui"))
	if err != nil {
		return s.refuse(ctx, who, ActionRegister, object, err)
	}
	object = eui.String()
	var r OrganisationRecord
	if err := readJSON(c, &r, "{name, roles, manufacturer, state}"); err != nil {
		return s.refuse(ctx, who, ActionRegister, object, err)
	}
	if r.EUI != "" && !strings.EqualFold(strings.ReplaceAll(r.EUI, "-", ""), eui.String()) {
		return s.refuse(ctx, who, ActionRegister, object, problem.New(ErrBadRequest, "eui", "the body's EUI-64 %q is not the path's %s", clip(r.EUI), eui))
	}
	roles := make([]string, 0, len(r.Roles))
	for _, name := range r.Roles {
		role, err := smki.ParseRole(name)
		if err != nil || role == smki.RoleIssuingAuthority {
			return s.refuse(ctx, who, ActionRegister, object, problem.New(ErrBadRequest, "roles", "%q is not an organisation's Remote Party Role", clip(name)))
		}
		if !slices.Contains(roles, role.String()) {
			roles = append(roles, role.String())
		}
	}
	slices.Sort(roles)
	state := r.State
	if state == "" {
		state = store.OrgActive
	}
	switch {
	case strings.TrimSpace(r.Name) == "" || len(r.Name) > 128 || strings.ContainsAny(r.Name, "\x00\r\n"):
		return s.refuse(ctx, who, ActionRegister, object, problem.New(ErrBadRequest, "name", "1 to 128 characters on one line"))
	case len(roles) == 0 && !r.Manufacturer:
		return s.refuse(ctx, who, ActionRegister, object, problem.New(ErrBadRequest, "roles", "give at least one role, or manufacturer"))
	case state != store.OrgActive && state != store.OrgWithdrawn:
		return s.refuse(ctx, who, ActionRegister, object, problem.New(ErrBadRequest, "state", "want active or withdrawn"))
	}
	now := s.now().UTC()
	o := store.Organisation{EUI: eui.String(), Name: r.Name, Roles: roles, Manufacturer: r.Manufacturer, State: state,
		RegisteredBy: who.operator, RegisteredAt: now, UpdatedAt: now}
	status := http.StatusCreated
	if old, err := s.deps.Registry.Organisation(ctx, o.EUI); err == nil {
		status, o.RegisteredBy, o.RegisteredAt = http.StatusOK, old.RegisteredBy, old.RegisteredAt
	}
	if err := s.do(ctx, who, ActionRegister, object, map[string]any{"name": o.Name, "roles": strings.Join(roles, ","),
		"manufacturer": o.Manufacturer, "state": state}, func() error {
		return s.deps.Registry.PutOrganisation(ctx, o)
	}); err != nil {
		return err
	}
	stored, err := s.deps.Registry.Organisation(ctx, o.EUI)
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading the registration back")
	}
	return c.JSON(status, orgView(stored))
}

// getOrganisation answers GET /v1/organisations/{eui}.
func (s *Server) getOrganisation(c echo.Context) error {
	if _, err := s.authorize(c, "", actionReadOrg); err != nil {
		return err
	}
	eui, err := smkiEUI("eui", c.Param("eui"))
	if err != nil {
		return err
	}
	o, err := s.deps.Registry.Organisation(c.Request().Context(), eui.String())
	if err != nil {
		return fromCA(err)
	}
	return c.JSON(http.StatusOK, orgView(o))
}

// listOrganisations answers GET /v1/organisations.
func (s *Server) listOrganisations(c echo.Context) error {
	if _, err := s.authorize(c, "", actionReadOrg); err != nil {
		return err
	}
	all, err := s.deps.Registry.Organisations(c.Request().Context())
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "listing organisations")
	}
	out := make([]OrganisationRecord, len(all))
	for i, o := range all {
		out[i] = orgView(o)
	}
	return c.JSON(http.StatusOK, map[string]any{"organisations": out})
}

// newRequestID returns a fresh request ID: "req-" and 26 base32 characters
// (128 random bits).
func newRequestID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "req-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// submitRequest answers POST /v1/requests: a registered organisation,
// identified by its DCCKI client certificate alone, asks for a certificate
// of one of its roles. The request is checked now (the organisation, the
// role, the CSR's signature, key and subject) and waits for operators'
// approval.
func (s *Server) submitRequest(c echo.Context) error {
	who, err := s.client(c, ActionSubmit)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	var r SubmitRequest
	if err := readJSON(c, &r, "{role, usage, name, csr}"); err != nil {
		return s.refuse(ctx, who, ActionSubmit, object, err)
	}
	if who.eui.IsZero() {
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrForbidden, "", "the client certificate names no DCCKI user (EUI-64 and role): organisations submit with their own"))
	}
	org, err := s.deps.Registry.Organisation(ctx, who.eui.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrForbidden, "", "organisation %s is not registered with the SMKI registration authority", who.eui))
	case err != nil:
		return problem.Wrap(ErrInternal, err, "", "reading the registration")
	case org.State != store.OrgActive:
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrForbidden, "", "organisation %s is %s", who.eui, org.State))
	}
	role, err := smki.ParseRole(r.Role)
	if err != nil {
		return s.refuse(ctx, who, ActionSubmit, object, problem.Wrap(ErrBadRequest, err, "role", "%q is not a Remote Party Role", clip(r.Role)))
	}
	if !slices.Contains(org.Roles, role.String()) {
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrForbidden, "role", "organisation %s is not registered for the role %s (it holds %s)", who.eui, role, strings.Join(org.Roles, ", ")))
	}
	usage, err := ca.ParseUsage(r.Usage)
	if err != nil {
		return s.refuse(ctx, who, ActionSubmit, object, problem.Wrap(ErrBadRequest, err, "usage", "%s", clipDetail(err.Error())))
	}
	if usage == ca.UsagePPKA && role != smki.RoleSupplier {
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrBadRequest, "usage", "a prepayment top-up key-agreement certificate is for suppliers only"))
	}
	if len(r.Name) > 128 {
		return s.refuse(ctx, who, ActionSubmit, object, problem.New(ErrBadRequest, "name", "at most 128 characters"))
	}
	der, err := csrBytes(r.CSR)
	if err != nil {
		return s.refuse(ctx, who, ActionSubmit, object, err)
	}
	if err := checkOrgCSR(der, who.eui, role, usage); err != nil {
		return s.refuse(ctx, who, ActionSubmit, object, err)
	}
	id, err := newRequestID()
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "making a request ID")
	}
	req := store.CertRequest{ID: id, OrgEUI: who.eui.String(), Role: int(role), Usage: string(usage), Name: r.Name, CSR: der,
		SubmittedBy: who.client, SubmittedAt: s.now().UTC(), ApprovalsNeeded: ApprovalsNeeded(role)}
	if err := s.do(ctx, who, ActionSubmit, id, map[string]any{"role": role.String(), "usage": string(usage),
		"approvals_needed": req.ApprovalsNeeded}, func() error {
		return s.deps.Registry.CreateRequest(ctx, req)
	}); err != nil {
		return err
	}
	stored, err := s.deps.Registry.Request(ctx, id)
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading the request back")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/requests/"+id)
	return c.JSON(http.StatusAccepted, s.requestView(ctx, stored))
}

// checkOrgCSR checks an organisation's CSR at submission: its signature and
// key (smki.ParseCSR), and that what it says of itself agrees with the
// registration (the CA checks again at issuance).
func checkOrgCSR(der []byte, eui smki.EUI, role smki.Role, usage ca.Usage) error {
	r, err := smki.ParseCSR(der)
	if err != nil {
		return problem.Wrap(ErrBadRequest, err, "csr", "%s", clipDetail(err.Error()))
	}
	switch {
	case r.Kind == smki.KindDevice:
		return problem.New(ErrBadRequest, "csr", "a device request: organisations ask for organisation certificates here")
	case !r.EUI.IsZero() && r.EUI != eui:
		return problem.New(ErrBadRequest, "csr", "the request's subject names EUI-64 %s, not the organisation's %s", r.EUI, eui)
	case r.Kind == smki.KindOrganisation && r.Role != role:
		return problem.New(ErrBadRequest, "csr", "the request's subject names the role %s, not %s", r.Role, role)
	}
	want := x509.KeyUsageKeyAgreement
	if usage == ca.UsageDS {
		want = x509.KeyUsageDigitalSignature
	}
	if r.KeyUsage != 0 && r.KeyUsage&want == 0 {
		return problem.New(ErrBadRequest, "csr", "the request's key usage does not allow %s", usage)
	}
	return nil
}

// getRequest answers GET /v1/requests/{id}: to an operator (with a token),
// or to the organisation that submitted it (its client certificate alone);
// to another organisation it does not exist.
func (s *Server) getRequest(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	var who caller
	var err error
	if c.Request().Header.Get(echo.HeaderAuthorization) != "" {
		who, err = s.authorize(c, "", actionReadReq)
	} else {
		who, err = s.client(c, actionReadReq)
	}
	if err != nil {
		return err
	}
	r, err := s.deps.Registry.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && who.operator == "" && r.OrgEUI != who.eui.String()) {
		return problem.New(ErrNotFound, "id", "no request %q", clip(id))
	}
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "reading the request")
	}
	return c.JSON(http.StatusOK, s.requestView(ctx, r))
}

// listRequests answers GET /v1/requests?state=&organisation=&limit=, for
// operators: by default the pending queue, oldest first.
func (s *Server) listRequests(c echo.Context) error {
	if _, err := s.authorize(c, "", actionReadReq); err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := store.RequestQuery{State: c.QueryParam("state"), Limit: 100}
	if q.State == "" {
		q.State = store.RequestPending
	} else if q.State == "all" {
		q.State = ""
	} else if !slices.Contains([]string{store.RequestPending, store.RequestIssuing, store.RequestIssued, store.RequestFailed, store.RequestRejected}, q.State) {
		return problem.New(ErrBadRequest, "state", "want pending, issuing, issued, failed, rejected or all")
	}
	if o := c.QueryParam("organisation"); o != "" {
		eui, err := smkiEUI("organisation", o)
		if err != nil {
			return err
		}
		q.OrgEUI = eui.String()
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return problem.New(ErrBadRequest, "limit", "want 1 to 1000")
		}
		q.Limit = n
	}
	rs, err := s.deps.Registry.Requests(ctx, q)
	if err != nil {
		return problem.Wrap(ErrInternal, err, "", "listing requests")
	}
	out := make([]RequestView, len(rs))
	for i, r := range rs {
		out[i] = s.requestView(ctx, r)
	}
	return c.JSON(http.StatusOK, map[string]any{"requests": out})
}

// approveRequest answers POST /v1/requests/{id}/approve. The approval that
// completes the number needed (a different operator for the second)
// issues the certificate at once.
func (s *Server) approveRequest(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleIssue, ActionApprove)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	var d Decision
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return s.refuse(ctx, who, ActionApprove, id, problem.Wrap(ErrTooLarge, err, "body", "reading the request body: %v", err))
	}
	if len(bytes.TrimSpace(body)) > 0 { // the body is optional
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		if err := readJSON(c, &d, "{reason}"); err != nil {
			return s.refuse(ctx, who, ActionApprove, id, err)
		}
	}
	if len(d.Reason) > 512 {
		return s.refuse(ctx, who, ActionApprove, id, problem.New(ErrBadRequest, "reason", "at most 512 characters"))
	}
	var r store.CertRequest
	if err := s.do(ctx, who, ActionApprove, id, map[string]any{"reason": clipDetail(d.Reason)}, func() error {
		r, err = s.deps.Registry.ApproveRequest(ctx, id, who.operator, s.now().UTC())
		return storeConflict(err)
	}); err != nil {
		return err
	}
	if r.State == store.RequestIssuing {
		r = s.issueRequest(ctx, who, r)
	}
	return c.JSON(http.StatusOK, s.requestView(ctx, r))
}

// issueRequest issues the certificate of a request claimed for issuance and
// records the outcome on the request.
func (s *Server) issueRequest(ctx context.Context, who caller, r store.CertRequest) store.CertRequest {
	// Claimed: finish it whatever the client does now.
	ctx = context.WithoutCancel(ctx)
	var cert store.Certificate
	err := s.do(ctx, who, ActionIssueReq, r.ID, map[string]any{"organisation": r.OrgEUI, "role": smki.Role(r.Role).String(),
		"usage": r.Usage, "approvals": strings.Join(r.Approvals, ",")}, func() error {
		eui, err := smki.ParseEUI(r.OrgEUI)
		if err != nil {
			return err
		}
		// The registration may have changed since the submission.
		org, err := s.deps.Registry.Organisation(ctx, r.OrgEUI)
		if err != nil {
			return err
		}
		if role := smki.Role(r.Role).String(); org.State != store.OrgActive || !slices.Contains(org.Roles, role) {
			return fmt.Errorf("%w: organisation %s is %s with roles %s since the request: no %s certificate", ca.ErrRequest, r.OrgEUI, org.State, strings.Join(org.Roles, ","), role)
		}
		cert, err = s.deps.Authority.IssueOrg(ctx, ca.OrgRequest{CSR: r.CSR, Role: smki.Role(r.Role), EUI: eui, Name: r.Name, Usage: ca.Usage(r.Usage)})
		return err
	})
	var done store.CertRequest
	var ferr error
	if err != nil {
		done, ferr = s.deps.Registry.FinishRequest(ctx, r.ID, "", nil, clipDetail(err.Error()))
	} else {
		done, ferr = s.deps.Registry.FinishRequest(ctx, r.ID, cert.CA, cert.Serial, "")
	}
	if ferr != nil {
		s.log.ErrorContext(ctx, "request outcome not recorded", "request", r.ID, "issued", err == nil, "err", ferr)
		return r
	}
	return done
}

// rejectRequest answers POST /v1/requests/{id}/reject, with a reason.
func (s *Server) rejectRequest(c echo.Context) error {
	who, err := s.authorize(c, operator.RoleIssue, ActionReject)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	var d Decision
	if err := readJSON(c, &d, "{reason}"); err != nil {
		return s.refuse(ctx, who, ActionReject, id, err)
	}
	if strings.TrimSpace(d.Reason) == "" || len(d.Reason) > 512 {
		return s.refuse(ctx, who, ActionReject, id, problem.New(ErrBadRequest, "reason", "say why, in at most 512 characters"))
	}
	var r store.CertRequest
	if err := s.do(ctx, who, ActionReject, id, map[string]any{"reason": d.Reason}, func() error {
		r, err = s.deps.Registry.RejectRequest(ctx, id, who.operator, d.Reason, s.now().UTC())
		return storeConflict(err)
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.requestView(ctx, r))
}

// storeConflict maps the store's conflicts (a decided request, an operator
// approving twice) to 409 with the store's explanation.
func storeConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return problem.Wrap(ErrConflict, err, "id", "%s", clipDetail(err.Error()))
	}
	return err
}

// submitDevice answers POST /v1/requests/device: a registered manufacturer,
// identified by its DCCKI client certificate alone, has a device
// certificate issued at once from an open batch for one device CSR (a file
// of many goes through the provisioning import).
func (s *Server) submitDevice(c echo.Context) error {
	who, err := s.client(c, ActionDevice)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	object := c.Request().URL.Path
	var r DeviceRequest
	if err := readJSON(c, &r, "{batch, csr}"); err != nil {
		return s.refuse(ctx, who, ActionDevice, object, err)
	}
	if err := s.manufacturer(ctx, who); err != nil {
		return s.refuse(ctx, who, ActionDevice, object, err)
	}
	if err := checkCAName("batch", r.Batch); err != nil {
		return s.refuse(ctx, who, ActionDevice, object, err)
	}
	csr, err := csrBytes(r.CSR)
	if err != nil {
		return s.refuse(ctx, who, ActionDevice, object, err)
	}
	// No second key for a device in service: the import's inventory check.
	if err := s.deps.Authority.CheckNewDevice(ctx, csr); err != nil {
		return s.refuse(ctx, who, ActionDevice, object, fromCA(err))
	}
	out, err := s.issueDeviceAs(ctx, who, ActionDevice, r.Batch, csr)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, certView(out))
}

// activeOrganisation returns the caller's registration when it is a
// registered, active organisation, and a refusal (403) otherwise.
func (s *Server) activeOrganisation(ctx context.Context, who caller) (store.Organisation, error) {
	if who.eui.IsZero() {
		return store.Organisation{}, problem.New(ErrForbidden, "", "the client certificate names no DCCKI user (EUI-64 and role)")
	}
	org, err := s.deps.Registry.Organisation(ctx, who.eui.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return org, problem.New(ErrForbidden, "", "organisation %s is not registered with the SMKI registration authority", who.eui)
	case err != nil:
		return org, problem.Wrap(ErrInternal, err, "", "reading the registration")
	case org.State != store.OrgActive:
		return org, problem.New(ErrForbidden, "", "organisation %s is %s", who.eui, org.State)
	}
	return org, nil
}

// manufacturer checks that the caller is a registered, active
// manufacturer.
func (s *Server) manufacturer(ctx context.Context, who caller) error {
	org, err := s.activeOrganisation(ctx, who)
	if err != nil {
		return err
	}
	if !org.Manufacturer {
		return problem.New(ErrForbidden, "", "organisation %s is not registered as a manufacturer", who.eui)
	}
	return nil
}
