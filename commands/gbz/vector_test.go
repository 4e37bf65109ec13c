package gbz

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestVectors checks the GBZ payloads of constructed vectors 22 and 23
// (testdata/README.md): they sit in their messages where the framing puts
// them, decode and re-encode byte for byte, match the independent decoder's
// tree field by field, and are what the typed builders produce.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			b := unhex(t, v.PayloadHex)
			if len(b) != v.PayloadLength {
				t.Fatalf("payload is %d bytes, decoded.frame.payload_length says %d", len(b), v.PayloadLength)
			}
			if !strings.Contains(v.MessageHex, v.PayloadHex) {
				t.Fatalf("payload %s is not inside message %s", v.PayloadHex, v.MessageHex)
			}
			p := checkPayloadRoundTrip(t, b)

			tree := v.DecodedPayload
			if tree.Alert {
				t.Fatal("decoder tree marks a command or response as an alert")
			}
			if tree.N != len(p.Components) || len(tree.Comps) != len(p.Components) {
				t.Fatalf("components: got %d, decoder tree n=%d with %d", len(p.Components), tree.N, len(tree.Comps))
			}
			u, err := Describe(0x0081, p)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			for i, want := range tree.Comps {
				c := p.Components[i]
				got := [5]int{int(c.Control), int(c.Cluster), int(c.ZCL.FrameControl), int(c.ZCL.Sequence), int(c.ZCL.Command)}
				exp := [5]int{want.Control, want.Cluster, want.FC, want.Seq, want.Cmd}
				if got != exp {
					t.Errorf("component %d control, cluster, fc, seq, cmd = %v, decoder tree %v", i, got, exp)
				}
				if hex.EncodeToString(c.Payload) != want.Payload {
					t.Errorf("component %d payload %x, decoder tree %s", i, c.Payload, want.Payload)
				}
				if len(want.ZCL) != 2 {
					t.Fatalf("decoder tree zcl %v", want.ZCL)
				}
				var typed []byte
				switch val := u.Value.(type) {
				case *ChangeSupply:
					if want.ZCL[0] != "changesupply" {
						t.Errorf("Describe says Change Supply, decoder tree %q", want.ZCL[0])
					}
					typed, _ = val.AppendBinary(nil)
				case *SupplyStatusResponse:
					if want.ZCL[0] != "supplystatus" {
						t.Errorf("Describe says Supply Status Response, decoder tree %q", want.ZCL[0])
					}
					typed, _ = val.AppendBinary(nil)
				default:
					t.Fatalf("Describe value %T", u.Value)
				}
				if hex.EncodeToString(typed) != want.ZCL[1] {
					t.Errorf("typed re-encoding %x, decoder tree zcl %s", typed, want.ZCL[1])
				}
			}
		})
	}
}

// TestVectorBuilders rebuilds vectors 22 and 23 from their typed values.
func TestVectorBuilders(t *testing.T) {
	vs := loadVectors(t)
	issuer, err := NewUTC(time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	cmd := NewChangeSupply(ChangeSupply{
		IssuerEventID:        issuer,
		ProposedSupplyStatus: SupplyOff,
		SupplyControlBits:    0x01,
	})
	if got, want := mustMarshal(t, cmd), unhex(t, vs[0].PayloadHex); !bytes.Equal(got, want) {
		t.Errorf("GCS32 command builder:\n got %x\nwant %x (vector 22)", got, want)
	}
	rsp := NewSupplyStatusResponse(SupplyStatusResponse{IssuerEventID: issuer, SupplyStatus: SupplyOff})
	if got, want := mustMarshal(t, rsp), unhex(t, vs[1].PayloadHex); !bytes.Equal(got, want) {
		t.Errorf("GCS32 response builder:\n got %x\nwant %x (vector 23)", got, want)
	}
}
