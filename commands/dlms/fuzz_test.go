package dlms

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func addSeeds(f *testing.F) {
	v := loadVectors(f)
	for _, vec := range v.Vectors {
		f.Add(mustHex(f, vec.Payload))
	}
	b, err := os.ReadFile("testdata/constructed.json")
	if err != nil {
		f.Fatal(err)
	}
	var c struct{ Vectors []constructed }
	if err := json.Unmarshal(b, &c); err != nil {
		f.Fatal(err)
	}
	for _, vec := range c.Vectors {
		f.Add(mustHex(f, vec.Payload))
	}
}

// FuzzParse checks the round-trip property on every accepted input: decode
// then encode gives the input, and so does decode, JSON, decode, encode.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Parse(in)
		if err != nil {
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of accepted input %x: %v", in, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip\n in %x\nout %x", in, out)
		}
		j, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back APDU
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("json.Unmarshal: %v\n%s", err, j)
		}
		out, err = back.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("JSON round trip: %v\n in %x\nout %x\n%s", err, in, out, j)
		}
		// The typed readers must not panic on any accepted input.
		for code := range useCaseNames {
			_, _ = Describe(code, a)
		}
		_ = CipheredBlocks(a)
	})
}

// FuzzParseData checks the same property for a lone Data value, the form of
// decrypted plaintexts.
func FuzzParseData(f *testing.F) {
	for _, vec := range loadVectors(f).Vectors {
		if vec.Plaintext != "" {
			f.Add(mustHex(f, vec.Plaintext))
		}
	}
	f.Add([]byte{0x13, 0x02, 0x02, 0x06, 0x06, 0x08, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ParseData(in)
		if err != nil {
			return
		}
		out, err := d.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("round trip: %v\n in %x\nout %x", err, in, out)
		}
		j, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		var back Data
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("json.Unmarshal: %v\n%s", err, j)
		}
		if out, err := back.MarshalBinary(); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("JSON round trip: %v\n in %x\nout %x", err, in, out)
		}
		_, _ = ReadImportEnergy(d)
		_, _ = ReadHalfHourProfile(d)
		_, _ = ReadBillingDataLog(d)
		_, _ = ReadProtectedAttributesRequest(d)
	})
}

func BenchmarkParseMarshalECS17bResponse(b *testing.B) {
	in, _ := vectorPayloadB(b, "06-ecs17b-response.json")
	buf := make([]byte, 0, len(in))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		a, err := Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = a.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func vectorPayloadB(b *testing.B, file string) ([]byte, bool) {
	for _, v := range loadVectors(b).Vectors {
		if v.File == file {
			return mustHex(b, v.Payload), true
		}
	}
	b.Fatalf("no vector %s", file)
	return nil, false
}
