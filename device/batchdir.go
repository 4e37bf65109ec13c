package device

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
)

// ReadBatchDir reads the meters of a directory written by "ca issue devices
// --out" (ca.Authority.IssueDevices): for each EUI, <EUI>-ds.pem and
// <EUI>-ka.pem, each holding the P-256 private key (read by package
// custody) and the device certificate, in EUI order; the fleet checks, as
// it adds them, that each certificate names the EUI and certifies the key.
// A directory with no <EUI>-ds.pem file gives none and no error. Errors never
// quote a key.
func ReadBatchDir(dir string, kind Kind) ([]Provision, error) {
	ds, err := filepath.Glob(filepath.Join(dir, "*-ds.pem"))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	slices.Sort(ds)
	ps := make([]Provision, 0, len(ds))
	for _, dsPath := range ds {
		name := strings.TrimSuffix(filepath.Base(dsPath), "-ds.pem")
		eui, err := smki.ParseEUI(name)
		if err != nil {
			return nil, fmt.Errorf("%s: file name is not <EUI>-ds.pem: %w", dsPath, err)
		}
		dsKey, dsCert, err := readKeyAndCert(dsPath)
		if err != nil {
			return nil, err
		}
		kaKey, kaCert, err := readKeyAndCert(filepath.Join(dir, name+"-ka.pem"))
		if err != nil {
			return nil, err
		}
		ps = append(ps, Provision{Identity: Identity{EUI: eui, Kind: kind, Signer: dsKey, KeyAgreement: kaKey},
			DSCertificate: dsCert, KACertificate: kaCert})
	}
	return ps, nil
}

// readKeyAndCert reads a PEM file holding one P-256 private key and one
// certificate.
func readKeyAndCert(path string) (*custody.Software, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer clear(b)
	key, err := custody.ParsePEM(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, nil, fmt.Errorf("%s holds no CERTIFICATE block", path)
		}
		if blk.Type == "CERTIFICATE" {
			return key, blk.Bytes, nil
		}
	}
}
