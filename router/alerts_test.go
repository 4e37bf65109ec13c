package router

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// fakeSource is an alert source over a slice, with a log name.
type fakeSource struct {
	mu     sync.Mutex
	log    string
	alerts []RawAlert
	err    error
}

func (s *fakeSource) add(device smki.EUI, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, RawAlert{Index: uint64(len(s.alerts)), Device: device, At: time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC), Message: msg})
}

func (s *fakeSource) Alerts(_ context.Context, since uint64, limit int) (AlertPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return AlertPage{}, s.err
	}
	p := AlertPage{Log: s.log, Next: max(since, uint64(len(s.alerts)))}
	for _, a := range s.alerts {
		if a.Index >= since && len(p.Alerts) < limit {
			p.Alerts = append(p.Alerts, a)
			p.Next = a.Index + 1
		}
	}
	return p, nil
}

// fakeObserver records the CS02b outcome alerts it is told about.
type fakeObserver struct {
	mu   sync.Mutex
	seen []uint64
}

func (o *fakeObserver) CredentialsAlerted(_ context.Context, device smki.EUI, m *commands.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, m.Counter)
}

// deviceAlert builds an alert of code from device to recipient, signed with
// key (unsigned and unMAC'd when key is nil).
func deviceAlert(t *testing.T, key *ecdsa.PrivateKey, device, recipient smki.EUI, code commands.MessageCode, counter uint64) []byte {
	t.Helper()
	m := &commands.Message{CRA: commands.Alert, Counter: counter, Originator: device, Recipient: recipient, Code: code,
		Payload: []byte{0x0F, 0x20, 0x00, 0x00, 0x01, 0x00, 0x02, 0x02, 0x12, 0x8F, 0x66, 0x09, 0x00}}
	return marshal(t, m, key, key != nil)
}

type alertEnv struct {
	*storeEnv
	src    *fakeSource
	obs    *fakeObserver
	intake *AlertIntake
}

