package router

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/internal/groupcommit"
	"github.com/metertrust/metertrust/smki"
)

// Pending is a recorded command due for forwarding.
type Pending struct {
	Record Record
	// Attempts is the number of attempts made before this one.
	Attempts int
}

// Delivery is a result queued for one caller: a device response, a failure
// or an alert. Seq numbers a caller's deliveries 1, 2, 3...
type Delivery struct {
	Caller    smki.EUI  `json:"-"`
	Seq       int64     `json:"seq"`
	CommandID string    `json:"commandId,omitempty"`
	Kind      string    `json:"kind"`
	Body      []byte    `json:"body,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
}

// The delivery kinds.
const (
	DeliveryResponse = "response"
	DeliveryFailure  = "failure"
	DeliveryAlert    = "alert"
)

// Outbox is the durable forwarding queue (the store's router tables).
type Outbox interface {
	// Claim leases up to limit due commands until now+lease.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Pending, error)
	// Forwarded records that the transport took the command and its
	// response will come later.
	Forwarded(ctx context.Context, id string, at time.Time) error
	// Retry releases the lease and schedules the next attempt.
	Retry(ctx context.Context, id string, next time.Time, reason string) error
	// Complete ends the command (responded with the response, or failed
	// with the reason), scrubs its stored message when asked, queues the
	// delivery for its caller and appends the audit entries es, in one
	// transaction, returning the delivery with its Seq. A command already
	// completed gives an error wrapping ErrAlreadyComplete (and appends
	// nothing).
	Complete(ctx context.Context, e Ending, es ...AuditEvent) (Delivery, error)
	// Correlate finds the command a response answers: to target, from
	// originator, with counter.
	Correlate(ctx context.Context, target, originator smki.EUI, counter uint64) (Record, error)
	// Depth counts commands still in the outbox.
	Depth(ctx context.Context) (int64, error)
}

// Forward is one command the transport took, for ForwardRecorder.
type Forward struct {
	ID string
	At time.Time
	// Audit is the command's "command.forwarded" entry.
	Audit AuditEvent
	// Scrub, when not nil, replaces the command's stored message in the
	// same transaction (see Ending.Scrub).
	Scrub []byte
}

// Ending is how a command ends, for Outbox.Complete.
type Ending struct {
	ID string
	// Failed ends the command failed with Reason; else responded with
	// Response.
	Failed   bool
	Response []byte
	Reason   string
	// Delivery is queued for the command's caller.
	Delivery Delivery
	// Scrub, when not nil, replaces the command's stored message: the
	// router's own SR 9.1 command keeps its header alone once the
	// transport has taken it, its payload being the consumer's CIN
	// (decision 015).
	Scrub []byte
}

// ForwardRecorder is implemented by an Outbox that can record commands the
// transport took together with their audit entries, several in one
// transaction (Storage does). The Forwarder then groups the records of
// concurrent attempts into one commit; with an Outbox without it, it
// writes each audit entry through its Auditor and calls Forwarded.
type ForwardRecorder interface {
	// RecordForwarded appends each command's audit entry and marks it
	// forwarded (as Outbox.Forwarded), all in one transaction. errs[i] is
	// fs[i]'s own outcome; err, when not nil, means nothing was recorded.
	RecordForwarded(ctx context.Context, fs []Forward) (errs []error, err error)
}

// DefaultForwardLease bounds one forwarding attempt when the configuration
// sets none.
const DefaultForwardLease = 30 * time.Second

// maxForwardGroup bounds the commands one RecordForwarded call records.
const maxForwardGroup = 256

// forwardGroup group-commits the records of commands the transport took
// through one ForwardRecorder: the first attempt to arrive commits, and the
// attempts that arrive while it does queue up and go in its next
// transaction. No goroutine of its own: an idle forwarder pays no extra
// latency. Waiters' records do not fail with the leader's context.
type forwardGroup struct {
	r     ForwardRecorder
	group groupcommit.Group[*pendingForward]
}

type pendingForward struct {
	f Forward
	// own is f's own outcome; lost, when set, is the group's error for an
	// f the recorder returned no outcome for.
	own, lost error
}

// newForwardGroup returns a forwardGroup recording through r.
func newForwardGroup(r ForwardRecorder) *forwardGroup {
	g := &forwardGroup{r: r}
	g.group.Commit, g.group.Max = g.commit, maxForwardGroup
	return g
}

// record records f, grouped with concurrent calls, and returns f's own
// error and the group's transaction error.
func (g *forwardGroup) record(ctx context.Context, f Forward) (own, group error) {
	p := &pendingForward{f: f}
	if err := g.group.Do(ctx, p); err != nil {
		return nil, err
	}
	return p.own, p.lost
}

// commit records a group in one RecordForwarded call.
func (g *forwardGroup) commit(ctx context.Context, batch []*pendingForward) error {
	fs := make([]Forward, len(batch))
	for i, p := range batch {
		fs[i] = p.f
	}
	errs, err := g.r.RecordForwarded(ctx, fs)
	if err != nil {
		return err
	}
	for i, p := range batch {
		if i < len(errs) {
			p.own = errs[i]
		} else {
			p.lost = fmt.Errorf("router: outbox returned %d results for %d commands", len(errs), len(fs))
		}
	}
	return nil
}

// Completer ends commands, as Outbox.Complete.
type Completer interface {
	Complete(ctx context.Context, e Ending, es ...AuditEvent) (Delivery, error)
}

// ErrAlreadyComplete is wrapped by Outbox.Complete for a command that
// already has its response or failure (a duplicate response).
var ErrAlreadyComplete = errors.New("router: command already complete")

// ErrUncorrelated is returned for a response that answers no forwarded
// command.
var ErrUncorrelated = errors.New("router: response matches no forwarded command")

// Publisher tells live subscribers (the server-sent event streams) about a
// new delivery. The Hub implements it.
type Publisher interface {
	Publish(d Delivery)
}

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	Outbox    Outbox
	Transport Transport
	// Registry gives devices' signing keys, to check signed responses.
	Registry Registry
	// ACB is the access control broker's EUI: responses to unknown remote
	// parties' commands are addressed to it.
	ACB smki.EUI
	// Auditor records forwarding and responses.
	Auditor Auditor
	// Publisher, when set, is told about each new delivery.
	Publisher Publisher
	// Recorder, when set, records the commands the transport took (the
	// GroupAdmitter, which puts them in the next group's transaction);
	// else the Outbox does, when it is a ForwardRecorder.
	Recorder ForwardRecorder
	// Completer, when set, ends commands (the GroupAdmitter, in the next
	// group's transaction); else the Outbox does.
	Completer Completer
	Metrics   *Metrics
	Logger    *slog.Logger
	Clock     func() time.Time
	// Jitter returns a uniform value in [0, 1) for backoff jitter; nil for
	// math/rand/v2.
	Jitter func() float64
	// Batch is how many commands one claim takes (default 64); Workers how
	// many are sent at once (default 16).
	Batch, Workers int
	// Lease bounds one attempt; a worker that dies loses its lease after
	// this and another worker retries (default 30s).
	Lease time.Duration
	// Poll is how often the outbox is checked when nobody wakes the
	// forwarder (default 1s).
	Poll time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff between
	// attempts (defaults 1s and 5m); MaxAttempts, when reached, fails the
	// command for good (default 20).
	BackoffBase, BackoffMax time.Duration
	MaxAttempts             int
}

// Forwarder drains the outbox to the transport: at least once, with
// exponential backoff and jitter between attempts; it correlates responses
// with their commands, checks the device's signature on responses to
// critical commands, and queues them for the caller alone.
type Forwarder struct {
	cfg  ForwarderConfig
	log  *slog.Logger
	now  func() time.Time
	wake chan struct{}
	// fwds groups the records of forwarded commands, when there is a
	// Recorder.
	fwds *forwardGroup
	// sem bounds the attempts running at once; running holds Run's
	// context while it runs, for Dispatch.
	sem     chan struct{}
	mu      sync.Mutex
	running context.Context
	// changes is told the outcomes of CS02b supplierByTransCoS commands.
	changes CredentialsObserver
	// rekeys is told the answers to CS02d and CS02e (decision 017).
	rekeys *RekeyDesk
}

// SetRekeyDesk sets the desk that switches the registry to a device's new
// key once the device confirms it. Call it before Run.
func (f *Forwarder) SetRekeyDesk(k *RekeyDesk) { f.rekeys = k }

// CredentialsObserver is told what became of each CS02b (supplierByTransCoS
// 0x0107, or an owner's rotation 0x0102, 0x0103) the forwarder sent: its response, once the device's signature
// on it is checked (a late one too), or that its outcome cannot be known
// from the transport (it failed for good, or the device discarded a copy
// as a replay). The ChangeDesk implements it (decision 014).
type CredentialsObserver interface {
	CredentialsAnswered(ctx context.Context, rec Record, resp []byte)
	CredentialsUnknown(ctx context.Context, rec Record, reason string)
}

// SetCredentialsObserver sets the observer of CS02b outcomes. Call it
// before Run.
func (f *Forwarder) SetCredentialsObserver(o CredentialsObserver) { f.changes = o }

// observesCredentials reports whether rec is a CS02b whose outcome the
// observer follows.
func (f *Forwarder) observesCredentials(rec Record) bool {
	return f.changes != nil && (isCS02b(rec.Code) || rec.Code == codeCS02a)
}

// NewForwarder checks cfg and returns a Forwarder.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if cfg.Outbox == nil || cfg.Transport == nil || cfg.Registry == nil || cfg.Auditor == nil {
		return nil, fmt.Errorf("%w: forwarder needs Outbox, Transport, Registry and Auditor", ErrConfig)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Lease, DefaultForwardLease)
	def(&cfg.Poll, time.Second)
	def(&cfg.BackoffBase, time.Second)
	def(&cfg.BackoffMax, 5*time.Minute)
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger, now: cfg.Clock, wake: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Workers)}
	if cfg.Recorder == nil {
		f.cfg.Recorder, _ = cfg.Outbox.(ForwardRecorder)
	}
	if cfg.Completer == nil {
		f.cfg.Completer = cfg.Outbox
	}
	if f.cfg.Recorder != nil {
		f.fwds = newForwardGroup(f.cfg.Recorder)
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("component", "router.forwarder")
	if f.now == nil {
		f.now = time.Now
	}
	return f, nil
}

// Notify wakes the forwarder: a command was recorded. It never blocks.
func (f *Forwarder) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Dispatch attempts commands leased to this process when they were
// recorded (GroupAdmitter's handoff), without claiming them from the
// outbox. It never blocks; while Run is not running the commands wait for
// their lease to end and are claimed then.
func (f *Forwarder) Dispatch(ps []Pending) {
	f.mu.Lock()
	ctx := f.running
	f.mu.Unlock()
	if ctx == nil {
		return
	}
	for _, p := range ps {
		go func() {
			select {
			case f.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-f.sem }()
			f.attempt(ctx, p)
		}()
	}
}

// Run forwards until ctx ends. On start it picks up whatever an earlier
// process left undone.
func (f *Forwarder) Run(ctx context.Context) error {
	f.mu.Lock()
	f.running = ctx
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running = nil
		f.mu.Unlock()
	}()
	t := time.NewTicker(f.cfg.Poll)
	defer t.Stop()
	for {
		n, err := f.Drain(ctx)
		if err != nil && ctx.Err() == nil {
			f.log.ErrorContext(ctx, "draining outbox", "err", err)
		}
		if n == f.cfg.Batch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.wake:
		case <-t.C:
		}
	}
}

// Drain claims one batch of due commands and attempts each once; it returns
// how many it claimed.
func (f *Forwarder) Drain(ctx context.Context) (int, error) {
	items, err := f.cfg.Outbox.Claim(ctx, f.now(), f.cfg.Lease, f.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("claiming outbox: %w", err)
	}
	var wg sync.WaitGroup
	for _, it := range items {
		f.sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-f.sem; wg.Done() }()
			f.attempt(ctx, it)
		}()
	}
	wg.Wait()
	if d, err := f.cfg.Outbox.Depth(ctx); err == nil {
		f.cfg.Metrics.SetOutboxDepth(int(d))
	}
	return len(items), nil
}

// attempt sends one command once and records the outcome.
func (f *Forwarder) attempt(ctx context.Context, it Pending) {
	rec := it.Record
	f.rekeys.Installing(ctx, rec)
	sctx, cancel := context.WithTimeout(ctx, f.cfg.Lease)
	resp, err := f.cfg.Transport.Send(sctx, rec.Target, rec.Message)
	cancel()
	// before are audit entries that commit with the attempt's outcome.
	var before []AuditEvent
	var pending *ecdh.PublicKey
	if errors.Is(err, ErrDeviceMAC) {
		// A CS02e read-back after a key-agreement re-key whose answer was
		// lost: the meter may hold the pending key (decision 017).
		if msg, key := f.rekeys.Reseal(ctx, rec); msg != nil {
			before = append(before, f.event("command.resealed", rec, "the device refused the MAC under the registry's key-agreement key ("+err.Error()+
				"); sent again MAC'd with the key of its unsettled key-agreement re-key"))
			sctx, cancel := context.WithTimeout(ctx, f.cfg.Lease)
			resp, err = f.cfg.Transport.Send(sctx, rec.Target, msg)
			cancel()
			pending = key
		}
	}
	switch {
	case err == nil && resp != nil:
		// The "forwarded" entry commits with the response or the failure,
		// in one transaction.
		f.cfg.Metrics.forward("delivered")
		sent := append(before, f.event("command.forwarded", rec, ""))
		if resp, err = reassembled(resp); err != nil {
			f.fail(ctx, rec, "response refused: "+err.Error(), sent...)
			f.log.WarnContext(ctx, "response refused", "id", rec.ID, "err", err)
			break
		}
		if pending != nil && f.checkResponse(ctx, rec, resp) == nil {
			// The device's signed answer to a command it executed only
			// because the pending key's MAC verified: the registry follows,
			// before the caller is told.
			f.rekeys.SettlePending(ctx, rec, pending)
		}
		if err := f.respond(ctx, rec, resp, true, sent...); err != nil {
			f.log.WarnContext(ctx, "response refused", "id", rec.ID, "err", err)
		}
	case err == nil:
		f.cfg.Metrics.forward("delivered")
		f.auditApart(ctx, before)
		f.forwarded(ctx, rec, "awaiting response")
	case errors.Is(err, ErrDeviceReplay):
		// Sent again after a crash or a lost answer: the device had
		// executed it. It reached the device; its response is lost.
		f.cfg.Metrics.forward("delivered")
		f.auditApart(ctx, before)
		f.forwarded(ctx, rec, "the device had already executed this command; its response was lost: "+err.Error())
		if f.observesCredentials(rec) {
			f.changes.CredentialsUnknown(ctx, rec, "the device discarded the CS02b as a replay: "+err.Error())
		}
	case errors.Is(err, ErrDeviceRefused) || it.Attempts+1 >= f.cfg.MaxAttempts:
		f.cfg.Metrics.forward("failed")
		reason := fmt.Sprintf("forwarding failed after %d attempts: %v", it.Attempts+1, err)
		f.fail(ctx, rec, reason, before...)
	default:
		f.cfg.Metrics.forward("retry")
		f.auditApart(ctx, before)
		next := f.now().Add(f.backoff(it.Attempts))
		f.log.InfoContext(ctx, "forwarding failed, will retry", "id", rec.ID, "attempt", it.Attempts+1, "next", next, "err", err)
		if err := f.cfg.Outbox.Retry(ctx, rec.ID, next, err.Error()); err != nil {
			f.log.ErrorContext(ctx, "rescheduling", "id", rec.ID, "err", err)
		}
	}
}

// forwarded records that the transport took rec, awaiting its response:
// the "command.forwarded" audit entry and the mark, in one transaction
// shared with concurrent attempts when the Outbox is a ForwardRecorder.
// If that transaction fails, they are written apart as without one.
func (f *Forwarder) forwarded(ctx context.Context, rec Record, detail string) {
	if f.fwds != nil {
		own, group := f.fwds.record(ctx, Forward{ID: rec.ID, At: f.now(), Audit: f.event("command.forwarded", rec, detail), Scrub: f.scrub(rec)})
		if group == nil {
			if own != nil {
				f.log.ErrorContext(ctx, "marking forwarded", "id", rec.ID, "err", own)
			}
			return
		}
		f.log.ErrorContext(ctx, "recording forwarded commands together failed, recording apart", "id", rec.ID, "err", group)
	}
	f.audit(ctx, "command.forwarded", rec, detail)
	if err := f.cfg.Outbox.Forwarded(ctx, rec.ID, f.now()); err != nil {
		f.log.ErrorContext(ctx, "marking forwarded", "id", rec.ID, "err", err)
	}
}

// backoff returns the wait before attempt n+1: base*2^n capped at max, with
// "equal jitter" (half fixed, half random) so retries from many commands
// spread out.
func (f *Forwarder) backoff(n int) time.Duration {
	d := f.cfg.BackoffBase
	for range min(n, 40) {
		d *= 2
		if d >= f.cfg.BackoffMax {
			d = f.cfg.BackoffMax
			break
		}
	}
	half := d / 2
	return half + time.Duration(f.cfg.Jitter()*float64(half))
}

// fail ends rec as failed, appending the audit entries before (the
// attempt's "forwarded", if any) and its "failed" entry with it.
func (f *Forwarder) fail(ctx context.Context, rec Record, reason string, before ...AuditEvent) {
	d, err := f.cfg.Completer.Complete(ctx, Ending{ID: rec.ID, Failed: true, Reason: reason, Scrub: f.scrub(rec),
		Delivery: Delivery{Caller: rec.Caller.EUI, CommandID: rec.ID, Kind: DeliveryFailure, Detail: reason, At: f.now()}},
		append(before, f.event("command.failed", rec, reason))...)
	if err != nil {
		f.auditApart(ctx, before)
		f.log.ErrorContext(ctx, "recording failure", "id", rec.ID, "err", err)
		return
	}
	f.publish(d)
	if f.observesCredentials(rec) {
		f.changes.CredentialsUnknown(ctx, rec, reason)
	}
}

// Response takes a device response that arrived asynchronously (from a
// communications service provider), correlates it with its command and
// queues it for the command's caller.
func (f *Forwarder) Response(ctx context.Context, resp []byte) error {
	resp, err := reassembled(resp)
	if err != nil {
		return err
	}
	m, err := commands.Parse(resp)
	if err != nil {
		return fmt.Errorf("%w: response: %w", ErrMalformed, err)
	}
	if m.CRA != commands.Response {
		return fmt.Errorf("%w: CRA flag %s, want response", ErrMalformed, m.CRA)
	}
	rec, err := f.cfg.Outbox.Correlate(ctx, m.Originator, m.Recipient, m.Counter)
	if err != nil {
		return fmt.Errorf("%w: from %s to %s, counter %d: %w", ErrUncorrelated, m.Originator, m.Recipient, m.Counter, err)
	}
	return f.respond(ctx, rec, resp, false)
}

// reassembled returns a device response whole: a response too large for one
// message arrives as general block transfer segments back to back (GBCS
// section 4.3), which are joined; a whole message is returned as it is.
func reassembled(resp []byte) ([]byte, error) {
	if !commands.IsBlockTransfer(resp) {
		return resp, nil
	}
	whole, err := commands.ReassembleStream(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: block transfer response: %w", ErrMalformed, err)
	}
	return whole, nil
}

// respond checks a response against its command and completes the command.
// A response that does not belong or whose signature does not verify never
// reaches the caller: when it came back synchronously from the transport
// (failOnBad) the command fails; when it arrived on its own it is refused
// and the command keeps waiting, so a forged response cannot cancel it.
//
// before are audit entries that commit with the outcome (the attempt's
// "forwarded"); if the outcome cannot be stored they are appended apart.
func (f *Forwarder) respond(ctx context.Context, rec Record, resp []byte, failOnBad bool, before ...AuditEvent) error {
	if err := f.checkResponse(ctx, rec, resp); err != nil {
		if failOnBad {
			f.fail(ctx, rec, "response refused: "+err.Error(), before...)
		} else {
			f.auditApart(ctx, before)
		}
		return err
	}
	d, err := f.cfg.Completer.Complete(ctx, Ending{ID: rec.ID, Response: resp, Scrub: f.scrub(rec),
		Delivery: Delivery{Caller: rec.Caller.EUI, CommandID: rec.ID, Kind: DeliveryResponse, Body: resp, At: f.now()}},
		append(before, f.event("response.received", rec, ""))...)
	if errors.Is(err, ErrAlreadyComplete) {
		f.auditApart(ctx, before)
		f.log.InfoContext(ctx, "duplicate response ignored", "id", rec.ID)
		if f.observesCredentials(rec) {
			// A late answer still settles its change (decision 014).
			f.changes.CredentialsAnswered(ctx, rec, resp)
		}
		if f.rekeys.observes(rec) {
			f.rekeys.Answered(ctx, rec, resp)
		}
		return nil
	}
	if err != nil {
		f.auditApart(ctx, before)
		return fmt.Errorf("storing response to %s: %w", rec.ID, err)
	}
	if f.rekeys.observes(rec) {
		// Before the caller hears of it: the caller's next command finds
		// the registry holding the new key.
		f.rekeys.Answered(ctx, rec, resp)
	}
	f.publish(d)
	if f.observesCredentials(rec) {
		f.changes.CredentialsAnswered(ctx, rec, resp)
	}
	return nil
}

func (f *Forwarder) checkResponse(ctx context.Context, rec Record, resp []byte) error {
	m, err := commands.Parse(resp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	cmd, err := commands.Parse(rec.Message)
	if err != nil {
		return fmt.Errorf("stored command %s: %w", rec.ID, err)
	}
	switch {
	case m.CRA != commands.Response:
		return fmt.Errorf("%w: CRA flag %s, want response", ErrMalformed, m.CRA)
	case m.Originator != rec.Target:
		return fmt.Errorf("response from %s to a command for %s", m.Originator, rec.Target)
	case m.Recipient != cmd.Originator:
		return fmt.Errorf("response addressed to %s, the command came from %s", m.Recipient, cmd.Originator)
	case m.Counter != cmd.Counter:
		return fmt.Errorf("response counter %d, the command's %d", m.Counter, cmd.Counter)
	case m.Code != cmd.Code:
		return fmt.Errorf("response message code %s, the command's %s", m.Code, cmd.Code)
	}
	if !rec.Critical {
		return nil
	}
	d, err := f.cfg.Registry.Device(ctx, rec.Target)
	if err != nil {
		return fmt.Errorf("device %s: %w", rec.Target, err)
	}
	if d.Signing == nil {
		return fmt.Errorf("%w: device %s has no digital-signing key in the registry", ErrSignature, rec.Target)
	}
	if err := commands.VerifySignature(d.Signing, m); err != nil {
		// A CS02e read-back after a DS re-key whose answer was lost comes
		// signed with the new key, which the certificate it carries
		// certifies (decision 017).
		if k := f.rekeys.readBackKey(ctx, rec, m); k != nil && commands.VerifySignature(k, m) == nil {
			return nil
		}
		return fmt.Errorf("%w: response to critical command: %w", ErrSignature, err)
	}
	return nil
}

// scrub returns what to keep of rec's stored message once the transport
// has taken it, or nil to keep it whole: the router's own CIN display
// command (SR 9.1, ECS50 or GCS36, originated by the access control broker
// for the consent desk) keeps its header alone, its payload and MAC
// zeroed out, so that the consumer's CIN is not kept in clear after the
// command left the outbox (decision 015). The header is all that checking
// a late response needs.
func (f *Forwarder) scrub(rec Record) []byte {
	if !isCINCommand(rec, f.cfg.ACB) {
		return nil
	}
	return headerOnly(rec.Message)
}

// isCINCommand reports whether rec is the consent desk's CIN display
// command.
func isCINCommand(rec Record, acb smki.EUI) bool {
	return (rec.Code == codeECS50 || rec.Code == codeGCS36) && !acb.IsZero() && rec.Originator == acb
}

// headerOnly returns msg with an empty payload and, if it has them, a
// zero MAC and signature: its header alone. A message that does not parse
// gives an empty slice (nothing of it is kept).
func headerOnly(msg []byte) []byte {
	m, err := commands.Parse(msg)
	if err != nil {
		return []byte{}
	}
	m.Payload = nil
	if m.MAC != nil {
		m.MAC = make([]byte, len(m.MAC))
	}
	if m.Signature != nil {
		m.Signature = make([]byte, len(m.Signature))
	}
	out, err := m.Marshal()
	if err != nil {
		return []byte{}
	}
	return out
}

func (f *Forwarder) publish(d Delivery) {
	if f.cfg.Publisher != nil {
		f.cfg.Publisher.Publish(d)
	}
}

func (f *Forwarder) event(action string, rec Record, detail string) AuditEvent {
	return AuditEvent{Action: action, Caller: rec.Caller, Target: rec.Target, Counter: rec.Counter,
		Code: rec.Code, CommandID: rec.ID, Detail: detail, At: f.now()}
}

func (f *Forwarder) audit(ctx context.Context, action string, rec Record, detail string) {
	f.auditApart(ctx, []AuditEvent{f.event(action, rec, detail)})
}

// auditApart appends es one by one, when the outcome they were to commit
// with could not be stored.
func (f *Forwarder) auditApart(ctx context.Context, es []AuditEvent) {
	for _, e := range es {
		if err := f.cfg.Auditor.Audit(ctx, e); err != nil {
			f.log.ErrorContext(ctx, "audit write failed", "action", e.Action, "err", err)
		}
	}
}
