package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/internal/trunc"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
	// DefaultLockout is how long a name is refused after LockoutFailures
	// failed logins in a row.
	DefaultLockout  = 5 * time.Minute
	LockoutFailures = 5
)

// The cookies. The __Host- prefix makes browsers refuse them unless they
// are Secure, set by this host for path / with no Domain: no other site,
// subdomain or plain-HTTP page can set or read them.
const (
	sessionCookie = "__Host-mt_session"
	loginCookie   = "__Host-mt_login"
)

// Config configures a Server.
type Config struct {
	// SessionIdle ends a session not used for this long; SessionMax ends
	// any session this long after login. Zero for the defaults.
	SessionIdle, SessionMax time.Duration
	// Lockout is how long a name is refused after LockoutFailures failed
	// logins in a row; zero for DefaultLockout.
	Lockout time.Duration
	// Sample is how often Run reads the live counts for the overview's
	// charts; zero for DefaultSample. Refresh is how often the overview
	// page fetches its live part; zero for DefaultRefresh.
	Sample, Refresh time.Duration
}

// DefaultRefresh is how often the overview page refreshes its live part.
const DefaultRefresh = 5 * time.Second

func (c Config) withDefaults() Config {
	if c.SessionIdle <= 0 {
		c.SessionIdle = DefaultSessionIdle
	}
	if c.SessionMax <= 0 {
		c.SessionMax = DefaultSessionMax
	}
	if c.Lockout <= 0 {
		c.Lockout = DefaultLockout
	}
	if c.Sample <= 0 {
		c.Sample = DefaultSample
	}
	if c.Refresh < time.Second {
		c.Refresh = DefaultRefresh
	}
	return c
}

// Sessions keeps the dashboard's login sessions; *store.OperatorStore
// implements it.
type Sessions interface {
	CreateSession(ctx context.Context, s store.Session, es ...store.AuditEvent) error
	Session(ctx context.Context, idSHA256 string, now time.Time, idle time.Duration) (store.Session, error)
	TouchSession(ctx context.Context, idSHA256 string, now time.Time) error
	DeleteSession(ctx context.Context, idSHA256 string, es ...store.AuditEvent) error
	DeleteSessionsBefore(ctx context.Context, now time.Time, idle time.Duration) (int64, error)
}

// Decider releases and deletes quarantined commands as the operator API
// does (the detector's role check and audit, the forwarding of a release
// and its audit); *operator.Server implements it.
type Decider interface {
	Release(ctx context.Context, id operator.Identity, ref, reason string) (operator.ReleaseResult, error)
	Delete(ctx context.Context, id operator.Identity, ref, reason string) (operator.QuarantineView, error)
	// Threshold changes, proposed instead of applied when they loosen a
	// DCC threshold or delete one, and the proposals of two-person
	// control (decision 023).
	SetThreshold(ctx context.Context, id operator.Identity, t anomaly.Threshold) (anomaly.Threshold, *proposal.Proposal, error)
	DeleteThreshold(ctx context.Context, id operator.Identity, tid, reason string) (*proposal.Proposal, error)
	ProposeBulk(ctx context.Context, id operator.Identity, to anomaly.State, refs []string, reason string) (proposal.Proposal, error)
	Proposals(ctx context.Context, f proposal.Filter) ([]proposal.Proposal, error)
	ApproveProposal(ctx context.Context, id operator.Identity, pid, reason string) (proposal.Proposal, error)
	RejectProposal(ctx context.Context, id operator.Identity, pid, reason string) (proposal.Proposal, error)
	ProposalRole(k proposal.Kind) (operator.Role, bool)
}

// AuditLog is the audit log as the dashboard reads and writes it;
// *store.DB implements it.
type AuditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
	SearchAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)
	VerifyAudit(ctx context.Context) (int64, error)
}

