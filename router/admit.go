package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/internal/groupcommit"
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
// passes, seals it and records it durably in the outbox, its
// counter advance and its audit entry, in one step. It returns the
// detector's verdict (Quarantined: held, nothing recorded) or an error
// wrapping ErrReplay when the counter is no longer above the last recorded.
type Admitter interface {
	Admit(ctx context.Context, a Admission) (Verdict, error)
}

// admitStore is what the GroupAdmitter needs of *store.RouterStore.
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
// with the forwarder's "forwarded" marks and completions of the same
// moment, so that the writer takes one turn, and one commit, for all of
// them. There is no
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
	db    admitStore
	det   screener
	now   func() time.Time
	lease time.Duration
	group groupcommit.Group[admitItem]

	mu      sync.Mutex
	handoff func([]Pending)
	notify  func()
	// parked is set when a command was recorded without a handoff (its
	// pair had another in the outbox): the forwarder claims it once the
	// one before it is marked or completed, so the next marks or
	// completions wake the forwarder.
	parked bool
}

// admitItem is one waiter of a group: a command, the forwarder's marks,
// or one of its completions.
type admitItem struct {
	cmd  *pendingAdmission
	mark *pendingMark
	done *store.Completion
}

type pendingAdmission struct {
	a        Admission
	prepared anomaly.Prepared
	verdict  Verdict
	err      error
	// Once committed, for after: the forwarder's dispatch and the sealed
	// message of a command handed to it, or the quarantine to announce.
	handoff    func([]Pending)
	message    []byte
	quarantine *store.AdmitResult
}

type pendingMark struct {
	fs   []Forward
	errs []error
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
	g := &GroupAdmitter{db: db, det: det, now: now, lease: lease}
	g.group.Commit, g.group.After, g.group.Take, g.group.Leaders = g.commit, g.after, g.take, max(1, leaders)
	return g
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
	p := &pendingAdmission{a: a}
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
	if err := g.group.Do(ctx, admitItem{cmd: p}); err != nil {
		return Verdict{}, fmt.Errorf("recording command: %w", err)
	}
	return p.verdict, p.err
}

// RecordForwarded implements ForwardRecorder: the marks and audit entries go in
// the next group's transaction.
func (g *GroupAdmitter) RecordForwarded(ctx context.Context, fs []Forward) ([]error, error) {
	m := &pendingMark{fs: fs}
	if err := g.group.Do(ctx, admitItem{mark: m}); err != nil {
		return nil, err
	}
	return m.errs, nil
}

// Complete implements Completer: the command's end, its delivery and
// audit entries go in the next group's transaction.
func (g *GroupAdmitter) Complete(ctx context.Context, e Ending, es ...AuditEvent) (Delivery, error) {
	c := completion(e, es)
	if err := g.group.Do(ctx, admitItem{done: c}); err != nil {
		return Delivery{}, err
	}
	return completed(c)
}

// take is the group's Take: a group holds at most maxAdmitGroup commands,
// one per pair (the others keep their place), and every pending mark.
func (g *GroupAdmitter) take() func(admitItem) bool {
	type pair struct{ o, t string }
	seen := map[pair]bool{}
	n := 0
	return func(it admitItem) bool {
		p := it.cmd
		if p == nil {
			return true // marks and completions all join
		}
		k := pair{p.a.Record.Originator.String(), p.a.Record.Target.String()}
		if n == maxAdmitGroup || seen[k] {
			return false
		}
		seen[k] = true
		n++
		return true
	}
}

// commit runs one group's transaction and sets its callers' outcomes; the
// group's error fails them all. A command recorded without a handoff
// wakes the forwarder, as do the marks that follow one.
func (g *GroupAdmitter) commit(ctx context.Context, items []admitItem) error {
	g.mu.Lock()
	handoff := g.handoff
	g.mu.Unlock()
	var group []*pendingAdmission
	var marks []*pendingMark
	var sg store.AdmitGroup
	for _, it := range items {
		switch {
		case it.cmd != nil:
			group = append(group, it.cmd)
		case it.mark != nil:
			marks = append(marks, it.mark)
		default:
			sg.Completed = append(sg.Completed, it.done)
		}
	}
	lease := g.now().Add(g.lease)
	for _, p := range group {
		audit := toStoreAudit(p.a.Audit)
		sg.Items = append(sg.Items, store.Admission{Command: toStoreCommand(p.a.Record), Audit: &audit,
			Screen: !p.a.Released, Prepared: p.prepared, Handoff: handoff != nil, Lease: lease})
	}
	for _, m := range marks {
		for _, f := range m.fs {
			a := toStoreAudit(f.Audit)
			sg.Forwarded = append(sg.Forwarded, store.ForwardedCommand{ID: f.ID, At: f.At, Audit: &a, Scrub: f.Scrub})
		}
	}
	sg.Seal = func(i int) ([]byte, error) { return group[i].a.Seal() }
	sg.Breach = func(i int, out anomaly.Outcome) (anomaly.Quarantine, anomaly.AuditEntry, anomaly.Decision, error) {
		return g.det.Breach(group[i].prepared, out)
	}
	results, markErrs, err := g.db.Admit(ctx, sg)

	parked := false
	if err == nil {
		n := 0
		for _, m := range marks {
			m.errs = markErrs[n : n+len(m.fs)]
			n += len(m.fs)
		}
		for i, p := range group {
			r := &results[i]
			switch {
			case r.Quarantined:
				p.quarantine = r
				p.verdict = Verdict{Quarantined: true, Reference: r.Decision.Ref, Breach: fmt.Sprintf("%s: %s", r.Decision.Kind, r.Decision.Detail)}
			case errors.Is(r.Err, store.ErrStaleCounter):
				p.err = fmt.Errorf("%w: %w", ErrReplay, r.Err)
			case r.Err != nil:
				p.err = fmt.Errorf("recording command: %w", r.Err)
			case r.Handoff:
				p.handoff, p.message = handoff, r.Message
			default:
				parked = true
			}
		}
	}
	// The commands the marks and completions took out of the outbox may have been
	// what a parked command waited for.
	freed := len(marks) > 0 || len(sg.Completed) > 0
	g.mu.Lock()
	wake := parked || (g.parked && freed)
	g.parked = parked || (g.parked && !freed)
	if wake && g.notify != nil {
		g.notify()
	}
	g.mu.Unlock()
	return err
}

// after is the group's After: once the callers are released, it hands
// the commands leased to this process to the forwarder and announces the
// quarantines.
func (g *GroupAdmitter) after(ctx context.Context, items []admitItem) {
	var handoff func([]Pending)
	var handed []Pending
	for _, it := range items {
		if p := it.cmd; p != nil && p.handoff != nil {
			rec := p.a.Record
			rec.Message = p.message
			handoff, handed = p.handoff, append(handed, Pending{Record: rec})
		}
	}
	if len(handed) > 0 {
		handoff(handed)
	}
	for _, it := range items {
		if p := it.cmd; p != nil && p.quarantine != nil {
			g.det.Announce(ctx, p.quarantine.Quarantine, p.quarantine.Decision)
		}
	}
}
