// Package serving holds what every "metertrust serve" command sets up the
// same way: the JSON service logger, the "keys loaded" line, the TLS server
// certificate completed with its issuing CA, the DCCKI client CA pool, and
// running several services until the first stops.
package serving

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/store"
)

// Logger returns a JSON logger on stderr at level (debug, info, warn or
// error).
func Logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// KeysLoaded says, once at start, every private key the service holds (each
// as "purpose URI-or-file", PINs redacted): the keys it loaded, and by their
// absence the ones it did not (DESIGN principle 2: each service loads only
// the keys it needs). Tests read this line.
func KeysLoaded(ctx context.Context, log *slog.Logger, service string, keys ...string) {
	if keys == nil {
		keys = []string{}
	}
	log.InfoContext(ctx, "keys loaded", "service", service, "keys", keys)
}

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

// RunAll runs the services until ctx ends or one of them returns; the
// first to return stops the others. It returns their errors joined.
func RunAll(ctx context.Context, services ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(services))
	for _, fn := range services {
		go func() {
			err := fn(ctx)
			cancel()
			errs <- err
		}()
	}
	var all []error
	for range services {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
