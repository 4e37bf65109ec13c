package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/metertrust/metertrust/internal/trunc"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// Quarantines is what the server needs to list and decide quarantined
// commands. *anomaly.Detector implements it; it checks roles again and
// audits every decision and refused decision itself.
type Quarantines interface {
	List(ctx context.Context, actor anomaly.Actor, f anomaly.Filter) ([]anomaly.Quarantine, error)
	Get(ctx context.Context, ref string, actor anomaly.Actor) (anomaly.Quarantine, error)
	Release(ctx context.Context, ref string, actor anomaly.Actor, reason string) (anomaly.Quarantine, error)
	Delete(ctx context.Context, ref string, actor anomaly.Actor, reason string) (anomaly.Quarantine, error)
}

// Thresholds is what the server needs to manage thresholds.
// *anomaly.Detector implements it and audits every change.
type Thresholds interface {
	Thresholds(ctx context.Context, actor anomaly.Actor) ([]anomaly.Threshold, error)
	SetThreshold(ctx context.Context, actor anomaly.Actor, t anomaly.Threshold) (anomaly.Threshold, error)
	DeleteThreshold(ctx context.Context, id string, actor anomaly.Actor, reason string) error
	SetThresholdApproved(ctx context.Context, actor anomaly.Actor, t anomaly.Threshold, a anomaly.Approval) (anomaly.Threshold, error)
	DeleteThresholdApproved(ctx context.Context, id string, actor anomaly.Actor, reason string, a anomaly.Approval) error
}

// Usage reads live counts against the thresholds. *anomaly.Detector
// implements it.
type Usage interface {
	Usage(ctx context.Context, actor anomaly.Actor, u smki.EUI) ([]anomaly.Usage, error)
}

// Alerts subscribes to quarantine alerts. *anomaly.Detector implements it.
type Alerts interface {
	Subscribe(ctx context.Context, actor anomaly.Actor, f anomaly.AlertFilter) (<-chan anomaly.Alert, error)
}

// Releaser carries a released command through the rest of the router's
// pipeline (the remaining checks, the MAC, the durable record and
// forwarding) and returns the router's receipt, or an error wrapping
// anomaly.ErrForwardPending when the router's release sweeper forwards it
// instead. In a process with the router, wrap (*router.Releases).Forward
// with Forwarder (it records the outcome, so the sweeper does not forward
// the command again); in a process without, use Deferred.
type Releaser interface {
	ForwardReleased(ctx context.Context, q anomaly.Quarantine) (any, error)
}

// Deferred is the Releaser of an operator API that holds no router key
// (metertrust serve operator): it forwards nothing and returns
// anomaly.ErrForwardPending, so a release is answered 202 Accepted with the
// record, its forwarding pending. The detector's release left the record
// pending in the store; the router's release sweeper forwards it and
// records the outcome, which a GET of the record shows.
var Deferred Releaser = deferred{}

type deferred struct{}

func (deferred) ForwardReleased(context.Context, anomaly.Quarantine) (any, error) {
	return nil, anomaly.ErrForwardPending
}

// Forwarder adapts a function returning any receipt type, such as the
// method value of (*router.Router).ForwardReleased, to a Releaser; the
// receipt is returned to the operator as JSON.
func Forwarder[R any](f func(ctx context.Context, q anomaly.Quarantine) (R, error)) Releaser {
	return forwarder[R](f)
}

type forwarder[R any] func(ctx context.Context, q anomaly.Quarantine) (R, error)

func (f forwarder[R]) ForwardReleased(ctx context.Context, q anomaly.Quarantine) (any, error) {
	r, err := f(ctx, q)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Auditor appends to the audit log. *store.DB implements it.
type Auditor interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Deps are the server's dependencies. A route whose dependency is nil
// answers 503; with nil Credentials every authenticated route answers 401.
type Deps struct {
	// Credentials authenticate operators.
	Credentials *Credentials
	// Quarantine, Thresholds, Usage and Alerts are usually one
	// *anomaly.Detector.
	Quarantine Quarantines
	Thresholds Thresholds
	Usage      Usage
	Alerts     Alerts
	// Releaser carries released commands on: Forwarder(Releases.Forward)
	// beside the router, Deferred in a process without its key.
	Releaser Releaser
	// Audit receives the server's own audit entries (refusals, forwarding
	// outcomes); usually the *store.DB the detector's store is on.
	Audit Auditor
	// Proposals keeps the proposals of two-person control (decision 023):
	// usually the (*store.DB).Proposals of the detector's store. Without
	// it, bulk decisions and loosening threshold changes answer 503.
	Proposals proposal.Store
	// UI, when set, serves every path but /v1/ and /healthz: the
	// dashboard (package web), beside the API on one listener.
	UI http.Handler
	// Metrics counts and times the requests (apiserver.HTTPMetrics); nil
	// records nothing.
	Metrics *apiserver.HTTPMetrics
	// Logger is the logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil for time.Now.
	Now func() time.Time
}

// Server is the operator API.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	e    *echo.Echo
	errs *problem.Handler
	desk *proposal.Desk
	// streamsDone is closed when Serve shuts down, ending event streams
	// (which would otherwise hold the graceful shutdown for its whole
	// timeout) while other requests finish.
	streamsDone chan struct{}
	stopStreams sync.Once
}

