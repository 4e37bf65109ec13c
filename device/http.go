package device

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
)

// DefaultMaxCommandBytes bounds a command body the HTTP endpoint reads when
// HTTPConfig.MaxCommandBytes is zero: far above any GBCS command a meter
// executes, far below anything that could exhaust memory.
const DefaultMaxCommandBytes = 64 << 10

// DefaultJournalLen is how many executions per meter the HTTP endpoint
// remembers when HTTPConfig.JournalLen is zero.
const DefaultJournalLen = 1024

// HTTPConfig configures an HTTPHandler. Its zero value is usable.
type HTTPConfig struct {
	// MaxCommandBytes bounds a command body; DefaultMaxCommandBytes when 0.
	MaxCommandBytes int64
	// JournalLen is how many executed commands per meter GET /v1/stats
	// lists (the oldest are forgotten first); DefaultJournalLen when 0,
	// none when negative.
	JournalLen int
	// Logger receives one record per request (apiserver.LogRequests), per
	// discard (at debug level) and per internal error; nothing is logged
	// when nil. No key material reaches it.
	Logger *slog.Logger
	// Metrics counts and times the requests (apiserver.HTTPMetrics); nil
	// records nothing.
	Metrics *apiserver.HTTPMetrics
	// Now stamps journal entries and times requests; time.Now when nil.
	Now func() time.Time
}

// Execution is one command a meter executed, as GET /v1/stats lists it.
type Execution struct {
	// Originator and Counter identify the command: a meter executes a
	// given (originator, counter) at most once.
	Originator smki.EUI `json:"originator"`
	Counter    uint64   `json:"counter"`
	// Code is the GBCS message code, such as "0x0020".
	Code string `json:"messageCode"`
	// At is when the meter executed it.
	At time.Time `json:"at"`
}

// MeterStats is one meter's line in GET /v1/stats.
type MeterStats struct {
	// Executed counts the commands the meter executed and answered.
	Executed uint64 `json:"executed"`
	// Discarded counts discarded messages by reason name ("replay",
	// "bad-mac", ...); reasons with no discard are left out.
	Discarded map[string]uint64 `json:"discarded"`
	// Executions are the most recent executions, oldest first (at most
	// HTTPConfig.JournalLen of them). GET /v1/stats lists them only when
	// asked with ?executions=true; GET /v1/devices/{EUI}/stats always does.
	Executions []Execution `json:"executions,omitempty"`
}

// FleetStats is the body of GET /v1/stats.
type FleetStats struct {
	// Meters is the number of meters in the fleet.
	Meters int `json:"meters"`
	// Executed and Discarded add up every meter's counts.
	Executed  uint64            `json:"executed"`
	Discarded map[string]uint64 `json:"discarded"`
	// Devices holds each meter's counts, by EUI (16 hex digits).
	Devices map[string]MeterStats `json:"devices"`
}

// Display is what a meter's display shows the consumer, as GET
// /v1/devices/{EUI}/display answers it: a reference meter's stand-in for
// the screen a consumer reads the customer identification number from.
type Display struct {
	// CIN is the customer identification number the meter displays (SR
	// 9.1, ECS50 or GCS36); empty when it has received none.
	CIN string `json:"cin,omitempty"`
}

// DefaultAlertLimit is how many alerts GET /v1/alerts lists when the
// request gives no limit, and the most it lists.
const DefaultAlertLimit = 1000

// AlertEntry is one alert in GET /v1/alerts.
type AlertEntry struct {
	// Index is the alert's place in the fleet's log (FleetAlert.Index).
	Index uint64 `json:"index"`
	// Device is the meter that raised it; Recipient the party it is for.
	Device    smki.EUI `json:"device"`
	Recipient smki.EUI `json:"recipient"`
	// Code is the alert's message code, such as "0x00CC".
	Code string `json:"messageCode"`
	// Counter is the meter's own counter the alert carries.
	Counter uint64 `json:"counter"`
	// At is when the meter raised it.
	At time.Time `json:"at"`
	// Message is the whole GBCS alert in lower-case hex.
	Message string `json:"message"`
}

