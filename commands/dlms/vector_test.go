package dlms

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// vectorFile is testdata/vectors.json: the DLMS payloads of the constructed
// vectors, see testdata/README.md.
type vectorFile struct {
	Vectors []struct {
		File             string          `json:"file"`
		Code             uint16          `json:"code"`
		Counter          string          `json:"counter"`
		Payload          string          `json:"payload"`
		Decoded          json.RawMessage `json:"decoded"`
		Plaintext        string          `json:"plaintext"`
		PlaintextDecoded json.RawMessage `json:"plaintext_decoded"`
		CipheredBlock    string          `json:"ciphered_block"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tree renders a value the way the independent decoder prints its payload
// tree: [tag, value] with numbers and strings as hex of their content,
// lists as lists, and compact arrays as [19, [description, elements]].
func tree(d Data) any {
	switch d.Tag.kind() {
	case kindNull:
		return []any{0, nil}
	case kindList:
		l := []any{}
		for _, e := range d.Elems {
			l = append(l, tree(e))
		}
		return []any{int(d.Tag), l}
	case kindCompact:
		l := []any{}
		for _, e := range d.Elems {
			l = append(l, untaggedTree(e))
		}
		return []any{int(d.Tag), []any{tdTree(*d.Type), l}}
	}
	return []any{int(d.Tag), untaggedTree(d)}
}

func untaggedTree(d Data) any {
	switch d.Tag.kind() {
	case kindList:
		l := []any{}
		for _, e := range d.Elems {
			l = append(l, untaggedTree(e))
		}
		return l
	case kindInt, kindUint:
		c, _ := d.appendContent(nil)
		return hex.EncodeToString(c)
	}
	return hex.EncodeToString(d.Bytes)
}

func tdTree(t TypeDesc) any {
	switch t.Tag {
	case TagStructure:
		l := []any{}
		for _, e := range t.Elems {
			l = append(l, tdTree(e))
		}
		return []any{int(t.Tag), l}
	case TagArray:
		return []any{int(t.Tag), int(t.Count), tdTree(t.Elems[0])}
	}
	return []any{int(t.Tag)}
}

func apduTree(a *APDU) any {
	m := map[string]any{}
	switch {
	case a.AccessRequest != nil:
		q := a.AccessRequest
		m["tag"], m["invoke"] = TagAccessRequest, q.InvokeID
		specs := []any{}
		for _, s := range q.Specs {
			specs = append(specs, map[string]any{"choice": s.Kind, "class": s.Class, "obis": hex.EncodeToString(s.OBIS[:]), "id": s.ID})
		}
		m["specs"] = specs
		data := []any{}
		for _, d := range q.Data {
			data = append(data, tree(d))
		}
		m["data"] = data
	case a.AccessResponse != nil:
		s := a.AccessResponse
		m["tag"], m["invoke"] = TagAccessResponse, s.InvokeID
		data, res := []any{}, []any{}
		for _, d := range s.Data {
			data = append(data, tree(d))
		}
		for _, r := range s.Results {
			res = append(res, []any{r.Kind, r.Result})
		}
		m["data"], m["results"] = data, res
	case a.DataNotification != nil:
		m["tag"], m["invoke"], m["body"] = TagDataNotification, a.DataNotification.InvokeID, tree(a.DataNotification.Body)
	}
	return m
}

// sameJSON compares two values after a trip through JSON into any.
func sameJSON(t *testing.T, got any, want json.RawMessage) {
	t.Helper()
	gb, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(gb, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("tree differs from the independent decoder's\n got %s\nwant %s", gb, want)
	}
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.File, func(t *testing.T) {
			in := mustHex(t, v.Payload)
			a, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			out, err := a.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoded\n got %x\nwant %x", out, in)
			}
			sameJSON(t, apduTree(a), v.Decoded)
			checkJSONRoundTrip(t, a, in)

			if v.Plaintext != "" {
				pt := mustHex(t, v.Plaintext)
				d, err := ParseData(pt)
				if err != nil {
					t.Fatalf("ParseData(plaintext): %v", err)
				}
				sameJSON(t, tree(d), v.PlaintextDecoded)
				if out, err := d.MarshalBinary(); err != nil || !bytes.Equal(out, pt) {
					t.Fatalf("plaintext re-encoded %x, %v", out, err)
				}
				blocks := CipheredBlocks(a)
				if len(blocks) != 1 || hex.EncodeToString(blocks[0].Bytes) != v.CipheredBlock {
					t.Fatalf("CipheredBlocks = %v, want the one block of the vector", blocks)
				}
			}
		})
	}
}

func checkJSONRoundTrip(t testing.TB, a *APDU, want []byte) {
	t.Helper()
	j, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back APDU
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatalf("json.Unmarshal: %v\n%s", err, j)
	}
	out, err := back.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary after JSON: %v\n%s", err, j)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("after JSON re-encoded\n got %x\nwant %x\n%s", out, want, j)
	}
}