// New builds a Server. cfg should have passed Validate; negative values are
// replaced by their defaults rather than trusted.
func New(cfg Config, deps Deps) *Server {
	s := &Server{cfg: cfg.withDefaults(), deps: deps, log: deps.Logger, now: deps.Now, streamsDone: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "operator")
	if s.now == nil {
		s.now = time.Now
	}
	s.errs = &problem.Handler{Kinds: kinds, Realm: "metertrust-operator", Logger: s.log, Body: problemBody}
	s.e = apiserver.NewEcho(s.errs.Handle)
	s.e.Use(apiserver.LogRequests(s.log, s.now, loggedActor))
	if deps.Proposals != nil {
		desk, err := proposal.New(proposal.Config{Store: deps.Proposals, Rules: s.proposalRules(),
			TTL: time.Duration(s.cfg.ProposalTTL), Now: s.now, Logger: s.log})
		if err != nil {
			panic(fmt.Sprintf("operator: building the proposal desk: %v", err)) // the rules and TTL are ours
		}
		s.desk = desk
	}
	s.e.Use(deps.Metrics.Middleware())
	s.routes()
	return s
}

func (s *Server) routes() {
	e := s.e
	e.GET("/healthz", s.healthz)
	e.GET("/v1/quarantine", s.authed(anomaly.ActionView, "operator.quarantine.list", s.listQuarantine))
	e.GET("/v1/quarantine/:ref", s.authed(anomaly.ActionView, "operator.quarantine.get", s.getQuarantine))
	e.POST("/v1/quarantine/:ref/release", s.authed(anomaly.ActionRelease, "anomaly.release", s.release))
	e.POST("/v1/quarantine/:ref/delete", s.authed(anomaly.ActionDelete, "anomaly.delete", s.deleteQuarantine))
	e.GET("/v1/thresholds", s.authed(anomaly.ActionView, "operator.threshold.list", s.listThresholds))
	e.GET("/v1/thresholds/:id", s.authed(anomaly.ActionView, "operator.threshold.get", s.getThreshold))
	e.PUT("/v1/thresholds/:id", s.authed(anomaly.ActionSetThreshold, "anomaly.threshold.set", s.putThreshold))
	e.DELETE("/v1/thresholds/:id", s.authed(anomaly.ActionSetThreshold, "anomaly.threshold.delete", s.deleteThreshold))
	e.POST("/v1/quarantine/bulk-release", s.authed(anomaly.ActionRelease, "proposal.create", s.bulkRelease))
	e.POST("/v1/quarantine/bulk-delete", s.authed(anomaly.ActionDelete, "proposal.create", s.bulkDelete))
	e.GET("/v1/proposals", s.authed(anomaly.ActionView, "operator.proposal.list", s.listProposals))
	e.GET("/v1/proposals/:id", s.authed(anomaly.ActionView, "operator.proposal.get", s.getProposal))
	e.POST("/v1/proposals/:id/approve", s.authed(anomaly.ActionView, "proposal.approve", s.approveProposal))
	e.POST("/v1/proposals/:id/reject", s.authed(anomaly.ActionView, "proposal.reject", s.rejectProposal))
	e.GET("/v1/usage", s.authed(anomaly.ActionView, "operator.usage", s.usage))
	e.GET("/v1/events", s.authed(anomaly.ActionView, "operator.events", s.events))
}

// Handler returns the HTTP handler serving every route: the API, and the
// UI beside it when Deps.UI is set.
func (s *Server) Handler() http.Handler {
	if s.deps.UI == nil {
		return s.e
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.e)
	mux.Handle("/healthz", s.e)
	mux.Handle("/", s.deps.UI)
	return mux
}

// Route is a method and path pattern the server answers, with path
// parameters written {name} as in OpenAPI.
type Route = apiserver.Route

// Routes lists the method and path of every route, sorted, in the form the
// OpenAPI document uses.
func (s *Server) Routes() []Route { return apiserver.Routes(s.e) }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully: event streams end at once, other requests get
// ShutdownTimeout to finish. It returns nil after a clean shutdown. A
// Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return apiserver.Serve(ctx, ln, s.Handler(), apiserver.Options{
		Service: "operator", Name: "operator API", Logger: s.log,
		ShutdownTimeout: time.Duration(s.cfg.ShutdownTimeout),
		BeforeShutdown:  func() { s.stopStreams.Do(func() { close(s.streamsDone) }) },
	})
}