// Deps are the Server's dependencies. A page whose dependency is nil says
// so rather than failing.
type Deps struct {
	// Credentials are the operators: their names, roles and password
	// hashes.
	Credentials *operator.Credentials
	Sessions    Sessions
	// Quarantine, Thresholds and Usage are usually one *anomaly.Detector,
	// which checks the operator's roles again and audits every change.
	Quarantine operator.Quarantines
	Thresholds operator.Thresholds
	Usage      operator.Usage
	// Decider is the operator API's *operator.Server.
	Decider Decider
	Audit   AuditLog
	// PKI is the SMKI repository, for the PKI page (*store.SMKIStore).
	PKI PKI
	// Rates is the rollup of the router's commands per minute, for the
	// overview (*store.OperatorStore); Run keeps it up to date.
	Rates Rates
	// Metrics counts and times the pages' requests, beside the operator
	// API's (apiserver.HTTPMetrics); nil records nothing.
	Metrics *apiserver.HTTPMetrics
	// Logger is the logger; nil discards. Now is the clock; nil for
	// time.Now. Rand is the randomness of session ids and tokens; nil for
	// crypto/rand.
	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
}

// Server is the operator dashboard: server-rendered pages over the
// anomaly detector, the thresholds and the audit log, for operators who log
// in with their name and password.
type Server struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	e     *echo.Echo
	pages map[string]*template.Template

	mu       sync.Mutex
	failures map[string]*failure // by operator name

	hist history

	chainMu  sync.Mutex
	chainAt  time.Time // when the chain was last verified
	chainN   int64
	chainErr error
}

// chainEvery is how long the result of verifying the audit chain is
// shown before it is verified again: the whole log is read each time.
const chainEvery = time.Minute

// chain verifies the audit log's hash chain, at most once per chainEvery
// (operators reloading the audit page do not each re-read the log).
func (s *Server) chain(ctx context.Context) (int64, time.Time, error) {
	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	now := s.now()
	if s.chainAt.IsZero() || now.Sub(s.chainAt) >= chainEvery || now.Before(s.chainAt) {
		s.chainN, s.chainErr = s.deps.Audit.VerifyAudit(ctx)
		s.chainAt = now
	}
	return s.chainN, s.chainAt, s.chainErr
}

// failure counts a name's failed logins in a row.
type failure struct {
	n     int
	until time.Time // refused until then once n reaches LockoutFailures
}

