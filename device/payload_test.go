package device

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

// vectorECS04bPayload is the payload of the GBCS section 18.4 test message
// (ECS04b, message code 0x00B3), cut from its message_hex after the message
// code and the payload length byte 0x35.
const vectorECS04bPayload = "D92000000100030300700000130A00FF020300700000130A01FF020300700000130A02FF0203050000000005000000000500000000"

func TestBalanceResetMatchesGBCSVector(t *testing.T) {
	want, err := hex.DecodeString(vectorECS04bPayload)
	if err != nil {
		t.Fatal(err)
	}
	if got := EncodeBalanceReset(); !bytes.Equal(got, want) {
		t.Fatalf("EncodeBalanceReset() = %X, want the 18.4 vector payload %X", got, want)
	}
	id, err := DecodeBalanceReset(want)
	if err != nil || id != defaultInvokeID {
		t.Fatalf("DecodeBalanceReset(vector) = %#x, %v; want %#x, nil", id, err, defaultInvokeID)
	}
}

func TestPayloadRoundTrips(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	tariff := Tariff{StandingChargeMilliPence: 45_120, Rates: []TariffRate{{0, 15_000}, {14, 27_500}, {32, 41_000}, {38, 27_500}}}
	tests := []struct {
		name   string
		encode func() ([]byte, error)
		decode func([]byte) (any, error)
		want   any
	}{
		{"register reading", func() ([]byte, error) { return EncodeRegisterReading(RegisterReading{at, 12_345_678_901}), nil },
			func(p []byte) (any, error) { return DecodeRegisterReading(p) }, RegisterReading{at, 12_345_678_901}},
		{"profile request", func() ([]byte, error) { return EncodeProfileRequest(ProfileRequest{at, at.Add(24 * time.Hour)}) },
			func(p []byte) (any, error) { return DecodeProfileRequest(p) }, ProfileRequest{at, at.Add(24 * time.Hour)}},
		{"profile log", func() ([]byte, error) { return EncodeProfileLog(ProfileLog{at, []uint32{1, 200, 0, 4_000_000_000}}) },
			func(p []byte) (any, error) { return DecodeProfileLog(p) }, ProfileLog{at, []uint32{1, 200, 0, 4_000_000_000}}},
		{"empty profile log", func() ([]byte, error) { return EncodeProfileLog(ProfileLog{Start: at, Values: []uint32{}}) },
			func(p []byte) (any, error) { return DecodeProfileLog(p) }, ProfileLog{at, []uint32{}}},
		{"daily log request", func() ([]byte, error) { return EncodeDailyLogRequest(31) },
			func(p []byte) (any, error) { return DecodeDailyLogRequest(p) }, 31},
		{"daily log", func() ([]byte, error) { return EncodeDailyLog(DailyLog{at, []uint32{9000, 8123}}) },
			func(p []byte) (any, error) { return DecodeDailyLog(p) }, DailyLog{at, []uint32{9000, 8123}}},
		{"tariff", func() ([]byte, error) { return EncodeTariff(tariff) },
			func(p []byte) (any, error) { return DecodeTariff(p) }, tariff},
		{"CIN", func() ([]byte, error) { return EncodeCIN(12_345_678) },
			func(p []byte) (any, error) { return DecodeCIN(p) }, uint32(12_345_678)},
		{"status ok", func() ([]byte, error) { return EncodeStatus(StatusOK), nil },
			func(p []byte) (any, error) { return DecodeStatus(p) }, StatusOK},
		{"status failed", func() ([]byte, error) { return EncodeStatus(StatusFailed), nil },
			func(p []byte) (any, error) { return DecodeStatus(p) }, StatusFailed},
		{"negative balance", func() ([]byte, error) { return EncodeBalance(Balance{-1_234_567}), nil },
			func(p []byte) (any, error) { return DecodeBalance(p) }, Balance{-1_234_567}},
		{"read request", func() ([]byte, error) { return EncodeReadRequest(), nil },
			func(p []byte) (any, error) { return nil, DecodeReadRequest(p) }, nil},
		{"supply status response", func() ([]byte, error) {
			return EncodeSupplyResponse(SupplyResponse{InvokeID: 7, OK: true, State: SupplyArmed, Status: true}), nil
		}, func(p []byte) (any, error) { return DecodeSupplyResponse(p) }, SupplyResponse{InvokeID: 7, OK: true, State: SupplyArmed, Status: true}},
		{"supply action refused", func() ([]byte, error) { return EncodeSupplyResponse(SupplyResponse{InvokeID: 9, OK: false}), nil },
			func(p []byte) (any, error) { return DecodeSupplyResponse(p) }, SupplyResponse{InvokeID: 9, OK: false}},
		{"balance reset response", func() ([]byte, error) { return EncodeBalanceResetResponse(0x20000001, true), nil },
			func(p []byte) (any, error) { id, ok, err := DecodeBalanceResetResponse(p); return [2]any{id, ok}, err }, [2]any{uint32(0x20000001), true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := tc.decode(p)
			if err != nil {
				t.Fatalf("decode(%X): %v", p, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip = %+v, want %+v", got, tc.want)
			}
			// Every strict prefix and one extra byte must be refused.
			for i := range len(p) {
				if _, err := tc.decode(p[:i]); !errors.Is(err, ErrPayload) {
					t.Errorf("decode of %d-byte prefix: err = %v, want ErrPayload", i, err)
				}
			}
			if _, err := tc.decode(append(bytes.Clone(p), 0)); !errors.Is(err, ErrPayload) {
				t.Errorf("decode with a trailing byte: err = %v, want ErrPayload", err)
			}
		})
	}
}

func TestSupplyCommandsRoundTrip(t *testing.T) {
	for _, code := range []uint16{CodeECS42, CodeECS43, CodeECS44, CodeECS45, CodeGCS32, CodeGCS33, CodeGCS39} {
		name, _ := UseCaseName(code)
		t.Run(name, func(t *testing.T) {
			p, err := EncodeSupplyCommand(code)
			if err != nil {
				t.Fatal(err)
			}
			id, err := DecodeSupplyCommand(code, p)
			if err != nil || id != defaultInvokeID {
				t.Fatalf("DecodeSupplyCommand = %#x, %v", id, err)
			}
			// The disable payload is not an enable payload.
			other := CodeECS43
			if code == CodeECS43 || code == CodeGCS32 {
				other = CodeECS42
			}
			if _, err := DecodeSupplyCommand(other, p); !errors.Is(err, ErrPayload) {
				t.Errorf("decoding as 0x%04X: err = %v, want ErrPayload", other, err)
			}
		})
	}
	if _, err := EncodeSupplyCommand(CodeECS17b); !errors.Is(err, ErrPayload) {
		t.Errorf("EncodeSupplyCommand(ECS17b): err = %v, want ErrPayload", err)
	}
}

func TestPayloadEncodersRefuseBadValues(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		err  error
	}{
		{"profile request empty range", second(EncodeProfileRequest(ProfileRequest{at, at}))},
		{"daily log 0 days", second(EncodeDailyLogRequest(0))},
		{"daily log 32 days", second(EncodeDailyLogRequest(32))},
		{"daily log too long", second(EncodeDailyLog(DailyLog{at, make([]uint32, 32)}))},
		{"tariff no rates", second(EncodeTariff(Tariff{}))},
		{"tariff first rate not midnight", second(EncodeTariff(Tariff{Rates: []TariffRate{{1, 1}}}))},
		{"tariff slots not increasing", second(EncodeTariff(Tariff{Rates: []TariffRate{{0, 1}, {5, 1}, {5, 2}}}))},
		{"tariff slot past 47", second(EncodeTariff(Tariff{Rates: []TariffRate{{0, 1}, {48, 1}}}))},
		{"tariff 9 rates", second(EncodeTariff(Tariff{Rates: make([]TariffRate, 9)}))},
		{"CIN 9 digits", second(EncodeCIN(100_000_000))},
		{"profile log too long", second(EncodeProfileLog(ProfileLog{at, make([]uint32, maxProfileSlots+1)}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, ErrPayload) {
				t.Fatalf("err = %v, want ErrPayload", tc.err)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
