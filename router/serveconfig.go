package router

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/smki"
)

// Defaults of ServeConfig, which "metertrust serve router" also gives its
// flags.
const (
	DefaultListen   = "127.0.0.1:8443"
	DefaultLogLevel = "info"
	// DefaultMetricsListen is where the metrics listener binds by default.
	DefaultMetricsListen = serving.DefaultRouterMetrics
)

// ErrServeConfig is wrapped by every error ServeConfig.Validate and
// LoadServeConfig return.
var ErrServeConfig = errors.New("router: invalid configuration")

// ServeConfig is the configuration of "metertrust serve router": one field
// per flag of the command, read from the file given by --config (strict
// JSON: unknown fields and trailing data are errors). A flag given on the
// command line overrides the file's field; a field neither gives takes the
// flag's default.
//
// In a file, relative paths (data, store when it is a SQLite path, acbKey
// when it is a plain file name, tlsCert, tlsKey, clientCA, cspCA, cspCert,
// cspKey, operators) are resolved against the directory holding the file,
// so a configuration may sit beside its certificates. A URI keeps its own
// rules: "softkms:path=FILE" is resolved against data, "pkcs11:..." and
// "postgres://..." name no local file.
type ServeConfig struct {
	// Data is the data directory: the SQLite store and key files.
	Data string `json:"data,omitempty" path:"file"`
	// Store is the store DSN (postgres://... or a SQLite path); empty means
	// the store in Data.
	Store string `json:"store,omitempty" path:"uri"`
	// Listen is the address to serve HTTPS on, host:port; empty means
	// DefaultListen.
	Listen string `json:"listen,omitempty"`
	// ACBKey names the access control broker's key-agreement key: a PEM
	// file, softkms:path=FILE, or a PKCS#11 URI (see custody.OpenAgreement).
	// Required.
	ACBKey string `json:"acbKey,omitempty" path:"uri"`
	// ACBEUI is the access control broker's EUI-64 (16 hex digits).
	// Required.
	ACBEUI string `json:"acbEUI,omitempty"`
	// TCoSKey names the transitional change-of-supplier party's
	// digital-signing key, which signs the CS02b of a change of supplier
	// (decision 014): a PEM file, softkms:path=FILE, or a PKCS#11 URI (see
	// custody.OpenKey). Optional; it goes with TCoSEUI. Without it the
	// router refuses changes of supplier.
	TCoSKey string `json:"tcosKey,omitempty" path:"uri"`
	// TCoSEUI is the transitional change-of-supplier party's EUI-64.
	TCoSEUI string `json:"tcosEUI,omitempty"`
	// TLSCert is the DCCKI server certificate chain (PEM). Required.
	TLSCert string `json:"tlsCert,omitempty" path:"file"`
	// TLSKey is the server certificate's private key (PEM). Required.
	TLSKey string `json:"tlsKey,omitempty" path:"file"`
	// ClientCA is the DCCKI root certificate (PEM) client certificates
	// must chain to; empty means the store's DCCKI root and TLS CA.
	ClientCA string `json:"clientCA,omitempty" path:"file"`
	// CSP is the communications service provider's endpoint, an absolute
	// http(s) URL. Required.
	CSP string `json:"csp,omitempty"`
	// CSPCA holds the CA certificates (PEM) for the CSP endpoint; empty
	// means the system pool.
	CSPCA string `json:"cspCA,omitempty" path:"file"`
	// CSPCert is the client certificate chain (PEM) presented to the CSP
	// endpoint; it goes with CSPKey.
	CSPCert string `json:"cspCert,omitempty" path:"file"`
	// CSPKey is CSPCert's private key (PEM).
	CSPKey string `json:"cspKey,omitempty" path:"file"`
	// LogLevel is debug, info, warn or error; empty means DefaultLogLevel.
	LogLevel string `json:"logLevel,omitempty"`
	// MetricsListen is the address of the plain-HTTP Prometheus listener
	// (GET /metrics only, no client certificate), host:port; empty means
	// DefaultMetricsListen, "off" turns it off (decision 024).
	MetricsListen string `json:"metricsListen,omitempty"`
	// OperatorListen is the address to serve the operator API on (HTTPS,
	// bearer tokens); empty turns it off. It goes with Operators.
	OperatorListen string `json:"operatorListen,omitempty"`
	// Operators is the operator credentials file (package operator's
	// format, as "metertrust operator token" prints its entries).
	Operators string `json:"operators,omitempty" path:"file"`
	// CredentialChange times the change desk (decision 014): changes of
	// supplier and key rotations. File only (no flags); absent or empty
	// fields take the defaults.
	CredentialChange CredentialChangeConfig `json:"credentialChange,omitzero"`
}

// CredentialChangeConfig times the change desk (ChangeDeskConfig), each
// duration a Go duration string ("2m", "90s"); "" for the default.
type CredentialChangeConfig struct {
	// AnswerTimeout is how long a CS02b's answer is awaited (from its
	// execution time when future-dated) before the change is unsettled
	// and read; default 2m, from 1s to 24h.
	AnswerTimeout string `json:"answerTimeout,omitempty"`
	// ReadTimeout is how long the first read's answer is awaited, doubled
	// with each read up to ReadMaxWait; default 2m, from 1s to 24h.
	ReadTimeout string `json:"readTimeout,omitempty"`
	// ReadMaxWait bounds the wait between reads; default 1h, at least
	// ReadTimeout, at most 24h.
	ReadMaxWait string `json:"readMaxWait,omitempty"`
	// ReadAlertAfter is the number of unanswered reads after which (and
	// after each such number more) an operator is alerted; default 5, from
	// 1 to 1000.
	ReadAlertAfter int `json:"readAlertAfter,omitempty"`
	// Sweep is how often the desk looks for overdue changes; default 10s,
	// from 100ms to 10m.
	Sweep string `json:"sweep,omitempty"`
}

