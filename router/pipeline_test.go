package router

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

func TestSubmitAccepts(t *testing.T) {
	w := newWorld(t)
	r := w.router(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		caller  Caller
		msg     []byte
		origin  smki.EUI
		counter uint64
	}{
		{"critical signed by the supplier", w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 10, true), w.supplier.eui, 10},
		{"non-critical unsigned by the supplier", w.supplier.caller(), command(t, w.supplier, w.device, codeRead, 11, false), w.supplier.eui, 11},
		{"non-critical by the network operator", w.distributor.caller(), command(t, w.distributor, w.device, codeRead, 5, false), w.distributor.eui, 5},
		{"other user read under consent", w.other.caller(), w.urpCommand(t, w.other, w.device, codeProfile, 7), w.acb, 7},
		{"other user read back to the start of the 13-month data period", w.other.caller(), urpRead(t, w, w.now.AddDate(0, -13, 0), w.now, 8), w.acb, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n0, _ := w.ledger.state()
			rc, err := r.Submit(ctx, tt.caller, tt.msg)
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if rc.Status != "accepted" || rc.ID == "" || rc.Target != w.device || rc.Counter != tt.counter {
				t.Fatalf("receipt %+v", rc)
			}
			n, ctrs := w.ledger.state()
			if n != n0+1 {
				t.Fatalf("records %d, want %d", n, n0+1)
			}
			if got := ctrs[ledgerKey{tt.origin, w.device}]; got != tt.counter {
				t.Fatalf("counter %d, want %d", got, tt.counter)
			}
			rec := w.ledger.records[n-1]
			if rec.ID != rc.ID || rec.Originator != tt.origin {
				t.Fatalf("record %+v", rec)
			}
			// The forwarded message carries a MAC the device can check
			// with its own key (the mirror ECDH).
			fm, err := commands.Parse(rec.Message)
			if err != nil {
				t.Fatalf("forwarded message: %v", err)
			}
			z, err := w.deviceKA.ECDH(w.acbKA.key.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			want, err := acbMAC(fm, z)
			if err != nil {
				t.Fatal(err)
			}
			if !fm.HasMAC() || !bytes.Equal(fm.MAC, want) {
				t.Fatalf("MAC %x, want %x", fm.MAC, want)
			}
			if e := w.audit.last(); e.Action != "command.accepted" || e.CommandID != rc.ID {
				t.Fatalf("audit %+v", e)
			}
		})
	}
}

type refusalCase struct {
	name   string
	caller Caller
	msg    []byte
	want   *Kind
}

