package device

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// collect makes w's meter hand its alerts to the returned slice.
func collect(w *world) *[]Alert {
	var alerts []Alert
	w.meter.env.alerts = func(_ context.Context, a Alert) { alerts = append(alerts, a) }
	return &alerts
}

// parseAlert reads an alert as its recipient does: CRA 3, the meter's own
// counter, signed by the meter and without MAC header.
func parseAlert(t *testing.T, w *world, a Alert, code uint16) *commands.Message {
	t.Helper()
	m, err := commands.Parse(a.Message)
	if err != nil {
		t.Fatal(err)
	}
	if m.CRA != commands.Alert || m.Code != commands.MessageCode(code) || m.Originator != w.meter.EUI() ||
		m.Counter != a.Counter || m.Recipient != a.Recipient || a.Device != w.meter.EUI() || m.Form() != commands.FormSigned {
		t.Fatalf("alert %s %s %d from %s to %s in form %s; want %s", m.CRA, m.Code, m.Counter, m.Originator, m.Recipient, m.Form(), commands.MessageCode(code))
	}
	if err := commands.VerifySignature(w.meter.SignaturePublicKey(), m); err != nil {
		t.Fatalf("alert signature: %v", err)
	}
	return m
}

func TestBillingDataLogAlert(t *testing.T) {
	w := newWorld(t, Electricity)
	alerts := collect(w)
	if err := w.meter.RaiseBillingDataLog(w.ctx); err != nil {
		t.Fatal(err)
	}
	if len(*alerts) != 1 {
		t.Fatalf("%d alerts", len(*alerts))
	}
	m := parseAlert(t, w, (*alerts)[0], CodeECS68)
	if m.Recipient != w.supplier.eui {
		t.Fatalf("ECS68 alert to %s, want the supplier", m.Recipient)
	}
	a, err := dlms.Parse(m.Payload)
	if err != nil || a.DataNotification == nil {
		t.Fatalf("alert payload: %v", err)
	}
	b, err := dlms.ReadBillingDataLogAlert(a.DataNotification)
	if err != nil {
		t.Fatal(err)
	}
	if b.AlertCode != dlms.AlertBillingDataLog || b.Protection.Counter != m.Counter || b.Protection.Originator != w.meter.EUI() ||
		b.Protection.Recipient != w.supplier.eui || a.DataNotification.InvokeID != dlms.InvokeID(m.Counter) {
		t.Fatalf("alert %+v", b)
	}
	pts := w.plaintexts(m, w.supplier)
	l, err := dlms.ReadBillingDataLog(plainData(t, pts[0]))
	if err != nil || len(l.Records) != 1 || uint64(l.Records[0].Values[0]) != w.meter.Register(testNow) {
		t.Fatalf("billing data log %+v, %v", l, err)
	}
	if _, err := commands.OpenPayload(w.ctx, w.acb.ka, w.meter.AgreementPublicKey(), m); !errors.Is(err, commands.ErrDecrypt) {
		t.Errorf("the ACB decrypted the billing data: %v", err)
	}

	t.Run("no supplier anchor", func(t *testing.T) {
		w := newWorld(t, Electricity)
		w.meter.anchors, _ = w.anchors.With(smki.RoleSupplier, 1)
		if err := w.meter.RaiseBillingDataLog(w.ctx); !errors.Is(err, ErrNoRecipient) {
			t.Fatalf("err = %v, want ErrNoRecipient", err)
		}
	})
}

