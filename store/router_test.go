package store

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

var (
	rtT0       = time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	rtSupplier = "1111111111111111"
	rtDevice   = "AAAAAAAAAAAAAAAA"
)

func rtKey(t *testing.T) []byte {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func rtCommand(id string, counter uint64) RouterCommand {
	return RouterCommand{ID: id, Caller: rtSupplier, CallerRole: "IS", Originator: rtSupplier, Target: rtDevice,
		Counter: counter, Code: 0x0050, ServiceRef: "7.2", Critical: true, Message: []byte{0xDD, 1, 2, 3}, AcceptedAt: rtT0}
}

func TestRouterDevices(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			ctx := context.Background()
			ka := rtKey(t)
			d := RouterDevice{EUI: rtDevice, KAPublic: ka, Supplier: rtSupplier, NetworkOperator: "3333333333333333", UpdatedAt: rtT0}
			if err := db.Router().PutRouterDevices(ctx, d); err != nil {
				t.Fatal(err)
			}
			got, err := db.Router().RouterDevice(ctx, smki.MustParseEUI(rtDevice))
			if err != nil || !bytes.Equal(got.KAPublic, ka) || got.Supplier != rtSupplier || got.DSPublic != nil || !got.UpdatedAt.Equal(rtT0) {
				t.Fatalf("RouterDevice = %+v, %v", got, err)
			}
			// A change of supplier replaces the row.
			d.Supplier, d.DSPublic, d.UpdatedAt = "2222222222222222", rtKey(t), rtT0.Add(time.Hour)
			if err := db.Router().PutRouterDevices(ctx, d); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.Router().RouterDevice(ctx, smki.MustParseEUI(rtDevice)); got.Supplier != "2222222222222222" || got.DSPublic == nil {
				t.Fatalf("after change of supplier: %+v", got)
			}
			if _, err := db.Router().RouterDevice(ctx, smki.MustParseEUI("0000000000000001")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown device: %v", err)
			}
			bad := []RouterDevice{
				{EUI: "xyz", KAPublic: ka, UpdatedAt: rtT0},
				{EUI: rtDevice, KAPublic: ka[:64], UpdatedAt: rtT0},
				{EUI: rtDevice, KAPublic: ka, DSPublic: []byte{4}, UpdatedAt: rtT0},
				{EUI: rtDevice, KAPublic: ka, Supplier: "not-an-eui", UpdatedAt: rtT0},
				{EUI: rtDevice, KAPublic: ka},
			}
			for i, d := range bad {
				if err := db.Router().PutRouterDevices(ctx, d); !errors.Is(err, ErrInvalid) {
					t.Errorf("bad device %d: %v, want ErrInvalid", i, err)
				}
			}
		})
	}
}

func TestConsents(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			ctx := context.Background()
			c := Consent{ID: "c1", Device: rtDevice, User: "4444444444444444", Scope: []string{"4.8.1", "4.17"},
				NotBefore: rtT0, ExpiresAt: rtT0.Add(24 * time.Hour), Evidence: "CIN read back", CreatedBy: "4444444444444444", CreatedAt: rtT0}
			if err := db.Router().PutConsent(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := db.Router().PutConsent(ctx, c); !errors.Is(err, ErrExists) {
				t.Fatalf("duplicate consent: %v", err)
			}
			tests := []struct {
				name   string
				device string
				user   string
				ref    string
				at     time.Time
				want   bool
			}{
				{"in scope and live", rtDevice, c.User, "4.17", rtT0.Add(time.Hour), true},
				{"out of scope", rtDevice, c.User, "4.8.2", rtT0.Add(time.Hour), false},
				{"before start", rtDevice, c.User, "4.17", rtT0.Add(-time.Second), false},
				{"expired", rtDevice, c.User, "4.17", rtT0.Add(24 * time.Hour), false},
				{"another user", rtDevice, "5555555555555555", "4.17", rtT0.Add(time.Hour), false},
				{"another device", "BBBBBBBBBBBBBBBB", c.User, "4.17", rtT0.Add(time.Hour), false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, ok, err := db.Router().LiveConsent(ctx, smki.MustParseEUI(tt.device), smki.MustParseEUI(tt.user), tt.ref, tt.at)
					if err != nil || ok != tt.want || (ok && got.ID != "c1") {
						t.Fatalf("LiveConsent = %+v, %t, %v; want %t", got, ok, err, tt.want)
					}
				})
			}
			if err := db.Router().RevokeConsent(ctx, "c1", "", "why", rtT0); !errors.Is(err, ErrInvalid) {
				t.Fatalf("revocation by nobody: %v", err)
			}
			if err := db.Router().RevokeConsent(ctx, "c1", "op", " ", rtT0); !errors.Is(err, ErrInvalid) {
				t.Fatalf("revocation without a reason: %v", err)
			}
			if err := db.Router().RevokeConsent(ctx, "c1", "operator alice", "consumer asked by phone", rtT0.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, err := db.Router().Consent(ctx, "c1"); err != nil || !got.RevokedAt.Equal(rtT0.Add(2*time.Hour)) ||
				got.RevokedBy != "operator alice" || got.RevokeReason != "consumer asked by phone" || got.Live(rtT0.Add(3*time.Hour)) ||
				!slices.Equal(got.Scope, c.Scope) || got.Evidence != c.Evidence {
				t.Fatalf("revoked consent = %+v, %v", got, err)
			}
			if _, err := db.Router().Consent(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown consent: %v", err)
			}
			if _, ok, _ := db.Router().LiveConsent(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(c.User), "4.17", rtT0.Add(3*time.Hour)); ok {
				t.Fatal("revoked consent still live")
			}
			if err := db.Router().RevokeConsent(ctx, "c1", "op", "again", rtT0); !errors.Is(err, ErrConflict) {
				t.Fatalf("second revocation: %v", err)
			}
			if err := db.Router().RevokeConsent(ctx, "nope", "op", "why", rtT0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown consent: %v", err)
			}
			if err := db.Router().PutConsent(ctx, Consent{ID: "c2", Device: rtDevice, User: c.User, Scope: []string{"4.17"},
				NotBefore: rtT0, ExpiresAt: rtT0.Add(time.Hour), CreatedBy: "x", CreatedAt: rtT0}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("consent without evidence: %v", err)
			}
		})
	}
}