// New returns a dashboard Server.
func New(cfg Config, deps Deps) (*Server, error) {
	s := &Server{cfg: cfg.withDefaults(), deps: deps, log: deps.Logger, now: deps.Now, rand: deps.Rand, failures: map[string]*failure{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "dashboard")
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.e = apiserver.NewEcho(s.handleError)
	s.e.Use(securityHeaders)
	s.e.Use(deps.Metrics.Middleware())
	s.e.Use(apiserver.LogRequests(s.log, s.now, func(c echo.Context) []slog.Attr {
		if o, ok := c.Get(operatorKey).(*session); ok {
			return []slog.Attr{slog.String("actor", o.id.Name)}
		}
		return nil
	}))
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving every page.
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists the dashboard's routes.
func (s *Server) Routes() []apiserver.Route { return apiserver.Routes(s.e) }

func (s *Server) routes() {
	e := s.e
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", staticHandler(static))))
	e.GET("/login", s.loginPage)
	e.POST("/login", s.login)
	e.POST("/logout", s.authed(s.logout))
	e.GET("/", s.authed(s.overview))
	e.GET("/overview/live", s.authed(s.overviewLive))
	e.GET("/quarantine", s.authed(s.quarantineList))
	e.GET("/quarantine/:ref", s.authed(s.quarantineDetail))
	e.POST("/quarantine/:ref/release", s.authed(s.quarantineDecide))
	e.POST("/quarantine/:ref/delete", s.authed(s.quarantineDecide))
	e.POST("/quarantine/bulk", s.authed(s.quarantineBulk))
	e.GET("/proposals", s.authed(s.proposalList))
	e.POST("/proposals/:id/approve", s.authed(s.proposalDecide))
	e.POST("/proposals/:id/reject", s.authed(s.proposalDecide))
	e.GET("/thresholds", s.authed(s.thresholdList))
	e.POST("/thresholds", s.authed(s.thresholdSet))
	e.POST("/thresholds/:id/delete", s.authed(s.thresholdDelete))
	e.GET("/audit", s.authed(s.auditSearch))
	e.GET("/pki", s.authed(s.pki))
}

// staticHandler serves the embedded assets, cacheable for an hour.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "private, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the page's own scripts, styles and
// images and nothing else: no inline script or style, no framing, forms
// posting only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// securityHeaders sets the headers every answer carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: under no-referrer browsers send
		// "Origin: null" with a form post, which checkPost must refuse.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// operatorKey is the echo context key of the request's session.
const operatorKey = "web.session"

// session is a request's logged-in operator.
type session struct {
	idHash string
	id     operator.Identity
	csrf   string
}

// Name is the operator's name, for the pages.
func (o *session) Name() string { return o.id.Name }

// Roles are the operator's roles, for the pages.
func (o *session) Roles() []operator.Role { return o.id.Roles }

// who returns the request's session (set by authed).
func who(c echo.Context) *session {
	o, _ := c.Get(operatorKey).(*session)
	return o
}

// authed serves h to a logged-in operator only: a page request without a
// live session is sent to the login page; a POST must carry the session's
// CSRF token and come from this origin, or it is refused (audited).
func (s *Server) authed(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := req.Context()
		o, err := s.session(c)
		if err != nil {
			if req.Method == http.MethodGet {
				next := url.Values{"next": {req.URL.RequestURI()}}
				return c.Redirect(http.StatusSeeOther, "/login?"+next.Encode())
			}
			return &pageError{status: http.StatusUnauthorized, msg: "Your session has ended: log in again."}
		}
		if req.Method != http.MethodGet {
			if err := s.checkPost(c, o.csrf); err != nil {
				s.audit(ctx, o.id.Name, "operator.dashboard.csrf", req.URL.Path, store.OutcomeRefused, map[string]any{"refusal": err.Error()})
				return &pageError{status: http.StatusForbidden, msg: "This form could not be checked (" + err.Error() + "): reload the page and try again."}
			}
		}
		if !o.id.Permits(anomaly.ActionView) {
			s.audit(ctx, o.id.Name, "operator.dashboard.view", req.URL.Path, store.OutcomeRefused,
				map[string]any{"refusal": fmt.Sprintf("roles %v do not include viewer, quarantine-officer or threshold-admin", o.id.Roles)})
			return &pageError{status: http.StatusForbidden, msg: "Your roles do not include the dashboard's (viewer, quarantine-officer, threshold-admin)."}
		}
		c.Set(operatorKey, o)
		return h(c)
	}
}

// session reads and checks the request's session cookie, and records its
// use; the operator's roles are read from the credentials now, so a role
// taken away takes effect at once.
func (s *Server) session(c echo.Context) (*session, error) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errors.New("no session")
	}
	if s.deps.Sessions == nil {
		return nil, errors.New("no session store")
	}
	ctx := c.Request().Context()
	idHash := digest(ck.Value)
	now := s.now()
	ss, err := s.deps.Sessions.Session(ctx, idHash, now, s.cfg.SessionIdle)
	if err != nil {
		return nil, err
	}
	id, ok := s.deps.Credentials.Identity(ss.Operator)
	if !ok {
		return nil, fmt.Errorf("operator %q is no longer in the credentials", ss.Operator)
	}
	if now.Sub(ss.LastSeen) > time.Minute {
		if err := s.deps.Sessions.TouchSession(ctx, idHash, now); err != nil {
			s.log.WarnContext(ctx, "recording a session's use", "err", err)
		}
	}
	return &session{idHash: idHash, id: id, csrf: ss.CSRF}, nil
}

