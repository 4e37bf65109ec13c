package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrProfile is wrapped when a CPU profile cannot be read.
var ErrProfile = errors.New("bench: CPU profile")

// sample is one stack of a CPU profile with its CPU time.
type sample struct {
	funcs  []string // leaf first
	labels map[string]string
	nanos  int64
}

// readProfile decodes the gzipped protocol buffer that runtime/pprof writes
// (github.com/google/pprof's profile.proto): samples with their stacks,
// function names and labels, nothing else.
func readProfile(gz []byte) ([]sample, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProfile, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProfile, err)
	}
	type rawSample struct {
		locs   []uint64
		values []int64
		labels [][2]int64
	}
	var (
		raws    []rawSample
		strs    []string
		locFns  = map[uint64][]uint64{} // location id -> function ids, leaf (innermost inline) first
		fnNames = map[uint64]int64{}    // function id -> string index
	)
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 2: // sample
			var s rawSample
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					s.locs = appendVarints(s.locs, typ, v, x)
				case 2:
					for _, u := range appendVarints(nil, typ, v, x) {
						s.values = append(s.values, int64(u))
					}
				case 3:
					var k, str int64
					if err := fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
						switch num {
						case 1:
							k = int64(x)
						case 2:
							str = int64(x)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, [2]int64{k, str})
				}
				return nil
			})
			raws = append(raws, s)
			return err
		case 4: // location
			var id uint64
			var fns []uint64
			err := fields(v, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					id = x
				case 4: // line
					return fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
						if num == 1 {
							fns = append(fns, x)
						}
						return nil
					})
				}
				return nil
			})
			locFns[id] = fns
			return err
		case 5: // function
			var id uint64
			var name int64
			err := fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
				switch num {
				case 1:
					id = x
				case 2:
					name = int64(x)
				}
				return nil
			})
			fnNames[id] = name
			return err
		case 6: // string table
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	out := make([]sample, 0, len(raws))
	for _, r := range raws {
		if len(r.values) == 0 {
			continue
		}
		s := sample{nanos: r.values[len(r.values)-1]} // cpu nanoseconds is the last value
		for _, l := range r.locs {
			for _, fn := range locFns[l] {
				s.funcs = append(s.funcs, str(fnNames[fn]))
			}
		}
		if len(r.labels) > 0 {
			s.labels = map[string]string{}
			for _, kv := range r.labels {
				s.labels[str(kv[0])] = str(kv[1])
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// fields calls fn for each field of the message b: bytes fields with their
// contents, varint fields with their value.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrProfile, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrProfile, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// appendVarints appends a repeated varint field, packed or not.
func appendVarints(dst []uint64, typ protowire.Type, v []byte, x uint64) []uint64 {
	if typ == protowire.VarintType {
		return append(dst, x)
	}
	for len(v) > 0 {
		u, n := protowire.ConsumeVarint(v)
		if n < 0 {
			break
		}
		dst = append(dst, u)
		v = v[n:]
	}
	return dst
}

// packageOf returns the import path of a function's symbol name:
// "crypto/internal/fips140/nistec.(*P256Point).ScalarMult" gives
// "crypto/internal/fips140/nistec".
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}

// Share is a part of a profile's CPU time.
type Share struct {
	Name     string  `json:"name"`
	Fraction float64 `json:"fraction"`
}

// The components of the CPU split.
const (
	ComponentRouter  = "router"
	ComponentMeters  = "meters"
	ComponentClient  = "client"
	ComponentRuntime = "runtime and unattributed"
)

const devicePkg = "github.com/metertrust/metertrust/device"

// componentOf attributes a sample: the meters' code (package device, even
// when called from the router's forwarder), else the goroutine's component
// label (the service and the in-process client are labelled), else the
// runtime's own work (GC workers, scheduler) and unlabelled goroutines.
func componentOf(s sample) string {
	for _, f := range s.funcs {
		if packageOf(f) == devicePkg {
			return ComponentMeters
		}
	}
	switch s.labels["component"] {
	case ComponentRouter:
		return ComponentRouter
	case ComponentClient:
		return ComponentClient
	}
	return ComponentRuntime
}

// split returns each component's fraction of the profile's CPU time.
func split(samples []sample) []Share {
	return shares(samples, componentOf, 0)
}

// topPackages returns the packages where the CPU time was spent (the
// leaf frame's package, as "go tool pprof -top" counts flat time), the n
// largest.
func topPackages(samples []sample, n int) []Share {
	return shares(samples, func(s sample) string {
		if len(s.funcs) == 0 {
			return "unknown"
		}
		return packageOf(s.funcs[0])
	}, n)
}

func shares(samples []sample, key func(sample) string, n int) []Share {
	sum := map[string]int64{}
	var total int64
	for _, s := range samples {
		sum[key(s)] += s.nanos
		total += s.nanos
	}
	if total == 0 {
		return nil
	}
	out := make([]Share, 0, len(sum))
	for k, v := range sum {
		out = append(out, Share{Name: k, Fraction: float64(v) / float64(total)})
	}
	slices.SortFunc(out, func(a, b Share) int {
		if a.Fraction != b.Fraction {
			if a.Fraction > b.Fraction {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

const routerPkg = "github.com/metertrust/metertrust/router"

// stageFuncs maps the router's stage methods to the stage names of
// router.Stages.
var stageFuncs = map[string]string{
	routerPkg + ".(*Router).authenticate": "authenticate",
	routerPkg + ".(*Router).parse":        "parse",
	routerPkg + ".(*Router).originator":   "originator",
	routerPkg + ".(*Router).eligibility":  "eligibility",
	routerPkg + ".(*Router).ownership":    "ownership",
	routerPkg + ".(*Router).certPath":     "certificate-path",
	routerPkg + ".(*Router).signature":    "signature",
	routerPkg + ".(*Router).counterCheck": "counter",
	routerPkg + ".(*Router).keyAgreement": "key-agreement",
	routerPkg + ".(*Router).audit":        "refusal audit",
}

// activityOf says what a sample of the server was doing: the innermost
// frame that names a pipeline stage, the admission group commit (whichever
// goroutine leads it: a caller's, or the forwarder's bringing its marks),
// the forwarder, TLS, the HTTP layer, the garbage collector's own workers;
// else "other".
func activityOf(s sample) string {
	for _, f := range s.funcs {
		if st, ok := stageFuncs[f]; ok {
			return "stage " + st
		}
		switch {
		case strings.HasPrefix(f, routerPkg+".(*GroupAdmitter).commit"):
			return "admission group commit (thresholds, MAC, record, marks, audit)"
		case strings.HasPrefix(f, routerPkg+".(*Forwarder)."):
			return "forwarder (claim, send)"
		case strings.HasPrefix(f, "crypto/tls."):
			return "TLS records and handshakes"
		case strings.HasPrefix(f, "runtime.gcBgMarkWorker"):
			return "garbage collector (background)"
		case strings.HasPrefix(f, "net/http.") || strings.HasPrefix(f, "github.com/labstack/echo/"):
			return "HTTP server and API handler"
		}
	}
	return "other (scheduler, background loops)"
}

// activities returns where the server's CPU time went by activity.
func activities(samples []sample) []Share {
	return shares(samples, activityOf, 0)
}