// TestConsentList lists consents by user, device and liveness, and checks
// that a change of supplier (the device's row replaced) keeps the
// consumer's consents: they belong to the consumer, not the supplier.
func TestConsentList(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			ctx := context.Background()
			ou, ou2, dev2 := "4444444444444444", "5555555555555555", "BBBBBBBBBBBBBBBB"
			if err := db.Router().PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: rtSupplier, UpdatedAt: rtT0}); err != nil {
				t.Fatal(err)
			}
			put := func(id, device, user string, created time.Time, valid time.Duration) {
				t.Helper()
				if err := db.Router().PutConsent(ctx, Consent{ID: id, Device: device, User: user, Scope: []string{"4.8.1"},
					NotBefore: created, ExpiresAt: created.Add(valid), Evidence: "CIN read back", CreatedBy: user, CreatedAt: created}); err != nil {
					t.Fatal(err)
				}
			}
			put("a", rtDevice, ou, rtT0, 24*time.Hour)
			put("b", dev2, ou, rtT0.Add(time.Minute), time.Hour)
			put("c", rtDevice, ou2, rtT0.Add(2*time.Minute), 24*time.Hour)
			put("d", rtDevice, ou, rtT0.Add(3*time.Minute), 24*time.Hour)
			if err := db.Router().RevokeConsent(ctx, "d", ou, "no longer needed", rtT0.Add(4*time.Minute)); err != nil {
				t.Fatal(err)
			}
			// The change of supplier.
			if err := db.Router().PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: rtKey(t), Supplier: "2222222222222222", UpdatedAt: rtT0.Add(5 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
			ids := func(f ConsentFilter) []string {
				t.Helper()
				cs, err := db.Router().Consents(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, c := range cs {
					out = append(out, c.ID)
				}
				return out
			}
			tests := []struct {
				name string
				f    ConsentFilter
				want []string
			}{
				{"all", ConsentFilter{}, []string{"a", "b", "c", "d"}},
				{"one user", ConsentFilter{User: smki.MustParseEUI(ou)}, []string{"a", "b", "d"}},
				{"one user, one device", ConsentFilter{User: smki.MustParseEUI(ou), Device: smki.MustParseEUI(rtDevice)}, []string{"a", "d"}},
				{"live", ConsentFilter{User: smki.MustParseEUI(ou), LiveAt: rtT0.Add(2 * time.Hour)}, []string{"a"}},
				{"limit", ConsentFilter{Limit: 2}, []string{"a", "b"}},
			}
			for _, tt := range tests {
				if got := ids(tt.f); !slices.Equal(got, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
				}
			}
			if _, err := db.Router().Consents(ctx, ConsentFilter{Limit: MaxLimit + 1}); !errors.Is(err, ErrInvalid) {
				t.Errorf("limit over MaxLimit: %v", err)
			}
			if _, ok, err := db.Router().LiveConsent(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(ou), "4.8.1", rtT0.Add(time.Hour)); !ok || err != nil {
				t.Errorf("consent after the change of supplier: %t, %v", ok, err)
			}
		})
	}
}

