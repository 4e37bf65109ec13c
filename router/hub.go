package router

import (
	"context"
	"sync"

	"github.com/metertrust/metertrust/smki"
)

// Hub fans deliveries out to the live event streams of their caller, and
// to nobody else. Slow subscribers miss wake-ups, never deliveries: a stream
// re-reads the store from its cursor on every wake-up.
type Hub struct {
	mu   sync.Mutex
	subs map[smki.EUI]map[chan struct{}]struct{}
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{subs: map[smki.EUI]map[chan struct{}]struct{}{}} }

// Publish wakes the streams of d's caller.
func (h *Hub) Publish(d Delivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[d.Caller] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel woken when caller has a new delivery, until
// ctx ends.
func (h *Hub) Subscribe(ctx context.Context, caller smki.EUI) <-chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[caller] == nil {
		h.subs[caller] = map[chan struct{}]struct{}{}
	}
	h.subs[caller][ch] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		delete(h.subs[caller], ch)
		if len(h.subs[caller]) == 0 {
			delete(h.subs, caller)
		}
		h.mu.Unlock()
	}()
	return ch
}

// Subscribers counts live subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}
