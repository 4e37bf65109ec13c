// Package anomalytest provides in-memory implementations of the anomaly
// package's Store and Notifier, for fast tests of the anomaly detector and
// of its callers (the router). They keep the contracts of the SQLite and
// PostgreSQL stores: check-and-record is atomic, a quarantine record changes
// state once, every change is audited.
package anomalytest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
)

// Store is an in-memory anomaly.Store. The zero Store is ready to use and
// safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	events     map[string][]int64 // key -> event times (Unix microseconds), ascending
	thresholds map[string]anomaly.Threshold
	quarantine map[string]anomaly.Quarantine
	audit      []anomaly.AuditEntry
	// Err, when set, is returned by every method, to test failure paths.
	Err error
}

var _ anomaly.Store = (*Store)(nil)

func (s *Store) init() {
	if s.events == nil {
		s.events = map[string][]int64{}
		s.thresholds = map[string]anomaly.Threshold{}
		s.quarantine = map[string]anomaly.Quarantine{}
	}
}

// count returns the number of events under key after from (microseconds).
func (s *Store) count(key string, from int64) int64 {
	ts := s.events[key]
	i := sort.Search(len(ts), func(i int) bool { return ts[i] > from })
	return int64(len(ts) - i)
}

func (s *Store) record(ev anomaly.Event) {
	at := ev.At.UnixMicro()
	for _, k := range ev.Keys {
		ts := s.events[k]
		i := sort.Search(len(ts), func(i int) bool { return ts[i] > at })
		s.events[k] = slices.Insert(ts, i, at)
	}
}

// CheckAndRecord implements anomaly.Store.
func (s *Store) CheckAndRecord(_ context.Context, ev anomaly.Event, counters []anomaly.Counter) (anomaly.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return anomaly.Outcome{}, s.Err
	}
	s.init()
	for i, c := range counters {
		if n := s.count(c.Key, c.Since.UnixMicro()); n >= c.Limit {
			return anomaly.Outcome{Breached: i, Count: n}, nil
		}
	}
	s.record(ev)
	return anomaly.Outcome{Breached: -1}, nil
}

// CountEvents implements anomaly.Store.
func (s *Store) CountEvents(_ context.Context, counters []anomaly.Counter) ([]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	s.init()
	out := make([]int64, len(counters))
	for i, c := range counters {
		out[i] = s.count(c.Key, c.Since.UnixMicro())
	}
	return out, nil
}

// PruneEvents implements anomaly.Store.
func (s *Store) PruneEvents(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return 0, s.Err
	}
	s.init()
	b := before.UnixMicro()
	var n int64
	for k, ts := range s.events {
		i := sort.Search(len(ts), func(i int) bool { return ts[i] >= b })
		n += int64(i)
		if i == len(ts) {
			delete(s.events, k)
		} else {
			s.events[k] = slices.Clone(ts[i:])
		}
	}
	return n, nil
}

// Events returns the number of events stored under key, for tests.
func (s *Store) Events(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events[key])
}

// Thresholds implements anomaly.Store.
func (s *Store) Thresholds(context.Context) ([]anomaly.Threshold, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	s.init()
	out := slices.Collect(maps.Values(s.thresholds))
	slices.SortFunc(out, func(a, b anomaly.Threshold) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}

// PutThreshold implements anomaly.Store.
func (s *Store) PutThreshold(_ context.Context, t anomaly.Threshold, a anomaly.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.init()
	s.thresholds[t.ID] = t
	s.audit = append(s.audit, a)
	return nil
}

// DeleteThreshold implements anomaly.Store.
func (s *Store) DeleteThreshold(_ context.Context, id string, a anomaly.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.init()
	if _, ok := s.thresholds[id]; !ok {
		return fmt.Errorf("threshold %s: %w", id, anomaly.ErrNotFound)
	}
	delete(s.thresholds, id)
	s.audit = append(s.audit, a)
	return nil
}

func clone(q anomaly.Quarantine) anomaly.Quarantine {
	q.Command = slices.Clone(q.Command)
	q.Attributes = maps.Clone(q.Attributes)
	return q
}

// AddQuarantine implements anomaly.Store.
func (s *Store) AddQuarantine(_ context.Context, q anomaly.Quarantine, a anomaly.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.init()
	if _, ok := s.quarantine[q.Ref]; ok {
		return fmt.Errorf("quarantine %s: %w", q.Ref, anomaly.ErrConflict)
	}
	s.quarantine[q.Ref] = clone(q)
	s.audit = append(s.audit, a)
	return nil
}

// Quarantine implements anomaly.Store.
func (s *Store) Quarantine(_ context.Context, ref string) (anomaly.Quarantine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return anomaly.Quarantine{}, s.Err
	}
	s.init()
	q, ok := s.quarantine[ref]
	if !ok {
		return anomaly.Quarantine{}, fmt.Errorf("quarantine %s: %w", ref, anomaly.ErrNotFound)
	}
	return clone(q), nil
}

