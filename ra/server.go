package ra

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/internal/trunc"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Authority is the CA the API asks to sign; *ca.Authority implements it.
type Authority interface {
	Revoke(ctx context.Context, caName string, serial []byte, reason int) (store.Certificate, error)
	CRL(ctx context.Context, caName string) (store.CRL, error)
	IssueDevice(ctx context.Context, batch string, csr []byte) (store.Certificate, error)
	IssueOrg(ctx context.Context, req ca.OrgRequest) (store.Certificate, error)
	ImportDevices(ctx context.Context, req ca.ImportRequest) (ca.ImportSummary, error)
	SignerCertificate(ctx context.Context, der []byte, eui smki.EUI) (*smki.Certificate, error)
	CheckNewDevice(ctx context.Context, csr []byte) error
	IssueRekey(ctx context.Context, batch string, device smki.EUI, csr []byte) (store.Certificate, error)
}

// Store is what the API reads; *store.SMKIStore implements it.
type Store interface {
	CA(ctx context.Context, name string) (store.CA, error)
	Certificate(ctx context.Context, ca string, serial []byte) (store.Certificate, error)
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
}

// Auditor appends events to the audit log; *store.DB implements it.
type Auditor interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the services a Server calls; all but Logger and Now are
// required.
type Deps struct {
	Authority Authority
	Store     Store
	// Registry keeps organisations and certificate requests (the store).
	Registry Registry
	Audit    Auditor
	// Credentials authenticates operators' bearer tokens.
	Credentials *operator.Credentials
	// ClientIssuer names the CA (in Store) whose revocations client
	// certificates are checked against, ca.NameDCCKITLS.
	ClientIssuer string
	// Proposals keeps the batch-open proposals of two-person control
	// (decision 023); nil answers the /v1/proposals routes 503.
	Proposals proposal.Store
	// ProposalTTL is how long a proposal waits for a second operator;
	// zero for proposal.DefaultTTL.
	ProposalTTL time.Duration
	// Metrics counts and times the requests (apiserver.HTTPMetrics); nil
	// records nothing.
	Metrics *apiserver.HTTPMetrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// maxBody bounds request bodies: a certificate request and a few fields.
const maxBody = 64 << 10

// Server is the CA service's API.
type Server struct {
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	e    *echo.Echo
	errs *problem.Handler
	// importing holds a token while a provisioning import runs.
	importing chan struct{}
	// desk takes batch-open proposals; nil without Deps.Proposals.
	desk *proposal.Desk
}

// New returns the API over deps.
func New(deps Deps) (*Server, error) {
	if deps.Authority == nil || deps.Store == nil || deps.Registry == nil || deps.Audit == nil || deps.Credentials == nil || deps.ClientIssuer == "" {
		return nil, errors.New("ra: Authority, Store, Registry, Audit, Credentials and ClientIssuer are required")
	}
	s := &Server{deps: deps, log: deps.Logger, now: deps.Now, importing: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "ca-api")
	if s.now == nil {
		s.now = time.Now
	}
	if deps.Proposals != nil {
		d, err := proposal.New(proposal.Config{Store: deps.Proposals, TTL: deps.ProposalTTL, Now: s.now, Logger: s.log,
			Rules: map[proposal.Kind]proposal.Rule{proposal.KindBatchOpen: {Role: string(operator.RoleIssue), Offline: true}}})
		if err != nil {
			return nil, fmt.Errorf("ra: %w", err)
		}
		s.desk = d
	}
	s.errs = &problem.Handler{Kinds: kinds, Realm: "metertrust-ca", Logger: s.log}
	s.e = apiserver.NewEcho(s.errs.Handle)
	s.e.Use(apiserver.LogRequests(s.log, s.now, loggedCaller))
	s.e.Use(deps.Metrics.Middleware())
	s.e.Use(s.bodyLimit)
	s.e.GET("/healthz", s.healthz)
	s.e.POST("/v1/revocations", s.revoke)
	s.e.POST("/v1/crls/:ca", s.crl)
	s.e.POST("/v1/certificates/device", s.issueDevice)
	s.e.GET("/v1/organisations", s.listOrganisations)
	s.e.GET("/v1/organisations/:eui", s.getOrganisation)
	s.e.PUT("/v1/organisations/:eui", s.putOrganisation)
	s.e.POST("/v1/requests", s.submitRequest)
	s.e.POST("/v1/requests/device", s.submitDevice)
	s.e.POST("/v1/requests/device-rekey", s.submitRekey)
	s.e.POST("/v1/requests/device-rekey/confirm", s.confirmRekey)
	s.e.POST("/v1/imports", s.importFile)
	s.e.GET("/v1/requests", s.listRequests)
	s.e.GET("/v1/requests/:id", s.getRequest)
	s.e.POST("/v1/requests/:id/approve", s.approveRequest)
	s.e.POST("/v1/requests/:id/reject", s.rejectRequest)
	s.e.POST("/v1/proposals", s.proposeBatch)
	s.e.GET("/v1/proposals", s.listProposals)
	s.e.GET("/v1/proposals/:id", s.getProposal)
	s.e.POST("/v1/proposals/:id/approve", s.approveProposal)
	s.e.POST("/v1/proposals/:id/reject", s.rejectProposal)
	return s, nil
}

// Handler returns the HTTP handler serving every route. It expects to sit
// behind TLSConfig's handshake: a request without a verified client
// certificate is refused.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists the method and path of every route, as the OpenAPI
// document writes them.
func (s *Server) Routes() []apiserver.Route { return apiserver.Routes(s.e) }

// TLSConfig returns the service's TLS configuration: TLS 1.2 or later, its
// server certificate, and a client certificate required and verified
// against clientCAs (revocation is checked per request, where a refusal is
// audited).
func TLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
}

