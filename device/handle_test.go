package device

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
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

func TestHandleRefuses(t *testing.T) {
	w := newWorld(t, Electricity)
	disable := must(EncodeSupplyCommand(CodeECS43))
	cin := must(EncodeCIN(4711))
	profile := must(EncodeProfileRequest(ProfileRequest{testNow.Add(-24 * time.Hour), testNow}))

	// A good command, delivered once, so its bytes can be replayed.
	good, _ := w.command(CodeECS43, disable, cmdOpts{})
	if _, err := w.meter.Handle(w.ctx, good); err != nil {
		t.Fatalf("good command refused: %v", err)
	}
	w.meter.PressButton() // no effect: disabled, not armed
	enable := must(EncodeSupplyCommand(CodeECS42))
	if _, err := w.meter.Handle(w.ctx, first(w.command(CodeECS42, enable, cmdOpts{}))); err != nil {
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
		{"non-critical CIN from the supplier (OU only)", first(w.command(CodeECS50, cin, cmdOpts{})), ReasonRoleNotAllowed},
		{"non-critical register read from an unknown remote party", first(w.command(CodeECS17b, EncodeReadRequest(), cmdOpts{from: w.acb, urp: urpOther})), ReasonRoleNotAllowed},
		{"non-critical balance read from the network operator", first(w.command(CodeECS82, EncodeReadRequest(), cmdOpts{from: w.netop})), ReasonRoleNotAllowed},
		{"non-critical read from an originator in no anchor", first(w.command(CodeECS17b, EncodeReadRequest(), cmdOpts{from: w.attacker})), ReasonUnknownSigner},
		{"unknown remote party not behind the ACB", first(w.command(CodeECS22b, profile, cmdOpts{from: w.supplier, urp: urpOther})), ReasonUnknownSigner},
		{"gas use case on an electricity meter", first(w.command(CodeGCS33, must(EncodeSupplyCommand(CodeGCS33)), cmdOpts{})), ReasonUnsupported},
		{"use case the meter does not execute", first(w.command(0x0021, []byte{1}, cmdOpts{})), ReasonUnsupported},
		{"authentic command with a malformed payload (spends its counter)", first(w.command(CodeECS43, []byte{0xD9, 0x00}, cmdOpts{})), ReasonMalformed},
		{"not a GBCS message", []byte("GET / HTTP/1.1\r\n"), ReasonMalformed},
		{"empty", nil, ReasonMalformed},
		{"pre-command without MAC", preCommand(t, w, CodeECS43, disable), ReasonNotCommand},
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

func first[A, B any](a A, _ B) A { return a }

// preCommand returns a signed command without MAC header.
func preCommand(t *testing.T, w *world, code uint16, payload []byte) []byte {
	_, m := w.command(code, payload, cmdOpts{})
	m.MAC = nil
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// response returns a MAC'd message with CRA flag 2.
func response(t *testing.T, w *world) []byte {
	m := &commands.Message{CRA: commands.Response, Counter: 5, Originator: w.supplier.eui, Recipient: w.meter.EUI(), Code: commands.MessageCode(CodeECS45), Payload: must(EncodeSupplyCommand(CodeECS45))}
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
	tests := []struct {
		name  string
		kind  Kind
		code  uint16
		from  func(*world) *party
		start SupplyState
		ok    bool
		want  SupplyState
	}{
		{"ECS43 disable", Electricity, CodeECS43, nil, SupplyEnabled, true, SupplyDisabled},
		{"ECS42 enable", Electricity, CodeECS42, nil, SupplyDisabled, true, SupplyEnabled},
		{"ECS44 arm a disabled switch", Electricity, CodeECS44, nil, SupplyDisabled, true, SupplyArmed},
		{"ECS44 arm a closed switch is refused", Electricity, CodeECS44, nil, SupplyEnabled, false, SupplyEnabled},
		{"ECS45 status by the supplier", Electricity, CodeECS45, nil, SupplyArmed, true, SupplyArmed},
		{"ECS45 status by the network operator", Electricity, CodeECS45, func(w *world) *party { return w.netop }, SupplyDisabled, true, SupplyDisabled},
		{"GCS32 close the valve", Gas, CodeGCS32, nil, SupplyEnabled, true, SupplyDisabled},
		{"GCS39 arm the valve", Gas, CodeGCS39, nil, SupplyDisabled, true, SupplyArmed},
		{"GCS33 valve status", Gas, CodeGCS33, nil, SupplyEnabled, true, SupplyEnabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.kind)
			w.meter.supply = tc.start
			from := w.supplier
			if tc.from != nil {
				from = tc.from(w)
			}
			b, cmd := w.command(tc.code, must(EncodeSupplyCommand(tc.code)), cmdOpts{from: from})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			r, err := DecodeSupplyResponse(w.open(resp, cmd, from, from))
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != tc.ok || w.meter.Supply() != tc.want {
				t.Fatalf("ok %t, state %v; want %t, %v", r.OK, w.meter.Supply(), tc.ok, tc.want)
			}
			if r.Status && r.State != tc.want {
				t.Errorf("status response says %v, meter is %v", r.State, tc.want)
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

func TestHandleAcceptsReadsAndSettings(t *testing.T) {
	w := newWorld(t, Electricity)
	tariff := Tariff{StandingChargeMilliPence: 53_000, Rates: []TariffRate{{0, 24_500}, {32, 38_000}, {40, 24_500}}}
	t.Run("ECS01a tariff", func(t *testing.T) {
		b, cmd := w.command(CodeECS01a, must(EncodeTariff(tariff)), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := DecodeStatus(w.open(resp, cmd, w.supplier, w.supplier)); err != nil || s != StatusOK {
			t.Fatalf("status %v, %v", s, err)
		}
		if got, ok := w.meter.Tariff(); !ok || got.StandingChargeMilliPence != tariff.StandingChargeMilliPence || len(got.Rates) != 3 {
			t.Fatalf("tariff %+v, %t", got, ok)
		}
	})
	t.Run("ECS82 balance then ECS04b reset", func(t *testing.T) {
		b, cmd := w.command(CodeECS82, EncodeReadRequest(), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		bal, err := DecodeBalance(w.open(resp, cmd, w.supplier, w.supplier))
		if err != nil || bal.MilliPence == 0 || bal != w.meter.Balance() {
			t.Fatalf("balance %+v (meter %+v), %v", bal, w.meter.Balance(), err)
		}
		b, cmd = w.command(CodeECS04b, EncodeBalanceReset(), cmdOpts{})
		resp, err = w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := DecodeBalanceResetResponse(w.open(resp, cmd, w.supplier, w.supplier)); err != nil || !ok {
			t.Fatalf("reset response ok %t, %v", ok, err)
		}
		if w.meter.Balance().MilliPence != 0 {
			t.Fatalf("balance after reset %+v", w.meter.Balance())
		}
	})
	t.Run("ECS17b registers by supplier and network operator", func(t *testing.T) {
		for _, p := range []*party{w.supplier, w.netop} {
			b, cmd := w.command(CodeECS17b, EncodeReadRequest(), cmdOpts{from: p})
			resp, err := w.meter.Handle(w.ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := DecodeRegisterReading(w.open(resp, cmd, p, p))
			if err != nil {
				t.Fatal(err)
			}
			if !rr.At.Equal(testNow) || rr.ImportWh != w.meter.Register(testNow) {
				t.Fatalf("reading %+v, want %d at %v", rr, w.meter.Register(testNow), testNow)
			}
		}
	})
	t.Run("ECS22b profile", func(t *testing.T) {
		from, to := testNow.Add(-48*time.Hour), testNow
		b, cmd := w.command(CodeECS22b, must(EncodeProfileRequest(ProfileRequest{from, to})), cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		l, err := DecodeProfileLog(w.open(resp, cmd, w.supplier, w.supplier))
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Values) != 95 { // 18:45:10 minus 48 h: slots from 19:00 two days ago to 18:30 today
			t.Fatalf("%d slots from %v, want 95", len(l.Values), l.Start)
		}
		want := w.meter.Profile(testNow, from, to)
		if !l.Start.Equal(want.Start) || !equalU32(l.Values, want.Values) {
			t.Fatalf("profile differs from the model")
		}
		// The router (the access control broker) MACs the traffic but cannot
		// read the supplier's consumption.
		r, _ := commands.Parse(resp)
		if _, err := commands.DecryptPayload(w.ctx, w.acb.ka, w.meter.AgreementPublicKey(), r); !errors.Is(err, commands.ErrDecrypt) {
			t.Errorf("the ACB decrypted the supplier's profile: err = %v", err)
		}
	})
	t.Run("ECS66 daily log", func(t *testing.T) {
		b, cmd := w.command(CodeECS66, must(EncodeDailyLogRequest(7)), cmdOpts{from: w.netop})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		l, err := DecodeDailyLog(w.open(resp, cmd, w.netop, w.netop))
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Values) != 7 || !l.Start.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("daily log %v, %d days", l.Start, len(l.Values))
		}
		day := l.Start.Add(24 * time.Hour)
		if got := w.meter.Register(day.Add(24*time.Hour)) - w.meter.Register(day); uint64(l.Values[1]) != got {
			t.Fatalf("day 2: %d Wh, registers say %d", l.Values[1], got)
		}
	})
}

func TestUnknownRemoteParty(t *testing.T) {
	w := newWorld(t, Electricity)
	cert := issue(t, smki.ProfileOrgKA, smki.RoleOther, w.other.eui, &w.other.kaS.PublicKey)
	urp := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 99, KACertificate: cert}
	req := must(EncodeProfileRequest(ProfileRequest{testNow.Add(-2 * time.Hour), testNow}))

	b, cmd := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: urp})
	resp, err := w.meter.Handle(w.ctx, b)
	if err != nil {
		t.Fatalf("URP profile read: %v", err)
	}
	// The response goes to the broker (its MAC), readable by the third party only.
	l, err := DecodeProfileLog(w.open(resp, cmd, w.acb, w.other))
	if err != nil || len(l.Values) != 3 { // 17:00, 17:30 and 18:00; 18:30 is not over
		t.Fatalf("third party read %d slots, %v", len(l.Values), err)
	}
	r, _ := commands.Parse(resp)
	for _, p := range []*party{w.acb, w.supplier} {
		if _, err := commands.DecryptPayload(w.ctx, p.ka, w.meter.AgreementPublicKey(), r); !errors.Is(err, commands.ErrDecrypt) {
			t.Errorf("%s decrypted the third party's data: err = %v", p.eui, err)
		}
	}

	t.Run("CIN from the third party", func(t *testing.T) {
		b, cmd := w.command(CodeECS50, must(EncodeCIN(12345678)), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 100}})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := DecodeStatus(w.open(resp, cmd, w.acb, w.acb)); err != nil || s != StatusOK {
			t.Fatalf("status %v, %v", s, err)
		}
		if c, ok := w.meter.CIN(); !ok || c != 12345678 {
			t.Fatalf("CIN %d, %t", c, ok)
		}
	})
	t.Run("sensitive read without a certificate is refused", func(t *testing.T) {
		before, _ := w.meter.LastCounter(w.acb.eui)
		b, _ := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 101}})
		if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
		if after, _ := w.meter.LastCounter(w.acb.eui); after != before {
			t.Errorf("refused read spent its counter: %d -> %d", before, after)
		}
	})
	t.Run("certificate of another party is refused", func(t *testing.T) {
		b, _ := w.command(CodeECS22b, req, cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.attacker.eui, Counter: 102, KACertificate: cert}})
		if _, err := w.meter.Handle(w.ctx, b); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
}

func equalU32(a, b []uint32) bool {
	return bytes.Equal(u32bytes(a), u32bytes(b))
}

func u32bytes(v []uint32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = append(b, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return b
}
