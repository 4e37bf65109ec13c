package device

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// must unwraps an encoder's result in tests, where the values are valid by
// construction; an error there is a bug in the test.
func must(p []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return p
}

func first[A, B any](a A, _ B) A { return a }

func TestHandleRefuses(t *testing.T) {
	w := newWorld(t, Electricity)
	disable := loadSwitch(t, CodeECS43)
	cin := apdu(t, dlms.CINRequest(testInvoke, []byte("4711")))
	profile := profileRequest(t, w, w.supplier, testNow.Add(-24*time.Hour), testNow)
	registers := apdu(t, importEnergyRequest(w, w.supplier))
	balance := apdu(t, dlms.MeterBalanceRequest(testInvoke))

	// A good command, delivered once, so its bytes can be replayed.
	good, _ := w.command(CodeECS43, disable, cmdOpts{})
	if _, err := w.meter.Handle(w.ctx, good); err != nil {
		t.Fatalf("good command refused: %v", err)
	}
	w.meter.PressButton() // no effect: disabled, not armed
	if _, err := w.meter.Handle(w.ctx, first(w.command(CodeECS42, loadSwitch(t, CodeECS42), cmdOpts{}))); err != nil {
		t.Fatalf("enable refused: %v", err)
	}
	last, _ := w.meter.LastCounter(w.supplier.eui)

	tampered := func() []byte {
		b, _ := w.command(CodeECS43, disable, cmdOpts{})
		b[len(b)-20] ^= 0x01 // inside the signature: the MAC no longer matches
		return b
	}
	urpOther := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 42}
	tests := []struct {
		name string
		msg  []byte
		want Reason
	}{
		{"bad MAC: MAC'd by a key that is not the ACB's", first(w.command(CodeECS43, disable, cmdOpts{macBy: w.attacker})), ReasonBadMAC},
		{"bad MAC: message altered after the MAC", tampered(), ReasonBadMAC},
		{"replay: the same bytes again", good, ReasonReplay},
		{"replay: counter equal to the last accepted", first(w.command(CodeECS43, disable, cmdOpts{counter: last})), ReasonReplay},
		{"replay: counter below the last accepted", first(w.command(CodeECS43, disable, cmdOpts{counter: last - 1000})), ReasonReplay},
		{"critical command signed by a key not in the anchors, supplier's EUI", first(w.command(CodeECS43, disable, cmdOpts{signer: w.attacker})), ReasonBadSignature},
		{"critical command from an originator in no anchor", first(w.command(CodeECS43, disable, cmdOpts{from: w.attacker})), ReasonUnknownSigner},
		{"critical command without signature", first(w.command(CodeECS43, disable, cmdOpts{noSign: true})), ReasonBadSignature},
		{"critical command from the network operator", first(w.command(CodeECS43, disable, cmdOpts{from: w.netop})), ReasonRoleNotAllowed},
		{"critical command from an unknown remote party", first(w.command(CodeECS43, disable, cmdOpts{from: w.acb, urp: urpOther})), ReasonRoleNotAllowed},
		{"non-critical command signed as well as MAC'd", first(w.command(CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{sign: true})), ReasonMalformed},
		{"non-critical CIN from the supplier (OU only)", first(w.command(CodeECS50, cin, cmdOpts{})), ReasonRoleNotAllowed},
		{"non-critical register read from an unknown remote party", first(w.command(CodeECS17b, registers, cmdOpts{from: w.acb, urp: urpOther})), ReasonRoleNotAllowed},
		{"non-critical balance read from the network operator", first(w.command(CodeECS82, balance, cmdOpts{from: w.netop})), ReasonRoleNotAllowed},
		{"non-critical read from an originator in no anchor", first(w.command(CodeECS17b, registers, cmdOpts{from: w.attacker})), ReasonUnknownSigner},
		{"unknown remote party not behind the ACB", first(w.command(CodeECS22b, profile, cmdOpts{from: w.supplier, urp: urpOther})), ReasonUnknownSigner},
		{"gas use case on an electricity meter", first(w.command(CodeGCS33, gbzBytes(t, gbz.NewReadValveStatus()), cmdOpts{})), ReasonUnsupported},
		{"use case the meter does not execute", first(w.command(0x0021, []byte{1}, cmdOpts{})), ReasonUnsupported},
		{"authentic command with a malformed payload (spends its counter)", first(w.command(CodeECS43, []byte{0xD9, 0x00}, cmdOpts{})), ReasonMalformed},
		{"authentic command with another use case's payload (spends its counter)", first(w.command(CodeECS43, loadSwitch(t, CodeECS42), cmdOpts{})), ReasonMalformed},
		{"authentic command with a GBZ payload (spends its counter)", first(w.command(CodeECS43, changeSupply(t, CodeGCS32, 0), cmdOpts{})), ReasonMalformed},
		{"not a GBCS message", []byte("GET / HTTP/1.1\r\n"), ReasonMalformed},
		{"empty", nil, ReasonMalformed},
		{"signed command without MAC header", first(w.command(CodeECS43, disable, cmdOpts{noMAC: true})), ReasonNotCommand},
		{"pre-command", preCommand(t, w, CodeECS43, disable), ReasonNotCommand},
		{"a response, not a command", response(t, w), ReasonNotCommand},
		{"command for another meter", otherRecipient(t, w, disable), ReasonWrongRecipient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := w.meter.Stats()
			state := w.meter.Supply()
			lastBefore, _ := w.meter.LastCounter(w.supplier.eui)
			resp, err := w.meter.Handle(w.ctx, tc.msg)
			if resp != nil {
				t.Errorf("refused message got a %d-byte response", len(resp))
			}
			if !errors.Is(err, tc.want.Err()) {
				t.Fatalf("err = %v, want %v", err, tc.want.Err())
			}
			if r, ok := ReasonOf(err); !ok || r != tc.want {
				t.Errorf("ReasonOf = %v, %t; want %v", r, ok, tc.want)
			}
			after := w.meter.Stats()
			if after.DiscardedFor(tc.want) != before.DiscardedFor(tc.want)+1 || after.Accepted != before.Accepted {
				t.Errorf("stats %+v -> %+v: want one more %v discard and no acceptance", before, after, tc.want)
			}
			if w.meter.Supply() != state {
				t.Errorf("supply changed from %v to %v on a refused message", state, w.meter.Supply())
			}
			// Only an authentic, authorised command spends its counter.
			lastAfter, _ := w.meter.LastCounter(w.supplier.eui)
			if spends := strings.Contains(tc.name, "spends its counter"); (lastAfter != lastBefore) != spends {
				t.Errorf("last supplier counter %d -> %d; spent %t, want %t", lastBefore, lastAfter, lastAfter != lastBefore, spends)
			}
		})
	}
	if _, ok := w.meter.CIN(); ok {
		t.Errorf("CIN set by a refused command")
	}
}

