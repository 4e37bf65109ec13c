package operator

import (
	"fmt"
	"time"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/internal/serving"
)

// Defaults of ServeConfig, which "metertrust serve operator" also gives its
// flags.
const (
	DefaultListen   = "127.0.0.1:8445"
	DefaultLogLevel = "info"
	// DefaultMetricsListen is where the metrics listener binds by default.
	DefaultMetricsListen = serving.DefaultOperatorMetrics
)

// ServeConfig is the configuration of "metertrust serve operator", the
// operator API in a process of its own that holds no key but its TLS
// server key: one field per flag of the command, read from the file given
// by --config (strict JSON: unknown fields and trailing data are errors). A
// flag given on the command line overrides the file's field; a field
// neither gives takes the flag's default.
//
// In a file, relative paths (data, store when it is a SQLite path,
// tlsCert, tlsKey, operators) are resolved against the directory holding
// the file; "postgres://..." names no local file.
type ServeConfig struct {
	// Data is the data directory holding the SQLite store.
	Data string `json:"data,omitempty" path:"file"`
	// Store is the store DSN (postgres://... or a SQLite path); empty means
	// the store in Data. It must be the store the router serves from: the
	// router's release sweeper forwards what this process releases.
	Store string `json:"store,omitempty" path:"uri"`
	// Listen is the address to serve HTTPS on, host:port; empty means
	// DefaultListen.
	Listen string `json:"listen,omitempty"`
	// TLSCert is the server certificate chain (PEM) the API presents.
	// Required: bearer tokens travel only over TLS.
	TLSCert string `json:"tlsCert,omitempty" path:"file"`
	// TLSKey is the server certificate's private key (PEM), the one key
	// this process holds. Required.
	TLSKey string `json:"tlsKey,omitempty" path:"file"`
	// Operators is the operator credentials file (see Load). Required.
	Operators string `json:"operators,omitempty" path:"file"`
	// LogLevel is debug, info, warn or error; empty means DefaultLogLevel.
	LogLevel string `json:"logLevel,omitempty"`
	// MetricsListen is the address of the plain-HTTP Prometheus listener
	// (GET /metrics only, no client certificate), host:port; empty means
	// DefaultMetricsListen, "off" turns it off (decision 024).
	MetricsListen string `json:"metricsListen,omitempty"`
	// SessionIdle ends a dashboard session unused for this long, and
	// SessionMax any session this long after its login: Go durations
	// ("30m", "12h"); empty for the dashboard's defaults (30m, 12h).
	SessionIdle string `json:"sessionIdle,omitempty"`
	SessionMax  string `json:"sessionMax,omitempty"`
	// ProposalTTL is how long a two-person proposal (bulk release or
	// delete, loosening or deleting a DCC threshold) waits for a second
	// operator's approval: a Go duration from 1m to 720h; empty for 24h
	// (decision 023).
	ProposalTTL string `json:"proposalTTL,omitempty"`
}

// TTL returns the proposals' TTL (zero for the default); Validate has
// checked it.
func (c ServeConfig) TTL() time.Duration {
	d, _ := time.ParseDuration(c.ProposalTTL)
	return d
}

// Sessions returns the dashboard's session durations (zero for the
// defaults); Validate has checked them.
func (c ServeConfig) Sessions() (idle, max time.Duration) {
	idle, _ = time.ParseDuration(c.SessionIdle)
	max, _ = time.ParseDuration(c.SessionMax)
	return idle, max
}

// LoadServeConfig reads a ServeConfig from a JSON file, strictly, and
// resolves its relative paths against the file's directory. It does not
// validate: the caller applies its flags first, then calls Validate.
func LoadServeConfig(path string) (ServeConfig, error) {
	var c ServeConfig
	if _, err := jsonconfig.Read(path, &c); err != nil {
		return ServeConfig{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return c, nil
}

// WithDefaults returns c with empty Listen and LogLevel given their
// defaults.
func (c ServeConfig) WithDefaults() ServeConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.MetricsListen == "" {
		c.MetricsListen = DefaultMetricsListen
	}
	return c
}

// Validate reports the first thing wrong with c (after WithDefaults),
// naming the field and then its flag, wrapping ErrConfig. It opens no file.
func (c ServeConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Data == "" && c.Store == "":
		return bad("store", "--data or --store is required (the router's store)")
	case c.TLSCert == "":
		return bad("tlsCert", "--tls-cert is required")
	case c.TLSKey == "":
		return bad("tlsKey", "--tls-key is required")
	case c.Operators == "":
		return bad("operators", "--operators is required")
	case jsonconfig.CheckLogLevel(c.LogLevel) != nil:
		return bad("logLevel", "--log-level %v", jsonconfig.CheckLogLevel(c.LogLevel))
	}
	if err := jsonconfig.CheckListen(c.Listen); err != nil {
		return bad("listen", "--listen %v", err)
	}
	if c.MetricsListen != serving.MetricsOff {
		if err := jsonconfig.CheckListen(c.MetricsListen); err != nil {
			return bad("metricsListen", "--metrics-listen %v (or \"off\")", err)
		}
	}
	for _, d := range []struct{ field, flag, v string }{{"sessionIdle", "session-idle", c.SessionIdle}, {"sessionMax", "session-max", c.SessionMax}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v < time.Minute || v > 7*24*time.Hour {
			return bad(d.field, "--%s %q: want a duration from 1m to 168h, such as 30m", d.flag, d.v)
		}
	}
	if c.ProposalTTL != "" {
		if v, err := time.ParseDuration(c.ProposalTTL); err != nil || v < time.Minute || v > 720*time.Hour {
			return bad("proposalTTL", "--proposal-ttl %q: want a duration from 1m to 720h, such as 24h", c.ProposalTTL)
		}
	}
	return nil
}