func newAlertEnv(t *testing.T) *alertEnv {
	t.Helper()
	e := &alertEnv{storeEnv: newStoreEnv(t, nil), src: &fakeSource{log: "log-1"}, obs: &fakeObserver{}}
	var err error
	e.intake, err = NewAlertIntake(IntakeConfig{Sources: map[string]AlertSource{"fleet": e.src}, Store: e.db.Router(), Registry: e.st,
		ACB: e.acb, ACBKey: e.acbKA, Observer: e.obs, Publisher: e.hub, Clock: e.now, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *alertEnv) poll(t *testing.T) {
	t.Helper()
	if _, err := e.intake.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *alertEnv) deliveries(t *testing.T, to smki.EUI) []Delivery {
	t.Helper()
	ds, err := e.st.Deliveries(context.Background(), to, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// audits returns the alert audit entries, in order, as action/kind.
func (e *alertEnv) audits(t *testing.T) []string {
	t.Helper()
	es, err := e.db.AuditEvents(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range es {
		if a.Action != "router.alert.received" && a.Action != "router.alert.refused" {
			continue
		}
		s := a.Action
		if k, ok := a.Details["kind"].(string); ok {
			s += "/" + k
		}
		out = append(out, s)
	}
	return out
}

func TestAlertIntakeDelivers(t *testing.T) {
	e := newAlertEnv(t)
	ctx := context.Background()
	wake := e.hub.Subscribe(ctx, e.supplier.eui)
	msg := deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1000)
	e.src.add(e.device, msg)
	e.poll(t)
	ds := e.deliveries(t, e.supplier.eui)
	if len(ds) != 1 || ds[0].Kind != DeliveryAlert || string(ds[0].Body) != string(msg) || ds[0].CommandID != "" {
		t.Fatalf("deliveries = %+v", ds)
	}
	select {
	case <-wake:
	default:
		t.Error("the supplier's event stream was not woken")
	}
	v := viewOf(ds[0])
	if v.Alert == nil || v.Alert.Device != e.device || v.Alert.Counter != 1000 || v.Alert.Code != "0x00CC" || v.Alert.Rerouted {
		t.Fatalf("view = %+v", v.Alert)
	}
	if got := e.audits(t); len(got) != 1 || got[0] != "router.alert.received" {
		t.Fatalf("audits = %v", got)
	}
	as, err := e.db.Router().DeviceAlerts(ctx, e.device, 0)
	if err != nil || len(as) != 1 || as[0].DeliveredTo != e.supplier.eui.String() || as[0].DeliverySeq != ds[0].Seq || as[0].Source != "fleet#log-1" {
		t.Fatalf("recorded = %+v, %v", as, err)
	}
	if next, _ := e.db.Router().AlertCursor(ctx, "fleet#log-1"); next != 1 {
		t.Fatalf("cursor = %d, want 1", next)
	}
}

func TestAlertIntakeRefuses(t *testing.T) {
	forger := mustKey(t)
	for _, tc := range []struct {
		name string
		msg  func(e *alertEnv) []byte
		kind *Kind
	}{
		{"bad signature", func(e *alertEnv) []byte {
			return deviceAlert(t, forger, e.device, e.supplier.eui, 0x00CC, 1000)
		}, ErrSignature},
		{"tampered", func(e *alertEnv) []byte {
			b := deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1000)
			b[len(b)-70] ^= 1 // a payload byte
			return b
		}, ErrSignature},
		{"neither signed nor MAC'd", func(e *alertEnv) []byte {
			return deviceAlert(t, nil, e.device, e.supplier.eui, 0x00CC, 1000)
		}, ErrSignature},
		{"not an alert", func(e *alertEnv) []byte {
			return marshal(t, &commands.Message{CRA: commands.Response, Counter: 1000, Originator: e.device, Recipient: e.supplier.eui,
				Code: 0x00CC, Payload: []byte{0x0F}}, e.devDS, true)
		}, ErrMalformed},
		{"garbage", func(e *alertEnv) []byte { return []byte{0xDF, 0x09} }, ErrMalformed},
		{"unknown device", func(e *alertEnv) []byte {
			return deviceAlert(t, e.devDS, smki.MustParseEUI("DDDDDDDDDDDDDDDD"), e.supplier.eui, 0x00CC, 1000)
		}, ErrUnknownDevice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newAlertEnv(t)
			e.src.add(smki.EUI{}, tc.msg(e))
			e.poll(t)
			if ds := e.deliveries(t, e.supplier.eui); len(ds) != 0 {
				t.Fatalf("delivered %+v", ds)
			}
			if got := e.audits(t); len(got) != 1 || got[0] != "router.alert.refused/"+tc.kind.Code() {
				t.Fatalf("audits = %v, want refused/%s", got, tc.kind.Code())
			}
			if next, _ := e.db.Router().AlertCursor(context.Background(), "fleet#log-1"); next != 1 {
				t.Fatalf("cursor = %d: a refused alert must not be read again", next)
			}
		})
	}
}

func TestAlertIntakeCounters(t *testing.T) {
	e := newAlertEnv(t)
	ctx := context.Background()
	a1 := deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1000)
	e.src.add(e.device, a1)
	e.src.add(e.device, a1)                                                             // read twice: a duplicate
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 999)) // stale
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1001))
	e.poll(t)
	ds := e.deliveries(t, e.supplier.eui)
	if len(ds) != 2 || viewOf(ds[0]).Alert.Counter != 1000 || viewOf(ds[1]).Alert.Counter != 1001 {
		t.Fatalf("deliveries = %+v", ds)
	}
	want := []string{"router.alert.received", "router.alert.refused/stale-alert", "router.alert.received"}
	if got := e.audits(t); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("audits = %v, want %v", got, want)
	}
	// The source restarts (a new log, indexes from 0) and hands the same
	// alerts again: dropped, nothing delivered twice.
	e.src.mu.Lock()
	e.src.log, e.src.alerts = "log-2", nil
	e.src.mu.Unlock()
	e.src.add(e.device, a1)
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1002))
	e.poll(t)
	if ds := e.deliveries(t, e.supplier.eui); len(ds) != 3 || viewOf(ds[2]).Alert.Counter != 1002 {
		t.Fatalf("after the restart: %+v", ds)
	}
	if next, _ := e.db.Router().AlertCursor(ctx, "fleet#log-2"); next != 2 {
		t.Fatalf("cursor of the new log = %d, want 2", next)
	}
	// A source that fails keeps its cursor.
	e.src.mu.Lock()
	e.src.err = errors.New("endpoint down")
	e.src.mu.Unlock()
	if _, err := e.intake.Poll(ctx); err == nil {
		t.Fatal("Poll of a failing source gave no error")
	}
}

