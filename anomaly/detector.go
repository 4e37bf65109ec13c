package anomaly

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Request is what the router tells the detector about a command that passed
// every earlier check (authentication, eligibility, ownership, certificate
// path, signature, counter).
type Request struct {
	// ID is the router's ID of the command.
	ID string
	// User is the DCC user sending it, and UserRole the role it acts in.
	User     smki.EUI
	UserRole smki.UserRole
	// ServiceRef is the DUIS service reference variant ("7.2").
	ServiceRef string
	// Target is the device the command is for.
	Target smki.EUI
	// Attributes are values inside the command that attribute limits
	// check, by name ("price", "debt"). May be nil.
	Attributes map[string]int64
	// Command is the command as submitted, kept if it is quarantined.
	Command []byte
	// At is when the router received the command; zero for the
	// detector's clock.
	At time.Time
}

// MaxCommand bounds the size of a command the detector keeps.
const MaxCommand = 1 << 20

func (r Request) validate() error {
	switch {
	case r.ID == "" || len(r.ID) > 128:
		return fmt.Errorf("%w: request ID must be 1-128 bytes", ErrInvalid)
	case r.User.IsZero():
		return fmt.Errorf("%w: request %s has no user", ErrInvalid, r.ID)
	case !ValidServiceRef(r.ServiceRef):
		return fmt.Errorf("%w: request %s: service reference %q is not like \"7.2\"", ErrInvalid, r.ID, r.ServiceRef)
	case r.Target.IsZero():
		return fmt.Errorf("%w: request %s has no target device", ErrInvalid, r.ID)
	case len(r.Command) == 0:
		return fmt.Errorf("%w: request %s carries no command bytes", ErrInvalid, r.ID)
	case len(r.Command) > MaxCommand:
		return fmt.Errorf("%w: request %s: command of %d bytes exceeds %d", ErrInvalid, r.ID, len(r.Command), MaxCommand)
	}
	return nil
}

// Decision is the detector's verdict on a request: pass, or quarantined.
type Decision struct {
	// Quarantined is true when a threshold was breached: the command is
	// held and must be neither MAC'd nor forwarded.
	Quarantined bool
	// Ref is the quarantine event reference.
	Ref string
	// Kind is the kind of breach.
	Kind Kind
	// Threshold is the threshold breached.
	Threshold Threshold
	// Count is the number of commands already counted in the window (for
	// attribute limits, the offending value), and Limit the threshold's
	// limit (for attribute limits, 0).
	Count, Limit int64
	// Detail describes the breach for people.
	Detail string
}

// Pass reports whether the request passed (and was counted).
func (d Decision) Pass() bool { return !d.Quarantined }

// Config configures a Detector.
type Config struct {
	// Store persists counts, thresholds and quarantine records. Required.
	Store Store
	// Notifier, optional, carries alerts to the Detectors of other
	// processes sharing Store.
	Notifier Notifier
	// Broker receives alerts for in-process subscribers; nil for a new one.
	Broker *Broker
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Rand is the source of quarantine references, threshold IDs and the
	// instance ID; nil for crypto/rand.
	Rand io.Reader
	// Logger is the logger; nil for slog.Default().
	Logger *slog.Logger
	// Refresh is how often Run reloads thresholds, so that changes made
	// through another process take effect; 0 for one second.
	Refresh time.Duration
	// PruneEvery is how often Run prunes old events; 0 for one minute.
	PruneEvery time.Duration
	// Retention is how long events are kept; 0 for the longest window in
	// use plus one hour. Events older than every window are never needed.
	Retention time.Duration
}

// Detector decides on commands, counts them, and manages quarantine and
// thresholds. It is safe for concurrent use; any number of Detectors, in any
// number of processes, may share one Store.
type Detector struct {
	store      Store
	notifier   Notifier
	broker     *Broker
	now        func() time.Time
	rand       io.Reader
	randMu     sync.Mutex
	log        *slog.Logger
	refresh    time.Duration
	pruneEvery time.Duration
	retention  time.Duration
	instance   string
	set        atomic.Pointer[thresholdSet]
}

