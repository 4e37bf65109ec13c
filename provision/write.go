package provision

import (
	"bufio"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Device is one device to write: its EUI-64, type and DER requests.
type Device struct {
	EUI        smki.EUI
	DeviceType DeviceType
	CSRs       [][]byte
}

// Write writes a provisioning file: the header (its Format and Devices
// filled in from the arguments, Created in UTC to the second) and one line
// per device, each ending in LF. It checks nothing a reader checks; Read
// the result to be sure.
func Write(w io.Writer, manufacturer smki.EUI, created time.Time, devices []Device) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // Encode ends each value with LF
	enc.SetEscapeHTML(false)
	h := header{Format: Format, Manufacturer: manufacturer.String(),
		Created: created.UTC().Truncate(time.Second).Format(time.RFC3339), Devices: len(devices)}
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("provision: writing header: %w", err)
	}
	for _, d := range devices {
		e := entry{EUI: d.EUI.String(), DeviceType: string(d.DeviceType), CSRs: make([]string, len(d.CSRs))}
		for i, c := range d.CSRs {
			e.CSRs[i] = base64.StdEncoding.EncodeToString(c)
		}
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("provision: writing device %s: %w", d.EUI, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("provision: writing: %w", err)
	}
	return nil
}

// Sign returns the detached signature of data that Verify checks: the
// base64 of key's ECDSA signature (ASN.1 DER) over SHA-256(data), with a
// final LF, as `openssl dgst -sha256 -sign key.pem FILE | base64 -w0`
// prints it.
func Sign(rand io.Reader, data []byte, key crypto.Signer) ([]byte, error) {
	digest := sha256.Sum256(data)
	sig, err := key.Sign(rand, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("provision: signing: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig) + "\n"), nil
}