func TestAlertIntakeRoutes(t *testing.T) {
	e := newAlertEnv(t)
	ctx := context.Background()
	// The device changed supplier: w.stranger, its supplier once, is no
	// more; the alert goes to w.supplier, its owner, rerouted.
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.stranger.eui, 0x00CC, 2000))
	// To the network operator: to it.
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.distributor.eui, 0x00CC, 2001))
	// A CS02b outcome to the ACB: consumed, the observer told.
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.acb, CodeCS02bAlert, 2002))
	// Another alert to the ACB: consumed, the observer not told.
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.acb, 0x00CC, 2003))
	// A CS02b outcome to the supplier (its own rotation, future-dated):
	// delivered, and the observer told too.
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, CodeCS02bAlert, 2004))
	e.poll(t)
	ds := e.deliveries(t, e.supplier.eui)
	if len(ds) != 2 {
		t.Fatalf("supplier's deliveries = %+v", ds)
	}
	if v := viewOf(ds[0]); v.Alert == nil || !v.Alert.Rerouted || v.Alert.Recipient != e.stranger.eui || ds[0].Detail == "" {
		t.Fatalf("rerouted view = %+v %q", v.Alert, ds[0].Detail)
	}
	if ds := e.deliveries(t, e.stranger.eui); len(ds) != 0 {
		t.Fatalf("the former supplier got %+v", ds)
	}
	if ds := e.deliveries(t, e.distributor.eui); len(ds) != 1 || viewOf(ds[0]).Alert.Rerouted {
		t.Fatalf("network operator's deliveries = %+v", ds)
	}
	if !slices.Equal(e.obs.seen, []uint64{2002, 2004}) {
		t.Fatalf("observer saw %v, want [2002 2004]", e.obs.seen)
	}
	as, err := e.db.Router().DeviceAlerts(ctx, e.device, 0)
	if err != nil || len(as) != 5 || !as[0].Rerouted || as[2].DeliveredTo != "" || as[2].DeliverySeq != 0 {
		t.Fatalf("recorded = %+v, %v", as, err)
	}
	if got := e.audits(t); len(got) != 5 {
		t.Fatalf("audits = %v", got)
	}
}

