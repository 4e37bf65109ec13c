package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

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

// Revoker revokes a certificate of one of the CAs with an RFC 5280 CRLReason
// code and returns it as revoked; *ca.Authority implements it. Unknown
// certificates give an error wrapping ca.ErrNotFound or store.ErrNotFound.
type Revoker interface {
	Revoke(ctx context.Context, ca string, serial []byte, reason int) (store.Certificate, error)
}

// Responder answers a DER OCSP request (RFC 6960) with a DER OCSP response;
// *ca.OCSPResponder implements it. When it returns an error together with
// a response, the response is an OCSP error response ready to send.
type Responder interface {
	Respond(ctx context.Context, der []byte) ([]byte, error)
}

// Deps are the services a Server calls. Certs, CAs and CRLs serve reads;
// a nil one makes its routes answer 503. Audit is required for writes: with
// no Audit, Publisher or Revoker the write routes answer 503, since no write
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
	// Revoker revokes certificates (*ca.Authority).
	Revoker Revoker
	// OCSP answers OCSP requests (*ca.OCSPResponder).
	OCSP Responder
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
	s.auth = newAuthenticator(cfg.Operators)
	s.e = echo.New()
	s.e.HideBanner = true
	s.e.HidePort = true
	s.e.HTTPErrorHandler = s.handleError
	s.e.Use(s.logRequests)
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
	e.POST("/v1/revocations", s.revoke)
	e.POST("/ocsp", s.ocspPost)
	e.GET("/ocsp/*", s.ocspGet)
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.e }

// Route is a method and path pattern the server answers, with path
// parameters written {name} as in OpenAPI.
type Route struct {
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path pattern, e.g. "/v1/certificates/{ca}/{serial}".
	Path string
}

// Routes lists the method and path of every route, sorted, with echo's
// ":name" parameters written "{name}" and the OCSP wildcard as
// "{request}", the form the OpenAPI document uses.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.e.Routes() {
		out = append(out, Route{Method: r.Method, Path: openAPIPath(r.Path)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func openAPIPath(p string) string {
	b := []byte{}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case ':':
			j := i + 1
			for j < len(p) && p[j] != '/' {
				j++
			}
			b = append(b, '{')
			b = append(b, p[i+1:j]...)
			b = append(b, '}')
			i = j - 1
		case '*':
			b = append(b, "{request}"...)
		default:
			b = append(b, p[i])
		}
	}
	return string(b)
}

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully, letting requests in flight finish within the configured
// ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("repository listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("repository: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("repository shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("repository: graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("repository: serving on %s: %w", ln.Addr(), err)
	}
	s.log.Info("repository stopped")
	return nil
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		// The query string and headers are not logged: the Authorization
		// header carries operator tokens.
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.Int("status", c.Response().Status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("elapsed", s.now().Sub(start)),
		}
		if op, ok := c.Get(operatorKey).(string); ok {
			attrs = append(attrs, slog.String("operator", op))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleError is the one place where errors become HTTP responses: a
// problem+json body whose type, title and status come from the error kind.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var re *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
	case errors.As(err, &mbe):
		re = wrapError(KindTooLarge, err, "", "request body exceeds %d bytes", mbe.Limit)
	case errors.As(err, &he):
		re = fromEchoError(he)
	default:
		re = wrapError(KindInternal, err, "", "internal error")
	}
	_, status, slug, title := re.Kind.info()
	if re.Kind == KindInternal {
		s.log.ErrorContext(c.Request().Context(), "request failed", "path", c.Request().URL.Path, "err", err)
		re.Detail = "internal error; see the server log"
		re.Param = ""
	}
	if re.Kind == KindUnauthenticated {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="metertrust-repository"`)
	}
	p := Problem{
		Type:     ProblemTypeBase + slug,
		Title:    title,
		Status:   status,
		Detail:   re.Detail,
		Param:    re.Param,
		Instance: c.Request().URL.Path,
	}
	body, mErr := json.Marshal(p)
	if mErr != nil {
		s.log.Error("encoding problem", "err", mErr)
		c.Response().WriteHeader(http.StatusInternalServerError)
		return
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		c.Response().WriteHeader(status)
		return
	}
	if err := c.Blob(status, "application/problem+json", body); err != nil {
		s.log.Warn("writing problem", "err", err)
	}
}

func fromEchoError(he *echo.HTTPError) *Error {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return newError(KindNotFound, "", "no such route")
	case http.StatusMethodNotAllowed:
		return newError(KindMethodNotAllowed, "", "method not allowed on this route")
	case http.StatusRequestEntityTooLarge:
		return newError(KindTooLarge, "", "request body too large")
	case http.StatusUnsupportedMediaType:
		return newError(KindUnsupportedMediaType, "", "%s", msg)
	case http.StatusBadRequest:
		return newError(KindBadRequest, "", "%s", msg)
	case http.StatusUnauthorized:
		return newError(KindUnauthenticated, "", "%s", msg)
	case http.StatusForbidden:
		return newError(KindForbidden, "", "%s", msg)
	case http.StatusServiceUnavailable:
		return newError(KindUnavailable, "", "%s", msg)
	}
	return wrapError(KindInternal, he, "", "internal error")
}