// checkPost checks a form post: same origin (the Fetch metadata and the
// Origin header, which browsers send with every POST, name this site) and
// the CSRF token of the form equal to want.
func (s *Server) checkPost(c echo.Context, want string) error {
	req := c.Request()
	if site := req.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("posted from a %s page, not this site", trunc.String(site, 40))
	}
	if o := req.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != req.Host {
			return fmt.Errorf("posted from origin %q, not this site", trunc.String(o, 80))
		}
	}
	got := c.FormValue("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("missing or wrong anti-forgery token")
	}
	return nil
}

// token returns n random bytes as unpadded base64url.
func (s *Server) token(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digest is the hex SHA-256 under which a session is stored.
func digest(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

func setCookie(c echo.Context, name, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}

// loginPage shows the login form, with a fresh login token in a cookie
// and the form (the CSRF check of the login itself).
func (s *Server) loginPage(c echo.Context) error {
	return s.renderLogin(c, http.StatusOK, "", c.QueryParam("next"))
}

func (s *Server) renderLogin(c echo.Context, status int, msg, next string) error {
	tok, err := s.token(32)
	if err != nil {
		return err
	}
	setCookie(c, loginCookie, tok, 600)
	return s.render(c, status, "login", map[string]any{"Error": msg, "CSRF": tok, "Next": safeNext(next)})
}

// safeNext keeps a post-login destination only when it is a path of this
// site: it starts with one slash, not "//" nor "/\" (which browsers read
// as another host), and holds no control character (browsers drop tabs and
// newlines from a Location, which could turn "/<TAB>/host" into "//host").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	return next
}

// login checks a name and password: on success a new session (audited
// operator.login success) and a redirect; on failure the form again
// (audited refused), the same message whatever was wrong.
func (s *Server) login(c echo.Context) error {
	req := c.Request()
	ctx := req.Context()
	name := strings.TrimSpace(c.FormValue("name"))
	password := c.FormValue("password")
	next := c.FormValue("next")
	lc, err := c.Cookie(loginCookie)
	if err == nil {
		err = s.checkPost(c, lc.Value)
	} else {
		err = errors.New("no login form cookie (expired, or cookies refused)")
	}
	if err != nil {
		s.audit(ctx, auditName(name), "operator.login", auditName(name), store.OutcomeRefused, map[string]any{"refusal": err.Error()})
		return s.renderLogin(c, http.StatusForbidden, "The login form had expired: try again.", next)
	}
	now := s.now()
	if until, ok := s.attempt(name, now); !ok {
		s.audit(ctx, auditName(name), "operator.login", auditName(name), store.OutcomeRefused,
			map[string]any{"refusal": fmt.Sprintf("locked after %d failed logins until %s", LockoutFailures, until.UTC().Format(time.RFC3339))})
		return s.renderLogin(c, http.StatusTooManyRequests, "Too many failed logins: wait a few minutes.", next)
	}
	id, ok := s.deps.Credentials.Login(name, password)
	if !ok {
		s.audit(ctx, auditName(name), "operator.login", auditName(name), store.OutcomeRefused, map[string]any{"refusal": "unknown name or wrong password"})
		return s.renderLogin(c, http.StatusUnauthorized, "Unknown name or wrong password.", next)
	}
	s.succeeded(name)
	if s.deps.Sessions == nil {
		return &pageError{status: http.StatusServiceUnavailable, msg: "This instance keeps no sessions."}
	}
	value, err := s.token(32)
	if err != nil {
		return err
	}
	csrf, err := s.token(32)
	if err != nil {
		return err
	}
	ss := store.Session{IDSHA256: digest(value), Operator: id.Name, CSRF: csrf, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.cfg.SessionMax)}
	e := store.AuditEvent{Time: now.UTC(), Actor: id.Name, Action: "operator.login", Object: id.Name, Outcome: store.OutcomeSuccess,
		Details: map[string]any{"roles": id.Roles, "expires": ss.ExpiresAt.UTC().Format(time.RFC3339)}}
	if err := s.deps.Sessions.CreateSession(ctx, ss, e); err != nil {
		return fmt.Errorf("recording the session: %w", err)
	}
	// Expired sessions go on each login: no sweeper to run.
	if _, err := s.deps.Sessions.DeleteSessionsBefore(ctx, now, s.cfg.SessionIdle); err != nil {
		s.log.WarnContext(ctx, "deleting ended sessions", "err", err)
	}
	setCookie(c, loginCookie, "", -1)
	setCookie(c, sessionCookie, value, int(s.cfg.SessionMax/time.Second))
	return c.Redirect(http.StatusSeeOther, safeNext(next))
}