func TestRecordCommandCounters(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			ctx := context.Background()
			if _, ok, err := db.Router().LastCounter(ctx, smki.MustParseEUI(rtSupplier), smki.MustParseEUI(rtDevice)); ok || err != nil {
				t.Fatalf("LastCounter on empty store: %t, %v", ok, err)
			}
			// A counter above 2^63 must order correctly too.
			big := uint64(1)<<63 + 5
			steps := []struct {
				id      string
				counter uint64
				wantErr error
			}{
				{"a", 10, nil},
				{"b", 10, ErrStaleCounter},
				{"c", 9, ErrStaleCounter},
				{"d", 11, nil},
				{"e", big, nil},
				{"f", 12, ErrStaleCounter},
				{"g", big + 1, nil},
				{"h", big, ErrStaleCounter},
				{"d", big + 2, ErrExists},
			}
			for _, s := range steps {
				err := db.Router().RecordCommand(ctx, rtCommand(s.id, s.counter), nil)
				if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
					t.Fatalf("RecordCommand(%s, %d) = %v, want %v", s.id, s.counter, err, s.wantErr)
				}
			}
			last, ok, err := db.Router().LastCounter(ctx, smki.MustParseEUI(rtSupplier), smki.MustParseEUI(rtDevice))
			if err != nil || !ok || last != big+1 {
				t.Fatalf("LastCounter = %d, %t, %v; want %d", last, ok, err, big+1)
			}
			c, err := db.Router().RouterCommand(ctx, "e")
			if err != nil || c.Counter != big || c.State != CommandAccepted || !c.Critical || c.Code != 0x0050 || !c.AcceptedAt.Equal(rtT0) {
				t.Fatalf("RouterCommand = %+v, %v", c, err)
			}
			if _, err := db.Router().RouterCommand(ctx, "b"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("refused command stored: %v", err)
			}
			if n, err := db.Router().OutboxDepth(ctx); err != nil || n != 4 {
				t.Fatalf("OutboxDepth = %d, %v; want 4", n, err)
			}
			if err := db.Router().RecordCommand(ctx, RouterCommand{ID: "x", Caller: "bad"}, nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("invalid command: %v", err)
			}
		})
	}
}

// TestRecordCommandConcurrent races many writers, some through separate
// handles (separate processes on PostgreSQL), on one (originator, target):
// the counter ends at the maximum and exactly one command per counter value
// is stored.
func TestRecordCommandConcurrent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			dbs := []*DB{open(t), open(t)}
			ctx := context.Background()
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted := map[uint64]int{}
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					counter := uint64(i%10 + 1)
					err := dbs[i%2].Router().RecordCommand(ctx, rtCommand(fmt.Sprintf("cmd-%d", i), counter), nil)
					if err != nil && !errors.Is(err, ErrStaleCounter) {
						t.Errorf("RecordCommand: %v", err)
						return
					}
					if err == nil {
						mu.Lock()
						accepted[counter]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for c, n := range accepted {
				if n != 1 {
					t.Errorf("counter %d accepted %d times", c, n)
				}
			}
			if accepted[10] != 1 {
				t.Errorf("the highest counter was not accepted: %v", accepted)
			}
			last, _, _ := dbs[0].Router().LastCounter(ctx, smki.MustParseEUI(rtSupplier), smki.MustParseEUI(rtDevice))
			if last != 10 {
				t.Fatalf("last counter %d, want 10", last)
			}
			n, _ := dbs[0].Router().OutboxDepth(ctx)
			if n != int64(len(accepted)) {
				t.Fatalf("outbox %d rows, %d accepted", n, len(accepted))
			}
		})
	}
}

