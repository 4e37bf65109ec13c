package device

import (
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// TestGSMEUseCases runs the gas use cases end to end: GCS28 (ASN.1) and the
// GBZ use cases of our layout.
func TestGSMEUseCases(t *testing.T) {
	w := newWorld(t, Gas)
	handle := func(t *testing.T, code uint16, payload []byte, o cmdOpts) *commands.Message {
		t.Helper()
		b, cmd := w.command(code, payload, o)
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatalf("%s: %v", commands.MessageCode(code), err)
		}
		p := o.from
		if p == nil {
			p = w.supplier
		}
		if o.urp != nil {
			p = w.acb
		}
		return w.open(resp, cmd, p)
	}
	t.Run("GCS28 set clock", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			start, end time.Time
			want       asn.DeviceTimeStatus
		}{
			{"inside the window", testNow.Add(-time.Minute), testNow.Add(time.Minute), 0},
			{"window reversed", testNow.Add(time.Minute), testNow.Add(-time.Minute), 1},
			{"outside the window", testNow.Add(time.Hour), testNow.Add(2 * time.Hour), 2},
		} {
			r := handle(t, CodeGCS28, asnBytes(t, &asn.SetTimeCommand{ValidityIntervalStart: asn.NewGeneralizedTime(tc.start),
				ValidityIntervalEnd: asn.NewGeneralizedTime(tc.end)}), cmdOpts{})
			v, err := asn.Parse[asn.SetTimeResponse](r.Payload)
			if err != nil || v.DeviceTimeStatus != tc.want || !v.DeviceTime.Time().Equal(testNow) {
				t.Errorf("%s: %+v, %v", tc.name, v, err)
			}
		}
	})
	t.Run("GCS01a tariff now", func(t *testing.T) {
		r := handle(t, CodeGCS01a, gasTariffCommand(t, gbz.StartNow), cmdOpts{})
		_, u := gbzResponse(t, CodeGCS01a, r.Payload)
		if u.Message != "response" {
			t.Fatalf("response %s %+v", u.Message, u.Value)
		}
		tt, ok := w.meter.Tariff()
		if !ok || tt.Gas == nil || len(tt.Gas.UnitPrices()) != 2 || tt.Electricity != nil {
			t.Fatalf("tariff %+v, %t", tt, ok)
		}
	})
	t.Run("GCS01a future-dated, with its alerts", func(t *testing.T) {
		alerts := collect(w)
		at := testNow.Add(2 * time.Hour)
		start, _ := gbz.NewUTC(at)
		b, cmd := w.command(CodeGCS01a, gasTariffCommand(t, start), cmdOpts{})
		if _, err := w.meter.Handle(w.ctx, b); err != nil {
			t.Fatal(err)
		}
		if p, ok := w.meter.PendingTariff(); !ok || !p.ActivatedAt.Equal(at) {
			t.Fatalf("pending %+v, %t", p, ok)
		}
		w.now = at
		defer func() { w.now = testNow }()
		w.meter.Tick(w.ctx)
		if tt, _ := w.meter.Tariff(); tt.Counter != cmd.Counter || len(*alerts) != 3 {
			t.Fatalf("tariff from counter %d (want %d), %d alerts (want 3)", tt.Counter, cmd.Counter, len(*alerts))
		}
		m := parseAlert(t, w, (*alerts)[1], CodeFutureDatedGBZ)
		a, err := gbz.ParseAlert(uint16(m.Code), m.Payload)
		if err != nil || a.FutureDated == nil || a.FutureDated.MessageCode != CodeGCS01a || a.FutureDated.OriginatorCounter != cmd.Counter {
			t.Fatalf("alert %+v, %v", a, err)
		}
	})
	t.Run("GCS13a register", func(t *testing.T) {
		r := handle(t, CodeGCS13a, gbzBytes(t, gbz.NewReadConsumptionRegister(gbz.GetSnapshot{LatestEndTime: 0xFFFFFFFF, Cause: 1})), cmdOpts{from: w.netop})
		s, err := gbz.ParsePublishSnapshot(w.plaintexts(r, w.netop)[0])
		if err != nil || s.CurrentSummationDelivered != w.meter.Register(testNow) {
			t.Fatalf("snapshot %+v, %v", s, err)
		}
	})
	t.Run("GCS17 profile", func(t *testing.T) {
		r := handle(t, CodeGCS17, gbzBytes(t, gbz.NewReadProfile(gbz.GetProfile{Periods: 4})), cmdOpts{})
		g, err := gbz.ParseGetProfileResponse(w.plaintexts(r, w.supplier)[0])
		if err != nil || g.Status != gbz.ProfileSuccess || g.Period != gbz.Period30Minutes || len(g.Intervals) != 4 {
			t.Fatalf("profile %+v, %v", g, err)
		}
		start, _ := g.Start()
		want := w.meter.Profile(testNow, start.Time(), g.EndTime.Time())
		for i, v := range g.Chronological() {
			if v != want.Values[i] {
				t.Fatalf("interval %d: %d Wh, model %d", i, v, want.Values[i])
			}
		}
		if !g.EndTime.Time().Equal(testNow.Truncate(SlotDuration)) {
			t.Errorf("end time %v, want the last completed half hour %v", g.EndTime, testNow.Truncate(SlotDuration))
		}
	})
	t.Run("GCS17 other channel", func(t *testing.T) {
		r := handle(t, CodeGCS17, gbzBytes(t, gbz.NewReadProfile(gbz.GetProfile{Channel: 1, Periods: 4})), cmdOpts{})
		g, err := gbz.ParseGetProfileResponse(w.plaintexts(r, w.supplier)[0])
		if err != nil || g.Status != gbz.ProfileUndefinedChannel || len(g.Intervals) != 0 {
			t.Fatalf("profile %+v, %v", g, err)
		}
	})
	t.Run("GCS61 daily log for the third party", func(t *testing.T) {
		cert := issue(t, smki.ProfileOrgKA, smki.RoleOther, w.other.eui, &w.other.kaS.PublicKey)
		urp := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 7, KACertificate: cert}
		r := handle(t, CodeGCS61, gbzBytes(t, gbz.NewReadProfile(gbz.GetProfile{Periods: 3})), cmdOpts{from: w.acb, urp: urp})
		if r.OtherInfoForm() != 26 {
			t.Fatalf("other-information form %d, want 26", r.OtherInfoForm())
		}
		g, err := gbz.ParseGetProfileResponse(w.plaintexts(r, w.other)[0])
		if err != nil {
			t.Fatal(err)
		}
		l, err := g.DailyLog()
		if err != nil || len(l.Days) != 3 || !l.Days[2].Start.Time().Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("daily log %+v, %v", l, err)
		}
		day := l.Days[0].Start.Time()
		if got := w.meter.Register(day.Add(24*time.Hour)) - w.meter.Register(day); uint64(l.Days[0].Wh) != got {
			t.Fatalf("day 1: %d Wh, registers say %d", l.Days[0].Wh, got)
		}
	})
	t.Run("GCS36 CIN", func(t *testing.T) {
		urp := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 8}
		for _, tc := range []struct {
			cin  string
			want gbz.Status
		}{{"4721", gbz.StatusSuccess}} {
			r := handle(t, CodeGCS36, gasCIN(t, tc.cin), cmdOpts{from: w.acb, urp: urp})
			_, u := gbzResponse(t, CodeGCS36, r.Payload)
			if d, ok := u.Value.(*gbz.DefaultResponse); !ok || d.Status != tc.want {
				t.Fatalf("response %+v", u.Value)
			}
		}
		if cin, ok := w.meter.CIN(); !ok || cin != "4721" {
			t.Fatalf("CIN %q, %t", cin, ok)
		}
	})
	t.Run("GCS60 balance", func(t *testing.T) {
		r := handle(t, CodeGCS60, gbzBytes(t, gbz.NewReadMeterBalance()), cmdOpts{})
		_, u := gbzResponse(t, CodeGCS60, r.Payload)
		if b, ok := u.Value.(*gbz.MeterBalance); !ok || b.Credit == nil || int64(*b.Credit) != w.meter.Balance().MilliPence {
			t.Fatalf("balance %+v, meter %+v", u.Value, w.meter.Balance())
		}
	})
	t.Run("a DLMS payload under a GBZ code is malformed", func(t *testing.T) {
		b, _ := w.command(CodeGCS33, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{})
		if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
	})
}