// ListQuarantine implements anomaly.Store.
func (s *Store) ListQuarantine(_ context.Context, f anomaly.Filter) ([]anomaly.Quarantine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	s.init()
	var out []anomaly.Quarantine
	for _, q := range s.quarantine {
		if (!f.User.IsZero() && q.User != f.User) || (f.State != "" && q.State != f.State) ||
			(!f.Before.IsZero() && !(q.CreatedAt.Before(f.Before) || (q.CreatedAt.Equal(f.Before) && q.Ref < f.BeforeRef))) {
			continue
		}
		out = append(out, clone(q))
	}
	slices.SortFunc(out, func(a, b anomaly.Quarantine) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if a.Ref > b.Ref {
			return -1
		}
		if a.Ref < b.Ref {
			return 1
		}
		return 0
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// DecideQuarantine implements anomaly.Store.
func (s *Store) DecideQuarantine(_ context.Context, d anomaly.Decide, a anomaly.AuditEntry) (anomaly.Quarantine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return anomaly.Quarantine{}, s.Err
	}
	s.init()
	q, ok := s.quarantine[d.Ref]
	if !ok {
		return anomaly.Quarantine{}, fmt.Errorf("quarantine %s: %w", d.Ref, anomaly.ErrNotFound)
	}
	if q.State != anomaly.StateQuarantined {
		return anomaly.Quarantine{}, fmt.Errorf("quarantine %s is %s: %w", d.Ref, q.State, anomaly.ErrConflict)
	}
	q.State, q.DecidedBy, q.DecidedAt, q.Reason = d.To, d.By, d.At, d.Reason
	if d.To == anomaly.StateReleased {
		q.Forwarding = anomaly.Forwarding{State: anomaly.ForwardPending, Next: d.At}
	}
	s.quarantine[d.Ref] = q
	if d.Record != nil {
		s.record(*d.Record)
	}
	s.audit = append(s.audit, a)
	return clone(q), nil
}

// AppendAudit implements anomaly.Store.
func (s *Store) AppendAudit(_ context.Context, a anomaly.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	s.audit = append(s.audit, a)
	return nil
}

// Audit returns the audit entries appended so far, in order.
func (s *Store) Audit() []anomaly.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

// Hub is an in-memory anomaly.Notifier shared by several Detectors in one
// process, standing in for PostgreSQL LISTEN/NOTIFY. The zero Hub is ready
// to use.
type Hub struct {
	mu        sync.Mutex
	listeners map[*func([]byte)]struct{}
}

var _ anomaly.Notifier = (*Hub)(nil)

// Notify implements anomaly.Notifier: it calls every listener's function
// with a copy of payload.
func (h *Hub) Notify(_ context.Context, payload []byte) error {
	if len(payload) > anomaly.MaxNotifyPayload {
		return fmt.Errorf("anomalytest: payload of %d bytes exceeds %d", len(payload), anomaly.MaxNotifyPayload)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for fn := range h.listeners {
		(*fn)(slices.Clone(payload))
	}
	return nil
}

// Listen implements anomaly.Notifier.
func (h *Hub) Listen(ctx context.Context, fn func([]byte)) error {
	h.mu.Lock()
	if h.listeners == nil {
		h.listeners = map[*func([]byte)]struct{}{}
	}
	h.listeners[&fn] = struct{}{}
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	delete(h.listeners, &fn)
	h.mu.Unlock()
	return ctx.Err()
}

// Listeners returns the number of current listeners, so tests can wait for
// a Detector's Run to start listening.
func (h *Hub) Listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.listeners)
}
