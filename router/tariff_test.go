package router

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
)

// TestTariffAttributes: the simple tariff form becomes a GB ECS01a command
// (and the gas tariff of our own), from which the attribute limits read the
// same amounts back, in thousandths of a penny, exactly; a standing charge
// beyond a DLMS long is written with a larger price scale.
func TestTariffAttributes(t *testing.T) {
	params := json.RawMessage(`{"standingChargeMilliPence":50000,"rates":[{"fromSlot":0,"priceMilliPence":24500},{"fromSlot":14,"priceMilliPence":12345}]}`)
	want := map[string]int64{AttrStandingCharge: 50_000, AttrMaxPrice: 24_500, AttrMinPrice: 12_345}
	for _, code := range []uint16{codeECS01a, codeGCS01a} {
		c := payloadContext{code: code, counter: 77, now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
		p, err := tariffPayload(c, params)
		if err != nil {
			t.Fatalf("0x%04X: %v", code, err)
		}
		m := &commands.Message{CRA: commands.Command, Counter: 77, Code: commands.MessageCode(code), Payload: p}
		if st := commands.ReadPayload(m); !st.Decoded || st.UseCaseError != "" || st.UseCase == nil {
			t.Fatalf("0x%04X payload: %+v", code, st)
		}
		got, err := attributes(m)
		if err != nil {
			t.Fatalf("0x%04X attributes: %v", code, err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("0x%04X %s = %d, want %d", code, k, got[k], v)
			}
		}
	}
	// The whole GB tariff as a caller may give it, here the expansion of the
	// simple form: the same command.
	var q tariffParams
	if err := json.Unmarshal(params, &q); err != nil {
		t.Fatal(err)
	}
	full, err := simpleTariff(q)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(tariffParams{Tariff: full})
	if err != nil {
		t.Fatal(err)
	}
	c := payloadContext{code: codeECS01a, counter: 77}
	a, errA := tariffPayload(c, params)
	b, errB := tariffPayload(c, js)
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Errorf("the whole tariff and the simple form differ: %v, %v", errA, errB)
	}
	// A price scale from the caller's payload far beyond any price saturates:
	// it breaches the limits instead of wrapping into range.
	for _, sc := range []dlms.Scaled{{Value: 1, Exp: 127}, {Value: 32767, Exp: 10}, {Value: -1, Exp: 100}} {
		if got := milliPence(sc); (sc.Value > 0 && got != math.MaxInt64) || (sc.Value < 0 && got != math.MinInt64) {
			t.Errorf("milliPence(%v) = %d, want saturation", sc, got)
		}
	}
	if got := milliPence(dlms.Scaled{Value: 12345, Exp: -5}); got != 12345 {
		t.Errorf("milliPence(12345e-5) = %d", got)
	}
	if _, err := tariffPayload(payloadContext{code: codeGCS01a, counter: 1}, json.RawMessage(`{"standingChargeMilliPence":5000000000,"rates":[{"fromSlot":0,"priceMilliPence":1}]}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a gas standing charge beyond 32 bits: %v, want ErrBadRequest", err)
	}
	bad := []string{
		`{"standingChargeMilliPence":1,"rates":[{"fromSlot":3,"priceMilliPence":1}]}`,
		`{"standingChargeMilliPence":1,"rates":[{"fromSlot":0,"priceMilliPence":1},{"fromSlot":0,"priceMilliPence":2}]}`,
		`{"standingChargeMilliPence":1,"rates":[{"fromSlot":0,"priceMilliPence":1},{"fromSlot":48,"priceMilliPence":2}]}`,
		`{"standingChargeMilliPence":1,"rates":[{"fromSlot":0,"priceMilliPence":-1}]}`,
		`{"standingChargeMilliPence":3276701,"rates":[{"fromSlot":0,"priceMilliPence":1}]}`,
		`{"rates":[{"fromSlot":0,"priceMilliPence":1}]}`,
		`{"standingChargeMilliPence":1,"rates":[]}`,
		`{"standingChargeMilliPence":1,"rates":[{"fromSlot":0,"priceMilliPence":1}],"extra":1}`,
	}
	for _, b := range bad {
		if _, err := tariffPayload(payloadContext{code: codeECS01a, counter: 1}, json.RawMessage(b)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", b, err)
		}
	}
}
