package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// RawAlert is one alert as a device transport hands it over: the GBCS
// message (CRA flag 3), with the source's own facts about it, which the
// intake checks against the message and does not trust otherwise.
type RawAlert struct {
	// Index is the alert's place in the source's log.
	Index uint64
	// Device is the device the source says raised it.
	Device smki.EUI
	// At is when the source says the device raised it.
	At time.Time
	// Message is the whole GBCS alert.
	Message []byte
}

// AlertPage is one read of an alert source.
type AlertPage struct {
	// Log names the source's log; its indexes count from 0 again when the
	// name changes (a restarted fleet), and the intake keeps one cursor per
	// (source, log).
	Log string
	// Alerts are the alerts from the index asked for on, oldest first.
	Alerts []RawAlert
	// Next is the index to ask from next time.
	Next uint64
}

// AlertSource is a device transport's feed of the alerts devices raised,
// read from a cursor (decision 018: the router pulls). HTTPTransport reads
// GET /v1/alerts of the communications service provider's endpoint; the
// in-process fleet transport reads the fleet.
type AlertSource interface {
	Alerts(ctx context.Context, since uint64, limit int) (AlertPage, error)
}

// AlertObserver is told about the verified alerts addressed to the DCC's
// own parties that concern a change of credentials: the CS02b future-dated
// outcome (0x00CB). ChangeDesk settles future-dated changes of supplier
// with it.
type AlertObserver interface {
	CredentialsAlerted(ctx context.Context, device smki.EUI, m *commands.Message)
}

// CodeCS02bAlert is the message code of the CS02b future-dated outcome
// alert (gbcs-payloads.md 3.3).
const CodeCS02bAlert commands.MessageCode = 0x00CB

// alertStore is what the intake needs of *store.RouterStore.
type alertStore interface {
	AlertCursor(ctx context.Context, source string) (uint64, error)
	RecordAlertIntake(ctx context.Context, in *store.AlertIntake) error
}

// IntakeConfig configures an AlertIntake.
type IntakeConfig struct {
	// Sources are the alert sources by name (the name keys the cursor).
	Sources map[string]AlertSource
	// Store keeps the cursors, the alerts, their deliveries and audit
	// entries (*store.RouterStore).
	Store alertStore
	// Registry gives the devices' keys and owners.
	Registry Registry
	// ACB and ACBKey are the access control broker's EUI and key-agreement
	// key: alerts to the ACB are consumed, and a MAC'd one is checked with
	// the key. TCoS is the transitional change-of-supplier party's EUI
	// (optional), whose alerts are consumed too.
	ACB    smki.EUI
	ACBKey KeyAgreement
	TCoS   smki.EUI
	// Observer, when set, is told about verified CS02b outcome alerts
	// (0x00CB) to the ACB or the TCoS party.
	Observer AlertObserver
	// Publisher, when set, wakes the event streams of the user an alert is
	// delivered to.
	Publisher Publisher
	Metrics   *Metrics
	Logger    *slog.Logger
	Clock     func() time.Time
	// Poll is how often the sources are read when the last read found
	// nothing (default 1s); Batch how many alerts one read asks for
	// (default 100).
	Poll  time.Duration
	Batch int
}

// AlertIntake collects the alerts devices raise from the router's device
// transports, verifies each as GBCS demands (the device's signature, or
// the MAC for one to the ACB; a counter above the last from the device),
// and delivers it to the user it concerns, recording it, its delivery, its
// audit entry and the source's cursor in one transaction: at least once,
// duplicates dropped by (device, counter). Decision 018.
type AlertIntake struct {
	cfg IntakeConfig
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	cursors map[string]cursor // by source name, once read
}

