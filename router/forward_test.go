package router

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"github.com/metertrust/metertrust/anomaly"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// scriptedTransport answers each Send from a script per attempt, recording
// what it was sent.
type scriptedTransport struct {
	mu      sync.Mutex
	answers []func(msg []byte) ([]byte, error)
	sent    [][]byte
}

func (s *scriptedTransport) Send(_ context.Context, _ smki.EUI, msg []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msg)
	if len(s.answers) == 0 {
		return nil, errors.New("scripted transport: no answer left")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a(msg)
}

// respondAs builds the device's response to a forwarded command, signed
// with key when it is not nil.
func respondAs(t *testing.T, key *ecdsa.PrivateKey, mutate func(*commands.Message)) func([]byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) {
		c, err := commands.Parse(msg)
		if err != nil {
			return nil, err
		}
		r := &commands.Message{CRA: commands.Response, Counter: c.Counter, Originator: c.Recipient, Recipient: c.Originator,
			Code: c.Code, Payload: []byte{0x01, 0x02}}
		if mutate != nil {
			mutate(r)
		}
		return marshal(t, r, key, key != nil), nil
	}
}

type storeEnv struct {
	*world
	db      *store.DB
	st      *Storage
	router  *Router
	anomaly *anomaly.Detector // the router's, on db
	fwd     *Forwarder
	tr      *scriptedTransport
	hub     *Hub
	devDS   *ecdsa.PrivateKey
	clockMu sync.Mutex
}

func (e *storeEnv) now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.world.now
}

func (e *storeEnv) advance(d time.Duration) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.world.now = e.world.now.Add(d)
}

