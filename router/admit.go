package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/store"
)

// Admission is a command that passed every check before the anomaly
// thresholds, with its key agreement done, offered to an Admitter.
type Admission struct {
	// Screening is what the anomaly detector is told; ignored when
	// Released.
	Screening Screening
	// Released is set for a command released from quarantine: it was
	// screened and counted once already.
	Released bool
	// Record is the command to record; its Message is what Seal returns.
	Record Record
	// Audit is its "command.accepted" entry.
	Audit AuditEvent
	// Seal returns the command with the broker's MAC: called only once the
	// thresholds let the command through (the KDF and GMAC, microseconds:
	// the ECDH was done before).
	Seal func() ([]byte, error)
}

// Admitter decides a command against the anomaly thresholds and, if it
// passes, seals it and records it durably with its outbox row, its
// counter advance and its audit entry, in one step. It returns the
// detector's verdict (Quarantined: held, nothing recorded) or an error
// wrapping ErrReplay when the counter is no longer above the last recorded.
type Admitter interface {
	Admit(ctx context.Context, a Admission) (Verdict, error)
}

// admitStore is what the GroupAdmitter needs of *store.DB.
type admitStore interface {
	Admit(ctx context.Context, g store.AdmitGroup) ([]store.AdmitResult, []error, error)
}

// screener is what the GroupAdmitter needs of package anomaly's Detector.
type screener interface {
	Prepare(req anomaly.Request) (anomaly.Prepared, error)
	Breach(p anomaly.Prepared, out anomaly.Outcome) (anomaly.Quarantine, anomaly.AuditEntry, anomaly.Decision, error)
	Announce(ctx context.Context, q anomaly.Quarantine, d anomaly.Decision)
}

// GroupAdmitter is the Admitter over the store: the commands that arrive
// together are decided and recorded in one transaction (a group commit),
// with the forwarder's "forwarded" marks of the same moment, so that the
// writer takes one turn, and one commit, for all of them. There is no
// goroutine of its own: the first caller to find no group committing
// commits the queue, and the callers that arrive meanwhile form the next
// group. A group holds at most one command per (originator, target) pair;
// a second waits for the next group, so that each is decided against its
// pair's latest counter.
//
// A command admitted while its pair has nothing else in the outbox is
// leased to this process in the same transaction and handed to the
// forwarder at once (Handoff), with no claim on the store.
type GroupAdmitter struct {
	db       admitStore
	det      screener
	now      func() time.Time
	leaders  int // groups committing at once
	maxBatch int
	lease    time.Duration

	mu      sync.Mutex
	busy    int
	queue   []*pendingAdmission
	marks   []*pendingMark
	handoff func([]Pending)
	notify  func()
	// parked is set when a command was recorded without a handoff (its
	// pair had another in the outbox): the forwarder claims it once the
	// one before it is marked, so the next marks wake the forwarder.
	parked bool
}

type pendingAdmission struct {
	a        Admission
	prepared anomaly.Prepared
	verdict  Verdict
	err      error
	done     chan struct{}
}

type pendingMark struct {
	fs   []Forward
	errs []error
	err  error
	done chan struct{}
}

// maxAdmitGroup bounds the commands of one group.
const maxAdmitGroup = 256

// NewGroupAdmitter returns a GroupAdmitter over db and the detector det,
// committing up to leaders groups at once (1 suits SQLite's single writer;
// PostgreSQL takes more). lease bounds a handed-off command's attempt
// (the forwarder's lease).
func NewGroupAdmitter(db admitStore, det screener, leaders int, lease time.Duration, now func() time.Time) *GroupAdmitter {
	if now == nil {
		now = time.Now
	}
	return &GroupAdmitter{db: db, det: det, now: now, leaders: max(1, leaders), maxBatch: maxAdmitGroup, lease: lease}
}

// SetForwarder connects the forwarder: dispatch receives the admitted
// commands leased to this process (Forwarder.Dispatch), notify is called
// when a command waits in the outbox for the forwarder to claim it
// (Forwarder.Notify). Neither may block.
func (g *GroupAdmitter) SetForwarder(dispatch func([]Pending), notify func()) {
	g.mu.Lock()
	g.handoff, g.notify = dispatch, notify
	g.mu.Unlock()
}