// AlertList is the body of GET /v1/alerts.
type AlertList struct {
	Alerts []AlertEntry `json:"alerts"`
	// Log names the fleet's alert log (Fleet.AlertLog): indexes count from
	// 0 again in a new log.
	Log string `json:"log"`
	// Next is the since to ask with next time.
	Next uint64 `json:"next"`
}

// Problem is an RFC 9457 problem details body (package problem's, as every
// metertrust service answers): a type of the problem types every service
// shares (https://metertrust.org/problems/discarded, ...) and a stable
// error code as its "code" member; for a discard, the Reason's name.
type Problem = problem.Details

// The HTTP endpoint's kinds of error, each with the error code its problems
// carry. The first of each problem type is the one echo's own errors get (an
// unknown route is "not-found", not "no-meter").
var (
	errNotFound         = problem.NewCodedKind("device", "not-found", "no such route", problem.NotFound)
	errMethodNotAllowed = problem.NewCodedKind("device", "method-not-allowed", "method not allowed", problem.MethodNotAllowed)
	errBadQuery         = problem.NewCodedKind("device", "bad-query", "bad query parameter", problem.BadRequest)
	errBadEUI           = problem.NewCodedKind("device", "bad-eui", "bad device EUI", problem.BadRequest)
	errBadBody          = problem.NewCodedKind("device", "bad-body", "unreadable request body", problem.BadRequest)
	errEmptyBody        = problem.NewCodedKind("device", "empty-body", "no command", problem.BadRequest)
	errMediaType        = problem.NewCodedKind("device", "unsupported-media-type", "unsupported media type", problem.UnsupportedMediaType)
	errTooLarge         = problem.NewCodedKind("device", "too-large", "command too large", problem.TooLarge)
	errNoMeter          = problem.NewCodedKind("device", "no-meter", "no such meter", problem.NotFound)
	// errDiscarded is a meter's discard; each error's Code is the Reason.
	errDiscarded   = problem.NewKind("device", "command discarded", problem.Discarded)
	errInternal    = problem.NewCodedKind("device", "internal", "internal error", problem.Internal)
	errUnavailable = problem.NewCodedKind("device", "unavailable", "command not delivered", problem.Unavailable)
)

// httpKinds lists the endpoint's kinds for its error handler.
var httpKinds = []*problem.Kind{errNotFound, errMethodNotAllowed, errBadQuery, errBadEUI, errBadBody, errEmptyBody, errMediaType,
	errTooLarge, errNoMeter, errDiscarded, errInternal, errUnavailable}

// HTTPHandler serves a Fleet as a communications service provider's
// endpoint, the server side of the router's HTTP transport:
//
//	POST /v1/devices/{EUI}/commands   GBCS bytes (application/octet-stream) in;
//	                                  200 with the meter's response
//	                                  (application/octet-stream), or a problem
//	GET  /v1/stats[?executions=true]  FleetStats as JSON, with each
//	                                  meter's recent executions when asked
//	GET  /v1/devices/{EUI}/stats      one meter's MeterStats as JSON
//	GET  /v1/devices/{EUI}/display    Display as JSON: what the meter's
//	                                  display shows the consumer (the
//	                                  CIN of SR 9.1)
//	GET  /v1/alerts[?since=N&limit=M] AlertList as JSON: the alerts the
//	                                  fleet's meters raised from index N on
//	                                  (0 when absent), at most M (1000 when
//	                                  absent), for a router to collect
//
// A meter's discard, which a real meter signals by silence, is answered 422
// with the Reason as problem code, and an unknown meter 404: both are final
// refusals for the router, which does not retry them. A request the handler
// cannot hand to the meter because the caller went away is answered 503,
// which the router retries; the meter's counter check keeps a retried
// command from executing twice. Every refusal is problem+json (package
// problem), with an error code as its "code" member, and every request is
// logged, as in metertrust's other services (package apiserver); Serve
// serves it with their server set-up.
type HTTPHandler struct {
	fleet   *Fleet
	cfg     HTTPConfig
	log     *slog.Logger
	e       *echo.Echo
	mu      sync.Mutex
	journal map[smki.EUI][]Execution
}

