package asn

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fuzzCodes are the (code, CRA) pairs the fuzzer chooses from with its
// first input byte; one pair per payload type.
var fuzzCodes = []struct {
	code uint16
	cra  CRA
}{
	{0x0008, Command}, {0x0008, Response}, {0x000A, Command}, {0x000A, Response},
	{0x000B, Command}, {0x000B, Response}, {0x000C, Command}, {0x000C, Response},
	{0x0107, Command}, {0x0107, Response}, {0x00CB, Alert},
	{0x000D, Command}, {0x000D, Response}, {0x000F, Command}, {0x000F, Response},
	{0x0012, Command}, {0x0012, Response}, {0x00CA, Alert}, {0x0013, Command}, {0x0013, Response},
	{0x0129, Command}, {0x0129, Response}, {0x0129, Alert}, {0x0128, Alert},
	{0x007F, Command}, {0x007F, Response}, {0x008C, Command}, {0x008C, Response}, {0x00B2, Alert},
}

// fuzzIndex returns the index in fuzzCodes of the pair with the same
// payload type as (code, cra).
func fuzzIndex(tb testing.TB, code uint16, cra CRA) byte {
	want, _ := New(code, cra)
	for i, c := range fuzzCodes {
		if got, _ := New(c.code, c.cra); reflect.TypeOf(got) == reflect.TypeOf(want) {
			return byte(i)
		}
	}
	tb.Fatalf("no fuzz entry for 0x%04X %v", code, cra)
	return 0
}

// FuzzDecode checks that Decode never panics and that every payload it
// accepts encodes back to the same bytes, directly and after a trip through
// JSON. Seeds: the constructed and hand-made vectors, the long values of
// der_test.go, and all of those with lengths in strict DER form.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(fuzzIndex(f, v.Code, v.CRA), unhex(f, v.PayloadHex))
	}
	for _, v := range loadHandmade(f) {
		f.Add(fuzzIndex(f, v.Code, v.CRA), unhex(f, v.Hex))
		f.Add(fuzzIndex(f, v.Code, v.CRA), toDER81(f, unhex(f, v.Hex)))
	}
	for _, v := range longValues() {
		b, err := v.p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fuzzIndex(f, v.code, v.cra), b)
		f.Add(fuzzIndex(f, v.code, v.cra), toDER81(f, b))
	}
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		c := fuzzCodes[int(which)%len(fuzzCodes)]
		p, err := Decode(c.code, c.cra, b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded payload: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed the bytes:\nin  %x\nout %x", b, out)
		}
		j, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		q, _ := New(c.code, c.cra)
		if err := json.Unmarshal(j, q); err != nil {
			t.Fatalf("json.Unmarshal of our own JSON: %v\n%s", err, j)
		}
		out, err = q.Marshal()
		if err != nil {
			t.Fatalf("Marshal after JSON: %v\n%s", err, j)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip through JSON changed the bytes:\nin  %x\nout %x\n%s", b, out, j)
		}
	})
}