// principalKey is the echo context key of the authenticated caller.
const principalKey = "operator.principal"

// principal is the authenticated operator of a request.
type principal struct {
	// Name is the operator's name, the actor of the server's own audit
	// entries.
	Name string
	// Actor is the operator as the detector sees it.
	Actor anomaly.Actor
	// ID is the operator with its roles.
	ID Identity
}

func who(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

// Audit actors for requests without a recognised operator.
const (
	ActorAnonymous = "anonymous"
	ActorUnknown   = "unknown-operator"
)

// authed wraps h with authentication and the role check for action;
// refusals are audited under auditAction.
func (s *Server) authed(action anomaly.Action, auditAction string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := req.Context()
		object := req.URL.Path
		for _, p := range []string{"ref", "id"} {
			if v := c.Param(p); v != "" {
				object = v
			}
		}
		object = clip(object)
		token, present, ok := BearerToken(req.Header.Get(echo.HeaderAuthorization))
		var err *Error
		actor := ActorAnonymous
		switch {
		case !present:
			err = problem.New(ErrUnauthenticated, "Authorization", "an operator bearer token is needed")
		case !ok:
			actor, err = ActorUnknown, problem.New(ErrUnauthenticated, "Authorization", `want "Authorization: Bearer <token>"`)
		}
		if err == nil {
			id, found := s.deps.Credentials.Authenticate(token)
			switch {
			case !found:
				actor, err = ActorUnknown, problem.New(ErrUnauthenticated, "Authorization", "operator token not recognised")
			case !id.Permits(action):
				actor, err = id.Name, problem.New(ErrForbidden, "", "operator %q (roles %v) may not %s", id.Name, id.Roles, action)
			default:
				c.Set(principalKey, principal{Name: id.Name, Actor: id.Actor(), ID: id})
				return h(c)
			}
		}
		s.audit(ctx, actor, auditAction, object, err)
		return err
	}
}

// audit appends the server's own audit entry for a refusal (outcome
// refused) or a failure; a failure to write it is logged, not returned,
// since the refusal is answered whatever the audit log does.
func (s *Server) audit(ctx context.Context, actor, action, object string, err *Error) {
	details := map[string]any{"status": err.Kind.Status(), "refusal": clipDetail(err.Detail)}
	if err.Param != "" {
		details["param"] = err.Param
	}
	outcome := store.OutcomeRefused
	if err.Kind == ErrForwardFailed || err.Kind == ErrInternal {
		outcome = store.OutcomeFailure
		delete(details, "refusal")
		details["error"] = clipDetail(err.Error())
	}
	s.appendAudit(ctx, actor, action, object, outcome, details)
}

func (s *Server) appendAudit(ctx context.Context, actor, action, object, outcome string, details map[string]any) {
	if s.deps.Audit == nil {
		s.log.ErrorContext(ctx, "no audit log configured; event not recorded", "action", action, "outcome", outcome)
		return
	}
	_, err := s.deps.Audit.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{
		Time: s.now().UTC(), Actor: actor, Action: action, Object: object, Outcome: outcome, Details: details,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "audit log write failed", "action", action, "outcome", outcome, "err", err)
	}
}

// maxAuditDetail bounds refusal text written to the audit log.
const maxAuditDetail = 512

func clipDetail(s string) string { return trunc.String(s, maxAuditDetail) }

// loggedActor names the authenticated operator in the request log.
func loggedActor(c echo.Context) []slog.Attr {
	if p, ok := c.Get(principalKey).(principal); ok {
		return []slog.Attr{slog.String("actor", p.Name)}
	}
	return nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// fromAnomaly maps an error of package anomaly (or of the store beneath it)
// to an *Error: ErrInvalid to 400, ErrForbidden to 403, ErrNotFound to 404,
// ErrConflict and ErrNotStricter to 409, anything else 500.
func fromAnomaly(err error, param string) *Error {
	detail := clipLong(err.Error())
	switch {
	case errors.Is(err, anomaly.ErrInvalid):
		return problem.Wrap(ErrBadRequest, err, param, "%s", detail)
	case errors.Is(err, anomaly.ErrForbidden):
		return problem.Wrap(ErrForbidden, err, "", "%s", detail)
	case errors.Is(err, anomaly.ErrNotFound):
		return problem.Wrap(ErrNotFound, err, param, "%s", detail)
	case errors.Is(err, anomaly.ErrConflict), errors.Is(err, anomaly.ErrNotStricter):
		return problem.Wrap(ErrConflict, err, param, "%s", detail)
	}
	return problem.Wrap(ErrInternal, err, "", "internal error")
}

// clipLong bounds an error text returned to the caller.
func clipLong(s string) string { return trunc.String(s, 1024) }