// Admit implements Admitter. Once queued, the command's outcome is awaited
// even if ctx ends, so that a caller is never told "not accepted" about a
// command that became durable.
func (g *GroupAdmitter) Admit(ctx context.Context, a Admission) (Verdict, error) {
	p := &pendingAdmission{a: a, done: make(chan struct{})}
	if !a.Released {
		s := a.Screening
		var err error
		p.prepared, err = g.det.Prepare(anomaly.Request{ID: s.ID, User: s.Caller.EUI, UserRole: s.Caller.Role,
			ServiceRef: s.Ref, Target: s.Target, Attributes: s.Attributes, Command: s.Message, At: s.At})
		if err != nil {
			return Verdict{}, fmt.Errorf("anomaly check of command %s: %w", s.ID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	g.lead(ctx)
	<-p.done
	return p.verdict, p.err
}

// RecordForwarded implements ForwardRecorder: the marks and audit entries go in
// the next group's transaction.
func (g *GroupAdmitter) RecordForwarded(ctx context.Context, fs []Forward) ([]error, error) {
	m := &pendingMark{fs: fs, done: make(chan struct{})}
	g.mu.Lock()
	g.marks = append(g.marks, m)
	g.lead(ctx)
	<-m.done
	return m.errs, m.err
}

// lead commits groups while there is work and fewer than g.leaders
// groups are committing. It is called with g.mu held and returns with it
// released.
func (g *GroupAdmitter) lead(ctx context.Context) {
	ctx = context.WithoutCancel(ctx) // the group must not fail with one caller
	for g.busy < g.leaders && (len(g.queue) > 0 || len(g.marks) > 0) {
		g.busy++
		group, marks := g.take()
		handoff := g.handoff
		g.mu.Unlock()
		parked := g.commit(ctx, group, marks, handoff)
		g.mu.Lock()
		g.busy--
		wake := parked || (g.parked && len(marks) > 0)
		g.parked = parked || (g.parked && len(marks) == 0)
		if wake && g.notify != nil {
			g.notify()
		}
	}
	g.mu.Unlock()
}

// take removes the next group from the queue: at most maxBatch commands,
// one per pair (the others keep their place), and every pending mark.
func (g *GroupAdmitter) take() ([]*pendingAdmission, []*pendingMark) {
	type pair struct{ o, t string }
	seen := map[pair]bool{}
	var group, rest []*pendingAdmission
	for _, p := range g.queue {
		k := pair{p.a.Record.Originator.String(), p.a.Record.Target.String()}
		if len(group) < g.maxBatch && !seen[k] {
			seen[k] = true
			group = append(group, p)
		} else {
			rest = append(rest, p)
		}
	}
	g.queue = rest
	marks := g.marks
	g.marks = nil
	return group, marks
}

// commit runs one group's transaction and releases its callers. It
// reports whether a command was recorded without a handoff.
func (g *GroupAdmitter) commit(ctx context.Context, group []*pendingAdmission, marks []*pendingMark, handoff func([]Pending)) (parked bool) {
	var sg store.AdmitGroup
	lease := g.now().Add(g.lease)
	for _, p := range group {
		audit := toStoreAudit(p.a.Audit)
		sg.Items = append(sg.Items, store.Admission{Command: toStoreCommand(p.a.Record), Audit: &audit,
			Screen: !p.a.Released, Prepared: p.prepared, Handoff: handoff != nil, Lease: lease})
	}
	for _, m := range marks {
		for _, f := range m.fs {
			a := toStoreAudit(f.Audit)
			sg.Forwarded = append(sg.Forwarded, store.ForwardedCommand{ID: f.ID, At: f.At, Audit: &a})
		}
	}
	sg.Seal = func(i int) ([]byte, error) { return group[i].a.Seal() }
	sg.Breach = func(i int, out anomaly.Outcome) (anomaly.Quarantine, anomaly.AuditEntry, anomaly.Decision, error) {
		return g.det.Breach(group[i].prepared, out)
	}
	results, markErrs, err := g.db.Admit(ctx, sg)

	n := 0
	for _, m := range marks {
		if err != nil {
			m.err = err
		} else {
			m.errs = markErrs[n : n+len(m.fs)]
		}
		n += len(m.fs)
		close(m.done)
	}
	var handed []Pending
	var quarantined []store.AdmitResult
	for i, p := range group {
		if err != nil {
			p.err = fmt.Errorf("recording command: %w", err)
			close(p.done)
			continue
		}
		r := results[i]
		switch {
		case r.Quarantined:
			quarantined = append(quarantined, r)
			p.verdict = Verdict{Quarantined: true, Reference: r.Decision.Ref, Breach: fmt.Sprintf("%s: %s", r.Decision.Kind, r.Decision.Detail)}
		case errors.Is(r.Err, store.ErrStaleCounter):
			p.err = fmt.Errorf("%w: %w", ErrReplay, r.Err)
		case r.Err != nil:
			p.err = fmt.Errorf("recording command: %w", r.Err)
		case r.Handoff:
			rec := p.a.Record
			rec.Message = r.Message
			handed = append(handed, Pending{Record: rec})
		default:
			parked = true
		}
		close(p.done)
	}
	if len(handed) > 0 {
		handoff(handed)
	}
	for _, r := range quarantined {
		g.det.Announce(ctx, r.Quarantine, r.Decision)
	}
	return parked
}