// Serve answers requests on ln over TLS with tc (TLSConfig) until ctx is
// done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tc *tls.Config) error {
	return apiserver.Serve(ctx, ln, s.e, apiserver.Options{Service: "ca", Name: "CA API", Logger: s.log,
		ShutdownTimeout: 10 * time.Second, TLS: tc})
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// bodyLimit refuses bodies over maxBody before a handler reads them.
func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		limit := int64(maxBody)
		if n, ok := importBody(c.Request().URL.Path); ok {
			limit = n
		}
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, limit)
		return next(c)
	}
}

// Context keys of the authenticated caller, for the request log.
const (
	operatorKey = "ca.operator"
	clientKey   = "ca.client"
)

func loggedCaller(c echo.Context) []slog.Attr {
	var a []slog.Attr
	if v, ok := c.Get(clientKey).(string); ok {
		a = append(a, slog.String("client", v))
	}
	if v, ok := c.Get(operatorKey).(string); ok {
		a = append(a, slog.String("operator", v))
	}
	return a
}

// caller is an authenticated request's client certificate and, for an
// operator's request, the operator.
type caller struct {
	client   string   // the client certificate: "EUI/role" or its subject, and serial
	eui      smki.EUI // the DCCKI user the certificate names; zero if none
	operator string
	roles    []operator.Role // the operator's roles
}

// actor is who the audit log records: the operator, or for an
// organisation's own request its client certificate.
func (w caller) actor() string {
	if w.operator != "" {
		return w.operator
	}
	return w.client
}

// Audit outcomes, as the repository and operator APIs write them.
const (
	OutcomeAttempt = "attempt"
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeRefused = "refused"
)

// Audit actors of requests refused before an operator is known.
const (
	ActorAnonymous = "anonymous"
	ActorUnknown   = "unknown-credential"
)

// client establishes the caller from its client certificate alone: one
// verified by the handshake and not revoked. Refusals are audited under
// action.
func (s *Server) client(c echo.Context, action string) (caller, error) {
	req := c.Request()
	ctx := req.Context()
	object := req.URL.Path
	var who caller
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.PeerCertificates) == 0 {
		s.audit(ctx, ActorAnonymous, action, object, OutcomeRefused, map[string]any{"refusal": "no verified client certificate"})
		return who, problem.New(ErrUnauthenticated, "", "a client certificate is required (mutual TLS)")
	}
	cert := req.TLS.PeerCertificates[0]
	who.client = clientName(cert)
	if eui, _, err := ca.TLSUser(cert); err == nil {
		who.eui = eui
	}
	c.Set(clientKey, who.client)
	if revoked, err := s.clientRevoked(ctx, cert); err != nil {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, map[string]any{"refusal": "client certificate revocation unknown: " + auditDetail(err.Error()), "client": who.client})
		return who, problem.Wrap(ErrUnavailable, err, "", "cannot check the client certificate's revocation")
	} else if revoked {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, map[string]any{"refusal": "client certificate revoked", "client": who.client})
		return who, problem.New(ErrUnauthenticated, "", "client certificate %X is revoked", cert.SerialNumber)
	}
	return who, nil
}