// refusalCases is the corpus of malformed and hostile submissions, one or
// more per pipeline stage. It expects the supplier's counter 100 to device
// to be forwarded already, the detector to quarantine counter 555 and the
// gas supplier's signing certificate to be revoked.
func refusalCases(t *testing.T, w *world) []refusalCase {
	valid := command(t, w.supplier, w.device, codeDisable, 200, true)
	tamper := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	preCommand := command(t, w.supplier, w.device, codeDisable, 201, false)
	wrongKey := party{w.supplier.eui, w.supplier.role, w.distributor.ds}
	macd := func() []byte {
		m, _ := commands.Parse(valid)
		m.MAC = make([]byte, 12)
		b, _ := m.Marshal()
		return b
	}()
	response := func() []byte {
		m, _ := commands.Parse(command(t, w.supplier, w.device, codeRead, 300, false))
		m.CRA = commands.Response
		b, _ := m.Marshal()
		return b
	}()
	gasDevice2 := party{w.gasSupplier.eui, w.gasSupplier.role, w.gasSupplier.ds}
	return []refusalCase{
		{"no caller", Caller{}, valid, ErrUnauthenticated},
		{"caller without role", Caller{EUI: w.supplier.eui}, valid, ErrUnauthenticated},
		{"caller with unknown role", Caller{EUI: w.supplier.eui, Role: "XX"}, valid, ErrUnauthenticated},
		{"caller with a role not in canonical form", Caller{EUI: w.supplier.eui, Role: "is"}, valid, ErrUnauthenticated},
		{"empty", w.supplier.caller(), nil, ErrMalformed},
		{"truncated", w.supplier.caller(), valid[:len(valid)-5], ErrMalformed},
		{"truncated header", w.supplier.caller(), valid[:3], ErrMalformed},
		{"oversized", w.supplier.caller(), make([]byte, DefaultMaxMessageBytes+1), ErrMalformed},
		{"wrong length byte", w.supplier.caller(), func() []byte { c := bytes.Clone(valid); c[1] = 8; return c }(), ErrMalformed},
		{"signature length 0x41", w.supplier.caller(), func() []byte { c := bytes.Clone(valid); c[len(c)-65] = 0x41; return c }(), ErrMalformed},
		{"trailing garbage", w.supplier.caller(), append(bytes.Clone(valid), 0), ErrMalformed},
		{"block transfer segment", w.supplier.caller(), append([]byte{0xE0}, valid[1:]...), ErrMalformed},
		{"already MAC'd (forged MAC)", w.supplier.caller(), macd, ErrMalformed},
		{"a response, not a command", w.supplier.caller(), response, ErrMalformed},
		{"wrong originator", w.stranger.caller(), valid, ErrOriginator},
		{"supplier posing as unknown remote party", w.supplier.caller(), w.urpCommand(t, w.supplier, w.device, codeRead, 1), ErrOriginator},
		{"other user with itself as originator", w.other.caller(), command(t, w.other, w.device, codeProfile, 1, false), ErrOriginator},
		{"other user naming another party", w.other.caller(), w.urpCommand(t, w.supplier, w.device, codeProfile, 1), ErrOriginator},
		{"role not eligible", w.distributor.caller(), command(t, w.distributor, w.device, codeDisable, 1, true), ErrNotEligible},
		{"unknown message code", w.supplier.caller(), command(t, w.supplier, w.device, codeUnlisted, 1, false), ErrNotEligible},
		{"unknown device", w.supplier.caller(), command(t, w.supplier, smki.MustParseEUI("0102030405060708"), codeDisable, 1, true), ErrUnknownDevice},
		{"not the supplier", w.supplier.caller(), command(t, w.supplier, w.device2, codeDisable, 1, true), ErrNotOwner},
		{"other user without consent", w.other.caller(), w.urpCommand(t, w.other, w.device2, codeProfile, 1), ErrNotOwner},
		{"revoked certificate", w.gasSupplier.caller(), command(t, gasDevice2, w.device2, codeDisable, 1, true), ErrCertPath},
		{"no signing certificate", w.stranger.caller(), command(t, w.stranger, w.device3, codeDisable, 1, true), ErrCertPath},
		{"signed non-critical without certificate", w.stranger.caller(), command(t, w.stranger, w.device3, codeRead, 1, true), ErrCertPath},
		{"other user carrying a bogus key-agreement certificate", w.other.caller(), func() []byte {
			m := &commands.Message{CRA: commands.Command, Counter: 9, Originator: w.acb, Recipient: w.device, Code: codeProfile,
				URP: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 9, KACertificate: []byte{0x30, 0x0A, 0x02, 0x01, 0x01, 0x04, 0x05, 0, 0, 0, 0, 0}}, Payload: profileRead(t, w.now.Add(-time.Hour), w.now)}
			return marshal(t, m, nil, false)
		}(), ErrCertPath},
		{"other user reading before the 13-month data period", w.other.caller(), urpRead(t, w, w.now.AddDate(0, -13, 0).Add(-time.Minute), w.now, 10), ErrConsentPeriod},
		{"other user reading a malformed profile request", w.other.caller(), func() []byte {
			m := &commands.Message{CRA: commands.Command, Counter: 11, Originator: w.acb, Recipient: w.device, Code: codeProfile,
				URP: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 11}, Payload: []byte{0x01}}
			return marshal(t, m, nil, false)
		}(), ErrMalformed},
		{"pre-command (unsigned critical)", w.supplier.caller(), preCommand, ErrSignature},
		{"wrong-role key signature", w.supplier.caller(), command(t, wrongKey, w.device, codeDisable, 202, true), ErrSignature},
		{"payload changed after signing", w.supplier.caller(), tamper(valid, len(valid)-66), ErrSignature},
		{"counter changed after signing", w.supplier.caller(), tamper(valid, 10), ErrSignature},
		{"signature bit flipped", w.supplier.caller(), tamper(valid, len(valid)-1), ErrSignature},
		{"replay of the same counter", w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 100, true), ErrReplay},
		{"older counter", w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 99, true), ErrReplay},
		{"quarantined", w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 555, true), ErrQuarantined},
	}
}

