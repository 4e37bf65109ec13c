package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// encodeProfile writes samples in the gzipped profile.proto encoding that
// runtime/pprof uses: two sample values (count, CPU nanoseconds), one
// location and one function per stack frame, labels as string pairs, and
// location ids packed.
func encodeProfile(t testing.TB, samples []sample) []byte {
	t.Helper()
	strs := []string{""}
	index := map[string]uint64{"": 0}
	str := func(s string) uint64 {
		if i, ok := index[s]; ok {
			return i
		}
		index[s] = uint64(len(strs))
		strs = append(strs, s)
		return index[s]
	}
	fnID := map[string]uint64{}
	var body []byte
	msg := func(num protowire.Number, inner []byte) {
		body = protowire.AppendTag(body, num, protowire.BytesType)
		body = protowire.AppendBytes(body, inner)
	}
	for _, s := range samples {
		var locs []byte
		for _, f := range s.funcs {
			if _, ok := fnID[f]; !ok {
				id := uint64(len(fnID) + 1)
				fnID[f] = id
				var fn []byte
				fn = protowire.AppendTag(fn, 1, protowire.VarintType)
				fn = protowire.AppendVarint(fn, id)
				fn = protowire.AppendTag(fn, 2, protowire.VarintType)
				fn = protowire.AppendVarint(fn, str(f))
				msg(5, fn)
				var line []byte
				line = protowire.AppendTag(line, 1, protowire.VarintType)
				line = protowire.AppendVarint(line, id)
				var loc []byte
				loc = protowire.AppendTag(loc, 1, protowire.VarintType)
				loc = protowire.AppendVarint(loc, id)
				loc = protowire.AppendTag(loc, 4, protowire.BytesType)
				loc = protowire.AppendBytes(loc, line)
				msg(4, loc)
			}
			locs = protowire.AppendVarint(locs, fnID[f])
		}
		var sm []byte
		sm = protowire.AppendTag(sm, 1, protowire.BytesType)
		sm = protowire.AppendBytes(sm, locs)
		var vals []byte
		vals = protowire.AppendVarint(vals, 1)
		vals = protowire.AppendVarint(vals, uint64(s.nanos))
		sm = protowire.AppendTag(sm, 2, protowire.BytesType)
		sm = protowire.AppendBytes(sm, vals)
		for k, v := range s.labels {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.VarintType)
			l = protowire.AppendVarint(l, str(k))
			l = protowire.AppendTag(l, 2, protowire.VarintType)
			l = protowire.AppendVarint(l, str(v))
			sm = protowire.AppendTag(sm, 3, protowire.BytesType)
			sm = protowire.AppendBytes(sm, l)
		}
		msg(2, sm)
	}
	for _, s := range strs {
		body = protowire.AppendTag(body, 6, protowire.BytesType)
		body = protowire.AppendString(body, s)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var testSamples = []sample{
	{funcs: []string{"crypto/internal/fips140/nistec.p256MulInternal", routerPkg + ".(*Router).signature", "net/http.(*conn).serve"},
		labels: map[string]string{"component": "router"}, nanos: 30e6},
	{funcs: []string{"crypto/ecdsa.VerifyASN1", devicePkg + ".(*Meter).Handle", routerPkg + ".(*Forwarder).attempt"},
		labels: map[string]string{"component": "router"}, nanos: 10e6},
	{funcs: []string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, nanos: 10e6},
}

// TestReadProfile reads back an encoded profile and checks the shares
// computed from it.
func TestReadProfile(t *testing.T) {
	got, err := readProfile(encodeProfile(t, testSamples))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(testSamples) {
		t.Fatalf("%d samples, want %d", len(got), len(testSamples))
	}
	for i, s := range got {
		want := testSamples[i]
		if s.nanos != want.nanos || len(s.funcs) != len(want.funcs) || s.funcs[0] != want.funcs[0] || s.labels["component"] != want.labels["component"] {
			t.Errorf("sample %d: %+v, want %+v", i, s, want)
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, tc := range []struct {
		name   string
		shares []Share
		want   map[string]float64
	}{
		{"components", split(got), map[string]float64{ComponentRouter: 0.6, ComponentMeters: 0.2, ComponentRuntime: 0.2}},
		{"activities", activities(got), map[string]float64{"stage signature": 0.6, "forwarder (claim, send)": 0.2,
			"garbage collector (background)": 0.2}},
		{"packages", topPackages(got, 2), map[string]float64{"crypto/internal/fips140/nistec": 0.6, "crypto/ecdsa": 0.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.shares) != len(tc.want) {
				t.Fatalf("shares %+v, want %v", tc.shares, tc.want)
			}
			for _, s := range tc.shares {
				if !near(s.Fraction, tc.want[s.Name]) {
					t.Errorf("%s: %g, want %g", s.Name, s.Fraction, tc.want[s.Name])
				}
			}
		})
	}
}

// TestReadProfileRefuses checks that bytes that are not a profile give
// ErrProfile.
func TestReadProfileRefuses(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"not gzip", []byte("profile")},
		{"truncated gzip", encodeProfile(t, testSamples)[:20]},
		{"bad tag", gz([]byte{0x80})},
		{"truncated field", gz([]byte{0x12, 0x05, 0x01})},
		{"bad nested field", gz([]byte{0x12, 0x02, 0x0a, 0xff})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readProfile(tc.in); !errors.Is(err, ErrProfile) {
				t.Fatalf("readProfile: %v, want ErrProfile", err)
			}
		})
	}
}

// FuzzReadProfile checks that no input makes the profile reader panic,
// and that whatever it reads can be attributed.
func FuzzReadProfile(f *testing.F) {
	f.Add(encodeProfile(f, testSamples))
	f.Add(encodeProfile(f, nil))
	f.Add(encodeProfile(f, []sample{{funcs: nil, nanos: 1}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		samples, err := readProfile(b)
		if err != nil {
			if !errors.Is(err, ErrProfile) {
				t.Fatalf("error %v does not wrap ErrProfile", err)
			}
			return
		}
		split(samples)
		activities(samples)
		topPackages(samples, 3)
	})
}
