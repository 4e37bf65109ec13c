// Package serving holds what every "metertrust serve" command sets up the
// same way: the JSON service logger, the "keys loaded" line, and running
// several services until the first stops. It depends on nothing of ours
// (the reference meter's fleet uses it too); package dccki holds the TLS
// set-up that needs the store's CAs.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