// prepareRefusals sets up what refusalCases expects.
func prepareRefusals(t *testing.T, w *world, r *Router) {
	t.Helper()
	if _, err := r.Submit(context.Background(), w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 100, true)); err != nil {
		t.Fatal(err)
	}
	w.det.mu.Lock()
	w.det.quarantine[555] = true
	w.det.mu.Unlock()
	w.certs.mu.Lock()
	w.certs.revoked[string(w.certs.ders[w.gasSupplier.eui])] = true
	delete(w.certs.ders, w.stranger.eui)
	w.certs.mu.Unlock()
}

// TestSubmitRefuses proves that each stage refuses with its own kind,
// writes an audit entry, and leaves no state: no record, no counter moved.
func TestSubmitRefuses(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	prepareRefusals(t, w, w.router(t))
	for _, tt := range refusalCases(t, w) {
		t.Run(tt.name, func(t *testing.T) {
			r := w.router(t)
			n0, c0 := w.ledger.state()
			a0 := len(w.audit.events)
			_, err := r.Submit(ctx, tt.caller, tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Submit: %v, want %v", err, tt.want)
			}
			for _, k := range Kinds() {
				if k != tt.want && errors.Is(err, k) {
					t.Fatalf("error %v also matches kind %s", err, k.Code())
				}
			}
			n, c := w.ledger.state()
			if n != n0 || len(c) != len(c0) {
				t.Fatalf("state changed: records %d->%d, counters %v->%v", n0, n, c0, c)
			}
			for k, v := range c0 {
				if c[k] != v {
					t.Fatalf("counter %v moved %d->%d", k, v, c[k])
				}
			}
			if len(w.audit.events) != a0+1 {
				t.Fatalf("audit entries %d, want %d", len(w.audit.events), a0+1)
			}
			if e := w.audit.last(); e.Kind != tt.want.Code() {
				t.Fatalf("audit kind %q, want %q (%+v)", e.Kind, tt.want.Code(), e)
			}
		})
	}
}

// TestSubmitRefusesOnStore runs the same corpus against the real store on
// both backends: each refusal leaves the outbox and every counter as they
// were, and lands in the audit log with its kind.
func TestSubmitRefusesOnStore(t *testing.T) {
	ctx := context.Background()
	for name, open := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := newStoreEnv(t, open(t)(t))
			prepareRefusals(t, e.world, e.router)
			// The store's detector quarantines the supplier's next
			// disconnect: one per hour, and prepareRefusals sent one.
			admin := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
			if _, err := e.anomaly.SetThreshold(ctx, admin, anomaly.Threshold{Scope: anomaly.ScopeUserService, ServiceRef: "7.2",
				Limit: 1, Window: time.Hour}); err != nil {
				t.Fatal(err)
			}
			parties := []party{e.supplier, e.gasSupplier, e.distributor, e.other, e.stranger}
			snapshot := func() (int64, map[string]uint64) {
				n, err := e.st.Depth(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m := map[string]uint64{}
				for _, p := range parties {
					for _, d := range []smki.EUI{e.device, e.device2, e.device3} {
						if c, ok, _ := e.st.LastCounter(ctx, p.eui, d); ok {
							m[p.eui.String()+d.String()] = c
						}
					}
				}
				return n, m
			}
			for _, tt := range refusalCases(t, e.world) {
				t.Run(tt.name, func(t *testing.T) {
					n0, c0 := snapshot()
					_, err := e.router.Submit(ctx, tt.caller, tt.msg)
					if !errors.Is(err, tt.want) {
						t.Fatalf("Submit: %v, want %v", err, tt.want)
					}
					n, c := snapshot()
					if n != n0 || !maps.Equal(c, c0) {
						t.Fatalf("state changed: outbox %d->%d, counters %v->%v", n0, n, c0, c)
					}
					evs, err := e.db.AuditEvents(ctx, 0, store.MaxLimit)
					if err != nil || len(evs) == 0 {
						t.Fatal(err)
					}
					last := evs[len(evs)-1]
					if last.Outcome != store.OutcomeRefused || fmt.Sprint(last.Details["kind"]) != tt.want.Code() {
						t.Fatalf("last audit entry %+v", last)
					}
				})
			}
		})
	}
}