func TestAlertIntakeMAC(t *testing.T) {
	e := newAlertEnv(t)
	ctx := context.Background()
	mac := func(recipient smki.EUI, counter uint64, bad bool) []byte {
		m := &commands.Message{CRA: commands.Alert, Counter: counter, Originator: e.device, Recipient: recipient, Code: 0x1001,
			Payload: []byte{0x0F, 0x20, 0x00, 0x00, 0x01, 0x00, 0x02, 0x02, 0x12, 0x81, 0x0E, 0x09, 0x00}, EmptySignatureField: true}
		// The device's side: its KA key and the ACB's public key.
		if err := commands.AddMAC(ctx, &fakeKA{key: e.deviceKA}, e.acbKA.key.PublicKey(), m); err != nil {
			t.Fatal(err)
		}
		if bad {
			m.MAC[0] ^= 1
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e.src.add(e.device, mac(e.acb, 3000, false))
	e.src.add(e.device, mac(e.acb, 3001, true))
	e.poll(t)
	want := []string{"router.alert.received", "router.alert.refused/signature"}
	if got := e.audits(t); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("audits = %v, want %v", got, want)
	}
}

func TestAlertIntakeStoreDown(t *testing.T) {
	e := newAlertEnv(t)
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 1000))
	failing := &failingAlertStore{alertStore: e.db.Router()}
	in, err := NewAlertIntake(IntakeConfig{Sources: map[string]AlertSource{"fleet": e.src}, Store: failing, Registry: e.st,
		ACB: e.acb, Clock: e.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Poll(context.Background()); err == nil {
		t.Fatal("Poll with the store down gave no error")
	}
	if next, _ := e.db.Router().AlertCursor(context.Background(), "fleet#log-1"); next != 0 {
		t.Fatalf("cursor = %d: moved past an alert not recorded", next)
	}
	// The store back: the alert is read again and delivered.
	e.poll(t)
	if ds := e.deliveries(t, e.supplier.eui); len(ds) != 1 {
		t.Fatalf("deliveries = %+v", ds)
	}
}

// TestAlertIntakeRegistryDown: a registry that fails is no refusal; the
// alert is read again once it is back.
func TestAlertIntakeRegistryDown(t *testing.T) {
	w := newWorld(t)
	e := newAlertEnv(t)
	key := e.devDS
	d := w.reg.devices[w.device]
	d.Signing = &key.PublicKey
	w.reg.devices[w.device] = d
	w.reg.err = errors.New("registry down")
	in, err := NewAlertIntake(IntakeConfig{Sources: map[string]AlertSource{"fleet": e.src}, Store: e.db.Router(), Registry: w.reg,
		ACB: e.acb, Clock: e.now})
	if err != nil {
		t.Fatal(err)
	}
	e.src.add(e.device, deviceAlert(t, key, e.device, e.supplier.eui, 0x00CC, 1000))
	if _, err := in.Poll(context.Background()); err == nil {
		t.Fatal("Poll with the registry down gave no error")
	}
	if got := e.audits(t); len(got) != 0 {
		t.Fatalf("audits = %v: a failing registry refused the alert", got)
	}
	w.reg.err = nil
	if _, err := in.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds := e.deliveries(t, e.supplier.eui); len(ds) != 1 {
		t.Fatalf("deliveries = %+v", ds)
	}
}

type failingAlertStore struct{ alertStore }

func (f *failingAlertStore) RecordAlertIntake(context.Context, *store.AlertIntake) error {
	return errors.New("store down")
}

// FuzzAlertVerify puts arbitrary bytes through the intake's checks as an
// alert from a registered device: it never panics, a refusal wraps exactly
// one error kind, and whatever passes is an alert from that device, signed
// under its key (or MAC'd for a user, who checks it).
func FuzzAlertVerify(f *testing.F) {
	w := newWorld(f)
	key := mustKey(f)
	d := w.reg.devices[w.device]
	d.Signing = &key.PublicKey
	w.reg.devices[w.device] = d
	in, err := NewAlertIntake(IntakeConfig{Store: &failingAlertStore{}, Registry: w.reg, ACB: w.acb, ACBKey: w.acbKA})
	if err != nil {
		f.Fatal(err)
	}
	m := &commands.Message{CRA: commands.Alert, Counter: 7, Originator: w.device, Recipient: w.supplier.eui, Code: 0x00CC, Payload: []byte{0x0F, 0x20}}
	good := marshal(f, m, key, true)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{0xDF, 0x09, 0x03})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, _, err := in.verify(ctx, RawAlert{Device: w.device, Message: msg})
		if err != nil {
			matched := 0
			for _, k := range Kinds() {
				if errors.Is(err, k) {
					matched++
				}
			}
			if matched != 1 {
				t.Fatalf("error %v matches %d kinds", err, matched)
			}
			return
		}
		if m.CRA != commands.Alert || m.Originator != w.device {
			t.Fatalf("accepted %+v", m)
		}
		switch {
		case m.Signed():
			if commands.VerifySignature(&key.PublicKey, m) != nil {
				t.Fatal("accepted a signature that does not verify")
			}
		case !m.HasMAC():
			t.Fatalf("accepted an alert neither signed nor MAC'd: %+v", m)
		case m.Recipient == w.acb:
			if commands.CheckMAC(ctx, w.acbKA, d.KeyAgreement, m) != nil {
				t.Fatal("accepted a MAC to the ACB that does not verify")
			}
		}
	})
}

