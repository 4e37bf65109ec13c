package gbz

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes hex that may contain spaces and '|' as field separators.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	s = strings.NewReplacer(" ", "", "|", "", "\n", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// vector is one entry of testdata/vectors.json.
type vector struct {
	Source         string      `json:"source"`
	Name           string      `json:"name"`
	MessageCode    string      `json:"message_code"`
	CRA            int         `json:"cra"`
	MessageHex     string      `json:"message_hex"`
	PayloadLength  int         `json:"payload_length"`
	PayloadHex     string      `json:"payload_hex"`
	DecodedPayload decodedTree `json:"decoded_payload"`
}

// decodedTree is the independent decoder's GBZ tree.
type decodedTree struct {
	N     int  `json:"n"`
	Alert bool `json:"alert"`
	Comps []struct {
		Control int      `json:"control"`
		Cluster int      `json:"cluster"`
		FC      int      `json:"fc"`
		Seq     int      `json:"seq"`
		Cmd     int      `json:"cmd"`
		Depth   string   `json:"depth"`
		ZCL     []string `json:"zcl"`
		Payload string   `json:"payload"`
	} `json:"comps"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		tb.Fatal(err)
	}
	if len(vs) != 2 {
		tb.Fatalf("testdata/vectors.json has %d vectors, want 2", len(vs))
	}
	return vs
}

// handmade is one entry of testdata/handmade.json.
type handmade struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	MessageCode string `json:"message_code"`
	Hex         string `json:"hex"`
	Note        string `json:"note"`
}

func loadHandmade(tb testing.TB) map[string]handmade {
	tb.Helper()
	b, err := os.ReadFile("testdata/handmade.json")
	if err != nil {
		tb.Fatal(err)
	}
	var hs []handmade
	if err := json.Unmarshal(b, &hs); err != nil {
		tb.Fatal(err)
	}
	m := make(map[string]handmade, len(hs))
	for _, h := range hs {
		if h.Note == "" {
			tb.Fatalf("handmade vector %s has no note", h.Name)
		}
		m[h.Name] = h
	}
	return m
}

// code parses "0x0081".
func (h handmade) code(tb testing.TB) uint16 {
	tb.Helper()
	b := unhex(tb, strings.TrimPrefix(h.MessageCode, "0x"))
	if len(b) != 2 {
		tb.Fatalf("%s: bad message code %q", h.Name, h.MessageCode)
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// checkPayloadRoundTrip parses b, re-encodes it, and sends it through JSON
// and back; every route must give b again.
func checkPayloadRoundTrip(tb testing.TB, b []byte) *Payload {
	tb.Helper()
	p, err := Parse(b)
	if err != nil {
		tb.Fatalf("Parse(%x): %v", b, err)
	}
	out, err := p.Marshal()
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(out, b) {
		tb.Fatalf("round trip changed bytes:\n got %x\nwant %x", out, b)
	}
	j, err := json.Marshal(p)
	if err != nil {
		tb.Fatalf("json.Marshal: %v", err)
	}
	var q Payload
	if err := json.Unmarshal(j, &q); err != nil {
		tb.Fatalf("json.Unmarshal(%s): %v", j, err)
	}
	if !reflect.DeepEqual(p, &q) {
		tb.Fatalf("JSON round trip changed the value:\n got %+v\nwant %+v\njson %s", q, *p, j)
	}
	out, err = q.Marshal()
	if err != nil {
		tb.Fatalf("Marshal after JSON: %v", err)
	}
	if !bytes.Equal(out, b) {
		tb.Fatalf("JSON round trip changed bytes:\n got %x\nwant %x", out, b)
	}
	return p
}

// checkAlertRoundTrip is checkPayloadRoundTrip for ParseAlert.
func checkAlertRoundTrip(tb testing.TB, code uint16, b []byte) *Alert {
	tb.Helper()
	a, err := ParseAlert(code, b)
	if err != nil {
		tb.Fatalf("ParseAlert(0x%04X, %x): %v", code, b, err)
	}
	out, err := a.Marshal()
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(out, b) {
		tb.Fatalf("round trip changed bytes:\n got %x\nwant %x", out, b)
	}
	j, err := json.Marshal(a)
	if err != nil {
		tb.Fatalf("json.Marshal: %v", err)
	}
	var q Alert
	if err := json.Unmarshal(j, &q); err != nil {
		tb.Fatalf("json.Unmarshal(%s): %v", j, err)
	}
	if !reflect.DeepEqual(a, &q) {
		tb.Fatalf("JSON round trip changed the value:\n got %+v\nwant %+v\njson %s", q, *a, j)
	}
	out, err = q.Marshal()
	if err != nil {
		tb.Fatalf("Marshal after JSON: %v", err)
	}
	if !bytes.Equal(out, b) {
		tb.Fatalf("JSON round trip changed bytes:\n got %x\nwant %x", out, b)
	}
	return a
}

func mustMarshal(tb testing.TB, p interface{ Marshal() ([]byte, error) }) []byte {
	tb.Helper()
	b, err := p.Marshal()
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	return b
}
