package device

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/commands/gbz"
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
		{CodeECS43, loadSwitch(f, CodeECS43), cmdOpts{}},
		{CodeECS45, apdu(f, dlms.LoadSwitchStatusRequest(testInvoke)), cmdOpts{from: w.netop}},
		{CodeECS04b, apdu(f, dlms.ResetBalanceRequest(testInvoke)), cmdOpts{}},
		{CodeECS01a, tariffCommand(f, dlms.Now), cmdOpts{}},
		{CodeECS17b, apdu(f, importEnergyRequest(w, w.supplier)), cmdOpts{}},
		{CodeECS22b, profileRequest(f, w, w.other, testNow.Add(-time.Hour), testNow), cmdOpts{from: w.acb, urp: urp}},
		{CodeECS50, apdu(f, dlms.CINRequest(testInvoke, []byte("4721"))), cmdOpts{from: w.acb, urp: &commands.UnknownRemoteParty{EUI: w.other.eui, Counter: 4}}},
		{CodeCS02a, cs02a(f, asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement)), cmdOpts{from: w.acb}},
		{0x0107, []byte{0x30, 0x00}, cmdOpts{from: w.tcos}},
		{CodeECS43, loadSwitch(f, CodeECS43), cmdOpts{macBy: w.attacker}},
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

// fuzzCodes are the use cases FuzzPayloads exercises, by kind of meter.
var fuzzCodes = []struct {
	code uint16
	kind Kind
}{
	{CodeECS01a, Electricity}, {CodeECS04b, Electricity}, {CodeECS17b, Electricity}, {CodeECS22b, Electricity},
	{CodeECS42, Electricity}, {CodeECS43, Electricity}, {CodeECS44, Electricity}, {CodeECS45, Electricity},
	{CodeECS52, Electricity}, {CodeECS66, Electricity}, {CodeECS82, Electricity}, {CodeCS02c, Electricity},
	{CodeCS02d, Electricity}, {0x0102, Electricity}, {CodeGCS28, Gas}, {CodeGCS32, Gas}, {CodeGCS33, Gas},
	{CodeGCS39, Gas}, {CodeGCS01a, Gas}, {CodeGCS13a, Gas}, {CodeGCS17, Gas}, {CodeGCS60, Gas}, {CodeGCS61, Gas},
}

// FuzzPayloads hands each use case an authentic, authorised command (signed
// and MAC'd as its code wants, from the supplier) with an arbitrary
// payload. The meter must never panic; it either answers, with a response
// whose payload the codec of its structure reads and writes back byte for
// byte, or discards the command as malformed (CS02b also for its sequence
// number or target cells). The first byte of the input picks the use case.
func FuzzPayloads(f *testing.F) {
	we, wg := newWorld(f, Electricity), newWorld(f, Gas)
	for i, c := range fuzzCodes {
		w := we
		if c.kind == Gas {
			w = wg
		}
		for _, p := range seedPayloads(f, w, c.code) {
			f.Add(append([]byte{byte(i)}, p...))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		c := fuzzCodes[int(in[0])%len(fuzzCodes)]
		w := we
		if c.kind == Gas {
			w = wg
		}
		w.t = t
		b, cmd := w.command(c.code, in[1:], cmdOpts{})
		resp, err := w.meter.Handle(w.ctx, b)
		if err != nil {
			r, _ := ReasonOf(err)
			switch {
			case r == ReasonMalformed:
			case c.code == 0x0102 && (r == ReasonStaleSequence || r == ReasonRoleNotAllowed):
			default:
				t.Fatalf("%s payload %X: discarded as %v: %v", commands.MessageCode(c.code), in[1:], r, err)
			}
			return
		}
		r := w.open(resp, cmd, w.supplier)
		if err := roundTrip(c.code, r.Payload); err != nil {
			t.Fatalf("%s response payload %X: %v", commands.MessageCode(c.code), r.Payload, err)
		}
	})
}