// NewHTTPHandler returns the endpoint of fleet f.
func NewHTTPHandler(f *Fleet, cfg HTTPConfig) (*HTTPHandler, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: HTTP endpoint needs a fleet", ErrConfig)
	}
	if cfg.MaxCommandBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxCommandBytes %d", ErrConfig, cfg.MaxCommandBytes)
	}
	if cfg.MaxCommandBytes == 0 {
		cfg.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if cfg.JournalLen == 0 {
		cfg.JournalLen = DefaultJournalLen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &HTTPHandler{fleet: f, cfg: cfg, log: cfg.Logger, journal: make(map[smki.EUI][]Execution)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "device.http")
	errs := &problem.Handler{Kinds: httpKinds, Logger: h.log}
	e := apiserver.NewEcho(errs.Handle)
	e.Pre(apiserver.LogRequests(h.log, cfg.Now, nil))
	e.Use(cfg.Metrics.Middleware())
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.POST("/v1/devices/:eui/commands", h.postCommand)
	e.GET("/v1/devices/:eui/stats", h.getDeviceStats)
	e.GET("/v1/devices/:eui/display", h.getDisplay)
	e.GET("/v1/stats", h.getStats)
	e.GET("/v1/alerts", h.getAlerts)
	h.e = e
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.e.ServeHTTP(w, r) }

// Routes lists the endpoint's routes, for its documentation's tests.
func (h *HTTPHandler) Routes() []apiserver.Route { return apiserver.Routes(h.e) }

// Serve answers requests on ln until ctx is done, then shuts down
// gracefully, with the server set-up of every metertrust service
// (apiserver.Serve: its timeouts and header limit); with tlsConfig, over
// TLS (its certificates, and client certificates when its ClientAuth asks
// for them).
func (h *HTTPHandler) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	return apiserver.Serve(ctx, ln, h, apiserver.Options{Service: "device", Name: "fleet endpoint", Logger: h.log,
		ShutdownTimeout: 10 * time.Second, TLS: tlsConfig})
}

func (h *HTTPHandler) postCommand(c echo.Context) error {
	r := c.Request()
	eui, err := smki.ParseEUI(c.Param("eui"))
	if err != nil {
		return problem.New(errBadEUI, "eui", "device EUI in the path: %v", err)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/octet-stream" {
		return problem.New(errMediaType, "Content-Type", "Content-Type %q, want application/octet-stream", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, h.cfg.MaxCommandBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return problem.New(errTooLarge, "", "command over %d bytes", mbe.Limit)
	case err != nil:
		return problem.New(errBadBody, "", "reading command: %v", err)
	case len(body) == 0:
		return problem.New(errEmptyBody, "", "no command in the request body")
	}
	if err := r.Context().Err(); err != nil {
		// The caller gave up before the meter saw the command: retrying is
		// safe.
		return problem.Wrap(errUnavailable, err, "", "request cancelled before delivery")
	}
	resp, err := h.fleet.Deliver(r.Context(), eui, body)
	if err != nil {
		if errors.Is(err, ErrNoMeter) {
			return problem.Wrap(errNoMeter, err, "eui", "%v", err)
		}
		if reason, ok := ReasonOf(err); ok {
			h.log.DebugContext(r.Context(), "meter discarded command", "eui", eui.String(), "reason", reason.String())
			return &problem.Error{Kind: errDiscarded, Code: reason.String(), Detail: err.Error(), Err: err}
		}
		h.log.WarnContext(r.Context(), "delivering command", "eui", eui.String(), "err", err)
		return problem.Wrap(errUnavailable, err, "", "%v", err)
	}
	h.record(eui, body)
	if err := c.Blob(http.StatusOK, "application/octet-stream", resp); err != nil {
		h.log.DebugContext(r.Context(), "writing response", "eui", eui.String(), "err", err)
	}
	return nil
}

// record adds an executed command to its meter's journal.
func (h *HTTPHandler) record(eui smki.EUI, raw []byte) {
	if h.cfg.JournalLen < 0 {
		return
	}
	m, err := commands.Parse(raw)
	if err != nil {
		return // the meter executed it, so it parses; nothing to record otherwise
	}
	e := Execution{Originator: m.Originator, Counter: m.Counter, Code: m.Code.String(), At: h.cfg.Now().UTC()}
	if m.URP != nil {
		// An unknown remote party's command carries the ACB as originator;
		// the user's own counter is what identifies it to the user.
		e.Originator, e.Counter = m.URP.EUI, m.URP.Counter
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	j := append(h.journal[eui], e)
	if len(j) > h.cfg.JournalLen {
		j = append(j[:0:0], j[len(j)-h.cfg.JournalLen:]...)
	}
	h.journal[eui] = j
}

// meterStats returns m's line of the statistics.
func (h *HTTPHandler) meterStats(eui smki.EUI, m *Meter) MeterStats {
	s := m.Stats()
	ms := MeterStats{Executed: s.Accepted, Discarded: discardMap(s)}
	h.mu.Lock()
	ms.Executions = append([]Execution{}, h.journal[eui]...)
	h.mu.Unlock()
	return ms
}

func discardMap(s Stats) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range Reasons() {
		if n := s.DiscardedFor(r); n > 0 {
			out[r.String()] = n
		}
	}
	return out
}

// Stats returns the fleet's statistics as GET /v1/stats shows them.
func (h *HTTPHandler) Stats() FleetStats {
	out := FleetStats{Devices: map[string]MeterStats{}}
	var total Stats
	for _, eui := range h.fleet.EUIs() {
		m, ok := h.fleet.Meter(eui)
		if !ok {
			continue
		}
		ms := h.meterStats(eui, m)
		out.Devices[eui.String()] = ms
		out.Meters++
		total.Add(m.Stats())
	}
	out.Executed, out.Discarded = total.Accepted, discardMap(total)
	return out
}

func (h *HTTPHandler) getStats(c echo.Context) error {
	withJournal := false
	if v := c.QueryParam("executions"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return problem.New(errBadQuery, "executions", "executions=%q: want true or false", v)
		}
		withJournal = b
	}
	fs := h.Stats()
	if !withJournal {
		for eui, ms := range fs.Devices {
			ms.Executions = nil
			fs.Devices[eui] = ms
		}
	}
	return h.json(c, fs)
}

