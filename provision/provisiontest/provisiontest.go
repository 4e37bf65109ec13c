// Package provisiontest builds provisioning files of simulated devices for
// tests: fresh keys from package custody, a DS and a KA device request
// for each device (smki.CreateCSR), written with provision.Write.
package provisiontest

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/smki"
)

// Devices returns n ESME devices with EUI-64s first, first+1, ..., each
// with a DS and a KA request on fresh P-256 keys (the keys are dropped).
// The requests are made in parallel.
func Devices(n int, first smki.EUI) ([]provision.Device, error) {
	out := make([]provision.Device, n)
	errs := make([]error, n)
	idx := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				eui := Add(first, uint64(i))
				d := provision.Device{EUI: eui, DeviceType: provision.ESME}
				for _, ku := range []x509.KeyUsage{x509.KeyUsageDigitalSignature, x509.KeyUsageKeyAgreement} {
					csr, err := CSR(eui, ku)
					if err != nil {
						errs[i] = err
						break
					}
					d.CSRs = append(d.CSRs, csr)
				}
				out[i] = d
			}
		}()
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CSR returns a device request for eui with the given key usage on a fresh
// key, for the metertrust reference meter's hwType.
func CSR(eui smki.EUI, ku x509.KeyUsage) ([]byte, error) {
	k, err := custody.Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui, KeyUsage: ku,
		HWType: smki.OIDHWTypeReferenceMeter}, k)
	if err != nil {
		return nil, fmt.Errorf("provisiontest: request for %s: %w", eui, err)
	}
	return csr, nil
}

// File writes devices as a provisioning file of manufacturer, created at
// the given time.
func File(manufacturer smki.EUI, created time.Time, devices []provision.Device) ([]byte, error) {
	var b bytes.Buffer
	if err := provision.Write(&b, manufacturer, created, devices); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Add returns e + n, as a 64-bit big-endian number.
func Add(e smki.EUI, n uint64) smki.EUI {
	var out smki.EUI
	binary.BigEndian.PutUint64(out[:], binary.BigEndian.Uint64(e[:])+n)
	return out
}