// roundTrip reads a response payload with the codec of its structure and
// checks that it writes back the same bytes.
func roundTrip(code uint16, p []byte) error {
	var out []byte
	var err error
	switch {
	case asn.Has(code, asn.Response):
		v, derr := asn.Decode(code, asn.Response, p)
		if derr != nil {
			return derr
		}
		out, err = v.Marshal()
	case len(p) > 0 && (p[0] == dlms.TagAccessResponse):
		a, perr := dlms.Parse(p)
		if perr != nil {
			return perr
		}
		out, err = a.MarshalBinary()
	default:
		g, perr := gbz.Parse(p)
		if perr != nil {
			return perr
		}
		out, err = g.Marshal()
	}
	if err != nil {
		return err
	}
	if string(out) != string(p) {
		return errors.New("re-encodes differently")
	}
	return nil
}

// seedPayloads returns valid payloads of code for the fuzzer to start from.
func seedPayloads(t testing.TB, w *world, code uint16) [][]byte {
	switch code {
	case CodeECS01a:
		return [][]byte{tariffCommand(t, dlms.Now), tariffCommand(t, dlms.Never), tariffCommand(t, dt(t, testNow.Add(time.Hour)))}
	case CodeECS04b:
		return [][]byte{apdu(t, dlms.ResetBalanceRequest(testInvoke))}
	case CodeECS17b:
		return [][]byte{apdu(t, importEnergyRequest(w, w.supplier))}
	case CodeECS22b:
		return [][]byte{profileRequest(t, w, w.supplier, testNow.Add(-3*time.Hour), testNow)}
	case CodeECS42, CodeECS43, CodeECS44:
		return [][]byte{loadSwitch(t, code)}
	case CodeECS45:
		return [][]byte{apdu(t, dlms.LoadSwitchStatusRequest(testInvoke))}
	case CodeECS52:
		return [][]byte{apdu(t, dlms.FirmwareVersionRequest(testInvoke))}
	case CodeECS66:
		return [][]byte{apdu(t, dlms.DailyConsumptionLogRequest(testInvoke, dt(t, testNow.AddDate(0, 0, -3)), dt(t, testNow), pp(w, w.supplier.eui)))}
	case CodeECS82:
		return [][]byte{apdu(t, dlms.MeterBalanceRequest(testInvoke))}
	case CodeCS02c:
		return [][]byte{asnBytes(t, &asn.IssueSecurityCredentialsCommand{KeyUsage: asn.NewKeyUsage(asn.KeyCertSign)})}
	case CodeCS02d:
		return [][]byte{asnBytes(t, &asn.UpdateDeviceCertificateCommand{Certificate: asn.Certificate{Raw: []byte{0x30, 0x00}}})}
	case 0x0102:
		return [][]byte{cs02bNoCerts(t, 1), cs02bNoCerts(t, 3)}
	case CodeGCS28:
		return [][]byte{asnBytes(t, &asn.SetTimeCommand{ValidityIntervalStart: asn.NewGeneralizedTime(testNow.Add(-time.Minute)),
			ValidityIntervalEnd: asn.NewGeneralizedTime(testNow.Add(time.Minute))})}
	case CodeGCS32, CodeGCS39:
		return [][]byte{changeSupply(t, code, 0)}
	case CodeGCS33:
		return [][]byte{gbzBytes(t, gbz.NewReadValveStatus())}
	case CodeGCS01a:
		return [][]byte{gasTariffCommand(t, gbz.StartNow)}
	case CodeGCS13a:
		return [][]byte{gbzBytes(t, gbz.NewReadConsumptionRegister(gbz.GetSnapshot{LatestEndTime: 0xFFFFFFFF, Cause: 1}))}
	case CodeGCS17, CodeGCS61:
		return [][]byte{gbzBytes(t, gbz.NewReadProfile(gbz.GetProfile{Periods: 4}))}
	case CodeGCS60:
		return [][]byte{gbzBytes(t, gbz.NewReadMeterBalance())}
	}
	return nil
}

// cs02bNoCerts is a supplierBySupplier command with no replacement.
func cs02bNoCerts(t testing.TB, seq int64) []byte {
	return asnBytes(t, &asn.UpdateSecurityCredentialsCommand{AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{
		CredentialsReplacementMode: asn.SupplierBySupplier, AuthorisingRemotePartySeqNumber: asn.SeqNumber(seq)},
		Replacements: []asn.TrustAnchorReplacement{}, CertificationPathCertificates: []asn.Certificate{}})
}
