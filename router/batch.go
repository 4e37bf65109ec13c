package router

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/metertrust/metertrust/store"
)

// batchStore is what the group-commit ledger needs of *store.DB.
type batchStore interface {
	RecordCommands(ctx context.Context, cs []store.RouterCommand, audits []*store.AuditEvent) ([]error, error)
}

// GroupLedger is a Ledger that records concurrent commands together, in one
// transaction per group (a group commit): while one group commits, the
// commands that arrive queue up and form the next. An idle router pays no
// extra latency; a busy one pays one commit (one fsync on SQLite) per group
// instead of one per command. Each command keeps its own outcome: a stale
// counter refuses that command alone. Reads go to the wrapped Storage.
type GroupLedger struct {
	*Storage
	db       batchStore
	maxBatch int
	queue    chan *pendingRecord
	stop     chan struct{}
	done     sync.WaitGroup

	// mu orders Record's sends before Close: once closed is set no send
	// can start, so the committers' final drain empties the queue.
	mu     sync.RWMutex
	closed bool
}

type pendingRecord struct {
	c     store.RouterCommand
	audit *store.AuditEvent
	res   chan error
}

// NewGroupLedger starts a group-commit ledger over db with committers
// goroutines committing groups of at most maxBatch commands (defaults 1
// and 256; one committer suits SQLite's single writer). Close stops it.
func NewGroupLedger(db interface {
	routerStore
	batchStore
}, committers, maxBatch int) *GroupLedger {
	if committers <= 0 {
		committers = 1
	}
	if maxBatch <= 0 {
		maxBatch = 256
	}
	g := &GroupLedger{Storage: NewStorage(db), db: db, maxBatch: maxBatch,
		queue: make(chan *pendingRecord, 4*maxBatch), stop: make(chan struct{})}
	for range committers {
		g.done.Add(1)
		go g.commit()
	}
	return g
}

// Close stops the committers after the queued commands are committed.
func (g *GroupLedger) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.done.Wait()
}

// ErrLedgerClosed is returned by Record after Close.
var ErrLedgerClosed = errors.New("router: ledger closed")

// Record implements Ledger. Once queued, the command's outcome is awaited
// even if ctx ends, so that a caller is never told "not accepted" about a
// command that became durable.
func (g *GroupLedger) Record(ctx context.Context, r Record, e AuditEvent) error {
	a := toStoreAudit(e)
	p := &pendingRecord{c: toStoreCommand(r), audit: &a, res: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrLedgerClosed
	}
	select {
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	case g.queue <- p:
	}
	g.mu.RUnlock()
	err := <-p.res
	if errors.Is(err, store.ErrStaleCounter) {
		return fmt.Errorf("%w: %w", ErrReplay, err)
	}
	return err
}

func (g *GroupLedger) commit() {
	defer g.done.Done()
	for {
		var first *pendingRecord
		select {
		case first = <-g.queue:
		case <-g.stop:
			// No send can start any more: drain what is queued, then stop.
			select {
			case first = <-g.queue:
			default:
				return
			}
		}
		group := []*pendingRecord{first}
	fill:
		for len(group) < g.maxBatch {
			select {
			case p := <-g.queue:
				group = append(group, p)
			default:
				break fill
			}
		}
		cs := make([]store.RouterCommand, len(group))
		audits := make([]*store.AuditEvent, len(group))
		for i, p := range group {
			cs[i], audits[i] = p.c, p.audit
		}
		// The group's transaction must not die with one caller's context.
		errs, err := g.db.RecordCommands(context.Background(), cs, audits)
		for i, p := range group {
			if err != nil {
				p.res <- err
			} else {
				p.res <- errs[i]
			}
		}
	}
}

func toStoreCommand(r Record) store.RouterCommand {
	return store.RouterCommand{ID: r.ID, Caller: r.Caller.EUI.String(), CallerRole: string(r.Caller.Role),
		Originator: r.Originator.String(), Target: r.Target.String(), Counter: r.Counter, Code: uint16(r.Code),
		ServiceRef: r.Ref, Critical: r.Critical, Message: r.Message, AcceptedAt: r.Accepted}
}