// New returns a Detector with the thresholds in cfg.Store loaded.
func New(ctx context.Context, cfg Config) (*Detector, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: config has no store", ErrInvalid)
	}
	d := &Detector{
		store: cfg.Store, notifier: cfg.Notifier, broker: cfg.Broker, now: cfg.Now, rand: cfg.Rand,
		log: cfg.Logger, refresh: cfg.Refresh, pruneEvery: cfg.PruneEvery, retention: cfg.Retention,
	}
	if d.broker == nil {
		d.broker = NewBroker(0)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.log = d.log.With("component", "anomaly")
	if d.refresh <= 0 {
		d.refresh = time.Second
	}
	if d.pruneEvery <= 0 {
		d.pruneEvery = time.Minute
	}
	id, err := d.randomID(8)
	if err != nil {
		return nil, err
	}
	d.instance = id
	if err := d.Reload(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Broker returns the Detector's alert broker.
func (d *Detector) Broker() *Broker { return d.broker }

// Reload reloads the thresholds from the store. Run calls it every Refresh;
// the Detector calls it after its own threshold changes.
func (d *Detector) Reload(ctx context.Context) error {
	ts, err := d.store.Thresholds(ctx)
	if err != nil {
		return fmt.Errorf("anomaly: loading thresholds: %w", err)
	}
	d.set.Store(newThresholdSet(ts))
	return nil
}

// crockford is Crockford's base32 alphabet: no I, L, O or U to misread.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// randomID returns chars random characters of Crockford base32 (5 bits
// each, at most 12 characters) read from the Detector's randomness.
func (d *Detector) randomID(chars int) (string, error) {
	var b [8]byte
	d.randMu.Lock()
	_, err := io.ReadFull(d.rand, b[:])
	d.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("anomaly: reading randomness: %w", err)
	}
	v := binary.BigEndian.Uint64(b[:])
	out := make([]byte, chars)
	for i := range out {
		out[i] = crockford[v&31]
		v >>= 5
	}
	return string(out), nil
}

// newRef returns a quarantine event reference for a breach at at:
// "Q-YYYYMMDD-" and ten random base32 characters (50 bits).
func (d *Detector) newRef(at time.Time) (string, error) {
	r, err := d.randomID(10)
	if err != nil {
		return "", err
	}
	return "Q-" + at.UTC().Format("20060102") + "-" + r, nil
}

// Counter keys: one per scope, so that every threshold of a scope shares
// the events of its key.
func keyUserService(u smki.EUI, srv string) string { return "us/" + u.String() + "/" + srv }
func keyUserTotal(u smki.EUI) string               { return "ut/" + u.String() }
func keyDCCService(srv string) string              { return "ds/" + srv }

// eventKeys are the keys every request is recorded under, whether or not a
// threshold counts them yet, so a new threshold sees the recent past.
func eventKeys(u smki.EUI, srv string) []string {
	return []string{keyUserService(u, srv), keyUserTotal(u), keyDCCService(srv)}
}

func (t Threshold) counterKey(u smki.EUI, srv string) string {
	switch t.Scope {
	case ScopeUserService:
		return keyUserService(u, srv)
	case ScopeUserTotal:
		return keyUserTotal(u)
	default:
		return keyDCCService(srv)
	}
}

// thresholdSet is the loaded thresholds, in the order a breach is looked
// for: DCC thresholds first (a DCC breach is reported even when the user's
// own threshold is breached too), then the user's.
type thresholdSet struct {
	all       []Threshold
	dcc       []Threshold              // DCC thresholds, in order
	byUser    map[smki.EUI][]Threshold // each user's own, in order
	maxWindow time.Duration
}

// forUser returns the thresholds that may apply to a request of user u, in
// the order a breach is looked for.
func (s *thresholdSet) forUser(u smki.EUI) []Threshold {
	own := s.byUser[u]
	if len(own) == 0 {
		return s.dcc
	}
	return append(slices.Clip(s.dcc), own...)
}

func scopeRank(s Scope) int {
	return map[Scope]int{ScopeAttribute: 0, ScopeDCCService: 1, ScopeUserService: 2, ScopeUserTotal: 3}[s]
}

func newThresholdSet(ts []Threshold) *thresholdSet {
	all := slices.Clone(ts)
	slices.SortStableFunc(all, func(a, b Threshold) int {
		if a.IsDCC() != b.IsDCC() {
			if a.IsDCC() {
				return -1
			}
			return 1
		}
		if c := scopeRank(a.Scope) - scopeRank(b.Scope); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Window, b.Window); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	s := &thresholdSet{all: all, byUser: map[smki.EUI][]Threshold{}}
	for _, t := range all {
		s.maxWindow = max(s.maxWindow, t.Window)
		if t.IsDCC() {
			s.dcc = append(s.dcc, t)
		} else {
			s.byUser[t.User] = append(s.byUser[t.User], t)
		}
	}
	return s
}

// applies reports whether t governs a request of user u for service srv.
func (t Threshold) applies(u smki.EUI, srv string) bool {
	if !t.IsDCC() && t.User != u {
		return false
	}
	switch t.Scope {
	case ScopeUserTotal:
		return true
	case ScopeAttribute:
		return t.ServiceRef == "" || t.ServiceRef == srv
	default:
		return t.ServiceRef == srv
	}
}

// Check decides on req. If req breaches no threshold it is counted, in the
// same atomic step as the decision, and Check returns a passing Decision;
// the router then goes on to the MAC. Otherwise the command is stored in
// quarantine (not counted), the user and operators are alerted, and Check
// returns the quarantine Decision. On error (an invalid request, a store
// failure) nothing is counted and the command must not be forwarded.
//
// A caller that decides many requests in a transaction of its own (the
// router's group commit) uses Prepare, Breach and Announce instead.
func (d *Detector) Check(ctx context.Context, req Request) (Decision, error) {
	p, err := d.Prepare(req)
	if err != nil {
		return Decision{}, err
	}
	out := Outcome{Breached: -1}
	if !p.AttributeBreach() {
		if out, err = d.store.CheckAndRecord(ctx, p.Event, p.Counters); err != nil {
			return Decision{}, fmt.Errorf("anomaly: checking request %s: %w", req.ID, err)
		}
		if out.Passed() {
			return Decision{}, nil
		}
	}
	q, entry, dec, err := d.Breach(p, out)
	if err != nil {
		return Decision{}, err
	}
	if err := d.store.AddQuarantine(ctx, q, entry); err != nil {
		return Decision{}, fmt.Errorf("anomaly: quarantining request %s: %w", req.ID, err)
	}
	d.Announce(ctx, q, dec)
	return dec, nil
}

// Prepared is a request ready to be decided: the event that records it and
// the window counts it must stay under, from the thresholds in force, or an
// attribute limit it already breaches (decided without counting).
type Prepared struct {
	Request Request
	// At is the request's time as recorded.
	At time.Time
	// Event records the request if it passes; Counters are the counts it
	// must stay under, in the order a breach is looked for.
	Event    Event
	Counters []Counter
	counted  []Threshold
	attr     *Threshold // an attribute limit breached
	attrVal  int64
}

// AttributeBreach reports whether the request breaches an attribute limit:
// it is then quarantined without being counted.
func (p Prepared) AttributeBreach() bool { return p.attr != nil }

// Prepare checks req and works out, from the thresholds in force, what
// deciding it takes: the counts to compare (Counters) and the event to
// record if every count is under its limit (Event), or an attribute
// breach. The caller counts and records atomically (Store.CheckAndRecord
// does), then calls Breach for a request that breached.
func (d *Detector) Prepare(req Request) (Prepared, error) {
	if err := req.validate(); err != nil {
		return Prepared{}, err
	}
	at := req.At
	if at.IsZero() {
		at = d.now()
	}
	at = at.UTC().Truncate(time.Microsecond)
	p := Prepared{Request: req, At: at}
	for _, t := range d.set.Load().forUser(req.User) {
		if !t.applies(req.User, req.ServiceRef) {
			continue
		}
		if t.Scope == ScopeAttribute {
			if v, ok := req.Attributes[t.Attribute]; ok && (v < t.Min || v > t.Max) {
				p.attr, p.attrVal = &t, v
				return p, nil
			}
			continue
		}
		p.counted = append(p.counted, t)
		p.Counters = append(p.Counters, Counter{Key: t.counterKey(req.User, req.ServiceRef), Since: t.Since(at), Limit: t.Limit})
	}
	p.Event = Event{RequestID: req.ID, Keys: eventKeys(req.User, req.ServiceRef), At: at}
	return p, nil
}

// Breach returns the quarantine record of a prepared request that breached
// a threshold (out from counting p.Counters; ignored for an attribute
// breach), the audit entry to append with it, and the Decision to give.
// Store them together, then call Announce.
func (d *Detector) Breach(p Prepared, out Outcome) (Quarantine, AuditEntry, Decision, error) {
	req := p.Request
	var t Threshold
	var count, limit int64
	var detail string
	switch {
	case p.attr != nil:
		t, count = *p.attr, p.attrVal
		detail = fmt.Sprintf("attribute %s = %d outside [%d, %d] (%s)", t.Attribute, count, t.Min, t.Max, t)
	case out.Passed() || out.Breached >= len(p.counted):
		return Quarantine{}, AuditEntry{}, Decision{}, fmt.Errorf("anomaly: request %s: store reported counter %d of %d", req.ID, out.Breached, len(p.counted))
	default:
		t, count, limit = p.counted[out.Breached], out.Count, p.counted[out.Breached].Limit
		detail = fmt.Sprintf("%d commands since %s reached the limit of %d (%s)",
			count, t.Since(p.At).Add(time.Microsecond).Format(time.RFC3339), limit, t)
	}
	ref, err := d.newRef(p.At)
	if err != nil {
		return Quarantine{}, AuditEntry{}, Decision{}, err
	}
	q := Quarantine{
		Ref: ref, CommandID: req.ID, User: req.User, UserRole: req.UserRole, ServiceRef: req.ServiceRef,
		Target: req.Target, Kind: t.Kind(), ThresholdID: t.ID, Detail: detail,
		Command: slices.Clone(req.Command), Attributes: maps.Clone(req.Attributes), At: p.At,
		State: StateQuarantined, CreatedAt: d.now().UTC().Truncate(time.Microsecond),
	}
	entry := AuditEntry{
		Time: q.CreatedAt, Actor: "anomaly-detector", Action: "anomaly.quarantine", Object: ref, Outcome: OutcomeSuccess,
		Details: map[string]string{
			"command": req.ID, "user": req.User.String(), "serviceRef": req.ServiceRef,
			"target": req.Target.String(), "kind": string(q.Kind), "threshold": t.ID,
			"count": strconv.FormatInt(count, 10), "limit": strconv.FormatInt(limit, 10), "detail": detail,
		},
	}
	return q, entry, Decision{Quarantined: true, Ref: ref, Kind: q.Kind, Threshold: t, Count: count, Limit: limit, Detail: detail}, nil
}

// Announce logs a quarantine that is now durable and alerts the user's and
// the operators' subscribers, here and in other processes.
func (d *Detector) Announce(ctx context.Context, q Quarantine, dec Decision) {
	d.log.WarnContext(ctx, "command quarantined", "ref", q.Ref, "command", q.CommandID, "user", q.User.String(),
		"serviceRef", q.ServiceRef, "target", q.Target.String(), "kind", q.Kind, "threshold", q.ThresholdID,
		"count", dec.Count, "limit", dec.Limit)
	d.alert(ctx, Alert{State: StateQuarantined, Ref: q.Ref, User: q.User, ServiceRef: q.ServiceRef, Target: q.Target,
		Kind: q.Kind, ThresholdID: q.ThresholdID, Detail: q.Detail, At: q.CreatedAt})
}

// alert publishes a to local subscribers at once, then to other processes.
// A failure to notify is logged, not returned: the record is already
// durable and the other processes' subscribers can re-read it.
func (d *Detector) alert(ctx context.Context, a Alert) {
	a.Origin = d.instance
	d.broker.Publish(a)
	if d.notifier == nil {
		return
	}
	p, err := json.Marshal(a)
	if err == nil && len(p) > MaxNotifyPayload {
		a.Detail, a.Reason = truncate(a.Detail, 200), truncate(a.Reason, 200)
		p, err = json.Marshal(a)
	}
	if err == nil {
		// The record is committed: notify even if the caller has gone, but
		// never hold the pipeline up for long.
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
		err = d.notifier.Notify(nctx, p)
		cancel()
	}
	if err != nil {
		d.log.ErrorContext(ctx, "notifying other instances of an alert", "ref", a.Ref, "state", a.State, "err", err)
	}
}

// notifyTimeout bounds how long raising an alert to other instances may
// delay the caller.
const notifyTimeout = 2 * time.Second

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// receive handles a payload from the Notifier.
func (d *Detector) receive(p []byte) {
	a, err := ParseAlert(p)
	if err != nil {
		d.log.Error("ignoring a malformed alert notification", "err", err)
		return
	}
	if a.Origin == d.instance {
		return
	}
	d.broker.Publish(a)
}

// Run does the Detector's background work until ctx is done: it reloads
// thresholds every Refresh, prunes events older than the retention every
// PruneEvery, and, with a Notifier, listens for other processes' alerts
// (reconnecting after a failure). It returns nil when ctx is done.
func (d *Detector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if d.notifier != nil {
		wg.Go(func() {
			backoff := 100 * time.Millisecond
			for ctx.Err() == nil {
				err := d.notifier.Listen(ctx, d.receive)
				if ctx.Err() != nil {
					return
				}
				d.log.ErrorContext(ctx, "alert listener failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 10*time.Second)
			}
		})
	}
	refresh := time.NewTicker(d.refresh)
	defer refresh.Stop()
	prune := time.NewTicker(d.pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-refresh.C:
			if err := d.Reload(ctx); err != nil && ctx.Err() == nil {
				d.log.ErrorContext(ctx, "reloading thresholds", "err", err)
			}
		case <-prune.C:
			if _, err := d.Prune(ctx); err != nil && ctx.Err() == nil {
				d.log.ErrorContext(ctx, "pruning events", "err", err)
			}
		}
	}
}

// Prune deletes the events older than the retention (Config.Retention, or
// the longest window in use plus one hour) and returns how many it deleted.
func (d *Detector) Prune(ctx context.Context) (int64, error) {
	keep := d.retention
	if keep <= 0 {
		keep = d.set.Load().maxWindow + time.Hour
	}
	n, err := d.store.PruneEvents(ctx, d.now().Add(-keep))
	if err != nil {
		return 0, fmt.Errorf("anomaly: pruning events: %w", err)
	}
	return n, nil
}

// refuse appends an audit entry for a refused action and returns err.
func (d *Detector) refuse(ctx context.Context, e AuditEntry, err error) error {
	e.Time = d.now().UTC()
	e.Outcome = OutcomeRefused
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Details["error"] = err.Error()
	if aerr := d.store.AppendAudit(ctx, e); aerr != nil {
		d.log.ErrorContext(ctx, "auditing a refused action", "action", e.Action, "object", e.Object, "err", aerr)
		return errors.Join(err, fmt.Errorf("anomaly: auditing refusal: %w", aerr))
	}
	return err
}