// preCommand returns a pre-command: no MAC header, no signature field.
func preCommand(t *testing.T, w *world, code uint16, payload []byte) []byte {
	_, m := w.command(code, payload, cmdOpts{noSign: true, noMAC: true})
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// response returns a MAC'd message with CRA flag 2.
func response(t *testing.T, w *world) []byte {
	m := &commands.Message{CRA: commands.Response, Counter: 5, Originator: w.supplier.eui, Recipient: w.meter.EUI(),
		Code: commands.MessageCode(CodeECS45), Payload: apdu(t, dlms.NewGetResponse(testInvoke, dlms.Enum(1), 0))}
	if err := commands.AddMAC(w.ctx, w.acb.ka, w.meter.AgreementPublicKey(), m); err != nil {
		t.Fatal(err)
	}
	return must(m.Marshal())
}

func otherRecipient(t *testing.T, w *world, payload []byte) []byte {
	_, m := w.command(CodeECS43, payload, cmdOpts{})
	m.Recipient = smki.MustParseEUI("0012A3FFFE00FFFF")
	if err := commands.Sign(nil, w.supplier.ds, m); err != nil {
		t.Fatal(err)
	}
	if err := commands.AddMAC(w.ctx, w.acb.ka, w.meter.AgreementPublicKey(), m); err != nil {
		t.Fatal(err)
	}
	return must(m.Marshal())
}

func TestHandleAcceptsSupplyCommands(t *testing.T) {
	status := func(t testing.TB) []byte { return apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)) }
	tests := []struct {
		name    string
		kind    Kind
		code    uint16
		payload func(t testing.TB) []byte
		from    func(*world) *party
		start   SupplyState
		ok      bool
		want    SupplyState
	}{
		{"ECS43 disable", Electricity, CodeECS43, func(t testing.TB) []byte { return loadSwitch(t, CodeECS43) }, nil, SupplyEnabled, true, SupplyDisabled},
		{"ECS42 enable", Electricity, CodeECS42, func(t testing.TB) []byte { return loadSwitch(t, CodeECS42) }, nil, SupplyDisabled, true, SupplyEnabled},
		{"ECS44 arm a disabled switch", Electricity, CodeECS44, func(t testing.TB) []byte { return loadSwitch(t, CodeECS44) }, nil, SupplyDisabled, true, SupplyArmed},
		{"ECS44 arm a closed switch is refused", Electricity, CodeECS44, func(t testing.TB) []byte { return loadSwitch(t, CodeECS44) }, nil, SupplyEnabled, false, SupplyEnabled},
		{"ECS45 status by the supplier", Electricity, CodeECS45, status, nil, SupplyArmed, true, SupplyArmed},
		{"ECS45 status by the network operator", Electricity, CodeECS45, status, func(w *world) *party { return w.netop }, SupplyDisabled, true, SupplyDisabled},
		{"GCS32 close the valve", Gas, CodeGCS32, func(t testing.TB) []byte { return changeSupply(t, CodeGCS32, 0) }, nil, SupplyEnabled, true, SupplyDisabled},
		{"GCS39 arm the valve", Gas, CodeGCS39, func(t testing.TB) []byte { return changeSupply(t, CodeGCS39, 0) }, nil, SupplyDisabled, true, SupplyArmed},
		{"GCS39 arm an open valve is refused", Gas, CodeGCS39, func(t testing.TB) []byte { return changeSupply(t, CodeGCS39, 0) }, nil, SupplyEnabled, false, SupplyEnabled},
		{"GCS33 valve status", Gas, CodeGCS33, func(t testing.TB) []byte { return gbzBytes(t, gbz.NewReadValveStatus()) }, nil, SupplyEnabled, true, SupplyEnabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.kind)
			w.meter.supply = tc.start
			from := w.supplier
			if tc.from != nil {
				from = tc.from(w)
			}
			b, cmd := w.command(tc.code, tc.payload(t), cmdOpts{from: from})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			r := w.open(resp, cmd, from)
			if w.meter.Supply() != tc.want {
				t.Fatalf("state %v; want %v", w.meter.Supply(), tc.want)
			}
			ok, reported := supplyOutcome(t, tc.code, r.Payload)
			if ok != tc.ok {
				t.Fatalf("response says ok %t, want %t", ok, tc.ok)
			}
			if reported != nil && *reported != tc.want {
				t.Errorf("response says %v, meter is %v", *reported, tc.want)
			}
			if got, _ := w.meter.LastCounter(from.eui); got != cmd.Counter {
				t.Errorf("last counter %d, want %d", got, cmd.Counter)
			}
		})
	}
	t.Run("armed supply closes on the button", func(t *testing.T) {
		w := newWorld(t, Electricity)
		w.meter.supply = SupplyArmed
		if !w.meter.PressButton() || w.meter.Supply() != SupplyEnabled {
			t.Fatalf("button did not restore an armed supply")
		}
	})
}

