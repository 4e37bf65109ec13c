package repository

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/store"
)

// CertificateFinder looks published certificates up; the store satisfies it.
type CertificateFinder interface {
	FindCertificates(ctx context.Context, q store.CertQuery) ([]store.Certificate, error)
	Certificate(ctx context.Context, ca string, serial []byte) (store.Certificate, error)
}

// CAFinder looks certificate authorities up; the store satisfies it.
type CAFinder interface {
	CA(ctx context.Context, name string) (store.CA, error)
	CAs(ctx context.Context) ([]store.CA, error)
}

// CRLFinder returns the latest CRL a CA has issued; the store satisfies it.
type CRLFinder interface {
	LatestCRL(ctx context.Context, ca string) (store.CRL, error)
}

// Auditor appends events to the audit log; the store satisfies it.
type Auditor interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Publisher stores certificates issued elsewhere, after the server has read
// them and checked that they chain to a known CA; the store satisfies it.
// A certificate already stored gives an error wrapping store.ErrExists.
type Publisher interface {
	PutCertificates(ctx context.Context, certs ...store.Certificate) error
}

// Responder answers a DER OCSP request (RFC 6960) with a DER OCSP response;
// *StoredOCSP implements it. When it returns an error together with
// a response, the response is an OCSP error response ready to send.
type Responder interface {
	Respond(ctx context.Context, der []byte) ([]byte, error)
}

// Deps are the services a Server calls. Certs, CAs and CRLs serve reads;
// a nil one makes its routes answer 503. Audit is required for writes: with
// no Audit or Publisher the publish route answers 503, since no write
// happens unaudited. OCSP is optional: without it the OCSP routes answer 503
// "OCSP responder not configured".
type Deps struct {
	// Certs finds certificates (the store).
	Certs CertificateFinder
	// CAs finds certificate authorities (the store).
	CAs CAFinder
	// CRLs returns the latest CRLs (the store).
	CRLs CRLFinder
	// Audit is the audit log every write and refusal goes to (the store).
	Audit Auditor
	// Publisher stores published certificates (the store).
	Publisher Publisher
	// OCSP answers OCSP requests (*StoredOCSP, over the store: no key).
	OCSP Responder
	// Metrics counts and times the requests and counts OCSP answers; nil
	// records nothing.
	Metrics *Metrics
	// Logger receives the service log, with component=repository added;
	// nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the SMKI repository service: open reads of certificates, CAs,
// CRLs and OCSP, and operator-authenticated writes.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	auth *authenticator
	e    *echo.Echo
	errs *problem.Handler
}

// New builds a Server. cfg should have passed Validate; out-of-range limits
// are replaced by their defaults rather than trusted.
func New(cfg Config, deps Deps) *Server {
	if cfg.Validate() != nil {
		ops := cfg.Operators
		cfg = Config{Listen: cfg.Listen, Operators: ops}
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "repository")
	if s.now == nil {
		s.now = time.Now
	}
	if LegacySpelling(cfg.Operators) {
		s.log.Warn(`operators are in the deprecated spelling {"name", "tokenSHA256", "permissions"}, read until the next release: ` +
			`write package operator's {"name", "token_sha256", "roles"} instead (metertrust operator token prints it)`)
	}
	s.auth = newAuthenticator(cfg.Operators)
	s.errs = &problem.Handler{Kinds: kinds, Realm: "metertrust-repository", Logger: s.log}
	s.e = apiserver.NewEcho(s.errs.Handle)
	s.e.Use(apiserver.LogRequests(s.log, s.now, loggedOperator))
	s.e.Use(deps.Metrics.httpMetrics().Middleware())
	s.routes()
	return s
}

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/v1/certificates", s.listCertificates)
	e.POST("/v1/certificates", s.publishCertificate)
	e.GET("/v1/certificates/:ca/:serial", s.getCertificate)
	e.GET("/v1/cas", s.listCAs)
	e.GET("/v1/cas/:name", s.getCA)
	e.GET("/v1/cas/:name/certificate", s.getCACertificate)
	e.GET("/v1/crl/:ca", s.getCRL)
	e.POST("/ocsp", s.ocspPost)
	e.GET("/ocsp/*", s.ocspGet)
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.e }

// Route is a method and path pattern the server answers, with path
// parameters written {name} as in OpenAPI.
type Route = apiserver.Route

// Routes lists the method and path of every route, sorted, with echo's
// ":name" parameters written "{name}" and the OCSP wildcard as
// "{request}", the form the OpenAPI document uses.
func (s *Server) Routes() []Route { return apiserver.Routes(s.e) }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully, letting requests in flight finish within the configured
// ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return apiserver.Serve(ctx, ln, s.e, apiserver.Options{
		Service: "repository", Name: "repository", Logger: s.log,
		ShutdownTimeout: time.Duration(s.cfg.ShutdownTimeout),
	})
}

// loggedOperator names the authenticated operator in the request log.
func loggedOperator(c echo.Context) []slog.Attr {
	if op, ok := c.Get(operatorKey).(string); ok {
		return []slog.Attr{slog.String("operator", op)}
	}
	return nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
