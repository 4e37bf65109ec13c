package device

import (
	"errors"
	"fmt"
	"strings"

	"github.com/metertrust/metertrust/internal/jsonconfig"
	"github.com/metertrust/metertrust/internal/serving"
	"github.com/metertrust/metertrust/smki"
)

// Defaults of ServeConfig, which "metertrust serve fleet" also gives its
// flags.
const (
	DefaultServeListen = "127.0.0.1:8480"
	DefaultFirstEUI    = "0012A3FFFE000001"
	DefaultKind        = "electricity"
	DefaultLogLevel    = "info"
	// DefaultMetricsListen is where the metrics listener binds by default.
	DefaultMetricsListen = serving.DefaultFleetMetrics
)

// ErrServeConfig is wrapped by every error ServeConfig.Validate and
// LoadServeConfig return.
var ErrServeConfig = errors.New("device: invalid fleet configuration")

// ServeConfig is the configuration of "metertrust serve fleet", a fleet of
// reference meters behind a communications service provider's HTTP
// endpoint: one field per flag of the command, read from the file given by
// --config (strict JSON: unknown fields and trailing data are errors). A
// flag given on the command line overrides the file's field; a field
// neither gives takes the flag's default.
//
// In a file, relative paths (data, batchDir, every certificate file,
// tlsCert, tlsKey, clientCA) are resolved against the directory holding
// the file. Relative paths given by flags are resolved against Data, as
// before.
type ServeConfig struct {
	// Data is the directory relative paths given by flags are resolved
	// against.
	Data string `json:"data,omitempty" path:"file"`
	// BatchDir is the directory of device keys and certificates written by
	// "metertrust ca issue devices --out". Exactly one of BatchDir and
	// Generate is given.
	BatchDir string `json:"batchDir,omitempty" path:"file"`
	// Generate, if positive, generates that many meters with fresh keys
	// and no certificates, for load tests.
	Generate int `json:"generate,omitempty"`
	// FirstEUI is the EUI-64 of the first generated meter; empty means
	// DefaultFirstEUI.
	FirstEUI string `json:"firstEUI,omitempty"`
	// Kind is the meters' kind: electricity (ESME) or gas (GSME); empty
	// means DefaultKind.
	Kind string `json:"kind,omitempty"`
	// RootCert is the SMKI root CA certificate (PEM), the root trust anchor.
	RootCert string `json:"rootCert,omitempty" path:"file"`
	// SupplierCert lists supplier organisation certificates, DS or KA (PEM).
	SupplierCert []string `json:"supplierCert,omitempty" path:"file"`
	// SupplierTopUpCert lists supplier prepayment top-up KA certificates
	// (PEM).
	SupplierTopUpCert []string `json:"supplierTopUpCert,omitempty" path:"file"`
	// NetworkOperatorCert lists network operator organisation certificates
	// (PEM).
	NetworkOperatorCert []string `json:"networkOperatorCert,omitempty" path:"file"`
	// ACBCert lists access control broker organisation certificates (PEM);
	// at least one is required, its KA key checks every MAC.
	ACBCert []string `json:"acbCert,omitempty" path:"file"`
	// TCoSCert lists transitional change of supplier organisation
	// certificates (PEM).
	TCoSCert []string `json:"tcosCert,omitempty" path:"file"`
	// WANProviderCert lists WAN provider organisation certificates (PEM).
	WANProviderCert []string `json:"wanProviderCert,omitempty" path:"file"`
	// Listen is the address to serve on, host:port; empty means
	// DefaultServeListen.
	Listen string `json:"listen,omitempty"`
	// GFIListen, when set, is a second address, host:port, on which the
	// fleet speaks the GFI text framing of gbcs-security.md section 12
	// over TCP (GFIServer); plain TCP, for test tools on a test network.
	GFIListen string `json:"gfiListen,omitempty"`
	// TLSCert is the server certificate chain (PEM); plain HTTP without
	// it. It goes with TLSKey.
	TLSCert string `json:"tlsCert,omitempty" path:"file"`
	// TLSKey is the server certificate's private key (PEM).
	TLSKey string `json:"tlsKey,omitempty" path:"file"`
	// ClientCA holds the CA certificates (PEM) client certificates must
	// chain to; given, a client certificate is required (and TLSCert).
	ClientCA string `json:"clientCA,omitempty" path:"file"`
	// LogLevel is debug, info, warn or error; empty means DefaultLogLevel.
	LogLevel string `json:"logLevel,omitempty"`
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
		return ServeConfig{}, fmt.Errorf("%w: %w", ErrServeConfig, err)
	}
	return c, nil
}

// WithDefaults returns c with empty FirstEUI, Kind, Listen and LogLevel
// given their defaults.
func (c ServeConfig) WithDefaults() ServeConfig {
	if c.FirstEUI == "" {
		c.FirstEUI = DefaultFirstEUI
	}
	if c.Kind == "" {
		c.Kind = DefaultKind
	}
	if c.Listen == "" {
		c.Listen = DefaultServeListen
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.MetricsListen == "" {
		c.MetricsListen = DefaultMetricsListen
	}
	return c
}

// ParseKind reads a meter kind: electricity (or esme) or gas (or gsme),
// in any case.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(s) {
	case "electricity", "esme":
		return Electricity, nil
	case "gas", "gsme":
		return Gas, nil
	}
	return 0, fmt.Errorf("%q: want electricity or gas", s)
}

// Validate reports the first thing wrong with c (after WithDefaults),
// naming the field and then its flag, wrapping ErrServeConfig. It opens no
// file: whether the files exist and hold what they should is found at
// start.
func (c ServeConfig) Validate() error {
	c = c.WithDefaults()
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrServeConfig, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Generate < 0:
		return bad("generate", "--generate %d: want a positive number of meters", c.Generate)
	case (c.BatchDir == "") == (c.Generate == 0):
		return bad("batchDir", "give exactly one of --batch-dir and --generate (batchDir and generate in a file)")
	case len(c.ACBCert) == 0:
		return bad("acbCert", "--acb-cert is required: without the ACB's key-agreement anchor no MAC verifies")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return bad("tlsCert", "--tls-cert and --tls-key go together (tlsCert and tlsKey in a file)")
	case c.ClientCA != "" && c.TLSCert == "":
		return bad("clientCA", "--client-ca needs --tls-cert and --tls-key")
	case jsonconfig.CheckLogLevel(c.LogLevel) != nil:
		return bad("logLevel", "--log-level %v", jsonconfig.CheckLogLevel(c.LogLevel))
	}
	if _, err := ParseKind(c.Kind); err != nil {
		return bad("kind", "--kind %v", err)
	}
	if _, err := smki.ParseEUI(c.FirstEUI); err != nil {
		return bad("firstEUI", "--first-eui: %v", err)
	}
	if c.MetricsListen != serving.MetricsOff {
		if err := jsonconfig.CheckListen(c.MetricsListen); err != nil {
			return bad("metricsListen", "--metrics-listen %v (or \"off\")", err)
		}
	}
	if err := jsonconfig.CheckListen(c.Listen); err != nil {
		return bad("listen", "--listen %v", err)
	}
	if c.GFIListen != "" {
		if err := jsonconfig.CheckListen(c.GFIListen); err != nil {
			return bad("gfiListen", "--gfi-listen %v", err)
		}
	}
	return nil
}
