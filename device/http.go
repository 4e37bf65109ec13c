package device

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// DefaultMaxCommandBytes bounds a command body the HTTP endpoint reads when
// HTTPConfig.MaxCommandBytes is zero: far above any GBCS command a meter
// executes, far below anything that could exhaust memory.
const DefaultMaxCommandBytes = 64 << 10

// DefaultJournalLen is how many executions per meter the HTTP endpoint
// remembers when HTTPConfig.JournalLen is zero.
const DefaultJournalLen = 1024

// ProblemTypeBase prefixes the type URI of every problem the HTTP endpoint
// answers with.
const ProblemTypeBase = "urn:metertrust:device:error:"

// HTTPConfig configures an HTTPHandler. Its zero value is usable.
type HTTPConfig struct {
	// MaxCommandBytes bounds a command body; DefaultMaxCommandBytes when 0.
	MaxCommandBytes int64
	// JournalLen is how many executed commands per meter GET /v1/stats
	// lists (the oldest are forgotten first); DefaultJournalLen when 0,
	// none when negative.
	JournalLen int
	// Logger receives one record per request refused before the meter saw
	// it and per discard; nothing is logged when nil. No key material
	// reaches it.
	Logger *slog.Logger
	// Now stamps journal entries; time.Now when nil.
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
	// Next is the since to ask with next time.
	Next uint64 `json:"next"`
}

// Problem is an RFC 9457 problem details body with a stable error code:
// for a discard, the Reason's name.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// HTTPHandler serves a Fleet as a communications service provider's
// endpoint, the server side of the router's HTTP transport:
//
//	POST /v1/devices/{EUI}/commands   GBCS bytes (application/octet-stream) in;
//	                                  200 with the meter's response
//	                                  (application/octet-stream), or a problem
//	GET  /v1/stats[?executions=true]  FleetStats as JSON, with each
//	                                  meter's recent executions when asked
//	GET  /v1/devices/{EUI}/stats      one meter's MeterStats as JSON
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
// command from executing twice.
type HTTPHandler struct {
	fleet   *Fleet
	cfg     HTTPConfig
	log     *slog.Logger
	mux     *http.ServeMux
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
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/devices/{eui}/commands", h.postCommand)
	mux.HandleFunc("GET /v1/devices/{eui}/stats", h.getDeviceStats)
	mux.HandleFunc("GET /v1/stats", h.getStats)
	mux.HandleFunc("GET /v1/alerts", h.getAlerts)
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The mux's own 404 and 405 answers are plain text; answer problems
	// instead, so every refusal has the same shape.
	if _, pattern := h.mux.Handler(r); pattern == "" {
		status, code := http.StatusNotFound, "not-found"
		if h.pathKnown(r) {
			status, code = http.StatusMethodNotAllowed, "method-not-allowed"
		}
		h.problem(w, r, status, code, fmt.Sprintf("%s %s", r.Method, r.URL.Path))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// pathKnown reports whether some method is served at r's path.
func (h *HTTPHandler) pathKnown(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := h.mux.Handler(probe); p != "" {
			return true
		}
	}
	return false
}

func (h *HTTPHandler) postCommand(w http.ResponseWriter, r *http.Request) {
	eui, err := smki.ParseEUI(r.PathValue("eui"))
	if err != nil {
		h.problem(w, r, http.StatusBadRequest, "bad-eui", fmt.Sprintf("device EUI in the path: %v", err))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/octet-stream" {
		h.problem(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("Content-Type %q, want application/octet-stream", r.Header.Get("Content-Type")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxCommandBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		h.problem(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("command over %d bytes", mbe.Limit))
		return
	case err != nil:
		h.problem(w, r, http.StatusBadRequest, "bad-body", fmt.Sprintf("reading command: %v", err))
		return
	case len(body) == 0:
		h.problem(w, r, http.StatusBadRequest, "empty-body", "no command in the request body")
		return
	}
	if err := r.Context().Err(); err != nil {
		// The caller gave up before the meter saw the command: retrying is
		// safe.
		h.problem(w, r, http.StatusServiceUnavailable, "unavailable", "request cancelled before delivery")
		return
	}
	resp, err := h.fleet.Deliver(r.Context(), eui, body)
	if err != nil {
		if errors.Is(err, ErrNoMeter) {
			h.problem(w, r, http.StatusNotFound, "no-meter", err.Error())
			return
		}
		if reason, ok := ReasonOf(err); ok {
			h.log.DebugContext(r.Context(), "meter discarded command", "eui", eui.String(), "reason", reason.String())
			h.problem(w, r, http.StatusUnprocessableEntity, reason.String(), err.Error())
			return
		}
		h.problem(w, r, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	h.record(eui, body)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(resp); err != nil {
		h.log.DebugContext(r.Context(), "writing response", "eui", eui.String(), "err", err)
	}
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

func (h *HTTPHandler) getStats(w http.ResponseWriter, r *http.Request) {
	withJournal := false
	if v := r.URL.Query().Get("executions"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			h.problem(w, r, http.StatusBadRequest, "bad-query", fmt.Sprintf("executions=%q: want true or false", v))
			return
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
	h.json(w, r, fs)
}

func (h *HTTPHandler) getDeviceStats(w http.ResponseWriter, r *http.Request) {
	eui, err := smki.ParseEUI(r.PathValue("eui"))
	if err != nil {
		h.problem(w, r, http.StatusBadRequest, "bad-eui", fmt.Sprintf("device EUI in the path: %v", err))
		return
	}
	m, ok := h.fleet.Meter(eui)
	if !ok {
		h.problem(w, r, http.StatusNotFound, "no-meter", fmt.Sprintf("%v: %s", ErrNoMeter, eui))
		return
	}
	h.json(w, r, h.meterStats(eui, m))
}

func (h *HTTPHandler) getAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			h.problem(w, r, http.StatusBadRequest, "bad-query", fmt.Sprintf("since=%q: want an alert index", v))
			return
		}
		since = n
	}
	limit := DefaultAlertLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > DefaultAlertLimit {
			h.problem(w, r, http.StatusBadRequest, "bad-query", fmt.Sprintf("limit=%q: want 1 to %d", v, DefaultAlertLimit))
			return
		}
		limit = n
	}
	alerts, next := h.fleet.Alerts(since, limit)
	out := AlertList{Alerts: make([]AlertEntry, len(alerts)), Next: next}
	for i, a := range alerts {
		out.Alerts[i] = AlertEntry{Index: a.Index, Device: a.Device, Recipient: a.Recipient, Code: commands.MessageCode(a.Code).String(),
			Counter: a.Counter, At: a.At.UTC(), Message: hex.EncodeToString(a.Message)}
	}
	h.json(w, r, out)
}

func (h *HTTPHandler) json(w http.ResponseWriter, r *http.Request, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		h.problem(w, r, http.StatusInternalServerError, "internal", "encoding statistics")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// problem answers an RFC 9457 problem.
func (h *HTTPHandler) problem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	if status >= 500 {
		h.log.WarnContext(r.Context(), "request failed", "path", r.URL.Path, "status", status, "detail", detail)
	}
	b, err := json.Marshal(Problem{Type: ProblemTypeBase + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
	if err != nil {
		b = []byte(`{"type":"` + ProblemTypeBase + `internal","title":"Internal Server Error","status":500,"code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	w.Write(b)
}
