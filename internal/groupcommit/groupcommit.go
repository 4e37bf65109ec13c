// Package groupcommit commits the work of concurrent callers in groups, so
// that one transaction, and one commit (one fsync), serves every caller that
// arrived while the group before was committing. It is the leader/follower
// group commit of database logs, with no goroutine of its own: the first
// caller to find no group committing takes the queue and commits it, the
// callers arriving meanwhile queue for the next group, and each caller waits
// for its own outcome. An idle Group therefore adds no latency.
//
// The store's anomaly check-and-record, the router's admission and its
// forwarder's records all commit through a Group.
package groupcommit

import (
	"context"
	"sync"
	"time"
)

// Group commits items in groups. A caller of Do queues its item; if fewer
// than Leaders groups are committing, it becomes a leader: it takes a group
// from the queue and commits it, and goes on taking and committing groups,
// made of the items queued meanwhile, until the queue is empty. Every
// caller, leader or not, returns once its own item's group has committed.
//
// Once queued, an item is committed even if its caller's context ends, so
// that the other items of its group do not fail with it: Commit and After
// run with the leader's context without its cancellation
// (context.WithoutCancel).
//
// Set Commit, and any other field, before the first call to Do. A Group
// must not be copied after first use.
type Group[T any] struct {
	// Commit commits a group, in queue order, in one transaction. It sets
	// each item's own outcome in the item (items are usually pointers); its
	// error, if not nil, is the group's and every item's: each caller of
	// the group gets it from Do.
	Commit func(ctx context.Context, group []T) error

	// After, if not nil, is called by the leader with each group once its
	// callers have been released (Commit has returned), before the leader
	// takes another group: for work that follows a commit but that the
	// group's callers need not wait for.
	After func(ctx context.Context, group []T)

	// Take, if not nil, chooses the items of each group: it is called as a
	// group forms, and the func it returns is asked about each queued item
	// in queue order. An item it refuses keeps its place in the queue for a
	// later group. The queue's first item joins the group whatever it
	// says, so that each group commits something. Take and its func run
	// with the Group's lock held and must not block.
	Take func() func(item T) bool

	// Max, if positive, bounds the items of one group.
	Max int

	// Leaders bounds the groups committing at once; 0 means 1.
	Leaders int

	// Observe, if not nil, is called by the leader after each Commit with
	// the group's size and how long Commit took (for metrics). It must not
	// block.
	Observe func(size int, took time.Duration)

	mu    sync.Mutex
	busy  int // groups committing
	queue []*waiter[T]
}

// waiter is one queued item and its caller's outcome.
type waiter[T any] struct {
	item T
	err  error
	done chan struct{}
}

// Do queues item, commits groups while it leads (see Group), and returns
// once item's group has committed, with the group's error.
func (g *Group[T]) Do(ctx context.Context, item T) error {
	w := &waiter[T]{item: item, done: make(chan struct{})}
	ctx = context.WithoutCancel(ctx)
	g.mu.Lock()
	g.queue = append(g.queue, w)
	for g.busy < max(1, g.Leaders) && len(g.queue) > 0 {
		g.busy++
		group := g.take()
		g.mu.Unlock()
		g.commit(ctx, group)
		g.mu.Lock()
		g.busy--
	}
	g.mu.Unlock()
	<-w.done
	return w.err
}

// take removes the next group from the queue. It is called with g.mu held.
func (g *Group[T]) take() []*waiter[T] {
	if g.Take == nil {
		n := len(g.queue)
		if g.Max > 0 {
			n = min(n, g.Max)
		}
		group := g.queue[:n:n]
		g.queue = g.queue[n:]
		return group
	}
	joins := g.Take()
	var group, rest []*waiter[T]
	for i, w := range g.queue {
		if g.Max > 0 && len(group) == g.Max {
			rest = append(rest, g.queue[i:]...)
			break
		}
		if joins(w.item) || len(group) == 0 {
			group = append(group, w)
		} else {
			rest = append(rest, w)
		}
	}
	g.queue = rest
	return group
}

// commit commits one group, releases its callers and runs After.
func (g *Group[T]) commit(ctx context.Context, group []*waiter[T]) {
	items := make([]T, len(group))
	for i, w := range group {
		items[i] = w.item
	}
	var start time.Time
	if g.Observe != nil {
		start = time.Now()
	}
	err := g.Commit(ctx, items)
	if g.Observe != nil {
		g.Observe(len(items), time.Since(start))
	}
	for _, w := range group {
		w.err = err
		close(w.done)
	}
	if g.After != nil {
		g.After(ctx, items)
	}
}

// Queued returns the number of items waiting for a group (not those of
// the groups committing): the queue depth, for metrics.
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}