// Desk returns the timing of c as ChangeDeskConfig takes it (zero for a
// default), or the first error, naming the field.
func (c CredentialChangeConfig) Desk() (ChangeDeskConfig, error) {
	var out ChangeDeskConfig
	for _, f := range []struct {
		name     string
		v        string
		dst      *time.Duration
		min, max time.Duration
	}{
		{"answerTimeout", c.AnswerTimeout, &out.AnswerTimeout, time.Second, 24 * time.Hour},
		{"readTimeout", c.ReadTimeout, &out.ReadTimeout, time.Second, 24 * time.Hour},
		{"readMaxWait", c.ReadMaxWait, &out.ReadMaxWait, time.Second, 24 * time.Hour},
		{"sweep", c.Sweep, &out.Sweep, 100 * time.Millisecond, 10 * time.Minute},
	} {
		if f.v == "" {
			continue
		}
		d, err := time.ParseDuration(f.v)
		if err != nil {
			return ChangeDeskConfig{}, fmt.Errorf("credentialChange.%s: %w", f.name, err)
		}
		if d < f.min || d > f.max {
			return ChangeDeskConfig{}, fmt.Errorf("credentialChange.%s: %s is outside %s to %s", f.name, d, f.min, f.max)
		}
		*f.dst = d
	}
	rt, mw := out.ReadTimeout, out.ReadMaxWait
	if rt == 0 {
		rt = DefaultChangeReadTimeout
	}
	if mw == 0 {
		mw = DefaultChangeReadMaxWait
	}
	if mw < rt {
		return ChangeDeskConfig{}, fmt.Errorf("credentialChange.readMaxWait: %s is below the read timeout %s", mw, rt)
	}
	if c.ReadAlertAfter < 0 || c.ReadAlertAfter > 1000 {
		return ChangeDeskConfig{}, fmt.Errorf("credentialChange.readAlertAfter: %d is outside 1 to 1000", c.ReadAlertAfter)
	}
	out.ReadAlertAfter = c.ReadAlertAfter
	return out, nil
}

// LoadServeConfig reads a ServeConfig from a JSON file, strictly, and
// resolves its relative paths against the file's directory. It does not
// validate: the caller applies its flags first, then calls Validate.
func LoadServeConfig(path string) (ServeConfig, error) {
	var c ServeConfig
	if _, err := jsonconfig.Read(path, &c); err != nil {
		return ServeConfig{}, fmt.Errorf("%w: %w", ErrServeConfig, err)
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
// naming the field and then its flag, wrapping ErrServeConfig. It opens no file:
// whether the files exist and hold what they should is found at start.
func (c ServeConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrServeConfig, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.ACBEUI == "":
		return bad("acbEUI", "--acb-eui is required")
	case c.ACBKey == "":
		return bad("acbKey", "--acb-key is required")
	case (c.TCoSKey == "") != (c.TCoSEUI == ""):
		return bad("tcosKey", "--tcos-key and --tcos-eui go together (tcosKey and tcosEUI in a file)")
	case c.TLSCert == "":
		return bad("tlsCert", "--tls-cert is required")
	case c.TLSKey == "":
		return bad("tlsKey", "--tls-key is required")
	case c.CSP == "":
		return bad("csp", "--csp is required (the in-process fleet runs under metertrust demo)")
	case (c.CSPCert == "") != (c.CSPKey == ""):
		return bad("cspCert", "--csp-cert and --csp-key go together (cspCert and cspKey in a file)")
	case (c.OperatorListen == "") != (c.Operators == ""):
		return bad("operatorListen", "--operator-listen and --operators go together (operatorListen and operators in a file)")
	case jsonconfig.CheckLogLevel(c.LogLevel) != nil:
		return bad("logLevel", "--log-level %v", jsonconfig.CheckLogLevel(c.LogLevel))
	}
	if _, err := smki.ParseEUI(c.ACBEUI); err != nil {
		return bad("acbEUI", "--acb-eui: %v", err)
	}
	if c.TCoSEUI != "" {
		if _, err := smki.ParseEUI(c.TCoSEUI); err != nil {
			return bad("tcosEUI", "--tcos-eui: %v", err)
		}
	}
	if err := jsonconfig.CheckListen(c.Listen); err != nil {
		return bad("listen", "--listen %v", err)
	}
	if c.MetricsListen != serving.MetricsOff {
		if err := jsonconfig.CheckListen(c.MetricsListen); err != nil {
			return bad("metricsListen", "--metrics-listen %v (or \"off\")", err)
		}
	}
	if c.OperatorListen != "" {
		if err := jsonconfig.CheckListen(c.OperatorListen); err != nil {
			return bad("operatorListen", "--operator-listen %v", err)
		}
	}
	if _, err := c.CredentialChange.Desk(); err != nil {
		return fmt.Errorf("%w: %w", ErrServeConfig, err)
	}
	if u, err := url.Parse(c.CSP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("csp", "--csp %q: want an absolute http(s) URL", c.CSP)
	}
	return nil
}