// FuzzAlertPage reads arbitrary bodies as a GET /v1/alerts answer: it
// never panics, and refuses with ErrMalformed only.
func FuzzAlertPage(f *testing.F) {
	f.Add([]byte(`{"log":"x","next":2,"alerts":[{"index":1,"device":"0012A3FFFE000001","recipient":"90B3D51F30000002","messageCode":"0x00CC","counter":5,"at":"2026-12-05T10:00:00Z","message":"df09"}]}`))
	f.Add([]byte(`{"alerts":[{"device":"zz"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseAlertPage(body); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("parseAlertPage: %v, want malformed", err)
		}
	})
}

func TestHTTPTransportAlerts(t *testing.T) {
	dev := smki.MustParseEUI("0012A3FFFE000001")
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   int
		err    bool
	}{
		{"a page", 200, `{"log":"L","next":8,"alerts":[{"index":7,"device":"0012A3FFFE000001","recipient":"90B3D51F30000002","messageCode":"0x00CC","counter":5,"at":"2026-12-05T10:00:00Z","message":"df0903"}]}`, 1, false},
		{"empty", 200, `{"log":"L","next":3,"alerts":[]}`, 0, false},
		{"bad hex", 200, `{"log":"L","next":8,"alerts":[{"index":7,"device":"0012A3FFFE000001","message":"zz"}]}`, 0, true},
		{"bad device", 200, `{"log":"L","next":8,"alerts":[{"index":7,"device":"12","message":"df"}]}`, 0, true},
		{"not JSON", 200, `<html>`, 0, true},
		{"endpoint refuses", 400, `{"code":"bad-query"}`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/csp/v1/alerts" || r.URL.Query().Get("since") != "7" || r.URL.Query().Get("limit") != "50" {
					http.Error(w, "unexpected request "+r.URL.String(), http.StatusTeapot)
					return
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			tr, err := NewHTTPTransport(srv.URL+"/csp", srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			p, err := tr.Alerts(context.Background(), 7, 50)
			if (err != nil) != tc.err || len(p.Alerts) != tc.want {
				t.Fatalf("Alerts = %+v, %v", p, err)
			}
			if tc.want == 1 && (p.Log != "L" || p.Next != 8 || p.Alerts[0].Index != 7 || p.Alerts[0].Device != dev ||
				string(p.Alerts[0].Message) != "\xdf\x09\x03" || p.Alerts[0].At.IsZero()) {
				t.Fatalf("page = %+v", p)
			}
		})
	}
}

// TestAlertIntakeForgedMAC: an alert MAC'd to a user cannot be checked by
// the router, so it goes to its recipient (who checks the MAC) without
// becoming the device's last alert: a forgery with a huge counter does not
// silence the device's later genuine alerts, and one above 2^63-1 is
// refused without stopping the source.
func TestAlertIntakeForgedMAC(t *testing.T) {
	e := newAlertEnv(t)
	forged := func(counter uint64) []byte {
		m := &commands.Message{CRA: commands.Alert, Counter: counter, Originator: e.device, Recipient: e.supplier.eui, Code: 0x1001,
			Payload: []byte{0x0F, 0x20, 0x00, 0x00, 0x01, 0x00, 0x02, 0x02, 0x12, 0x81, 0x0E, 0x09, 0x00}, EmptySignatureField: true,
			MAC: make([]byte, 12)}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e.src.add(e.device, forged(1<<63-1))
	e.src.add(e.device, forged(1<<63))
	e.src.add(e.device, deviceAlert(t, e.devDS, e.device, e.supplier.eui, 0x00CC, 2000))
	e.poll(t)
	want := []string{"router.alert.received", "router.alert.refused/malformed", "router.alert.received"}
	if got := e.audits(t); !slices.Equal(got, want) {
		t.Fatalf("audits = %v, want %v", got, want)
	}
	if ds := e.deliveries(t, e.supplier.eui); len(ds) != 2 || viewOf(ds[1]).Alert.Counter != 2000 {
		t.Fatalf("deliveries = %+v: the genuine alert after the forgery must be delivered", ds)
	}
}