func TestSubmitDependencyFailures(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("disk on fire")
	tests := []struct {
		name    string
		breakIt func(w *world)
	}{
		{"registry down", func(w *world) { w.reg.err = boom }},
		{"ledger down", func(w *world) { w.ledger.err = boom }},
		{"detector down", func(w *world) { w.det.err = boom }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.breakIt(w)
			_, err := w.router(t).Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 1, true))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, boom) {
				t.Fatalf("Submit: %v, want ErrUnavailable wrapping the cause", err)
			}
			if n, _ := w.ledger.state(); n != 0 {
				t.Fatalf("%d records stored", n)
			}
		})
	}
}

// TestSubmitConcurrentReplay submits the same counter from many goroutines:
// exactly one is accepted, the rest are replays.
func TestSubmitConcurrentReplay(t *testing.T) {
	w := newWorld(t)
	r := w.router(t)
	msg := command(t, w.supplier, w.device, codeDisable, 42, true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, replays := 0, 0
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Submit(context.Background(), w.supplier.caller(), msg)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrReplay):
				replays++
			default:
				t.Errorf("Submit: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted != 1 || replays != 31 {
		t.Fatalf("accepted %d, replays %d; want 1 and 31", accepted, replays)
	}
}

func TestCaches(t *testing.T) {
	w := newWorld(t)
	r := w.router(t)
	ctx := context.Background()
	for i := range uint64(5) {
		if _, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 10+i, true)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("Z computed once per device", func(t *testing.T) {
		if w.acbKA.calls != 1 {
			t.Fatalf("ECDH calls %d, want 1", w.acbKA.calls)
		}
	})
	t.Run("path verified once within the TTL", func(t *testing.T) {
		if w.certs.verifies != 1 {
			t.Fatalf("path verifications %d, want 1", w.certs.verifies)
		}
	})
	t.Run("path verified again after the TTL", func(t *testing.T) {
		w.now = w.now.Add(2 * DefaultPathCacheTTL)
		if _, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 20, true)); err != nil {
			t.Fatal(err)
		}
		if w.certs.verifies != 2 {
			t.Fatalf("path verifications %d, want 2", w.certs.verifies)
		}
	})
	t.Run("Z recomputed when the device key changes", func(t *testing.T) {
		d := w.reg.devices[w.device]
		nk := mustKey(t)
		ek, err := nk.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		d.KeyAgreement = ek
		w.reg.devices[w.device] = d
		if _, err := r.Submit(ctx, w.supplier.caller(), command(t, w.supplier, w.device, codeDisable, 21, true)); err != nil {
			t.Fatal(err)
		}
		if w.acbKA.calls != 2 {
			t.Fatalf("ECDH calls %d, want 2", w.acbKA.calls)
		}
	})
	t.Run("LRU bounded", func(t *testing.T) {
		c := newLRU[int, int](3)
		for i := range 10 {
			c.put(i, i)
		}
		if c.len() != 3 {
			t.Fatalf("len %d", c.len())
		}
		if _, ok := c.get(6); ok {
			t.Fatal("evicted entry still present")
		}
		if v, ok := c.get(9); !ok || v != 9 {
			t.Fatal("recent entry missing")
		}
	})
}

// TestACBMACVector reproduces the GBCS section 18.4 MAC from its Z.
func TestACBMACVector(t *testing.T) {
	raw, err := os.ReadFile("testdata/gbcs-18-4.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Message  string `json:"message_hex"`
		Expected struct {
			Z   string `json:"ecdh_shared_secret_z"`
			MAC string `json:"mac"`
		} `json:"expected"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	msg, _ := hex.DecodeString(v.Message)
	z, _ := hex.DecodeString(v.Expected.Z)
	m, err := commands.Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := acbMAC(m, z)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != v.Expected.MAC {
		t.Fatalf("MAC %x, want %s", got, v.Expected.MAC)
	}
	if _, err := acbMAC(m, z[:16]); err == nil {
		t.Fatal("short Z accepted")
	}
}