// supplyOutcome reads the response to a supply-switch use case: whether it
// succeeded and, for the status reads and the GSME's Supply Status
// Response, the state it reports.
func supplyOutcome(t *testing.T, code uint16, p []byte) (bool, *SupplyState) {
	t.Helper()
	if code == CodeGCS32 || code == CodeGCS33 || code == CodeGCS39 {
		_, u := gbzResponse(t, code, p)
		st := func(s gbz.SupplyStatus) *SupplyState {
			m := map[gbz.SupplyStatus]SupplyState{gbz.SupplyOff: SupplyDisabled, gbz.SupplyArmed: SupplyArmed, gbz.SupplyOn: SupplyEnabled}
			v := m[s]
			return &v
		}
		switch v := u.Value.(type) {
		case *gbz.SupplyStatusResponse:
			if v.IssuerEventID != 0x32a7d280 {
				t.Errorf("issuer event id %v not repeated", v.IssuerEventID)
			}
			return true, st(v.SupplyStatus)
		case *gbz.ValveStatus:
			if v.BatteryLifeDays == nil || v.SupplyStatus == nil {
				t.Fatalf("valve status %+v", v)
			}
			return true, st(*v.SupplyStatus)
		case *gbz.DefaultResponse:
			if v.Status == gbz.StatusSuccess {
				t.Fatalf("default response with status success")
			}
			return false, nil
		}
		t.Fatalf("response value %T", u.Value)
	}
	s := accessResponse(t, p)
	if s.InvokeID != testInvoke {
		t.Errorf("invoke id %#x, want the command's %#x", s.InvokeID, testInvoke)
	}
	if code == CodeECS45 {
		cs, res, err := dlms.ReadLoadSwitchStatus(s)
		if err != nil || res != 0 {
			t.Fatalf("status %v, result %v, %v", cs, res, err)
		}
		v := SupplyState(cs)
		return true, &v
	}
	res, err := actionResults(s)
	if err != nil || len(res) != 1 {
		t.Fatalf("results %v, %v", res, err)
	}
	return res[0] == 0, nil
}