func (h *HTTPHandler) getDeviceStats(c echo.Context) error {
	eui, err := smki.ParseEUI(c.Param("eui"))
	if err != nil {
		return problem.New(errBadEUI, "eui", "device EUI in the path: %v", err)
	}
	m, ok := h.fleet.Meter(eui)
	if !ok {
		return problem.New(errNoMeter, "eui", "%v: %s", ErrNoMeter, eui)
	}
	return h.json(c, h.meterStats(eui, m))
}

func (h *HTTPHandler) getDisplay(c echo.Context) error {
	eui, err := smki.ParseEUI(c.Param("eui"))
	if err != nil {
		return problem.New(errBadEUI, "eui", "device EUI in the path: %v", err)
	}
	m, ok := h.fleet.Meter(eui)
	if !ok {
		return problem.New(errNoMeter, "eui", "%v: %s", ErrNoMeter, eui)
	}
	cin, _ := m.CIN()
	return h.json(c, Display{CIN: cin})
}

func (h *HTTPHandler) getAlerts(c echo.Context) error {
	var since uint64
	if v := c.QueryParam("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return problem.New(errBadQuery, "since", "since=%q: want an alert index", v)
		}
		since = n
	}
	limit := DefaultAlertLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > DefaultAlertLimit {
			return problem.New(errBadQuery, "limit", "limit=%q: want 1 to %d", v, DefaultAlertLimit)
		}
		limit = n
	}
	alerts, next := h.fleet.Alerts(since, limit)
	out := AlertList{Alerts: make([]AlertEntry, len(alerts)), Log: h.fleet.AlertLog(), Next: next}
	for i, a := range alerts {
		out.Alerts[i] = AlertEntry{Index: a.Index, Device: a.Device, Recipient: a.Recipient, Code: commands.MessageCode(a.Code).String(),
			Counter: a.Counter, At: a.At.UTC(), Message: hex.EncodeToString(a.Message)}
	}
	return h.json(c, out)
}

// json answers v as JSON, not to be cached.
func (h *HTTPHandler) json(c echo.Context, v any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if err := c.JSON(http.StatusOK, v); err != nil {
		if c.Response().Committed {
			return nil
		}
		return problem.Wrap(errInternal, err, "", "encoding statistics")
	}
	return nil
}
