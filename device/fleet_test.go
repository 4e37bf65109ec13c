package device

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/smki"
)

func TestFleetDeliverConcurrently(t *testing.T) {
	w := newWorld(t, Electricity)
	f := NewFleet(Config{Now: func() time.Time { return testNow }})
	euis, err := f.Generate(w.ctx, 8, smki.MustParseEUI("0012A3FFFE100000"), Electricity, w.anchors)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 8 || len(f.EUIs()) != 8 || f.EUIs()[7] != smki.MustParseEUI("0012A3FFFE100007") {
		t.Fatalf("fleet of %d, EUIs %v", f.Len(), f.EUIs())
	}
	// Each goroutine drives one meter with its own rising counters; all
	// meters run at once.
	const perMeter = 5
	var wg sync.WaitGroup
	errs := make(chan error, len(euis)*perMeter)
	for i, eui := range euis {
		m, _ := f.Meter(eui)
		msgs := make([][]byte, perMeter)
		for j := range msgs {
			msgs[j] = buildFor(t, w, m, CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), uint64(1000*i+j+1))
		}
		wg.Go(func() {
			for _, b := range msgs {
				if _, err := f.Deliver(w.ctx, eui, b); err != nil {
					errs <- fmt.Errorf("meter %s: %w", eui, err)
				}
			}
			// The first message again is a replay.
			if _, err := f.Deliver(w.ctx, eui, msgs[0]); !errors.Is(err, ErrReplay) {
				errs <- fmt.Errorf("meter %s replay: err = %v", eui, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := f.Stats()
	if s.Accepted != uint64(len(euis)*perMeter) || s.DiscardedFor(ReasonReplay) != uint64(len(euis)) || s.TotalDiscarded() != uint64(len(euis)) {
		t.Errorf("stats %+v", s)
	}
	if _, err := f.Deliver(w.ctx, smki.MustParseEUI("0012A3FFFE1FFFFF"), []byte{1}); !errors.Is(err, ErrNoMeter) {
		t.Errorf("deliver to a missing meter: err = %v", err)
	}
}

// buildFor builds a supplier command to meter m of a fleet.
func buildFor(t testing.TB, w *world, m *Meter, code uint16, payload []byte, counter uint64) []byte {
	t.Helper()
	msg := &commands.Message{CRA: commands.Command, Counter: counter, Originator: w.supplier.eui,
		Recipient: m.EUI(), Code: commands.MessageCode(code), Payload: payload}
	if Critical(code) {
		if err := commands.Sign(nil, w.supplier.ds, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := commands.AddMAC(context.Background(), w.acb.ka, m.AgreementPublicKey(), msg); err != nil {
		t.Fatal(err)
	}
	b, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFleetAdd(t *testing.T) {
	w := newWorld(t, Electricity)
	dev := newParty(t, "0012A3FFFE200001")
	dsCert := issue(t, smki.ProfileDeviceDS, 0, dev.eui, &dev.ds.PublicKey)
	kaCert := issue(t, smki.ProfileDeviceKA, 0, dev.eui, &dev.kaS.PublicKey)
	otherDev := newParty(t, "0012A3FFFE200002")
	otherCert := issue(t, smki.ProfileDeviceDS, 0, otherDev.eui, &otherDev.ds.PublicKey)
	id := Identity{EUI: dev.eui, Kind: Electricity, Signer: dev.ds, KeyAgreement: dev.ka}

	tests := []struct {
		name string
		p    Provision
		ok   bool
	}{
		{"keys and matching certificates", Provision{Identity: id, DSCertificate: dsCert, KACertificate: kaCert}, true},
		{"keys only", Provision{Identity: Identity{EUI: otherDev.eui, Kind: Gas, Signer: otherDev.ds, KeyAgreement: otherDev.ka}}, true},
		{"certificates swapped", Provision{Identity: id, DSCertificate: kaCert, KACertificate: dsCert}, false},
		{"certificate of another meter", Provision{Identity: id, DSCertificate: otherCert, KACertificate: kaCert}, false},
		{"one certificate only", Provision{Identity: id, DSCertificate: dsCert}, false},
		{"not a certificate", Provision{Identity: id, DSCertificate: []byte{0x30, 0}, KACertificate: kaCert}, false},
		{"zero EUI", Provision{Identity: Identity{Kind: Electricity, Signer: dev.ds, KeyAgreement: dev.ka}}, false},
		{"no signer", Provision{Identity: Identity{EUI: dev.eui, KeyAgreement: dev.ka}}, false},
		{"no key agreement", Provision{Identity: Identity{EUI: dev.eui, Signer: dev.ds}}, false},
		{"unknown kind", Provision{Identity: Identity{EUI: dev.eui, Kind: 7, Signer: dev.ds, KeyAgreement: dev.ka}}, false},
	}
	f := NewFleet(Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := f.Add(tc.p, w.anchors)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if ds, _, ok := m.Certificates(); ok != (tc.p.DSCertificate != nil) || (ok && !bytesEqual(ds, dsCert)) {
					t.Errorf("Certificates() ok %t", ok)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := f.Add(Provision{Identity: id}, w.anchors); !errors.Is(err, ErrDuplicate) {
		t.Errorf("adding a meter twice: err = %v, want ErrDuplicate", err)
	}
	if err := f.AddBatch([]Provision{{Identity: id}}, w.anchors); !errors.Is(err, ErrDuplicate) {
		t.Errorf("AddBatch with a duplicate: err = %v, want ErrDuplicate", err)
	}
	if _, err := f.Add(Provision{Identity: Identity{EUI: smki.MustParseEUI("0012A3FFFE200009"), Signer: dev.ds, KeyAgreement: dev.ka}}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil anchors: err = %v, want ErrConfig", err)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestFleetMemory measures what 10,000 meters cost, with and without their
// keys, and fails if a meter's own state (without keys) passes 1 KiB. Set
// METERTRUST_DEVICE_MEMORY=N to measure N meters instead.
func TestFleetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 meters")
	}
	n := 10_000
	if v := os.Getenv("METERTRUST_DEVICE_MEMORY"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
			t.Fatalf("METERTRUST_DEVICE_MEMORY=%q: want a positive count", v)
		}
	}
	w := newWorld(t, Electricity)
	ctx := context.Background()

	// The keys alone: what Generate makes for each meter.
	keysBefore := heap()
	keys := make([][2]any, n)
	gen := softwareKeys{}
	for i := range keys {
		ds, err := gen.GenerateKey(ctx, UsageDigitalSignature)
		if err != nil {
			t.Fatal(err)
		}
		kaS, _ := gen.GenerateKey(ctx, UsageKeyAgreement)
		ka, err := agreementKey(kaS)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = [2]any{ds, ka}
	}
	// Less the slice that holds them.
	keyBytes := (float64(heap()-keysBefore) - float64(n)*float64(unsafe.Sizeof(keys[0]))) / float64(n)
	runtime.KeepAlive(keys)
	keys = nil

	before := heap()
	f := NewFleet(Config{})
	if _, err := f.Generate(ctx, n, smki.MustParseEUI("0012A3FFFE300000"), Electricity, w.anchors); err != nil {
		t.Fatal(err)
	}
	total := float64(heap()-before) / float64(n)
	runtime.KeepAlive(f)
	state := total - keyBytes
	t.Logf("%d meters: %.0f bytes per meter in all, of which keys %.0f, meter state and fleet index %.0f (Meter struct %d bytes)",
		n, total, keyBytes, state, unsafe.Sizeof(Meter{}))
	if state > 1024 {
		t.Errorf("meter state %.0f bytes per meter, want at most 1 KiB", state)
	}
}

// heap returns the live heap after a full collection.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestFleetAlertLog: each fleet names its alert log afresh, so a collector
// tells a restarted fleet (indexes from 0 again) from the one it read; Run
// ticks until its context ends.
func TestFleetAlertLog(t *testing.T) {
	a, b := NewFleet(Config{}), NewFleet(Config{})
	if a.AlertLog() == "" || a.AlertLog() == b.AlertLog() {
		t.Fatalf("alert logs %q and %q", a.AlertLog(), b.AlertLog())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { a.Run(ctx, time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
