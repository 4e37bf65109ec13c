// Package dccki sets up the services' TLS from the DCCKI CAs in the store:
// a server certificate completed with its issuing CA, and the pool client
// certificates must chain to.
package dccki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/store"
)

// CAFinder looks a CA up by name; *store.SMKIStore implements it.
type CAFinder interface {
	CA(ctx context.Context, name string) (store.CA, error)
}

// ServerCertificate loads a TLS server certificate chain and its key (PEM
// files). A certificate written by "ca issue tls-server" is the leaf
// alone: the DCCKI TLS issuing CA from cas is sent with it, so that clients
// holding the DCCKI root can build the path.
func ServerCertificate(ctx context.Context, certFile, keyFile string, cas CAFinder) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	if len(c.Certificate) == 1 && cas != nil {
		if rec, err := cas.CA(ctx, ca.NameDCCKITLS); err == nil {
			c.Certificate = append(c.Certificate, rec.CertDER)
		}
	}
	return c, nil
}

// ClientCAs returns the pool client certificates must chain to: the PEM
// file when given, else the store's DCCKI root and DCCKI TLS issuing CA (the
// latter so that clients may present their certificate without its chain).
func ClientCAs(ctx context.Context, file string, cas CAFinder) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--client-ca: %s holds no PEM certificate", file)
		}
		return pool, nil
	}
	for _, name := range []string{ca.NameDCCKIRoot, ca.NameDCCKITLS} {
		rec, err := cas.CA(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("no --client-ca and no %s CA in the store (run metertrust ca init): %w", name, err)
		}
		c, err := x509.ParseCertificate(rec.CertDER)
		if err != nil {
			return nil, fmt.Errorf("the store's %s certificate: %w", name, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}