// newStoreEnv wires the router and forwarder on a real store (db, or
// SQLite in a temporary directory when db is nil) with the world's fake
// certificates and detector and the GBCS catalogue.
func newStoreEnv(t testing.TB, db *store.DB) *storeEnv {
	t.Helper()
	ctx := context.Background()
	var err error
	if db == nil {
		if db, err = store.OpenDataDir(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	e := &storeEnv{world: newWorld(t), db: db, st: NewStorage(db.Router()), tr: &scriptedTransport{}, hub: NewHub(), devDS: mustKey(t)}
	var devs []store.RouterDevice
	for _, d := range e.reg.devices {
		devs = append(devs, store.RouterDevice{EUI: d.EUI.String(), KAPublic: d.KeyAgreement.Bytes(),
			DSPublic: ecdsaBytes(t, &e.devDS.PublicKey), Supplier: d.Supplier.String(), NetworkOperator: d.NetworkOperator.String(), UpdatedAt: e.world.now})
	}
	if err := db.Router().PutRouterDevices(ctx, devs...); err != nil {
		t.Fatal(err)
	}
	if err := db.Router().PutConsent(ctx, store.Consent{ID: "consent-1", Device: e.device.String(), User: e.other.eui.String(),
		Scope: []string{"4.8.1"}, NotBefore: e.world.now.Add(-time.Hour), ExpiresAt: e.world.now.Add(24 * time.Hour),
		Evidence: "CIN read back", CreatedBy: "test", CreatedAt: e.world.now}); err != nil {
		t.Fatal(err)
	}
	e.fwd, err = NewForwarder(ForwarderConfig{Outbox: e.st, Transport: e.tr, Registry: e.st, ACB: e.acb, Auditor: e.st,
		Publisher: e.hub, Clock: e.now, Jitter: func() float64 { return 0.5 }, BackoffBase: time.Second, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	e.router, e.anomaly = e.newRouter(t, db)
	return e
}

// newRouter returns a router on db with the world's fake certificates, a
// group admitter and an anomaly detector on db with no thresholds.
func (e *storeEnv) newRouter(t testing.TB, db *store.DB) (*Router, *anomaly.Detector) {
	t.Helper()
	det, err := anomaly.New(context.Background(), anomaly.Config{Store: db.Anomaly(), Now: e.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := NewStorage(db.Router())
	r, err := New(Config{ACB: e.acb, ACBKey: e.acbKA, Catalogue: GBCSCatalogue{}, Registry: st, Certificates: e.certs,
		Ledger: st, Admitter: NewGroupAdmitter(db.Router(), det, 1, time.Minute, e.now), Auditor: st, Notify: e.fwd.Notify, Clock: e.now})
	if err != nil {
		t.Fatal(err)
	}
	return r, det
}

func ecdsaBytes(t testing.TB, k *ecdsa.PublicKey) []byte {
	t.Helper()
	e, err := k.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}

func (e *storeEnv) submit(t *testing.T, counter uint64, code commands.MessageCode, sign bool) Receipt {
	t.Helper()
	rc, err := e.router.Submit(context.Background(), e.supplier.caller(), command(t, e.supplier, e.device, code, counter, sign))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return rc
}

func TestForwarder(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		code      commands.MessageCode
		answers   func(e *storeEnv) []func([]byte) ([]byte, error)
		drains    int
		wantState string
		wantKind  string
		wantSent  int
	}{
		{"critical command, signed response", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, e.devDS, nil)}
		}, 1, store.CommandResponded, DeliveryResponse, 1},
		{"non-critical command, unsigned response", codeRead, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, nil, nil)}
		}, 1, store.CommandResponded, DeliveryResponse, 1},
		{"transient failures then success", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			down := func([]byte) ([]byte, error) { return nil, errors.New("connection reset") }
			return []func([]byte) ([]byte, error){down, down, respondAs(t, e.devDS, nil)}
		}, 3, store.CommandResponded, DeliveryResponse, 3},
		{"gives up after MaxAttempts", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			down := func([]byte) ([]byte, error) { return nil, errors.New("connection reset") }
			return []func([]byte) ([]byte, error){down, down, down}
		}, 3, store.CommandFailed, DeliveryFailure, 3},
		{"device refusal is final", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){func([]byte) ([]byte, error) { return nil, fmt.Errorf("%w: bad MAC", ErrDeviceRefused) }}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"unsigned response to a critical command refused", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, nil, nil)}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"response signed by another key refused", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, e.supplier.ds, nil)}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"response with another counter refused", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, e.devDS, func(m *commands.Message) { m.Counter++ })}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"response to someone else refused", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){respondAs(t, e.devDS, func(m *commands.Message) { m.Recipient = e.stranger.eui })}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"device reports a replay on a retry: executed before, response lost", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){func([]byte) ([]byte, error) {
				return nil, fmt.Errorf("%w: %w: counter not above the last", ErrDeviceRefused, ErrDeviceReplay)
			}}
		}, 1, store.CommandForwarded, "", 1},
		{"response in general block transfer segments, reassembled", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){segmentedAnswer(t, respondAs(t, e.devDS, nil))}
		}, 1, store.CommandResponded, DeliveryResponse, 1},
		{"segments that do not reassemble refused", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			whole := segmentedAnswer(t, respondAs(t, e.devDS, nil))
			return []func([]byte) ([]byte, error){func(msg []byte) ([]byte, error) {
				b, err := whole(msg)
				return b[:len(b)-1], err
			}}
		}, 1, store.CommandFailed, DeliveryFailure, 1},
		{"asynchronous transport: forwarded, awaiting response", codeDisable, func(e *storeEnv) []func([]byte) ([]byte, error) {
			return []func([]byte) ([]byte, error){func([]byte) ([]byte, error) { return nil, nil }}
		}, 1, store.CommandForwarded, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newStoreEnv(t, nil)
			e.tr.answers = tt.answers(e)
			sub := e.hub.Subscribe(t.Context(), e.supplier.eui)
			rc := e.submit(t, 1, tt.code, tt.code == codeDisable)
			for i := range tt.drains {
				n, err := e.fwd.Drain(ctx)
				if err != nil || n != 1 {
					t.Fatalf("drain %d: %d, %v", i, n, err)
				}
				e.advance(10 * time.Minute) // past any backoff
			}
			if n, _ := e.fwd.Drain(ctx); n != 0 {
				t.Fatalf("outbox not empty: %d more claimed", n)
			}
			if len(e.tr.sent) != tt.wantSent {
				t.Fatalf("sent %d times, want %d", len(e.tr.sent), tt.wantSent)
			}
			c, err := e.st.Command(ctx, rc.ID)
			if err != nil || c.State != tt.wantState {
				t.Fatalf("command %+v, %v; want state %s", c, err, tt.wantState)
			}
			ds, err := e.st.Deliveries(ctx, e.supplier.eui, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantKind == "" {
				if len(ds) != 0 {
					t.Fatalf("deliveries %+v, want none", ds)
				}
				return
			}
			if len(ds) != 1 || ds[0].Kind != tt.wantKind || ds[0].CommandID != rc.ID {
				t.Fatalf("deliveries %+v, want one %s", ds, tt.wantKind)
			}
			select {
			case <-sub:
			default:
				t.Fatal("subscriber not woken")
			}
			if other, _ := e.st.Deliveries(ctx, e.stranger.eui, 0, 0); len(other) != 0 {
				t.Fatalf("delivered to the wrong caller: %+v", other)
			}
		})
	}
}

