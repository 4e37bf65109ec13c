package gbz

import (
	"bytes"
	"encoding/json"
	"testing"
)

// fuzzSeeds returns the payloads and alerts of testdata as seeds.
func fuzzSeeds(f *testing.F) (payloads [][]byte, alerts map[uint16][][]byte) {
	f.Helper()
	for _, v := range loadVectors(f) {
		payloads = append(payloads, unhex(f, v.PayloadHex))
	}
	alerts = map[uint16][][]byte{}
	for _, h := range loadHandmade(f) {
		b := unhex(f, h.Hex)
		if h.Kind == "alert" {
			alerts[h.code(f)] = append(alerts[h.code(f)], b)
		} else {
			payloads = append(payloads, b)
		}
	}
	return payloads, alerts
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// re-encodes to the same bytes, directly and through JSON; it also runs the
// ZCL readers and Describe on what it finds, which must not panic either.
func FuzzParse(f *testing.F) {
	payloads, _ := fuzzSeeds(f)
	for _, p := range payloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed payload: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes:\n%x\n%x", b, out)
		}
		j, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var q Payload
		if err := json.Unmarshal(j, &q); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", j, err)
		}
		if out, err = q.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("JSON round trip: %x, %v; want %x", out, err, b)
		}
		for _, c := range p.Components {
			checkZCLRoundTrip(t, c.Payload)
		}
		for _, blk := range p.CipheredBlocks() {
			if cb, err := SplitCiphered(*blk); err == nil {
				if again, err := cb.AppendBinary(nil); err != nil || !bytes.Equal(again, *blk) {
					t.Fatalf("ciphered block round trip: %x, %v; want %x", again, err, *blk)
				}
			}
		}
		for _, code := range []uint16{CodeGCS32, CodeGCS33, CodeGCS39} {
			_, _ = Describe(code, p)
		}
	})
}

// checkZCLRoundTrip runs every ZCL reader on b and checks that what one
// accepts re-encodes to b.
func checkZCLRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	type appender interface{ AppendBinary([]byte) ([]byte, error) }
	try := func(name string, v appender, err error) {
		if err != nil {
			return
		}
		out, err := v.AppendBinary(nil)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%s round trip: %x, %v; want %x", name, out, err, b)
		}
	}
	ra, err := ParseReadAttributes(b)
	try("read attributes", ra, err)
	rr, err := ParseReadAttributesResponse(b)
	try("read attributes response", rr, err)
	dr, err := ParseDefaultResponse(b)
	try("default response", dr, err)
	cs, err := ParseChangeSupply(b)
	try("change supply", cs, err)
	ss, err := ParseSupplyStatusResponse(b)
	try("supply status response", ss, err)
}

// FuzzParseAlert checks ParseAlert as FuzzParse checks Parse, for every
// message code with a layout of its own and a generic one.
func FuzzParseAlert(f *testing.F) {
	_, alerts := fuzzSeeds(f)
	for code, bs := range alerts {
		for _, b := range bs {
			f.Add(code, b)
		}
	}
	f.Fuzz(func(t *testing.T, code uint16, b []byte) {
		a, err := ParseAlert(code, b)
		if err != nil {
			return
		}
		out, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed alert: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes:\n%x\n%x", b, out)
		}
		j, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var q Alert
		if err := json.Unmarshal(j, &q); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", j, err)
		}
		if out, err = q.Marshal(); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("JSON round trip: %x, %v; want %x", out, err, b)
		}
	})
}