// TestUnknownRemoteParty reads the profile for a third party behind the
// ACB: the response goes to the broker in the 26-byte form, encrypted to
// the certificate the command carried with the meter's own counter, so the
// third party alone reads it.
func TestUnknownRemoteParty(t *testing.T) {
	w := newWorld(t, Electricity)
	cert := issue(t, smki.ProfileOrgKA, smki.RoleOther, w.other.eui, &w.other.kaS.PublicKey)
	urp := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 99, KACertificate: cert}
	req := profileRequest(t, w, w.other, testNow.Add(-2*time.Hour), testNow)

	var last uint64
	for i := range 2 {
		b, cmd := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: urp})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatalf("URP profile read: %v", err)
		}
		r := w.open(resp, cmd, w.acb)
		if r.OtherInfoForm() != 26 || r.URP.EUI != w.other.eui || r.URP.Counter != 99 || r.URP.OriginatorCounter == nil || r.URP.KACertificate != nil {
			t.Fatalf("other-information form %d: %+v", r.OtherInfoForm(), r.URP)
		}
		if c := *r.URP.OriginatorCounter; c <= last {
			t.Fatalf("response %d: supplementary originator counter %d, not above %d", i, c, last)
		} else {
			last = c
		}
		p, err := dlms.ReadHalfHourProfile(plainData(t, w.plaintexts(r, w.other)[0]))
		if err != nil || len(p.Records) != 3 { // 16:45:10 to 18:45:10: 17:00, 17:30 and 18:00; 18:30 is not over
			t.Fatalf("third party read %d records, %v", len(p.Records), err)
		}
		for _, pty := range []*party{w.acb, w.supplier} {
			if _, err := commands.OpenPayload(w.ctx, pty.ka, w.meter.AgreementPublicKey(), r); !errors.Is(err, commands.ErrDecrypt) {
				t.Errorf("%s decrypted the third party's data: err = %v", pty.eui, err)
			}
		}
	}

	t.Run("CIN from the third party, 18-byte form kept", func(t *testing.T) {
		b, cmd := w.command(CodeECS50, apdu(t, dlms.CINRequest(testInvoke, []byte("12345678"))), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 100}})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r := w.open(resp, cmd, w.acb)
		if r.OtherInfoForm() != 18 || r.URP.Counter != 100 {
			t.Fatalf("other-information form %d", r.OtherInfoForm())
		}
		if res, err := dlms.ReadResults(accessResponse(t, r.Payload), dlms.Set, 1); err != nil || res[0] != 0 {
			t.Fatalf("results %v, %v", res, err)
		}
		if c, ok := w.meter.CIN(); !ok || c != "12345678" {
			t.Fatalf("CIN %q, %t", c, ok)
		}
	})
	t.Run("a CIN that is not digits is refused", func(t *testing.T) {
		b, cmd := w.command(CodeECS50, apdu(t, dlms.CINRequest(testInvoke, []byte("12ab"))), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 101}})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := dlms.ReadResults(accessResponse(t, w.open(resp, cmd, w.acb).Payload), dlms.Set, 1); err != nil || res[0] != 250 {
			t.Fatalf("results %v, %v: want other-reason", res, err)
		}
		if c, _ := w.meter.CIN(); c != "12345678" {
			t.Fatalf("CIN changed to %q", c)
		}
	})
	t.Run("the supplier on whose behalf the ACB sends", func(t *testing.T) {
		b, cmd := w.command(CodeECS17b, apdu(t, importEnergyRequest(w, w.supplier)), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.supplier.eui, Counter: 5}})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r := w.open(resp, cmd, w.acb)
		if r.OtherInfoForm() != 18 {
			t.Fatalf("other-information form %d", r.OtherInfoForm())
		}
		w.plaintexts(r, w.supplier)
	})
	t.Run("sensitive read without a certificate is refused", func(t *testing.T) {
		before, _ := w.meter.LastCounter(w.acb.eui)
		b, _ := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 102}})
		if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
		if after, _ := w.meter.LastCounter(w.acb.eui); after != before {
			t.Errorf("refused read spent its counter: %d -> %d", before, after)
		}
	})
	t.Run("certificate of another party is refused", func(t *testing.T) {
		b, _ := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.attacker.eui, Counter: 103, KACertificate: cert}})
		if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
}
