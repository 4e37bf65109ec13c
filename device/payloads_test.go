package device

import (
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
	"github.com/metertrust/metertrust/smki"
)

// The payloads of the tests' commands, built with the codec packages, and
// readers of the meter's responses.

// testInvoke is the DLMS invoke id of the tests' commands.
const testInvoke = 0x20000042

func apdu(t testing.TB, v interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gbzBytes(t testing.TB, p *gbz.Payload) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func asnBytes(t testing.TB, p asn.Payload) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dt(t testing.TB, at time.Time) dlms.DateTime {
	t.Helper()
	d, err := dlms.NewDateTime(at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loadSwitch is the ECS42, ECS43 or ECS44 command.
func loadSwitch(t testing.TB, code uint16) []byte {
	scripts := map[uint16]uint16{CodeECS42: dlms.ScriptCloseLoadSwitch, CodeECS43: dlms.ScriptOpenLoadSwitch, CodeECS44: dlms.ScriptArmLoadSwitch}
	return apdu(t, dlms.LoadSwitchRequest(testInvoke, scripts[code]))
}

// pp returns the protection parameters of a command from originator to
// the meter (gbcs-payloads.md 2.4).
func pp(w *world, from smki.EUI) dlms.ProtectionParameters {
	return dlms.NewProtectionParameters(w.counter+1, from, w.meter.EUI())
}

// changeSupply is the GCS32 or GCS39 command, to take effect at at (0:
// now).
func changeSupply(t testing.TB, code uint16, at gbz.UTC) []byte {
	st := gbz.SupplyOff
	if code == CodeGCS39 {
		st = gbz.SupplyArmed
	}
	return gbzBytes(t, gbz.NewChangeSupply(gbz.ChangeSupply{IssuerEventID: 0x32a7d280, ImplementationDateTime: at,
		ProposedSupplyStatus: st, SupplyControlBits: 1}))
}

// testTariff is an ECS01a tariff: one season, one week, one day profile of
// two rates switching at 07:00, a standing charge and two prices.
func testTariff(activation dlms.DateTime) dlms.Tariff {
	script := dlms.MustParseOBIS("0-0:10.0.100.255")
	charge := func(prices ...int16) dlms.UnitCharge {
		u := dlms.UnitCharge{PriceScale: -4, CommodityClass: 3, CommodityOBIS: dlms.MustParseOBIS("1-0:1.8.0.255"), CommodityAttribute: 2}
		for i, p := range prices {
			u.Charges = append(u.Charges, dlms.Charge{Index: dlms.HexBytes{byte(i + 1)}, Price: p})
		}
		return u
	}
	return dlms.Tariff{
		Seasons: []dlms.Season{{Name: dlms.HexBytes{1}, Start: dlms.Now, Week: dlms.HexBytes{1}}},
		Weeks:   []dlms.WeekProfile{{Name: dlms.HexBytes{1}, Days: [7]uint8{1, 1, 1, 1, 1, 1, 1}}},
		Days: []dlms.DayProfile{{ID: 1, Actions: []dlms.DayAction{
			{Start: dlms.ClockTime{0, 0, 0, 0}, Script: script, Selector: 1},
			{Start: dlms.ClockTime{7, 0, 0, 0}, Script: script, Selector: 2}}}},
		BlockThresholds: [8][]uint32{{}, {}, {}, {}, {}, {}, {}, {}},
		StandingCharge:  charge(5300),
		Prices:          charge(1534, 2450),
		Activation:      activation,
	}
}

func tariffCommand(t testing.TB, activation dlms.DateTime) []byte {
	tt := testTariff(activation)
	return apdu(t, tt.Request(testInvoke))
}

// testGasTariff is a GCS01a tariff starting at start.
func testGasTariff(start gbz.UTC) gbz.GasTariff {
	return gbz.GasTariff{
		Information: gbz.PublishTariffInformation{IssuerEventID: 0x32a7d280, IssuerTariffID: 1, StartTime: start, TariffType: gbz.TariffTOU,
			PriceTiers: 2, Currency: 826, PriceTrailingDigit: 0x40, StandingCharge: 2750, BlockThresholdMultiplier: 1, BlockThresholdDivisor: 1},
		PriceMatrix: gbz.PublishPriceMatrix{IssuerEventID: 0x32a7d280, StartTime: start, IssuerTariffID: 1, Commands: 1, SubPayloadControl: 1,
			Entries: []gbz.PriceEntry{{ID: 1, Price: 1534}, {ID: 2, Price: 2010}}},
		DayProfile: gbz.PublishDayProfile{IssuerEventID: 0x32a7d280, IssuerCalendarID: 1, DayID: 1, Commands: 1,
			Entries: []gbz.ScheduleEntry{{StartMinute: 0, Tier: 1}, {StartMinute: 420, Tier: 2}}},
	}
}

func gasTariffCommand(t testing.TB, start gbz.UTC) []byte {
	t.Helper()
	p, err := gbz.NewGasTariff(testGasTariff(start))
	if err != nil {
		t.Fatal(err)
	}
	return gbzBytes(t, p)
}

func gasCIN(t testing.TB, cin string) []byte {
	t.Helper()
	p, err := gbz.NewUpdateCIN(gbz.UpdateCIN{IssuerEventID: 0x32a7d280, CIN: gbz.Hex(cin)})
	if err != nil {
		t.Fatal(err)
	}
	return gbzBytes(t, p)
}

// accessResponse reads a DLMS ACCESS-Response payload.
func accessResponse(t testing.TB, p []byte) *dlms.AccessResponse {
	t.Helper()
	a, err := dlms.Parse(p)
	if err != nil {
		t.Fatalf("response payload: %v", err)
	}
	if a.AccessResponse == nil {
		t.Fatalf("response payload is a %s", a.Kind())
	}
	return a.AccessResponse
}

// gbzResponse reads a GBZ response payload and describes it as a response
// of code.
func gbzResponse(t testing.TB, code uint16, p []byte) (*gbz.Payload, *gbz.UseCase) {
	t.Helper()
	g, err := gbz.Parse(p)
	if err != nil {
		t.Fatalf("response payload: %v", err)
	}
	u, err := gbz.Describe(code, g)
	if err != nil {
		t.Fatalf("response payload: %v", err)
	}
	return g, u
}

// plainData reads a decrypted DLMS plaintext.
func plainData(t testing.TB, b []byte) dlms.Data {
	t.Helper()
	d, err := dlms.ParseData(b)
	if err != nil {
		t.Fatalf("plaintext: %v", err)
	}
	return d
}

// actionResults reads the results of an ACCESS-Response to actions.
func actionResults(s *dlms.AccessResponse) ([]uint8, error) {
	return dlms.ReadResults(s, dlms.Action, len(s.Results))
}

// importEnergyRequest is the ECS17b command from p.
func importEnergyRequest(w *world, p *party) *dlms.AccessRequest {
	return dlms.ImportEnergyRequest(testInvoke, pp(w, p.eui))
}

// profileRequest is the ECS22b command from p for the half hours starting
// in [from, to].
func profileRequest(t testing.TB, w *world, p *party, from, to time.Time) []byte {
	return apdu(t, dlms.HalfHourProfileRequest(testInvoke, dt(t, from), dt(t, to), pp(w, p.eui)))
}