func TestHandleAcceptsReadsAndSettings(t *testing.T) {
	w := newWorld(t, Electricity)
	t.Run("ECS01a tariff", func(t *testing.T) {
		b, cmd := w.command(CodeECS01a, tariffCommand(t, dlms.Now), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r := w.open(resp, cmd, w.supplier)
		if len(r.DateTime) != 12 {
			t.Errorf("signed ESME response without header date-time")
		}
		res, err := dlms.ReadResults(accessResponse(t, r.Payload), dlms.Set, dlms.TariffSpecCount)
		if err != nil || res[0] != 0 || res[20] != 0 {
			t.Fatalf("results %v, %v", res, err)
		}
		got, ok := w.meter.Tariff()
		if !ok || got.Electricity == nil || len(got.Electricity.UnitPrices()) != 2 || !got.ActivatedAt.Equal(testNow) || got.Counter != cmd.Counter {
			t.Fatalf("tariff %+v, %t", got, ok)
		}
	})
	t.Run("ECS82 balance then ECS04b reset", func(t *testing.T) {
		b, cmd := w.command(CodeECS82, apdu(t, dlms.MeterBalanceRequest(testInvoke)), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		bal, res, err := dlms.ReadMeterBalance(accessResponse(t, w.open(resp, cmd, w.supplier).Payload))
		if err != nil || res != 0 || bal.Amount == 0 || int64(bal.Amount) != w.meter.Balance().MilliPence {
			t.Fatalf("balance %+v (meter %+v), %v", bal, w.meter.Balance(), err)
		}
		b, cmd = w.command(CodeECS04b, apdu(t, dlms.ResetBalanceRequest(testInvoke)), cmdOpts{})
		resp, err = w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := actionResults(accessResponse(t, w.open(resp, cmd, w.supplier).Payload)); err != nil || len(res) != 3 || res[0]+res[1]+res[2] != 0 {
			t.Fatalf("reset results %v, %v", res, err)
		}
		if w.meter.Balance().MilliPence != 0 {
			t.Fatalf("balance after reset %+v", w.meter.Balance())
		}
	})
	t.Run("ECS17b registers by supplier and network operator", func(t *testing.T) {
		for _, p := range []*party{w.supplier, w.netop} {
			b, cmd := w.command(CodeECS17b, apdu(t, importEnergyRequest(w, p)), cmdOpts{from: p})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			r := w.open(resp, cmd, p)
			pr, res, err := dlms.ReadProtectedResponse(accessResponse(t, r.Payload))
			if err != nil || res != 0 {
				t.Fatalf("protected response %v, %v", res, err)
			}
			if want := dlms.NewProtectionParameters(cmd.Counter, w.meter.EUI(), p.eui); !equalPP(pr.Protection, want) {
				t.Errorf("protection parameters %+v, want %+v", pr.Protection, want)
			}
			e, err := dlms.ReadImportEnergy(plainData(t, w.plaintexts(r, p)[0]))
			if err != nil {
				t.Fatal(err)
			}
			if uint64(e.ActiveImport.Value) != w.meter.Register(testNow) || e.ActiveImport.Unit != 30 || e.ReactiveImport.Unit != 32 {
				t.Fatalf("reading %+v, want %d Wh", e, w.meter.Register(testNow))
			}
		}
	})
	t.Run("ECS22b profile", func(t *testing.T) {
		from, to := testNow.Add(-48*time.Hour), testNow
		b, cmd := w.command(CodeECS22b, profileRequest(t, w, w.supplier, from, to), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r := w.open(resp, cmd, w.supplier)
		p, err := dlms.ReadHalfHourProfile(plainData(t, w.plaintexts(r, w.supplier)[0]))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != 95 { // 18:45:10 minus 48 h: slots from 19:00 two days ago to 18:30 today
			t.Fatalf("%d records, want 95", len(p.Records))
		}
		want := w.meter.Profile(testNow, from, to)
		for i, rec := range p.Records {
			if !rec.At().Equal(want.Start.Add(time.Duration(i)*SlotDuration)) || rec.Value != want.Values[i] {
				t.Fatalf("record %d %v %d, model %v %d", i, rec.At(), rec.Value, want.Start.Add(time.Duration(i)*SlotDuration), want.Values[i])
			}
		}
		// The router (the access control broker) MACs the traffic but cannot
		// read the supplier's consumption.
		if _, err := commands.OpenPayload(w.ctx, w.acb.ka, w.meter.AgreementPublicKey(), r); !errors.Is(err, commands.ErrDecrypt) {
			t.Errorf("the ACB decrypted the supplier's profile: err = %v", err)
		}
	})
	t.Run("ECS22b range over 168 days", func(t *testing.T) {
		b, cmd := w.command(CodeECS22b, profileRequest(t, w, w.supplier, testNow.AddDate(0, -7, 0), testNow), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, res, err := dlms.ReadProtectedResponse(accessResponse(t, w.open(resp, cmd, w.supplier).Payload)); err != nil || res != 250 {
			t.Fatalf("result %v, %v: want other-reason", res, err)
		}
	})
	t.Run("ECS66 daily log", func(t *testing.T) {
		from := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)
		b, cmd := w.command(CodeECS66, apdu(t, dlms.DailyConsumptionLogRequest(testInvoke, dt(t, from), dt(t, testNow), pp(w, w.netop.eui))), cmdOpts{from: w.netop})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		r := w.open(resp, cmd, w.netop)
		l, err := dlms.ReadDailyConsumptionLog(plainData(t, w.plaintexts(r, w.netop)[0]))
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Days) != 7 || !l.Days[0].At().Equal(from) {
			t.Fatalf("daily log of %d days from %v", len(l.Days), l.Days)
		}
		day := l.Days[1].At()
		if got := w.meter.Register(day.Add(24*time.Hour)) - w.meter.Register(day); uint64(l.Days[1].Wh) != got {
			t.Fatalf("day 2: %d Wh, registers say %d", l.Days[1].Wh, got)
		}
	})
	t.Run("ECS52 firmware version", func(t *testing.T) {
		b, cmd := w.command(CodeECS52, apdu(t, dlms.FirmwareVersionRequest(testInvoke)), cmdOpts{from: w.netop})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		v, res, err := dlms.ReadFirmwareVersion(accessResponse(t, w.open(resp, cmd, w.netop).Payload))
		if err != nil || res != 0 || len(v) != 4 {
			t.Fatalf("firmware version %x, %v, %v", v, res, err)
		}
	})
}

func equalPP(a, b dlms.ProtectionParameters) bool {
	x, _ := a.Data().AppendBinary(nil)
	y, _ := b.Data().AppendBinary(nil)
	return string(x) == string(y)
}
