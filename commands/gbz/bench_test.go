package gbz

import "testing"

// BenchmarkParseMarshal parses and re-encodes the payload of vector 23
// (GCS32 response).
func BenchmarkParseMarshal(b *testing.B) {
	in := unhex(b, loadVectors(b)[1].PayloadHex)
	buf := make([]byte, 0, len(in))
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		p, err := Parse(in)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = p.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
