package asn

import "testing"

// BenchmarkVector12 decodes and re-encodes the CS02b response of constructed
// vector 12 (205 bytes, three 82 00 xx lengths).
func BenchmarkVector12(b *testing.B) {
	payload := unhex(b, vectorByPrefix(b, "12").PayloadHex)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var r UpdateSecurityCredentialsResponse
		if err := r.Unmarshal(payload); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