func TestOutboxAndDeliveries(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			db := open(t)
			ctx := context.Background()
			// Three targets, so that all three rows are due at once (a
			// pair's rows go one at a time: TestClaimOutboxOrder).
			for i, target := range []string{"AAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAA2", rtDevice} {
				c := rtCommand(fmt.Sprintf("c%d", i), uint64(i+1))
				c.Target = target
				if err := db.Router().RecordCommand(ctx, c, nil); err != nil {
					t.Fatal(err)
				}
			}
			lease := time.Minute
			// Two workers claim: they never get the same row.
			got1, err := db.Router().ClaimOutbox(ctx, rtT0, lease, 2)
			if err != nil || len(got1) != 2 {
				t.Fatalf("claim 1: %d, %v", len(got1), err)
			}
			got2, err := open(t).Router().ClaimOutbox(ctx, rtT0, lease, 10)
			if err != nil || len(got2) != 1 {
				t.Fatalf("claim 2: %d, %v", len(got2), err)
			}
			if got2[0].Command.ID == got1[0].Command.ID || got2[0].Command.ID == got1[1].Command.ID {
				t.Fatal("one row claimed twice")
			}
			if got, _ := db.Router().ClaimOutbox(ctx, rtT0.Add(time.Second), lease, 10); len(got) != 0 {
				t.Fatalf("leased rows claimed again: %d", len(got))
			}
			// A failed attempt is retried later; an expired lease is claimable.
			id := got1[0].Command.ID
			if err := db.Router().RetryOutbox(ctx, id, rtT0.Add(10*time.Second), "connection refused"); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.Router().ClaimOutbox(ctx, rtT0.Add(5*time.Second), lease, 10); len(got) != 0 {
				t.Fatalf("claimed before its retry time: %d", len(got))
			}
			again, err := db.Router().ClaimOutbox(ctx, rtT0.Add(2*lease), lease, 10)
			if err != nil || len(again) != 3 {
				t.Fatalf("after lease expiry: %d, %v; want 3", len(again), err)
			}
			for _, it := range again {
				if it.Command.ID == id && it.Attempts != 1 {
					t.Fatalf("attempts %d, want 1", it.Attempts)
				}
			}
			// Forwarded, then responded: the outbox empties and the caller
			// gets deliveries numbered 1, 2.
			if err := db.Router().MarkForwarded(ctx, "c0", rtT0); err != nil {
				t.Fatal(err)
			}
			if err := db.Router().MarkForwarded(ctx, "c0", rtT0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second MarkForwarded: %v", err)
			}
			d1, err := db.Router().CompleteCommand(ctx, "c0", CommandResponded, []byte{0xDD, 9}, "", Delivery{Caller: rtSupplier, Kind: DeliveryResponse, Body: []byte{0xDD, 9}, At: rtT0})
			if err != nil || d1.Seq != 1 || d1.CommandID != "c0" {
				t.Fatalf("CompleteCommand = %+v, %v", d1, err)
			}
			if _, err := db.Router().CompleteCommand(ctx, "c0", CommandResponded, []byte{1}, "", Delivery{Caller: rtSupplier, Kind: DeliveryResponse, At: rtT0}); !errors.Is(err, ErrConflict) {
				t.Fatalf("duplicate response: %v", err)
			}
			d2, err := db.Router().CompleteCommand(ctx, "c1", CommandFailed, nil, "gave up", Delivery{Caller: rtSupplier, Kind: DeliveryFailure, Detail: "gave up", At: rtT0})
			if err != nil || d2.Seq != 2 {
				t.Fatalf("CompleteCommand(failed) = %+v, %v", d2, err)
			}
			if _, err := db.Router().CompleteCommand(ctx, "nope", CommandFailed, nil, "", Delivery{Caller: rtSupplier, Kind: DeliveryFailure, At: rtT0}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown command: %v", err)
			}
			if n, _ := db.Router().OutboxDepth(ctx); n != 1 {
				t.Fatalf("outbox depth %d, want 1", n)
			}
			c0, _ := db.Router().RouterCommand(ctx, "c0")
			if c0.State != CommandResponded || !bytes.Equal(c0.Response, []byte{0xDD, 9}) {
				t.Fatalf("command after response: %+v", c0)
			}
			ds, err := db.Router().Deliveries(ctx, smki.MustParseEUI(rtSupplier), 0, 0)
			if err != nil || len(ds) != 2 || ds[0].Seq != 1 || ds[1].Kind != DeliveryFailure {
				t.Fatalf("Deliveries = %+v, %v", ds, err)
			}
			if ds, _ := db.Router().Deliveries(ctx, smki.MustParseEUI(rtSupplier), 1, 0); len(ds) != 1 || ds[0].Seq != 2 {
				t.Fatalf("Deliveries after 1 = %+v", ds)
			}
			if ds, _ := db.Router().Deliveries(ctx, smki.MustParseEUI("9999999999999999"), 0, 0); len(ds) != 0 {
				t.Fatalf("another caller sees %d deliveries", len(ds))
			}
			found, err := db.Router().FindForwardedCommand(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(rtSupplier), 3)
			if err != nil || found.ID != "c2" {
				t.Fatalf("FindForwardedCommand = %+v, %v", found, err)
			}
			if _, err := db.Router().FindForwardedCommand(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(rtSupplier), 99); !errors.Is(err, ErrNotFound) {
				t.Fatalf("uncorrelated response: %v", err)
			}
			if _, err := db.Router().AddDelivery(ctx, Delivery{Caller: rtSupplier, Kind: "gossip", At: rtT0}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad delivery kind: %v", err)
			}
		})
	}
}

