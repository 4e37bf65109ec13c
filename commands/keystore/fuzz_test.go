package keystore

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePEM checks that the key and certificate file readers never panic
// on what a keystore directory may hold. Seeds: the SMKI fixtures.
func FuzzParsePEM(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.pem"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParsePrivateKeyPEM(b)
		for _, u := range []Use{DS, KA, PPKA} {
			_, _ = ParsePublicPEM(b, org, u)
		}
	})
}
