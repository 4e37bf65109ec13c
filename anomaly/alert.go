package anomaly

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Alert tells the user and the operators that a command was quarantined,
// released or deleted.
type Alert struct {
	// State is what happened: quarantined, released or deleted.
	State State `json:"state"`
	// Ref is the quarantine event reference.
	Ref string `json:"ref"`
	// User is the DCC user whose command it is.
	User smki.EUI `json:"user"`
	// ServiceRef and Target are those of the command.
	ServiceRef string   `json:"serviceRef"`
	Target     smki.EUI `json:"target"`
	// Kind is the kind of breach, and ThresholdID the threshold breached.
	Kind        Kind   `json:"kind"`
	ThresholdID string `json:"threshold,omitempty"`
	// Detail describes the breach.
	Detail string `json:"detail,omitempty"`
	// By and Reason say who released or deleted the command and why.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Origin identifies the Detector that raised the alert, so that a
	// Detector ignores its own alerts coming back through the Notifier.
	Origin string `json:"origin,omitempty"`
}

// maxReason bounds the reason of a release or delete, and with it an
// alert's size.
const maxReason = 1000

// ParseAlert decodes an alert from its JSON form (a Notifier payload),
// strictly: unknown fields, trailing data or a missing reference are errors
// wrapping ErrInvalid.
func ParseAlert(b []byte) (Alert, error) {
	if len(b) > MaxNotifyPayload {
		return Alert{}, fmt.Errorf("%w: alert of %d bytes exceeds %d", ErrInvalid, len(b), MaxNotifyPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a Alert
	if err := dec.Decode(&a); err != nil {
		return Alert{}, fmt.Errorf("%w: alert JSON: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Alert{}, fmt.Errorf("%w: alert JSON: trailing data", ErrInvalid)
	}
	if _, err := ParseState(string(a.State)); err != nil {
		return Alert{}, fmt.Errorf("alert: %w", err)
	}
	if a.Ref == "" {
		return Alert{}, fmt.Errorf("%w: alert without a quarantine reference", ErrInvalid)
	}
	return a, nil
}

// AlertFilter selects the alerts a subscriber receives.
type AlertFilter struct {
	// User selects one user's alerts; zero for every user's.
	User smki.EUI
}

func (f AlertFilter) match(a Alert) bool { return f.User.IsZero() || f.User == a.User }

// DefaultAlertBuffer is the number of alerts a subscriber may fall behind
// before it is dropped.
const DefaultAlertBuffer = 256

// Broker fans alerts out to in-process subscribers. Publish never blocks: a
// subscriber whose buffer is full is dropped, its channel closed, and the
// drop counted. The zero Broker is not usable; call NewBroker.
type Broker struct {
	buffer    int
	mu        sync.Mutex
	subs      map[*subscriber]struct{}
	published atomic.Uint64
	dropped   atomic.Uint64
}

type subscriber struct {
	ch     chan Alert
	filter AlertFilter
	gone   chan struct{} // closed when removed
}

// NewBroker returns a broker whose subscribers each buffer up to buffer
// alerts (DefaultAlertBuffer if buffer < 1).
func NewBroker(buffer int) *Broker {
	if buffer < 1 {
		buffer = DefaultAlertBuffer
	}
	return &Broker{buffer: buffer, subs: map[*subscriber]struct{}{}}
}

// Subscribe returns a channel of the alerts f selects, published from now
// on. The channel is closed when ctx is done, or when the subscriber falls
// more than the buffer behind (it is then dropped and should subscribe
// again, re-reading the quarantine list for what it missed).
func (b *Broker) Subscribe(ctx context.Context, f AlertFilter) <-chan Alert {
	s := &subscriber{ch: make(chan Alert, b.buffer), filter: f, gone: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			b.mu.Lock()
			b.remove(s)
			b.mu.Unlock()
		case <-s.gone:
		}
	}()
	return s.ch
}

// remove drops s; b.mu must be held.
func (b *Broker) remove(s *subscriber) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
	close(s.gone)
}

// Publish delivers a to every matching subscriber without blocking.
func (b *Broker) Publish(a Alert) {
	b.published.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if !s.filter.match(a) {
			continue
		}
		select {
		case s.ch <- a:
		default:
			b.remove(s)
			b.dropped.Add(1)
		}
	}
}

// Subscribers returns the number of current subscribers.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Published returns the number of alerts published.
func (b *Broker) Published() uint64 { return b.published.Load() }

// Dropped returns the number of subscribers dropped for falling behind.
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }
