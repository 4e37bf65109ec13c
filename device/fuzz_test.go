package device

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/smki"
)

// vector184 is the GBCS section 18.4 test message (ECS04b to device
// FFFFFFFFFFFFFFFE), a well-formed MAC'd critical command for another meter.
const vector184 = "DD00000000000081A91100000000DF0901000000000000000108123456789ABCDEF008FFFFFFFFFFFFFFFE000200B335D92000000100030300700000130A00FF020300700000130A01FF020300700000130A02FF02030500000000050000000005000000004059045AB0F554622B0360340B9D87B5A23ED5723B41DE3F206E58CDD10F915B9FE2E12E2DA3632478A8DF678E418895869AC1E55318CCE04D120D2D6B44DC167B5D832D15B57A56D620F198B3"

// FuzzHandle feeds arbitrary bytes to a meter: it must never panic, must
// answer only with a response or a *DiscardError, must count every message
// exactly once, and must count bytes that do not parse as malformed.
func FuzzHandle(f *testing.F) {
	w := newWorld(f, Electricity)
	v, _ := hex.DecodeString(vector184)
	f.Add(v)
	f.Add([]byte{})
	f.Add([]byte{0xDD})
	f.Add([]byte{0xDF, 0x09, 0x01})
	f.Add([]byte{0xE0, 0x00})
	urp := &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 3, KACertificate: issue(f, smki.ProfileOrgKA, smki.RoleOther, w.other.eui, &w.other.kaS.PublicKey)}
	seeds := []struct {
		code    uint16
		payload []byte
		o       cmdOpts
	}{
		{CodeECS43, must(EncodeSupplyCommand(CodeECS43)), cmdOpts{}},
		{CodeECS45, must(EncodeSupplyCommand(CodeECS45)), cmdOpts{from: w.netop}},
		{CodeECS04b, EncodeBalanceReset(), cmdOpts{}},
		{CodeECS01a, must(EncodeTariff(Tariff{StandingChargeMilliPence: 1, Rates: []TariffRate{{0, 2}}})), cmdOpts{}},
		{CodeECS17b, EncodeReadRequest(), cmdOpts{}},
		{CodeECS22b, must(EncodeProfileRequest(ProfileRequest{testNow.Add(-time.Hour), testNow})), cmdOpts{from: w.acb, urp: urp}},
		{CodeECS66, must(EncodeDailyLogRequest(3)), cmdOpts{}},
		{CodeECS50, must(EncodeCIN(7)), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 4}}},
		{CodeCS02a, must((&commands.ProvideCredentials{}).Marshal()), cmdOpts{from: w.acb}},
		{0x0107, []byte{0x30, 0x00}, cmdOpts{from: w.tcos}},
		{CodeECS43, must(EncodeSupplyCommand(CodeECS43)), cmdOpts{macBy: w.attacker}},
	}
	for _, s := range seeds {
		b, _ := w.command(s.code, s.payload, s.o)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		before := w.meter.Stats()
		resp, err := w.meter.Handle(w.ctx, msg)
		after := w.meter.Stats()
		if after.Accepted+after.TotalDiscarded() != before.Accepted+before.TotalDiscarded()+1 {
			t.Fatalf("message counted %d times", after.Accepted+after.TotalDiscarded()-before.Accepted-before.TotalDiscarded())
		}
		if err == nil {
			if resp == nil {
				t.Fatal("accepted without a response")
			}
			if _, perr := commands.Parse(resp); perr != nil {
				t.Fatalf("response does not parse: %v", perr)
			}
			return
		}
		if resp != nil {
			t.Fatal("refused with a response")
		}
		var d *DiscardError
		if !errors.As(err, &d) {
			t.Fatalf("error %v is not a *DiscardError", err)
		}
		if _, perr := commands.Parse(msg); perr != nil && d.Reason != ReasonMalformed {
			t.Fatalf("unparsable message counted as %v", d.Reason)
		}
	})
}

// FuzzPayloadDecoders feeds arbitrary bytes to every payload decoder: none
// may panic, each returns a value or an error wrapping ErrPayload, and what
// decodes re-encodes to the same bytes.
func FuzzPayloadDecoders(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 30, 0, 0, time.UTC)
	for _, s := range [][]byte{
		EncodeBalanceReset(), EncodeBalanceResetResponse(1, true), must(EncodeSupplyCommand(CodeECS42)),
		EncodeSupplyResponse(SupplyResponse{InvokeID: 2, OK: true, State: SupplyArmed, Status: true}),
		EncodeReadRequest(), EncodeRegisterReading(RegisterReading{at, 5}), must(EncodeProfileRequest(ProfileRequest{at, at.Add(time.Hour)})),
		must(EncodeProfileLog(ProfileLog{at, []uint32{1, 2}})), must(EncodeDailyLogRequest(2)), must(EncodeDailyLog(DailyLog{at, []uint32{3}})),
		must(EncodeTariff(Tariff{StandingChargeMilliPence: 1, Rates: []TariffRate{{0, 2}, {20, 3}}})), must(EncodeCIN(99)),
		EncodeStatus(StatusOK), EncodeBalance(Balance{-5}), {0x01}, {0xD9}, {},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		check := func(name string, err error, reencode func() []byte) {
			if err != nil {
				if !errors.Is(err, ErrPayload) {
					t.Fatalf("%s: error %v does not wrap ErrPayload", name, err)
				}
				return
			}
			if got := reencode(); got != nil && string(got) != string(p) {
				t.Fatalf("%s: %X re-encodes as %X", name, p, got)
			}
		}
		if v, err := DecodeRegisterReading(p); true {
			check("register reading", err, func() []byte { return EncodeRegisterReading(v) })
		}
		if v, err := DecodeProfileRequest(p); true {
			check("profile request", err, func() []byte { b, _ := EncodeProfileRequest(v); return b })
		}
		if v, err := DecodeProfileLog(p); true {
			check("profile log", err, func() []byte { b, _ := EncodeProfileLog(v); return b })
		}
		if v, err := DecodeDailyLogRequest(p); true {
			check("daily log request", err, func() []byte { b, _ := EncodeDailyLogRequest(v); return b })
		}
		if v, err := DecodeDailyLog(p); true {
			check("daily log", err, func() []byte { b, _ := EncodeDailyLog(v); return b })
		}
		if v, err := DecodeTariff(p); true {
			check("tariff", err, func() []byte { b, _ := EncodeTariff(v); return b })
		}
		if v, err := DecodeCIN(p); true {
			check("CIN", err, func() []byte { b, _ := EncodeCIN(v); return b })
		}
		if v, err := DecodeStatus(p); true {
			check("status", err, func() []byte { return EncodeStatus(v) })
		}
		if v, err := DecodeBalance(p); true {
			check("balance", err, func() []byte { return EncodeBalance(v) })
		}
		check("read request", DecodeReadRequest(p), func() []byte { return EncodeReadRequest() })
		_, err := DecodeBalanceReset(p)
		check("balance reset", err, func() []byte { return nil })
		_, _, err = DecodeBalanceResetResponse(p)
		check("balance reset response", err, func() []byte { return nil })
		_, err = DecodeSupplyResponse(p)
		check("supply response", err, func() []byte { return nil })
		for _, code := range []uint16{CodeECS42, CodeECS43, CodeECS45} {
			_, err := DecodeSupplyCommand(code, p)
			check("supply command", err, func() []byte { return nil })
		}
	})
}