// authorize establishes an operator's request: the client certificate
// (client) and an operator bearer token holding role ("" for any operator).
// Every refusal is audited under action.
func (s *Server) authorize(c echo.Context, role operator.Role, action string) (caller, error) {
	who, err := s.client(c, action)
	if err != nil {
		return who, err
	}
	req := c.Request()
	ctx := req.Context()
	object := req.URL.Path
	token, present, ok := operator.BearerToken(req.Header.Get(echo.HeaderAuthorization))
	if !present || !ok {
		refusal := "no operator credential"
		if present {
			refusal = "malformed Authorization header"
		}
		s.audit(ctx, ActorAnonymous, action, object, OutcomeRefused, map[string]any{"refusal": refusal, "client": who.client})
		return who, problem.New(ErrUnauthenticated, "Authorization", "want \"Authorization: Bearer <operator token>\"")
	}
	id, found := s.deps.Credentials.Authenticate(token)
	if !found {
		s.audit(ctx, ActorUnknown, action, object, OutcomeRefused, map[string]any{"refusal": "unknown operator credential", "client": who.client})
		return who, problem.New(ErrUnauthenticated, "Authorization", "operator token not recognised")
	}
	who.operator, who.roles = id.Name, id.Roles
	c.Set(operatorKey, id.Name)
	if role != "" && !id.Has(role) {
		s.audit(ctx, id.Name, action, object, OutcomeRefused, map[string]any{"refusal": fmt.Sprintf("operator lacks the %s role", role), "client": who.client})
		return who, problem.New(ErrForbidden, "", "operator %q does not hold the %s role", id.Name, role)
	}
	return who, nil
}

// clientName names a client certificate in the audit log: its DCCKI user
// (EUI-64 and role) when it is one, else its subject; then its serial.
func clientName(cert *x509.Certificate) string {
	if eui, role, err := ca.TLSUser(cert); err == nil {
		return fmt.Sprintf("%s/%s serial %X", eui, role, cert.SerialNumber)
	}
	return fmt.Sprintf("%q serial %X", clip(cert.Subject.String()), cert.SerialNumber)
}

// clientRevoked reports whether the client certificate is recorded revoked
// by the client issuer. A certificate the store does not hold (issued by
// another CA of --client-ca) is not known revoked.
func (s *Server) clientRevoked(ctx context.Context, cert *x509.Certificate) (bool, error) {
	rec, err := s.deps.Store.Certificate(ctx, s.deps.ClientIssuer, cert.SerialNumber.Bytes())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return !rec.RevokedAt.IsZero(), nil
}

// audit appends one event, logging (not returning) a failure: it is used
// for refusals and outcomes, which are answered whatever the log does.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome string, details map[string]any) {
	if err := s.auditStrict(ctx, actor, action, object, outcome, details); err != nil {
		s.log.ErrorContext(ctx, "audit log write failed", "action", action, "outcome", outcome, "err", err)
	}
}

// auditStrict appends one event and reports failure, for the attempt that
// must be durable before an action goes ahead.
func (s *Server) auditStrict(ctx context.Context, actor, action, object, outcome string, details map[string]any) error {
	_, err := s.deps.Audit.AppendAudit(ctx, store.AuditEvent{Time: s.now().UTC(), Actor: actor, Action: action,
		Object: object, Outcome: outcome, Details: details})
	return err
}

// smkiEUI is smki.ParseEUI for request fields.
func smkiEUI(field, s string) (smki.EUI, error) {
	e, err := smki.ParseEUI(s)
	if err != nil {
		return smki.EUI{}, problem.Wrap(ErrBadRequest, err, field, "%q is not an EUI-64: want 16 hex digits", clip(s))
	}
	return e, nil
}
func clip(s string) string { return trunc.String(s, 64) }