// auditName bounds a name typed in the login form for the audit log.
func auditName(name string) string {
	if !operator.ValidName(name) {
		return operator.ActorUnknown
	}
	return name
}

// attempt counts a login attempt for name before its password is checked,
// so that parallel guesses cannot all pass before one failure is counted:
// it reports false, with the time the lock ends, when the name has had
// LockoutFailures attempts in a row without a success. succeeded clears
// the count.
func (s *Server) attempt(name string, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[name]
	if f != nil && f.n >= LockoutFailures {
		if now.Before(f.until) {
			return f.until, false
		}
		f.n = 0 // the lock is over: a fresh count
	}
	if f == nil {
		if len(s.failures) >= maxFailures {
			s.forgetUnlocked(now)
		}
		f = &failure{}
		s.failures[name] = f
	}
	if f.n++; f.n >= LockoutFailures {
		f.until = now.Add(s.cfg.Lockout)
	}
	return time.Time{}, true
}

// maxFailures bounds the names whose failures are remembered; past it,
// the names not locked are forgotten first, so a flood of made-up names
// cannot unlock a name under attack.
const maxFailures = 10000

// forgetUnlocked drops the counts of names not locked now. The caller
// holds s.mu.
func (s *Server) forgetUnlocked(now time.Time) {
	for name, f := range s.failures {
		if f.n < LockoutFailures || !now.Before(f.until) {
			delete(s.failures, name)
		}
	}
}

func (s *Server) succeeded(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, name)
}

// logout ends the session (audited) and forgets its cookie.
func (s *Server) logout(c echo.Context) error {
	o := who(c)
	now := s.now()
	e := store.AuditEvent{Time: now.UTC(), Actor: o.id.Name, Action: "operator.logout", Object: o.id.Name, Outcome: store.OutcomeSuccess}
	if err := s.deps.Sessions.DeleteSession(c.Request().Context(), o.idHash, e); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	setCookie(c, sessionCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, "/login")
}

// audit appends a dashboard audit entry; a failure to write is logged.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome string, details map[string]any) {
	if s.deps.Audit == nil {
		s.log.ErrorContext(ctx, "no audit log configured; event not recorded", "action", action, "outcome", outcome)
		return
	}
	if _, err := s.deps.Audit.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{Time: s.now().UTC(), Actor: actor, Action: action,
		Object: trunc.String(object, 200), Outcome: outcome, Details: details}); err != nil {
		s.log.ErrorContext(ctx, "audit log write failed", "action", action, "err", err)
	}
}

// pageError is an error shown to the operator as a page with status.
type pageError struct {
	status int
	msg    string
	cause  error // logged, never shown
}

func (e *pageError) Error() string { return e.msg }

// handleError renders every error as a page: a pageError with its
// message, echo's own (404, 405) with theirs, anything else as 500 with
// nothing of its text (it is logged).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong; it has been logged."
	var pe *pageError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &pe):
		status, msg = pe.status, pe.msg
		if pe.cause != nil {
			s.log.ErrorContext(c.Request().Context(), "dashboard page failed", "path", c.Request().URL.Path, "err", pe.cause)
		}
	case errors.As(err, &he):
		status, msg = he.Code, http.StatusText(he.Code)
	default:
		s.log.ErrorContext(c.Request().Context(), "dashboard page failed", "path", c.Request().URL.Path, "err", err)
	}
	if rerr := s.render(c, status, "error", map[string]any{"Status": status, "Message": msg}); rerr != nil {
		s.log.ErrorContext(c.Request().Context(), "rendering the error page", "err", rerr)
		_ = c.String(status, msg)
	}
}