// TestRecordCommandAudit: the audit entry commits with the command, and a
// stale counter leaves neither.
func TestRecordCommandAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		ev := func(id string) *AuditEvent {
			return &AuditEvent{Time: rtT0, Actor: rtSupplier + "/IS", Action: "router.command.accepted", Object: id, Outcome: OutcomeSuccess}
		}
		if err := db.Router().RecordCommand(ctx, rtCommand("a", 5), ev("a")); err != nil {
			t.Fatal(err)
		}
		if err := db.Router().RecordCommand(ctx, rtCommand("b", 5), ev("b")); !errors.Is(err, ErrStaleCounter) {
			t.Fatalf("stale: %v", err)
		}
		if err := db.Router().RecordCommand(ctx, rtCommand("c", 6), &AuditEvent{Action: "x"}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad audit entry: %v", err)
		}
		if _, err := db.Router().RouterCommand(ctx, "c"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("command stored although its audit entry was refused: %v", err)
		}
		evs, err := db.AuditEvents(ctx, 0, 0)
		if err != nil || len(evs) != 1 || evs[0].Object != "a" {
			t.Fatalf("audit log %+v, %v", evs, err)
		}
		if last, _, _ := db.Router().LastCounter(ctx, smki.MustParseEUI(rtSupplier), smki.MustParseEUI(rtDevice)); last != 5 {
			t.Fatalf("counter %d after refused writes, want 5", last)
		}
		if _, err := db.VerifyAudit(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAdmit: one transaction for a group, each command with its own
// outcome: stale counters, repeated IDs, invalid commands, a threshold
// breach and a failed seal refuse that command alone; the forwarder's marks
// go in the same transaction; two commands of one pair refuse the group.
func TestAdmit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if err := db.Router().RecordCommand(ctx, rtCommand("seed", 10), nil); err != nil {
			t.Fatal(err)
		}
		onTarget := func(id, target string, counter uint64) RouterCommand {
			c := rtCommand(id, counter)
			c.Target = target
			return c
		}
		screened := func(limit int64) anomaly.Prepared {
			return anomaly.Prepared{Event: anomaly.Event{RequestID: "r", Keys: []string{"us/test/7.2"}, At: rtT0},
				Counters: []anomaly.Counter{{Key: "us/test/7.2", Since: rtT0.Add(-time.Hour), Limit: limit}}}
		}
		cs := []Admission{
			{Command: rtCommand("stale", 10)},
			{Command: onTarget("seed", "FFFFFFFFFFFFFFFF", 50)}, // an ID already stored
			{Command: onTarget("ok", "BBBBBBBBBBBBBBBB", 1)},
			{Command: RouterCommand{ID: "invalid"}},
			{Command: onTarget("breach", "CCCCCCCCCCCCCCCC", 1), Screen: true, Prepared: screened(0)},
			{Command: onTarget("counted", "DDDDDDDDDDDDDDDD", 1), Screen: true, Prepared: screened(5)},
			{Command: onTarget("unsealed", "EEEEEEEEEEEEEEEE", 1)},
		}
		for i := range cs {
			c := cs[i].Command
			cs[i].Audit = &AuditEvent{Time: rtT0, Actor: "router", Action: "router.command.accepted", Object: c.ID, Outcome: OutcomeSuccess}
			cs[i].Command.Message = nil
		}
		if err := db.Router().RecordCommand(ctx, rtCommand("to-forward", 11), nil); err != nil {
			t.Fatal(err)
		}
		marks := []ForwardedCommand{{ID: "to-forward", At: rtT0, Audit: &AuditEvent{Time: rtT0, Actor: "router",
			Action: "router.command.forwarded", Object: "to-forward", Outcome: OutcomeSuccess}, Scrub: []byte{0xDD, 0xAA}}, {ID: "gone", At: rtT0}}
		res, markErrs, err := db.Router().Admit(ctx, AdmitGroup{Items: cs, Forwarded: marks,
			Seal: func(i int) ([]byte, error) {
				if cs[i].Command.ID == "unsealed" {
					return nil, errors.New("no MAC")
				}
				return []byte{0xDD, byte(i)}, nil
			},
			Breach: func(i int, out anomaly.Outcome) (anomaly.Quarantine, anomaly.AuditEntry, anomaly.Decision, error) {
				q := anomaly.Quarantine{Ref: "Q-1", CommandID: cs[i].Command.ID, User: smki.MustParseEUI(rtSupplier),
					ServiceRef: "7.2", Target: smki.MustParseEUI("CCCCCCCCCCCCCCCC"), Kind: anomaly.KindUserThreshold,
					Command: []byte{1}, At: rtT0, State: anomaly.StateQuarantined, CreatedAt: rtT0}
				return q, anomaly.AuditEntry{Time: rtT0, Actor: "anomaly-detector", Action: "anomaly.quarantine", Object: "Q-1",
					Outcome: OutcomeSuccess}, anomaly.Decision{Quarantined: true, Ref: "Q-1"}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		want := []error{ErrStaleCounter, ErrExists, nil, ErrInvalid, nil, nil}
		for i, w := range want {
			if (w == nil) != (res[i].Err == nil) || (w != nil && !errors.Is(res[i].Err, w)) {
				t.Errorf("command %d (%s): %v, want %v", i, cs[i].Command.ID, res[i].Err, w)
			}
		}
		if !res[4].Quarantined || res[5].Quarantined || res[6].Err == nil || res[6].Err.Error() != "no MAC" {
			t.Fatalf("breach %+v, counted %+v, unsealed %+v", res[4], res[5], res[6])
		}
		if markErrs[0] != nil || !errors.Is(markErrs[1], ErrNotFound) {
			t.Fatalf("marks: %v", markErrs)
		}
		if c, err := db.Router().RouterCommand(ctx, "to-forward"); err != nil || !bytes.Equal(c.Message, []byte{0xDD, 0xAA}) {
			t.Fatalf("the forwarded command's message %x, %v; want it scrubbed in the group", c.Message, err)
		}
		if _, ok, _ := db.Router().LastCounter(ctx, smki.MustParseEUI(rtSupplier), smki.MustParseEUI("CCCCCCCCCCCCCCCC")); ok {
			t.Fatal("a quarantined command advanced its counter")
		}
		if n, _ := db.Router().OutboxDepth(ctx); n != 3 { // seed, ok, counted
			t.Fatalf("outbox %d, want 3", n)
		}
		counts, err := db.Anomaly().CountEvents(ctx, []anomaly.Counter{{Key: "us/test/7.2", Since: rtT0.Add(-time.Hour)}})
		if err != nil || counts[0] != 1 {
			t.Fatalf("counted %v, %v; want the one screened command that passed", counts, err)
		}
		if q, err := db.Anomaly().Quarantine(ctx, "Q-1"); err != nil || q.CommandID != "breach" {
			t.Fatalf("quarantine %+v, %v", q, err)
		}
		evs, _ := db.AuditEvents(ctx, 0, 0)
		if len(evs) != 4 { // forwarded, quarantine, ok, counted
			t.Fatalf("%d audit entries, want 4", len(evs))
		}
		if _, err := db.VerifyAudit(ctx); err != nil {
			t.Fatal(err)
		}
		_, _, err = db.Router().Admit(ctx, AdmitGroup{Items: []Admission{{Command: rtCommand("p1", 60)}, {Command: rtCommand("p2", 61)}},
			Seal: func(int) ([]byte, error) { return []byte{1}, nil }})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("two commands of one pair: %v", err)
		}
	})
}