// TestForwarderAsyncResponse: a response arriving later is correlated by
// (target, originator, counter), checked, and delivered once; a forged or
// uncorrelated one is refused without cancelling the command.
func TestForwarderAsyncResponse(t *testing.T) {
	ctx := context.Background()
	e := newStoreEnv(t, nil)
	e.tr.answers = []func([]byte) ([]byte, error){func([]byte) ([]byte, error) { return nil, nil }}
	rc := e.submit(t, 7, codeDisable, true)
	if _, err := e.fwd.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	fwd, _ := e.st.Command(ctx, rc.ID)
	forged, _ := respondAs(t, e.supplier.ds, nil)(e.mustMessage(t, rc.ID))
	if err := e.fwd.Response(ctx, forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged response: %v", err)
	}
	stray, _ := respondAs(t, e.devDS, func(m *commands.Message) { m.Counter = 99 })(e.mustMessage(t, rc.ID))
	if err := e.fwd.Response(ctx, stray); !errors.Is(err, ErrUncorrelated) {
		t.Fatalf("stray response: %v", err)
	}
	if err := e.fwd.Response(ctx, []byte{0xDF, 0x09}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage response: %v", err)
	}
	if c, _ := e.st.Command(ctx, rc.ID); c.State != store.CommandForwarded {
		t.Fatalf("state %s after refused responses, want forwarded (was %s)", c.State, fwd.State)
	}
	good, _ := respondAs(t, e.devDS, nil)(e.mustMessage(t, rc.ID))
	for range 2 { // the duplicate is ignored
		if err := e.fwd.Response(ctx, good); err != nil {
			t.Fatalf("response: %v", err)
		}
	}
	ds, _ := e.st.Deliveries(ctx, e.supplier.eui, 0, 0)
	if len(ds) != 1 || ds[0].Kind != DeliveryResponse {
		t.Fatalf("deliveries %+v", ds)
	}
}

func (e *storeEnv) mustMessage(t *testing.T, id string) []byte {
	t.Helper()
	c, err := e.db.Router().RouterCommand(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Message
}

// TestForwarderRestart: commands accepted by one process and never sent are
// forwarded by the next, in counter order, and a lease held by a dead
// worker expires.
func TestForwarderRestart(t *testing.T) {
	ctx := context.Background()
	e := newStoreEnv(t, nil)
	targets := e.registerDevices(t, 5)
	for _, target := range targets {
		for j := range uint64(2) {
			e.submit2(t, target, 10+j)
		}
	}
	// A worker claims every pair's head, then dies before answering.
	if items, err := e.st.Claim(ctx, e.now(), time.Minute, 100); err != nil || len(items) != 5 {
		t.Fatalf("claim: %d, %v", len(items), err)
	}
	fresh, err := NewForwarder(ForwarderConfig{Outbox: e.st, Transport: e.tr, Registry: e.st, Auditor: e.st, ACB: e.acb, Clock: e.now})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := fresh.Drain(ctx); n != 0 {
		t.Fatalf("claimed %d leased commands", n)
	}
	e.advance(2 * time.Minute)
	for range 10 {
		e.tr.answers = append(e.tr.answers, respondAs(t, nil, nil))
	}
	for round, want := range []int{5, 5, 0} {
		if n, err := fresh.Drain(ctx); n != want || err != nil {
			t.Fatalf("round %d after lease expiry: %d, %v; want %d", round, n, err, want)
		}
	}
	if ds, _ := e.st.Deliveries(ctx, e.supplier.eui, 0, 0); len(ds) != 10 {
		t.Fatalf("%d deliveries, want 10", len(ds))
	}
	// Each device saw its commands in counter order.
	seen := map[smki.EUI]uint64{}
	for _, raw := range e.tr.sent {
		m, err := commands.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if m.Counter <= seen[m.Recipient] && seen[m.Recipient] != 0 {
			t.Fatalf("device %s got counter %d after %d", m.Recipient, m.Counter, seen[m.Recipient])
		}
		seen[m.Recipient] = m.Counter
	}
}

func (e *storeEnv) submit2(t *testing.T, target smki.EUI, counter uint64) Receipt {
	t.Helper()
	rc, err := e.router.Submit(context.Background(), e.supplier.caller(), command(t, e.supplier, target, codeRead, counter, false))
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return rc
}

func TestBackoff(t *testing.T) {
	f, err := NewForwarder(ForwarderConfig{Outbox: &Storage{}, Transport: &scriptedTransport{}, Registry: &fakeRegistry{}, Auditor: &fakeAuditor{},
		BackoffBase: time.Second, BackoffMax: time.Minute, Jitter: func() float64 { return 0.999999 }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		attempts int
		min, max time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{10, 30 * time.Second, time.Minute},
		{1000, 30 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempts), func(t *testing.T) {
			d := f.backoff(tt.attempts)
			if d < tt.min || d > tt.max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tt.attempts, d, tt.min, tt.max)
			}
		})
	}
}

// segmentedAnswer returns answer's response as general block transfer
// segments of 30 bytes of the message each, back to back, as a meter sends
// a response too large for one message.
func segmentedAnswer(t *testing.T, answer func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	return func(msg []byte) ([]byte, error) {
		resp, err := answer(msg)
		if err != nil {
			return nil, err
		}
		segs, err := commands.Segment(resp, 30)
		if err != nil || len(segs) < 2 {
			t.Fatalf("segmenting: %d segments, %v", len(segs), err)
		}
		return bytes.Join(segs, nil), nil
	}
}