// NewAlertIntake returns an intake over cfg.
func NewAlertIntake(cfg IntakeConfig) (*AlertIntake, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.ACB.IsZero() {
		return nil, fmt.Errorf("%w: alert intake needs Store, Registry and ACB", ErrConfig)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	return &AlertIntake{cfg: cfg, log: cfg.Logger.With("component", "router.alerts"), now: cfg.Clock, cursors: map[string]cursor{}}, nil
}

// Run reads the sources until ctx ends.
func (in *AlertIntake) Run(ctx context.Context) error {
	t := time.NewTicker(in.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := in.Poll(ctx); err != nil && ctx.Err() == nil {
			in.log.WarnContext(ctx, "reading alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll reads every source until it has nothing more, handling each alert,
// and returns how many alerts it read. A source that cannot be read is
// skipped until the next poll.
func (in *AlertIntake) Poll(ctx context.Context) (int, error) {
	var errs []error
	n := 0
	for name, src := range in.cfg.Sources {
		k, err := in.drain(ctx, name, src)
		n += k
		if err != nil {
			errs = append(errs, fmt.Errorf("alert source %s: %w", name, err))
		}
	}
	return n, errors.Join(errs...)
}

func (in *AlertIntake) drain(ctx context.Context, name string, src AlertSource) (int, error) {
	n := 0
	in.mu.Lock()
	c, ok := in.cursors[name]
	in.mu.Unlock()
	if !ok {
		// The first read names the log, and so the stored cursor.
		page, err := src.Alerts(ctx, 0, 1)
		if err != nil {
			return 0, err
		}
		if c, err = in.load(ctx, name, page.Log); err != nil {
			return 0, err
		}
	}
	defer func() {
		in.mu.Lock()
		in.cursors[name] = c
		in.mu.Unlock()
	}()
	for ctx.Err() == nil {
		page, err := src.Alerts(ctx, c.next, in.cfg.Batch)
		if err != nil {
			return n, err
		}
		if page.Log != c.log {
			// A new log (a restarted source): its own cursor.
			if c, err = in.load(ctx, name, page.Log); err != nil {
				return n, err
			}
			continue
		}
		for _, a := range page.Alerts {
			if a.Index < c.next {
				continue
			}
			if err := in.handle(ctx, cursorKey(name, c.log), a); err != nil {
				return n, err
			}
			n++
			c.next = a.Index + 1
		}
		if len(page.Alerts) < in.cfg.Batch {
			return n, nil
		}
	}
	return n, ctx.Err()
}

// cursor is where the intake reads a source: its log and the next index.
type cursor struct {
	log  string
	next uint64
}

// load reads the stored cursor of (name, log).
func (in *AlertIntake) load(ctx context.Context, name, log string) (cursor, error) {
	next, err := in.cfg.Store.AlertCursor(ctx, cursorKey(name, log))
	return cursor{log: log, next: next}, err
}

func cursorKey(name, log string) string {
	if log == "" {
		return name
	}
	return name + "#" + log
}

// handle verifies and routes one alert read from the source keyed source,
// recording the outcome with the cursor moved past it. It returns an error
// only when nothing could be recorded (the registry or the store failed):
// the alert is then read again.
func (in *AlertIntake) handle(ctx context.Context, source string, a RawAlert) error {
	at := in.now()
	step := &store.AlertIntake{Source: source, Next: a.Index + 1, At: at}
	m, dev, err := in.verify(ctx, a)
	var r route
	if err == nil {
		r, err = in.route(dev, m)
	}
	var k *Kind
	if err != nil && !errors.As(err, &k) {
		// Not a refusal: the registry failed. Read it again later.
		return fmt.Errorf("alert %d: %w", a.Index, err)
	}
	if err != nil {
		return in.refuse(ctx, step, a, m, err)
	}
	ev := AuditEvent{Action: "alert.received", Target: m.Originator, Counter: m.Counter, Code: m.Code, At: at, Detail: r.detail()}
	step.Alert = &store.DeviceAlert{Device: m.Originator.String(), Counter: m.Counter, Code: uint16(m.Code), Recipient: m.Recipient.String(),
		Rerouted: r.rerouted, Source: source, Message: a.Message, RaisedAt: raisedAt(a, at), ReceivedAt: at,
		Unverified: !m.Signed() && m.Recipient != in.cfg.ACB}
	if !r.to.IsZero() {
		step.Alert.DeliveredTo = r.to.String()
		step.Delivery = &store.Delivery{Caller: r.to.String(), Kind: store.DeliveryAlert, Body: a.Message, Detail: r.detail(), At: at}
	}
	step.Audits = []store.AuditEvent{toStoreAudit(ev)}
	err = in.cfg.Store.RecordAlertIntake(ctx, step)
	switch {
	case errors.Is(err, store.ErrExists):
		// Read again (at least once): dropped, and the cursor moves on.
		in.cfg.Metrics.alert("duplicate")
		in.log.DebugContext(ctx, "duplicate alert dropped", "device", m.Originator, "counter", m.Counter)
		return in.cfg.Store.RecordAlertIntake(ctx, &store.AlertIntake{Source: source, Next: a.Index + 1, At: at})
	case errors.Is(err, store.ErrStaleAlert):
		return in.refuse(ctx, &store.AlertIntake{Source: source, Next: a.Index + 1, At: at}, a, m,
			fmt.Errorf("%w: counter %d of %s is not above the last alert recorded from it", ErrStaleAlert, m.Counter, m.Originator))
	case err != nil:
		return err
	}
	in.cfg.Metrics.alert("received")
	in.log.InfoContext(ctx, "alert received", "device", m.Originator, "message_code", m.Code.String(), "counter", m.Counter,
		"recipient", m.Recipient, "delivered_to", r.to, "rerouted", r.rerouted)
	if step.Delivery != nil && in.cfg.Publisher != nil {
		if d, err := fromStoreDelivery(*step.Delivery); err == nil {
			in.cfg.Publisher.Publish(d)
		}
	}
	// A CS02b's outcome alert goes to its originator: the TCoS for a
	// change of supplier, the owner itself for a rotation. Either way,
	// signed by the device, it settles the change it names.
	if m.Code == CodeCS02bAlert && m.Signed() && in.cfg.Observer != nil {
		in.cfg.Observer.CredentialsAlerted(ctx, m.Originator, m)
	}
	return nil
}

// raisedAt is the source's time of the alert, or at when it gives none.
func raisedAt(a RawAlert, at time.Time) time.Time {
	if a.At.IsZero() {
		return at
	}
	return a.At
}

// refuse records a refused alert: its audit entry, with the cursor moved
// past it; nothing is delivered.
func (in *AlertIntake) refuse(ctx context.Context, step *store.AlertIntake, a RawAlert, m *commands.Message, cause error) error {
	k := KindOf(cause)
	ev := AuditEvent{Action: "alert.refused", Target: a.Device, Kind: k.Code(), Detail: cause.Error(), At: step.At}
	if m != nil {
		ev.Target, ev.Counter, ev.Code = m.Originator, m.Counter, m.Code
	}
	step.Alert, step.Delivery = nil, nil
	step.Audits = []store.AuditEvent{toStoreAudit(ev)}
	if err := in.cfg.Store.RecordAlertIntake(ctx, step); err != nil {
		return err
	}
	in.cfg.Metrics.alert(k.Code())
	in.log.WarnContext(ctx, "alert refused", "device", ev.Target, "counter", ev.Counter, "kind", k.Code(), "err", cause)
	return nil
}

// verify reads the alert and checks it as its receiver must (GBCS; spec
// gbcs-security.md 4 and 5, gbcs-payloads.md 1.2 and 6.1): an alert (CRA 3)
// from the device the source names, in the registry; signed without MAC
// header and verifying under the device's digital-signing key, or MAC'd
// and unsigned. A MAC'd alert to the ACB is checked with the ACB's key; one
// to a user is under that user's key, which the router does not hold: its
// recipient checks it (client.Open), and the router never reroutes it.
func (in *AlertIntake) verify(ctx context.Context, a RawAlert) (*commands.Message, Device, error) {
	m, err := commands.Parse(a.Message)
	if err != nil {
		return nil, Device{}, fmt.Errorf("%w: alert: %w", ErrMalformed, err)
	}
	switch {
	case m.CRA != commands.Alert:
		return m, Device{}, fmt.Errorf("%w: CRA flag %s, want alert", ErrMalformed, m.CRA)
	case !a.Device.IsZero() && a.Device != m.Originator:
		return m, Device{}, fmt.Errorf("%w: the source names device %s, the alert %s", ErrMalformed, a.Device, m.Originator)
	case m.Signed() && m.HasMAC():
		return m, Device{}, fmt.Errorf("%w: an alert is signed or MAC'd, never both", ErrMalformed)
	case m.Counter > math.MaxInt64:
		return m, Device{}, fmt.Errorf("%w: alert counter %d above 2^63-1", ErrMalformed, m.Counter)
	}
	d, err := in.cfg.Registry.Device(ctx, m.Originator)
	if err != nil {
		return m, Device{}, err
	}
	switch {
	case m.Signed():
		if d.Signing == nil {
			return m, d, fmt.Errorf("%w: no digital-signing key of %s in the registry", ErrSignature, m.Originator)
		}
		if err := commands.VerifySignature(d.Signing, m); err != nil {
			return m, d, fmt.Errorf("%w: device signature: %w", ErrSignature, err)
		}
	case m.HasMAC() && m.Recipient == in.cfg.ACB:
		if in.cfg.ACBKey == nil {
			return m, d, fmt.Errorf("%w: no ACB key to check the MAC", ErrSignature)
		}
		if err := commands.CheckMAC(ctx, in.cfg.ACBKey, d.KeyAgreement, m); err != nil {
			return m, d, fmt.Errorf("%w: MAC: %w", ErrSignature, err)
		}
	case m.HasMAC():
		// Checked by its recipient.
	default:
		return m, d, fmt.Errorf("%w: the alert is neither signed nor MAC'd", ErrSignature)
	}
	return m, d, nil
}

// route is where a verified alert goes: to a user (to), rerouted when to
// is not the header recipient; or to nobody (consumed by the router).
type route struct {
	to        smki.EUI
	recipient smki.EUI
	rerouted  bool
}

func (r route) detail() string {
	switch {
	case r.to.IsZero():
		return "device alert to the DCC's " + r.recipient.String() + ", consumed by the router"
	case r.rerouted:
		return "device alert rerouted: addressed to " + r.recipient.String() + ", no longer the device's supplier"
	}
	return "device alert"
}

// route decides who an alert is for: its header recipient while that party
// holds the role it was sent in (the device's supplier or network
// operator); the DCC's own parties (ACB, TCoS) consume theirs; an alert to
// anyone else, a supplier the device has left, goes to the device's current
// supplier, rerouted (a signed alert only: the new owner can check the
// device's signature, not a MAC under another user's key).
func (in *AlertIntake) route(d Device, m *commands.Message) (route, error) {
	r := route{recipient: m.Recipient}
	switch {
	case m.Recipient == in.cfg.ACB || (!in.cfg.TCoS.IsZero() && m.Recipient == in.cfg.TCoS):
		return r, nil
	case m.Recipient == d.Supplier || m.Recipient == d.NetworkOperator:
		r.to = m.Recipient
		return r, nil
	case d.Supplier.IsZero():
		return r, fmt.Errorf("%w: alert to %s, who holds no role for %s, and the device has no supplier", ErrNoRecipient, m.Recipient, m.Originator)
	case !m.Signed():
		return r, fmt.Errorf("%w: a MAC'd alert to %s, no longer the supplier of %s, cannot be rerouted: the owner cannot check its MAC", ErrNoRecipient, m.Recipient, m.Originator)
	}
	r.to, r.rerouted = d.Supplier, true
	return r, nil
}