func TestCINChallenges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		user := "4444444444444444"
		is := func(want string) func([]byte, string) bool {
			return func(h []byte, _ string) bool { return string(h) == want }
		}
		if err := db.Router().PutCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), []byte("h1"), "cmd-1", rtT0, rtT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name  string
			guess string
			at    time.Time
			want  error
		}{
			{"wrong", "nope", rtT0, ErrCINMismatch},
			{"right", "h1", rtT0, nil},
			{"consumed", "h1", rtT0, ErrNotFound},
		}
		for _, s := range steps {
			if err := db.Router().ConsumeCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), is(s.guess), s.at); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.want)
			}
		}
		// Attempts run out, and a new challenge resets them.
		if err := db.Router().PutCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), []byte("h2"), "cmd-2", rtT0, rtT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= MaxCINAttempts; i++ {
			if err := db.Router().ConsumeCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), is("guess"), rtT0); !errors.Is(err, ErrCINMismatch) {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		if err := db.Router().ConsumeCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), is("h2"), rtT0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after the last attempt: %v", err)
		}
		// Expiry.
		if err := db.Router().PutCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), []byte("h3"), "cmd-3", rtT0, rtT0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := db.Router().ConsumeCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), is("h3"), rtT0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired: %v", err)
		}
		if err := db.Router().PutCINChallenge(ctx, smki.MustParseEUI(rtDevice), smki.MustParseEUI(user), nil, "c", rtT0, rtT0.Add(time.Minute)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no hash: %v", err)
		}
	})
}

