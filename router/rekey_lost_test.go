package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// submit runs the DUIS two-step for the supplier and returns the receipt.
func (e *e2e) submit(t *testing.T, ref string, target smki.EUI, params string) Receipt {
	t.Helper()
	body := `{"serviceReference":"` + ref + `","target":"` + target.String() + `"`
	if params != "" {
		body += `,"parameters":` + params
	}
	var pc PreCommand
	if st, p := e.call(t, "POST", "/v1/service-requests", "application/json", []byte(body+"}"), &pc); st != http.StatusOK {
		t.Fatalf("service request %s: %d %+v", ref, st, p)
	}
	raw, _ := hex.DecodeString(pc.Message)
	if pc.Critical {
		m, err := commands.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := commands.SignPreCommand(rand.Reader, e.supplier.ds, m); err != nil {
			t.Fatal(err)
		}
		if raw, err = m.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	var rc Receipt
	if st, p := e.call(t, "POST", "/v1/commands", "application/octet-stream", raw, &rc); st != http.StatusAccepted {
		t.Fatalf("%s: %d %+v", ref, st, p)
	}
	return rc
}

// awaitDelivery polls the supplier's deliveries until one for command id.
func (e *e2e) awaitDelivery(t *testing.T, id string) deliveryView {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v struct {
			Deliveries []deliveryView `json:"deliveries"`
		}
		e.call(t, "GET", "/v1/responses", "", nil, &v)
		for _, d := range v.Deliveries {
			if d.CommandID == id {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery for %s after 15s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRekeyKALostAnswer re-keys a reference meter's key-agreement key and
// loses the CS02d's answer on its way back (decision 017, "A lost
// answer"), on both stores. The meter installed the certificate and
// switched keys; the router, not knowing, keeps its registry's key and
// the CS02d's key as the device's pending key. A register read MAC'd with
// the old key is discarded by the meter. The CS02e read-back is too, and
// the forwarder sends it again MAC'd with the pending key: the meter
// answers, signed, with the certificate it holds, and the registry
// switches to the new key (audited: the resealed command and the
// re-key), the pending key cleared. A register read then goes through.
func TestRekeyKALostAnswer(t *testing.T) {
	for name, open := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := newE2E(t, open(t)(t))
			ctx := context.Background()
			meter := e.meters[0]
			mtr, _ := e.fleet.Meter(meter)
			oldKA := mtr.AgreementPublicKey().Bytes()

			// CS02c: the meter makes a key pair and answers with its CSR,
			// which a Device CA certifies.
			rc := e.submit(t, "6.17", meter, `{"keyUsage":"ka"}`)
			d := e.awaitDelivery(t, rc.ID)
			m, err := commands.Parse(d.Body)
			if err != nil {
				t.Fatal(err)
			}
			cr, err := asn.Parse[asn.IssueSecurityCredentialsResponse](m.Payload)
			if err != nil || cr.CertificationRequest == nil {
				t.Fatalf("CS02c answer: %+v, %v", cr, err)
			}
			if _, err := e.auth.OpenBatch(ctx, "B1", 10); err != nil {
				t.Fatal(err)
			}
			cert, err := e.auth.IssueDevice(ctx, "B1", cr.CertificationRequest.Raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := smki.ParseCertificate(cert.DER)
			if err != nil {
				t.Fatal(err)
			}
			newKA, err := c.PublicKey.ECDH()
			if err != nil {
				t.Fatal(err)
			}

			// CS02d, its answer lost: the meter switches, the router waits.
			e.loseAnswers.Store(uint32(codeCS02d))
			rc = e.submit(t, "6.15.2", meter, `{"certificate":"`+base64.StdEncoding.EncodeToString(cert.DER)+`"}`)
			deadline := time.Now().Add(15 * time.Second)
			for {
				cmd, err := e.db.Router().RouterCommand(ctx, rc.ID)
				if err != nil {
					t.Fatal(err)
				}
				if cmd.State == store.CommandForwarded || cmd.State == store.CommandFailed {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CS02d still %s after 15s", cmd.State)
				}
				time.Sleep(20 * time.Millisecond)
			}
			e.loseAnswers.Store(0)
			if !bytes.Equal(mtr.AgreementPublicKey().Bytes(), newKA.Bytes()) {
				t.Fatal("the meter did not switch to the new key")
			}
			if reg := registryKA(t, e, meter); !bytes.Equal(reg, oldKA) {
				t.Fatal("the registry switched without the meter's answer")
			}
			if p, err := e.db.Router().RouterDeviceKAPending(ctx, meter); err != nil || !bytes.Equal(p, newKA.Bytes()) {
				t.Fatalf("pending key %x, %v; want the CS02d's", p, err)
			}

			// A register read, MAC'd with the registry's key: discarded.
			rc = e.submit(t, "4.1.1", meter, "")
			if d := e.awaitDelivery(t, rc.ID); d.Kind != DeliveryFailure {
				t.Fatalf("register read under the old key: %+v, want a failure", d)
			}

			// The read-back: resealed with the pending key, answered.
			seq := e.auditHead(t)
			rc = e.submit(t, "6.24.2", meter, `{"keyUsage":"ka"}`)
			d = e.awaitDelivery(t, rc.ID)
			if d.Kind != DeliveryResponse {
				t.Fatalf("CS02e read-back: %+v, want the meter's response", d)
			}
			m, err = commands.Parse(d.Body)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := asn.Parse[asn.ProvideDeviceCertificateResponse](m.Payload); err != nil || p.Certificate == nil || !bytes.Equal(p.Certificate.Raw, cert.DER) {
				t.Fatalf("read-back %+v, %v; want the new certificate", p, err)
			}
			if reg := registryKA(t, e, meter); !bytes.Equal(reg, newKA.Bytes()) {
				t.Fatal("the registry does not hold the new key after the read-back")
			}
			if p, err := e.db.Router().RouterDeviceKAPending(ctx, meter); err != nil || p != nil {
				t.Errorf("pending key after the read-back: %x, %v; want none", p, err)
			}
			evs, err := e.db.AuditEvents(ctx, seq, store.MaxLimit)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, ev := range evs {
				if ev.Object == rc.ID {
					got[ev.Action]++
				}
			}
			if got["router.command.resealed"] != 1 || got["router.device.rekeyed"] != 1 || got["router.response.received"] != 1 {
				t.Errorf("audit entries of the read-back: %v", got)
			}

			// The next register read is MAC'd with the new key.
			rc = e.submit(t, "4.1.1", meter, "")
			if d := e.awaitDelivery(t, rc.ID); d.Kind != DeliveryResponse {
				t.Errorf("register read after the settlement: %+v", d)
			}
		})
	}
}

// registryKA returns the registry's key-agreement key of device.
func registryKA(t *testing.T, e *e2e, device smki.EUI) []byte {
	t.Helper()
	d, err := e.db.Router().RouterDevice(context.Background(), device)
	if err != nil {
		t.Fatal(err)
	}
	return d.KAPublic
}
