package ra

import (
	"errors"
	"fmt"
	"time"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/proposal"
)

// Defaults of ServeConfig, which "metertrust serve ca" also gives its flags.
const (
	DefaultListen   = "127.0.0.1:8446"
	DefaultLogLevel = "info"
	// DefaultMetricsListen is where the metrics listener binds by default.
	DefaultMetricsListen = serving.DefaultCAMetrics
	// DefaultRefreshInterval is how often the service looks for OCSP
	// responses and CRLs to re-sign.
	DefaultRefreshInterval = time.Hour
)

// ErrConfig is wrapped by every error ServeConfig.Validate and
// LoadServeConfig return.
var ErrConfig = errors.New("ca service: invalid configuration")

// ServeConfig is the configuration of "metertrust serve ca": one field per
// flag of the command, read from the file given by --config (strict JSON:
// unknown fields and trailing data are errors). A flag given on the command
// line overrides the file's field; a field neither gives takes the flag's
// default.
//
// In a file, relative paths (data, store when it is a SQLite path, tlsCert,
// tlsKey, clientCA, operators) are resolved against the directory holding
// the file. A key manager URI keeps its own rules: "softkms" keys are files
// in data's keys/, "pkcs11:..." names a token.
type ServeConfig struct {
	// Data is the CA's data directory: DATA/config.json (written by
	// "ca init", naming the key manager and the store), the SQLite store and
	// softkms key files.
	Data string `json:"data,omitempty" path:"file"`
	// Store is the store DSN (postgres://... or a SQLite path); empty means
	// the one DATA/config.json names, else the store in Data.
	Store string `json:"store,omitempty" path:"uri"`
	// KMS is the key manager URI of the CA keys (softkms or pkcs11:...);
	// empty means the one DATA/config.json names. Only the online CAs' keys
	// are loaded from it, never a root's.
	KMS string `json:"kms,omitempty"`
	// Listen is the address to serve HTTPS (mutual TLS) on, host:port;
	// empty means DefaultListen.
	Listen string `json:"listen,omitempty"`
	// TLSCert is the service's TLS server certificate chain (PEM).
	// Required.
	TLSCert string `json:"tlsCert,omitempty" path:"file"`
	// TLSKey is the server certificate's private key (PEM). Required.
	TLSKey string `json:"tlsKey,omitempty" path:"file"`
	// ClientCA holds the CA certificates (PEM) client certificates must
	// chain to; empty means the store's DCCKI root and TLS CA.
	ClientCA string `json:"clientCA,omitempty" path:"file"`
	// Operators is the operator credentials file (package operator's
	// format); the roles revoke and issue allow this API's actions.
	// Required.
	Operators string `json:"operators,omitempty" path:"file"`
	// Refresh is how often OCSP responses and CRLs close to expiry are
	// re-signed, a Go duration such as "1h"; empty means
	// DefaultRefreshInterval. It must be shorter than half the OCSP
	// response validity (a day), or responses would expire between runs.
	Refresh string `json:"refresh,omitempty"`
	// LogLevel is debug, info, warn or error; empty means DefaultLogLevel.
	LogLevel string `json:"logLevel,omitempty"`
	// ProposalTTL is how long a batch-open proposal waits for a second
	// operator's approval, a Go duration such as "24h"; empty means
	// proposal.DefaultTTL (24h). Between 1m and 720h (decision 023).
	ProposalTTL string `json:"proposalTTL,omitempty"`
	// MetricsListen is the address of the plain-HTTP Prometheus listener
	// (GET /metrics only, no client certificate), host:port; empty means
	// DefaultMetricsListen, "off" turns it off (decision 024).
	MetricsListen string `json:"metricsListen,omitempty"`
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

// WithDefaults returns c with empty Listen, Refresh and LogLevel given their
// defaults.
func (c ServeConfig) WithDefaults() ServeConfig {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Refresh == "" {
		c.Refresh = DefaultRefreshInterval.String()
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.MetricsListen == "" {
		c.MetricsListen = DefaultMetricsListen
	}
	return c
}

// RefreshInterval returns Refresh as a duration (after Validate).
func (c ServeConfig) RefreshInterval() time.Duration {
	d, err := time.ParseDuration(c.WithDefaults().Refresh)
	if err != nil {
		return DefaultRefreshInterval
	}
	return d
}

// ProposalTTLDuration returns ProposalTTL as a duration (after Validate);
// zero for the default.
func (c ServeConfig) ProposalTTLDuration() time.Duration {
	d, _ := time.ParseDuration(c.ProposalTTL)
	return d
}

// maxRefresh bounds Refresh: under half the default OCSP validity (a
// day), so that a response re-signed when within half its validity of
// expiry never expires between two runs.
const maxRefresh = 12 * time.Hour

// Validate reports the first thing wrong with c (after WithDefaults),
// naming the field and then its flag, wrapping ErrConfig. It opens no file.
func (c ServeConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Data == "":
		return bad("data", "--data is required (DATA/config.json names the CA's key manager and store)")
	case c.TLSCert == "":
		return bad("tlsCert", "--tls-cert is required")
	case c.TLSKey == "":
		return bad("tlsKey", "--tls-key is required")
	case c.Operators == "":
		return bad("operators", "--operators is required (no operator, no action)")
	case jsonconfig.CheckLogLevel(c.LogLevel) != nil:
		return bad("logLevel", "--log-level %v", jsonconfig.CheckLogLevel(c.LogLevel))
	}
	d, err := time.ParseDuration(c.Refresh)
	if err != nil || d <= 0 || d >= maxRefresh {
		return bad("refresh", "--refresh %q: want a duration above zero and under %s, such as 1h", c.Refresh, maxRefresh)
	}
	if c.ProposalTTL != "" {
		if d, err := time.ParseDuration(c.ProposalTTL); err != nil || d < time.Minute || d > proposal.MaxTTL {
			return bad("proposalTTL", "--proposal-ttl %q: want a duration from 1m to %s, such as 24h", c.ProposalTTL, proposal.MaxTTL)
		}
	}
	if c.MetricsListen != serving.MetricsOff {
		if err := jsonconfig.CheckListen(c.MetricsListen); err != nil {
			return bad("metricsListen", "--metrics-listen %v (or \"off\")", err)
		}
	}
	if err := jsonconfig.CheckListen(c.Listen); err != nil {
		return bad("listen", "--listen %v", err)
	}
	return nil
}