// TestClaimOutboxOrder: a pair's commands are claimed one at a time, in
// counter order, even while the head waits for a retry; other pairs are not
// held up; two claimers never share a pair's head.
func TestClaimOutboxOrder(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			db := open(t)
			ctx := context.Background()
			for i, c := range []RouterCommand{rtCommand("a1", 1), rtCommand("a2", 2), rtCommand("a3", 3)} {
				if err := db.Router().RecordCommand(ctx, c, nil); err != nil {
					t.Fatalf("%d: %v", i, err)
				}
			}
			other := rtCommand("b1", 1)
			other.Target = "BBBBBBBBBBBBBBBB"
			if err := db.Router().RecordCommand(ctx, other, nil); err != nil {
				t.Fatal(err)
			}
			ids := func(items []OutboxItem) []string {
				var out []string
				for _, it := range items {
					out = append(out, it.Command.ID)
				}
				slices.Sort(out)
				return out
			}
			claim := func(d *DB, at time.Time) []string {
				items, err := d.Router().ClaimOutbox(ctx, at, time.Minute, 10)
				if err != nil {
					t.Fatal(err)
				}
				return ids(items)
			}
			first, second := claim(db, rtT0), claim(open(t), rtT0)
			if got := append(first, second...); !slices.Equal(got, []string{"a1", "b1"}) {
				t.Fatalf("claims %v and %v, want the head of each pair [a1 b1]", first, second)
			}
			// a1 fails and backs off: a2 must still wait behind it.
			if err := db.Router().RetryOutbox(ctx, "a1", rtT0.Add(time.Hour), "down"); err != nil {
				t.Fatal(err)
			}
			if got := claim(db, rtT0.Add(30*time.Second)); len(got) != 0 { // b1 still leased
				t.Fatalf("claimed %v while a1 waits", got)
			}
			if got := claim(db, rtT0.Add(time.Hour)); !slices.Equal(got, []string{"a1", "b1"}) { // b1: its lease expired
				t.Fatalf("claim after backoff %v, want [a1 b1]", got)
			}
			if err := db.Router().MarkForwarded(ctx, "a1", rtT0); err != nil {
				t.Fatal(err)
			}
			if got := claim(db, rtT0.Add(time.Hour)); !slices.Equal(got, []string{"a2"}) { // b1 leased again
				t.Fatalf("claim after a1 %v, want [a2]", got)
			}
		})
	}
}

// TestMarkForwardedAll: a group's outbox rows go and its commands become
// forwarded, each at its own time, with its audit entry; a command whose row
// is already gone gets ErrNotFound alone, and its audit entry all the same.
func TestMarkForwardedAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		targets := []string{"AAAAAAAAAAAAAAA1", "AAAAAAAAAAAAAAA2", "AAAAAAAAAAAAAAA3"}
		for i, target := range targets {
			c := rtCommand(fmt.Sprintf("m%d", i), uint64(i+1))
			c.Target = target
			if err := db.Router().RecordCommand(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Router().MarkForwarded(ctx, "m1", rtT0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		var fs []ForwardedCommand
		for i := range targets {
			fs = append(fs, ForwardedCommand{ID: fmt.Sprintf("m%d", i), At: rtT0.Add(time.Duration(10+i) * time.Second),
				Audit: &AuditEvent{Time: rtT0, Actor: "router", Action: "command.forwarded", Object: fmt.Sprintf("m%d", i), Outcome: OutcomeSuccess}})
		}
		errs, err := db.Router().MarkForwardedAll(ctx, fs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if (i == 1) != errors.Is(e, ErrNotFound) {
				t.Errorf("command m%d: %v", i, e)
			}
		}
		for i, f := range fs {
			c, err := db.Router().RouterCommand(ctx, f.ID)
			want := f.At
			if i == 1 {
				want = rtT0.Add(time.Second) // forwarded before, by MarkForwarded
			}
			if err != nil || c.State != CommandForwarded || !c.UpdatedAt.Equal(want) {
				t.Errorf("command %s: state %s at %s (%v); want forwarded at %s", f.ID, c.State, c.UpdatedAt, err, want)
			}
		}
		if n, _ := db.Router().OutboxDepth(ctx); n != 0 {
			t.Errorf("outbox holds %d rows, want none", n)
		}
		if n, err := db.VerifyAudit(ctx); err != nil || n != 3 {
			t.Errorf("audit: %d entries, %v; want 3", n, err)
		}
	})
}