func TestFutureDatedTariff(t *testing.T) {
	w := newWorld(t, Electricity)
	alerts := collect(w)
	at := testNow.Add(6 * time.Hour).Truncate(time.Hour)

	b, cmd := w.command(CodeECS01a, tariffCommand(t, dt(t, at)), cmdOpts{})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := dlms.ReadResults(accessResponse(t, w.open(resp, cmd, w.supplier).Payload), dlms.Set, dlms.TariffSpecCount); err != nil || res[15] != 0 {
		t.Fatalf("results %v, %v", res, err)
	}
	if _, ok := w.meter.Tariff(); ok {
		t.Fatal("a future-dated tariff is in force at once")
	}
	p, ok := w.meter.PendingTariff()
	if !ok || !p.ActivatedAt.Equal(at) || p.Electricity == nil {
		t.Fatalf("pending tariff %+v, %t", p, ok)
	}

	// A second future-dated tariff replaces the first; "never" cancels it.
	for _, act := range []dlms.DateTime{dt(t, at.Add(time.Hour)), dlms.Never} {
		b, _ = w.command(CodeECS01a, tariffCommand(t, act), cmdOpts{})
		if _, err := w.meter.Handle(w.ctx, b); err != nil {
			t.Fatal(err)
		}
		if p, ok := w.meter.PendingTariff(); act != dlms.Never && (!ok || !p.ActivatedAt.Equal(at.Add(time.Hour))) {
			t.Fatalf("pending tariff %+v, %t: the second did not replace the first", p, ok)
		}
	}
	if _, ok := w.meter.PendingTariff(); ok {
		t.Fatal("the cancellation left the tariff pending")
	}

	b, cmd = w.command(CodeECS01a, tariffCommand(t, dt(t, at)), cmdOpts{})
	if _, err := w.meter.Handle(w.ctx, b); err != nil {
		t.Fatal(err)
	}
	w.now = at.Add(-time.Second)
	w.meter.Tick(w.ctx)
	if len(*alerts) != 0 {
		t.Fatal("alerts before the activation time")
	}
	w.now = at.Add(time.Minute)
	// The next command runs what fell due first.
	if _, err := w.meter.Handle(w.ctx, first(w.command(CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{}))); err != nil {
		t.Fatal(err)
	}
	if tt, ok := w.meter.Tariff(); !ok || tt.Counter != cmd.Counter || !tt.ActivatedAt.Equal(at) {
		t.Fatalf("tariff in force %+v, %t", tt, ok)
	}
	if len(*alerts) != 6 {
		t.Fatalf("%d alerts, want 6", len(*alerts))
	}
	for i, a := range *alerts {
		m := parseAlert(t, w, a, CodeFutureDatedDLMS)
		n, err := dlms.Parse(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := dlms.ReadFutureDatedAlert(n.DataNotification)
		if err != nil {
			t.Fatal(err)
		}
		want := (&dlms.Tariff{}).Request(0).Specs[15+i]
		if fd.AlertCode != dlms.AlertFutureDatedSuccess || fd.MessageCode != CodeECS01a || fd.Counter != cmd.Counter ||
			fd.Class != want.Class || fd.OBIS != want.OBIS || fd.Attribute != want.ID || fd.Time != dt(t, at) {
			t.Errorf("alert %d: %+v", i, fd)
		}
	}
}

func TestFutureDatedValve(t *testing.T) {
	w := newWorld(t, Gas)
	alerts := collect(w)
	at := testNow.Add(time.Hour)
	when, err := gbz.NewUTC(at)
	if err != nil {
		t.Fatal(err)
	}
	b, cmd := w.command(CodeGCS32, changeSupply(t, CodeGCS32, when), cmdOpts{})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	_, u := gbzResponse(t, CodeGCS32, w.open(resp, cmd, w.supplier).Payload)
	if r, ok := u.Value.(*gbz.SupplyStatusResponse); !ok || r.ImplementationDateTime != when || r.SupplyStatus != gbz.SupplyOn {
		t.Fatalf("response %+v: want the valve open and the implementation time", u.Value)
	}
	if w.meter.Supply() != SupplyEnabled {
		t.Fatal("valve closed before its time")
	}
	w.now = at
	w.meter.Tick(w.ctx)
	if w.meter.Supply() != SupplyDisabled || len(*alerts) != 1 {
		t.Fatalf("valve %v, %d alerts after the implementation time", w.meter.Supply(), len(*alerts))
	}
	m := parseAlert(t, w, (*alerts)[0], CodeFutureDatedGBZ)
	a, err := gbz.ParseAlert(uint16(m.Code), m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if a.AlertCode != 0x8F66 || a.Timestamp != when || a.FutureDated == nil || a.FutureDated.MessageCode != CodeGCS32 ||
		a.FutureDated.OriginatorCounter != cmd.Counter || a.FutureDated.Cluster != gbz.ClusterMetering || a.FutureDated.Command != gbz.CmdChangeSupply {
		t.Fatalf("alert %+v", a)
	}
}

func TestFleetKeepsAlerts(t *testing.T) {
	hf := newHTTPFleet(t, HTTPConfig{})
	for _, eui := range hf.euis {
		m, _ := hf.fleet.Meter(eui)
		for range 2 {
			if err := m.RaiseBillingDataLog(hf.w.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if all, next := hf.fleet.Alerts(0, 0); len(all) != 4 || next != 4 {
		t.Fatalf("%d alerts kept, next %d", len(all), next)
	}
	tests := []struct {
		query     string
		status    int
		n         int
		next      uint64
		firstIdx  uint64
		firstFrom smki.EUI
	}{
		{"", http.StatusOK, 4, 4, 0, hf.euis[0]},
		{"?since=2", http.StatusOK, 2, 4, 2, hf.euis[1]},
		{"?since=1&limit=2", http.StatusOK, 2, 3, 1, hf.euis[0]},
		{"?since=9", http.StatusOK, 0, 9, 0, smki.EUI{}},
		{"?since=-1", http.StatusBadRequest, 0, 0, 0, smki.EUI{}},
		{"?limit=0", http.StatusBadRequest, 0, 0, 0, smki.EUI{}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			status, body, _ := hf.do(t, http.MethodGet, "/v1/alerts"+tc.query, "", nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if status != http.StatusOK {
				return
			}
			var l AlertList
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Alerts) != tc.n || l.Next != tc.next {
				t.Fatalf("%d alerts, next %d; want %d, %d", len(l.Alerts), l.Next, tc.n, tc.next)
			}
			if tc.n == 0 {
				return
			}
			a := l.Alerts[0]
			if a.Index != tc.firstIdx || a.Device != tc.firstFrom || a.Code != "0x0061" {
				t.Fatalf("first alert %+v", a)
			}
			raw, err := hex.DecodeString(a.Message)
			if err != nil {
				t.Fatal(err)
			}
			m, err := commands.Parse(raw)
			if err != nil || m.Counter != a.Counter || m.Originator != a.Device {
				t.Fatalf("alert message %v: %v", m, err)
			}
		})
	}
}

// TestFleetForwardsAlerts checks that a fleet keeps its meters' alerts and
// hands each to the sink of its Config too.
func TestFleetForwardsAlerts(t *testing.T) {
	w := newWorld(t, Electricity)
	var got []Alert
	f := NewFleet(Config{Now: func() time.Time { return testNow }, Alerts: func(_ context.Context, a Alert) { got = append(got, a) }})
	euis, err := f.Generate(w.ctx, 1, smki.MustParseEUI("0012A3FFFE500000"), Electricity, w.anchors)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := f.Meter(euis[0])
	if err := m.RaiseBillingDataLog(w.ctx); err != nil {
		t.Fatal(err)
	}
	kept, _ := f.Alerts(0, 0)
	if len(got) != 1 || len(kept) != 1 || string(kept[0].Message) != string(got[0].Message) || kept[0].Device != euis[0] {
		t.Fatalf("forwarded %d, kept %d", len(got), len(kept))
	}
}