// TestRouterMigration0050 puts the schema back as it was before the outbox
// moved into router_commands, with outbox rows (one retried, one leased),
// and checks that migration 0050 carries them over.
func TestRouterMigration0050(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newOpener(t)
			db := open(t)
			for i, id := range []string{"m1", "m2", "m3"} {
				if err := db.Router().RecordCommand(ctx, rtCommand(id, uint64(10+i)), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Router().MarkForwarded(ctx, "m1", rtT0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			ts := "INTEGER"
			if db.Dialect() == DialectPostgres {
				ts = "TIMESTAMPTZ"
			}
			if _, err := db.write().exec(ctx, `DROP INDEX router_commands_due;
				DROP INDEX router_commands_pending;
				CREATE TABLE router_outbox (
					command_id   TEXT    PRIMARY KEY REFERENCES router_commands (id),
					target       TEXT    NOT NULL,
					attempts     INTEGER NOT NULL DEFAULT 0,
					next_attempt `+ts+` NOT NULL,
					lease_until  `+ts+`,
					last_error   TEXT    NOT NULL DEFAULT '');
				INSERT INTO router_outbox (command_id, target, attempts, next_attempt, lease_until, last_error)
					SELECT id, target, 0, accepted_at, NULL, '' FROM router_commands WHERE state = 'accepted';
				UPDATE router_outbox SET attempts = 3, last_error = 'unreachable' WHERE command_id = 'm2';
				UPDATE router_outbox SET lease_until = next_attempt WHERE command_id = 'm3';
				ALTER TABLE router_commands DROP COLUMN attempts;
				ALTER TABLE router_commands DROP COLUMN next_attempt;
				ALTER TABLE router_commands DROP COLUMN lease_until;
				ALTER TABLE router_commands DROP COLUMN last_error;
				DELETE FROM schema_migrations WHERE version = 50`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db = open(t) // migrates
			if n, err := db.Router().OutboxDepth(ctx); err != nil || n != 2 {
				t.Fatalf("OutboxDepth after migration = %d, %v; want 2", n, err)
			}
			items, err := db.Router().ClaimOutbox(ctx, rtT0.Add(time.Hour), time.Minute, 10)
			if err != nil || len(items) != 1 || items[0].Command.ID != "m2" || items[0].Attempts != 3 {
				t.Fatalf("ClaimOutbox after migration = %+v, %v; want m2 after 3 attempts (m3 waits behind it)", items, err)
			}
			if err := db.Router().MarkForwarded(ctx, "m2", rtT0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			items, err = db.Router().ClaimOutbox(ctx, rtT0.Add(time.Hour), time.Minute, 10)
			if err != nil || len(items) != 1 || items[0].Command.ID != "m3" {
				t.Fatalf("second ClaimOutbox = %+v, %v; want m3", items, err)
			}
		})
	}
}

// TestRekeyRouterDevice switches a device's keys as a confirmed re-key
// does: only from the key the caller read, with its audit entry in the
// same transaction; a repeat is a no-op, a stale old key a conflict.
func TestRekeyRouterDevice(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			ctx := context.Background()
			eui := smki.MustParseEUI(rtDevice)
			ka, ds := rtKey(t), rtKey(t)
			if err := db.Router().PutRouterDevices(ctx, RouterDevice{EUI: rtDevice, KAPublic: ka, DSPublic: ds, Supplier: rtSupplier, UpdatedAt: rtT0}); err != nil {
				t.Fatal(err)
			}
			audit := func() AuditEvent {
				return AuditEvent{Actor: rtSupplier, Action: "device.rekeyed", Object: rtDevice, Outcome: OutcomeSuccess, Time: rtT0}
			}
			before, _ := db.AuditEvents(ctx, 0, 1000)
			newDS, newKA := rtKey(t), rtKey(t)
			if changed, err := db.Router().RekeyRouterDevice(ctx, eui, RekeyDS, ds, newDS, rtT0.Add(time.Hour), audit()); err != nil || !changed {
				t.Fatalf("DS re-key: %v, %v", changed, err)
			}
			if changed, err := db.Router().RekeyRouterDevice(ctx, eui, RekeyDS, ds, newDS, rtT0.Add(time.Hour), audit()); err != nil || changed {
				t.Fatalf("the same DS re-key again: %v, %v: want a no-op", changed, err)
			}
			if _, err := db.Router().RekeyRouterDevice(ctx, eui, RekeyKA, rtKey(t), newKA, rtT0, audit()); !errors.Is(err, ErrConflict) {
				t.Fatalf("KA re-key from a key the registry does not hold: %v, want ErrConflict", err)
			}
			if changed, err := db.Router().RekeyRouterDevice(ctx, eui, RekeyKA, ka, newKA, rtT0.Add(time.Hour), audit()); err != nil || !changed {
				t.Fatalf("KA re-key: %v, %v", changed, err)
			}
			got, _ := db.Router().RouterDevice(ctx, eui)
			if !bytes.Equal(got.DSPublic, newDS) || !bytes.Equal(got.KAPublic, newKA) || got.Supplier != rtSupplier {
				t.Errorf("after the re-keys: %+v", got)
			}
			after, _ := db.AuditEvents(ctx, 0, 1000)
			if len(after)-len(before) != 2 {
				t.Errorf("%d audit entries appended, want 2 (one per switch)", len(after)-len(before))
			}
			if _, err := db.Router().RekeyRouterDevice(ctx, smki.MustParseEUI("0000000000000001"), RekeyDS, ds, newDS, rtT0); !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown device: %v", err)
			}
			if _, err := db.Router().RekeyRouterDevice(ctx, eui, "pp-ka", ka, newKA, rtT0); !errors.Is(err, ErrInvalid) {
				t.Errorf("usage pp-ka: %v", err)
			}
			if _, err := db.Router().RekeyRouterDevice(ctx, eui, RekeyKA, newKA, []byte{4, 1}, rtT0); !errors.Is(err, ErrInvalid) {
				t.Errorf("a short key: %v", err)
			}
		})
	}
}
